"""Studio tab "Talking Portrait": a photo + speech (or a script) + an emotion (or curve) → a lip-synced mp4, through
``apps.render.render_portrait`` (the same function as ``affectstudio portrait`` and batch jobs)."""

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

STAGES = ("sampling face motion", "rendering frames")
# framing choice -> render_portrait(paste_back=...): None lets the pipeline choose (whole photo when not square)
FRAMINGS = {"auto": None, "face crop": False, "whole photo": True}


def render(
    image,
    speech_source,
    audio,
    text,
    emotion,
    intensity,
    use_intensity,
    seed,
    randomise,
    steps,
    size,
    max_seconds,
    pose_scale=1.0,
    blink_rate=15.0,
    gaze="natural",
    framing="auto",
    progress=gr.Progress(),
):
    from affectstudio.apps.jobs.render import render_portrait

    require(bool(image), "Upload a portrait photo (one clearly visible face).")
    text = clean_text(text)
    if speech_source == "Speech recording":
        require(bool(audio), "Record or upload the speech to lip-sync, or switch to 'Script'.")
        text = None
    else:
        require(bool(text), "Type the script to speak, or switch to 'Speech recording'.")
        audio = None
    seed = pick_seed(seed, randomise)
    out = output_file(".mp4")
    run_render(
        render_portrait,
        progress,
        STAGES,
        image=file_or_none(image),
        audio=file_or_none(audio),
        text=text,
        emotion=clean_text(emotion),
        intensity=float(intensity) if use_intensity else None,
        seed=seed,
        steps=int(steps),
        size=int(size),
        max_seconds=float(max_seconds) if max_seconds else None,
        pose_scale=float(pose_scale),
        blink_rate=float(blink_rate),
        gaze=gaze,
        paste_back=FRAMINGS[framing],
        output=out,
    )
    return str(out), seed, str(out)


def build_tab(examples_dir) -> dict:
    gr.Markdown("Animate a portrait photo: lips follow the speech, the face shows the emotion you ask for (25 fps).")
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Portrait photo", type="filepath", height=260, elem_id="portrait-image")
            source = gr.Radio(["Script", "Speech recording"], value="Script", label="What the portrait says")
            text = gr.Textbox(label="Script (spoken by the built-in voice)", lines=2, elem_id="portrait-text")
            audio = gr.Audio(label="Speech recording", sources=["upload", "microphone"], type="filepath", visible=False)
            emotion = gr.Textbox(
                label="Emotion or emotion curve",
                info=EMOTION_HELP,
                elem_id="portrait-emotion",
                placeholder="empty: read from the speech",
            )
            seed, randomise = seed_controls()
            with gr.Accordion("Advanced settings", open=False, elem_id="portrait-advanced"):
                with gr.Row():
                    use_intensity = gr.Checkbox(value=False, label="Override intensity")
                    intensity = gr.Slider(0, 1, value=0.8, step=0.05, label="Intensity")
                steps = gr.Slider(1, 50, value=10, step=1, label="Sampling steps", elem_id="portrait-steps")
                size = gr.Radio(
                    [("256 px", 256), ("512 px", 512), ("source crop", 0)],
                    value=256,
                    label="Size",
                    elem_id="portrait-size",
                )
                framing = gr.Radio(
                    list(FRAMINGS),
                    value="auto",
                    label="Framing",
                    info="whole photo: the face animated inside the original frame (auto: for non-square photos)",
                    elem_id="portrait-framing",
                )
                pose_scale = gr.Slider(0, 2, value=1.0, step=0.1, label="Head motion (0 = still head)")
                blink_rate = gr.Slider(0, 40, value=15, step=1, label="Blinks per minute")
                gaze = gr.Radio(
                    ["natural", "camera"], value="natural", label="Gaze", info="camera: eyes held on the photo's gaze"
                )
                max_seconds = gr.Number(value=600, label="Longest speech accepted (seconds)", minimum=1, maximum=3600)
            go = gr.Button("Render", variant="primary", elem_id="portrait-render")
        with gr.Column():
            video = gr.Video(label="Result", elem_id="portrait-video", autoplay=False)
            used_seed = gr.Number(label="Seed used", interactive=False, precision=0)
            download = gr.File(label="Download mp4")
    examples = [
        [str(examples_dir / "portrait.jpg"), "Script", None, "Hello! It is so good to see you again.", "happy"],
        [str(examples_dir / "portrait.jpg"), "Speech recording", str(examples_dir / "speech.wav"), "", ""],
        [
            str(examples_dir / "portrait.jpg"),
            "Script",
            None,
            _script(examples_dir),
            "neutral@0; surprised:0.7@2; happy@5",
        ],
    ]
    gr.Examples(examples, inputs=[image, source, audio, text, emotion], label="Examples (bundled portrait)")
    source.change(
        lambda s: (gr.update(visible=s == "Script"), gr.update(visible=s != "Script")),
        [source],
        [text, audio],
        queue=False,
    )
    go.click(
        render,
        [image, source, audio, text, emotion, intensity, use_intensity, seed, randomise, steps, size, max_seconds]
        + [pose_scale, blink_rate, gaze, framing],
        [video, used_seed, download],
        api_name="portrait",
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
    )
    return {"emotion": emotion}


def _script(examples_dir) -> str:
    try:
        return (examples_dir / "script.txt").read_text().strip()
    except OSError:
        return "Hello there."
