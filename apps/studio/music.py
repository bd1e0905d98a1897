"""Studio tab "Music for Video": a clip → a score that follows its mood and lands changes on the cuts, through
``apps.render.render_music`` (the same function as ``affectstudio music`` and batch jobs)."""

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

STAGES = ("generating the score",)
STYLES = ["", "sad piano", "warm strings", "epic trailer", "synthwave", "jazz trio", "acoustic folk"]


def render(video, emotion, style, seed, randomise, steps, tempo, key, soundfont, progress=gr.Progress()):
    from affectstudio.apps.jobs.render import render_music

    require(bool(video), "Upload a video clip to score.")
    seed = pick_seed(seed, randomise)
    out, wav, midi, plot = (output_file(s) for s in (".mp4", ".wav", ".mid", ".png"))
    run_render(
        render_music,
        progress,
        STAGES,
        video=file_or_none(video),
        output=out,
        emotion=clean_text(emotion),
        style=clean_text(style),
        soundfont=file_or_none(soundfont),
        seed=seed,
        wav=wav,
        midi=midi,
        plot=plot,
        tempo=float(tempo) if tempo else None,
        key=clean_text(key),
        steps=int(steps),
    )
    return str(out), str(wav), str(plot), [str(wav), str(midi)], seed


def build_tab(examples_dir) -> dict:
    gr.Markdown(
        "Score a video: the music follows the clip's mood (or the emotion you give), changes land on its "
        "cuts and the score ducks under speech. Also writes the score as WAV and MIDI."
    )
    with gr.Row():
        with gr.Column():
            video = gr.Video(label="Video clip", sources=["upload"], elem_id="music-video-in")
            emotion = gr.Textbox(
                label="Emotion or emotion curve (optional)",
                info=EMOTION_HELP,
                placeholder="empty: read from the video",
                elem_id="music-emotion",
            )
            style = gr.Dropdown(
                STYLES,
                value="",
                allow_custom_value=True,
                label="Style (free text)",
                info="empty: chosen from the emotion",
            )
            seed, randomise = seed_controls()
            with gr.Accordion("Advanced settings", open=False):
                steps = gr.Slider(1, 50, value=8, step=1, label="Sampling steps")
                tempo = gr.Number(value=None, label="Tempo (bpm, empty: from the emotion and the cuts)")
                key = gr.Textbox(label="Key (e.g. A minor, Eb, F#m; empty: from the emotion)")
                soundfont = gr.File(
                    label="General MIDI SoundFont (.sf2/.sf3, optional)", file_types=[".sf2", ".sf3"], type="filepath"
                )
            go = gr.Button("Score the video", variant="primary", elem_id="music-render")
        with gr.Column():
            result = gr.Video(label="Video with the score", elem_id="music-video-out")
            audio = gr.Audio(label="Score (WAV)", type="filepath")
            plot = gr.Image(label="Emotion over time, cuts and bars", type="filepath")
            files = gr.Files(label="Downloads (WAV, MIDI)")
            used_seed = gr.Number(label="Seed used", interactive=False, precision=0)
    sample = examples_dir / "silent_talk.mp4"
    if sample.is_file():
        gr.Examples(
            [[str(sample), "", "warm strings"], [str(sample), "neutral@0; fearful:0.9@3", ""]],
            inputs=[video, emotion, style],
            label="Examples",
        )
    go.click(
        render,
        [video, emotion, style, seed, randomise, steps, tempo, key, soundfont],
        [result, audio, plot, files, used_seed],
        api_name="music",
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
    )
    return {"emotion": emotion}
