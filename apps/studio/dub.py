"""Studio tab "Dubbing": a silent clip + a script + an emotion → speech timed to the speaker's lips, through
``apps.render.render_dub`` (the same function as ``affectstudio dub`` and batch jobs)."""

from __future__ import annotations

import gradio as gr

from affectstudio.apps.studio.common import (
    RENDER_QUEUE,
    JobPlan,
    Stage,
    clean_text,
    emotion_box,
    emotion_reading,
    file_or_none,
    output_file,
    pick_seed,
    require,
    run_render,
    seed_controls,
    slug,
)
from affectstudio.models.dubbing.voices import DEFAULT_VOICE, voice_choices

# Stages in the order their bars arrive, seconds measured on a warm studio process (2 busy CPU cores, the bundled
# 4 s silent clip and a 9-word script: 4.1 s in all); the first call also imports and loads the voice.
PLAN = JobPlan(
    prepare=Stage("reading the lips in the clip, phonemising the script, timing it to the lips", 1.9),
    bars=(Stage("shaping the prosody", 0.66),),
    finish=Stage("speaking and muxing the speech into the clip", 1.5),
    loads=("the voice",),
    cold_seconds=12.0,
)
EMPTY_READING = "*Empty: neutral.*"
LANGUAGES = [
    ("English (neural voice)", "en"),
    ("Spanish", "es"),
    ("French", "fr"),
    ("German", "de"),
    ("Italian", "it"),
    ("Portuguese", "pt"),
]


def render(
    video, text, emotion, voice, language, seed, randomise, redraw_face=False, voice_preset=None, progress=gr.Progress()
):
    from affectstudio.apps.jobs.render import render_dub

    require(bool(video), "Upload the silent clip to dub (one visible face).")
    require(bool(clean_text(text)), "Type the script to speak.")
    emotion = clean_text(emotion)
    reading = emotion_reading(emotion, EMPTY_READING)  # a malformed spec stops here, in the CLI's words
    seed = pick_seed(seed, randomise)
    out = output_file(f"dub_{slug(emotion, 'neutral')}_seed{seed}.mp4")
    wav = out.with_name(f"speech_{slug(emotion, 'neutral')}_seed{seed}.wav")
    run_render(
        render_dub,
        progress,
        PLAN,
        video=file_or_none(video),
        text=clean_text(text),
        output=out,
        emotion=emotion,
        voice=file_or_none(voice),
        language=language or "en",
        seed=seed,
        wav=wav,
        voice_preset=voice_preset or None,
        redraw_face=bool(redraw_face),
    )
    return str(out), reading, str(wav), [str(out), str(wav)], seed


def build_tab(examples_dir) -> dict:
    gr.Markdown(
        "Dub a silent clip: the script is spoken with the emotion you ask for, timed to the speaker's lips. "
        "The result keeps the clip's length; the speech alone is also given as WAV."
    )
    with gr.Row():
        with gr.Column():
            video = gr.Video(label="Silent clip (one visible face)", sources=["upload"], elem_id="dub-video-in")
            text = gr.Textbox(label="Script", lines=3, elem_id="dub-text")
            voice_preset = gr.Dropdown(voice_choices(), value=DEFAULT_VOICE, label="Voice", elem_id="dub-voice-preset")
            emotion, reading = emotion_box("dub-emotion", "empty: neutral", EMPTY_READING)
            seed, randomise = seed_controls()
            with gr.Accordion("Advanced settings", open=False):
                voice = gr.Audio(
                    label="Reference voice (its pitch level is matched; optional)",
                    sources=["upload", "microphone"],
                    type="filepath",
                )
                language = gr.Dropdown(LANGUAGES, value="en", label="Language")
            redraw = gr.Checkbox(
                label="Redraw the face: speak at a natural pace and re-animate the mouth and expression to it",
                value=False,
                elem_id="dub-redraw-face",
            )
            go = gr.Button("Dub", variant="primary", elem_id="dub-render")
        with gr.Column():
            result = gr.Video(label="Dubbed clip", elem_id="dub-video-out")
            speech = gr.Audio(label="Speech (WAV)", type="filepath", elem_id="dub-speech")
            files = gr.Files(label="Downloads", elem_id="dub-files")
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
        [video, text, emotion, voice, language, seed, randomise, redraw, voice_preset],
        [result, reading, speech, files, used_seed],
        api_name="dub",
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
        show_progress_on=[result],
    )
    return {"emotion": emotion, "reading": reading}
