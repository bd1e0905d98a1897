"""Studio tab "Dubbing": a silent clip + a script + an emotion → speech timed to the speaker's lips, through
``apps.render.render_dub`` (the same function as ``affectstudio dub`` and batch jobs)."""

from __future__ import annotations

import gradio as gr

from affectstudio.apps.studio.common import (
    EMOTION_HELP,
    RENDER_QUEUE,
    clean_text,
    file_or_none,
    output_file,
    pick_seed,
    require,
    run_render,
    seed_controls,
)

STAGES = ("timing the speech to the lips", "speaking")
LANGUAGES = [
    ("English (neural voice)", "en"),
    ("Spanish", "es"),
    ("French", "fr"),
    ("German", "de"),
    ("Italian", "it"),
    ("Portuguese", "pt"),
]


def render(video, text, emotion, intensity, use_intensity, voice, language, seed, randomise, progress=gr.Progress()):
    from affectstudio.apps.jobs.render import render_dub

    require(bool(video), "Upload the silent clip to dub (one visible face).")
    require(bool(clean_text(text)), "Type the script to speak.")
    seed = pick_seed(seed, randomise)
    out, wav = output_file(".mp4"), output_file(".wav")
    run_render(
        render_dub,
        progress,
        STAGES,
        video=file_or_none(video),
        text=clean_text(text),
        output=out,
        emotion=clean_text(emotion),
        intensity=float(intensity) if use_intensity else None,
        voice=file_or_none(voice),
        language=language or "en",
        seed=seed,
        wav=wav,
    )
    return str(out), str(wav), [str(out), str(wav)], seed


def build_tab(examples_dir) -> dict:
    gr.Markdown(
        "Dub a silent clip: the script is spoken with the emotion you ask for, timed to the speaker's lips. "
        "The result keeps the clip's length; the speech alone is also given as WAV."
    )
    with gr.Row():
        with gr.Column():
            video = gr.Video(label="Silent clip (one visible face)", sources=["upload"], elem_id="dub-video-in")
            text = gr.Textbox(label="Script", lines=3, elem_id="dub-text")
            emotion = gr.Textbox(
                label="Emotion or emotion curve", info=EMOTION_HELP, elem_id="dub-emotion", placeholder="empty: neutral"
            )
            seed, randomise = seed_controls()
            with gr.Accordion("Advanced settings", open=False):
                with gr.Row():
                    use_intensity = gr.Checkbox(value=False, label="Override intensity")
                    intensity = gr.Slider(0, 1, value=0.8, step=0.05, label="Intensity")
                voice = gr.Audio(
                    label="Reference voice (its pitch level is matched; optional)",
                    sources=["upload", "microphone"],
                    type="filepath",
                )
                language = gr.Dropdown(LANGUAGES, value="en", label="Language")
            go = gr.Button("Dub", variant="primary", elem_id="dub-render")
        with gr.Column():
            result = gr.Video(label="Dubbed clip", elem_id="dub-video-out")
            speech = gr.Audio(label="Speech (WAV)", type="filepath")
            files = gr.Files(label="Downloads")
            used_seed = gr.Number(label="Seed used", interactive=False, precision=0)
    sample = examples_dir / "silent_talk.mp4"
    if sample.is_file():
        gr.Examples(
            [
                [str(sample), "I told you this would happen, and nobody listened.", "angry:0.8"],
                [str(sample), "I can't believe it, we actually made it!", "neutral@0; happy@1.5"],
            ],
            inputs=[video, text, emotion],
            label="Examples",
        )
    go.click(
        render,
        [video, text, emotion, intensity, use_intensity, voice, language, seed, randomise],
        [result, speech, files, used_seed],
        api_name="dub",
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
    )
    return {"emotion": emotion}
