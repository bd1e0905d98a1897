"""Studio tab "Scene": a portrait photo + a script + one emotion or curve → the portrait speaking the dubbing
pipeline's emotional voice with the music pipeline's score ducked under it (``apps.jobs.scene.render_scene``)."""

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

STAGES = ("speaking the script", "sampling face motion", "rendering frames", "composing the score")


def render(image, text, emotion, style, voice, seed, randomise, steps, size, music_gain_db, progress=gr.Progress()):
    from affectstudio.apps.jobs.scene import render_scene

    require(bool(image), "Upload a portrait photo (one clearly visible face).")
    require(bool(clean_text(text)), "Type the script the portrait speaks.")
    seed = pick_seed(seed, randomise)
    out, wav = output_file(".mp4"), output_file(".wav")
    run_render(
        render_scene,
        progress,
        STAGES,
        image=file_or_none(image),
        text=clean_text(text),
        output=out,
        emotion=clean_text(emotion),
        style=clean_text(style),
        voice=file_or_none(voice),
        seed=seed,
        steps=int(steps),
        size=int(size),
        music_gain_db=float(music_gain_db),
        wav=wav,
    )
    return str(out), str(wav), [str(out), str(wav)], seed


def build_tab(examples_dir) -> dict:
    gr.Markdown(
        "One emotion — or a curve over time — steers a face, a voice and a score together: the portrait "
        "speaks the script in the dubbing pipeline's emotional voice, and the music pipeline scores the "
        "clip under it, ducked whenever the voice speaks. Curve times are seconds of speech."
    )
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Portrait photo", type="filepath", height=240, elem_id="scene-image")
            text = gr.Textbox(label="Script", lines=3, elem_id="scene-text")
            emotion = gr.Textbox(
                label="Emotion or emotion curve",
                info=EMOTION_HELP,
                elem_id="scene-emotion",
                placeholder="empty: read from the script",
            )
            style = gr.Textbox(label="Music style (free text, optional)", placeholder="sad piano, epic trailer, …")
            seed, randomise = seed_controls()
            with gr.Accordion("Advanced settings", open=False):
                voice = gr.Audio(
                    label="Reference voice (its pitch level is matched; optional)",
                    sources=["upload", "microphone"],
                    type="filepath",
                )
                steps = gr.Slider(1, 50, value=10, step=1, label="Portrait sampling steps")
                size = gr.Radio([("256 px", 256), ("512 px", 512), ("source crop", 0)], value=256, label="Size")
                music_gain = gr.Slider(-30, 0, value=-6, step=1, label="Music level under the voice (dB)")
            go = gr.Button("Render scene", variant="primary", elem_id="scene-render")
        with gr.Column():
            result = gr.Video(label="Scene", elem_id="scene-video")
            sound = gr.Audio(label="Voice + score (WAV)", type="filepath")
            files = gr.Files(label="Downloads")
            used_seed = gr.Number(label="Seed used", interactive=False, precision=0)
    portrait = str(examples_dir / "portrait.jpg")
    gr.Examples(
        [
            [
                portrait,
                "I was so calm this morning. Then I saw what you did, and now I am furious!",
                "neutral@0; angry:0.9@3",
                "",
            ],
            [
                portrait,
                "The house feels so empty since she moved away. But today, she called me!",
                "sad:0.8@0; sad:0.8@2.5; happy@4",
                "warm strings",
            ],
        ],
        inputs=[image, text, emotion, style],
        label="Examples (bundled portrait)",
    )
    go.click(
        render,
        [image, text, emotion, style, voice, seed, randomise, steps, size, music_gain],
        [result, sound, files, used_seed],
        api_name="scene",
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
    )
    return {"emotion": emotion}
