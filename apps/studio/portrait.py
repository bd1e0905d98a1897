"""Studio tab "Talking Portrait": a photo + speech (or a script) + an emotion (or curve) → a lip-synced mp4, through
``apps.jobs.render.render_portrait`` (the same function as ``affectstudio portrait`` and batch jobs)."""

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
    photo_input,
    pick_seed,
    require,
    run_render,
    seed_controls,
    slug,
)
from affectstudio.apps.studio.faces import face_picker
from affectstudio.models.dubbing.voices import DEFAULT_VOICE, voice_choices

# Stages in the order their bars arrive, with seconds measured on a warm studio process (2 busy CPU cores,
# bundled portrait, 10 steps): a 2.2 s script 10.6 s in all, the 8.6 s bundled speech 20.2 s. The first call
# also imports torch/diffusers and loads the models (24.0 s and 30.7 s cold).
SCRIPT_PLAN = JobPlan(
    prepare=Stage("checking the inputs, preparing the face, voicing the script", 7.4),
    bars=(
        Stage("shaping the voice's prosody", 0.14),
        Stage("sampling face motion", 1.8, lead=0.34),
        Stage("rendering frames", 1.17),
    ),
    finish=Stage("writing the mp4", 0.13),
    loads=("the portrait model", "the voice"),
    cold_seconds=17.0,
)
SPEECH_PLAN = JobPlan(
    prepare=Stage("checking the inputs, preparing the face, reading the speech", 2.3),
    bars=(Stage("sampling face motion", 10.6), Stage("rendering frames", 6.9)),
    finish=Stage("writing the mp4", 0.3),
    loads=("the portrait model",),
    cold_seconds=5.3,
)
# framing choice -> render_portrait(paste_back=...): None lets the pipeline choose (whole photo when not square)
FRAMINGS = {"auto": None, "face crop": False, "whole photo": True}
RESOLUTIONS = [("256 px", 256), ("512 px", 512), ("the photo's own", 0)]
EMPTY_READING = "*Empty: the emotion is read from the speech (or the script's voice).*"


def render(
    image,
    speech_source,
    audio,
    text,
    emotion,
    seed,
    randomise,
    steps,
    size,
    max_seconds,
    pose_scale=1.0,
    blink_rate=15.0,
    gaze="natural",
    framing="auto",
    voice_preset=None,
    face="auto",
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
    emotion = clean_text(emotion)
    reading = emotion_reading(emotion, EMPTY_READING)  # a malformed spec stops here, in the CLI's words
    seed = pick_seed(seed, randomise)
    out = output_file(f"portrait_{slug(emotion, 'auto')}_seed{seed}.mp4")
    run_render(
        render_portrait,
        progress,
        SCRIPT_PLAN if text else SPEECH_PLAN,
        image=file_or_none(image),
        audio=file_or_none(audio),
        text=text,
        emotion=emotion,
        seed=seed,
        steps=int(steps),
        size=int(size),
        max_seconds=float(max_seconds) if max_seconds else None,
        pose_scale=float(pose_scale),
        blink_rate=float(blink_rate),
        gaze=gaze,
        paste_back=FRAMINGS[framing],
        face=clean_text(str(face) if face is not None else None) or "auto",
        output=out,
        voice_preset=(voice_preset or None) if text else None,
    )
    return str(out), reading, seed, str(out)


def build_tab(examples_dir) -> dict:
    gr.Markdown("Animate a portrait photo: lips follow the speech, the face shows the emotion you ask for (25 fps).")
    with gr.Row():
        with gr.Column():
            image, preview = photo_input("Portrait photo", "portrait-image", height=220)
            face = face_picker(image, preview, "portrait-face")
            source = gr.Radio(["Script", "Speech recording"], value="Script", label="What the portrait says")
            text = gr.Textbox(label="Script (spoken by the built-in voice)", lines=2, elem_id="portrait-text")
            voice_preset = gr.Dropdown(
                voice_choices(), value=DEFAULT_VOICE, label="Voice", elem_id="portrait-voice-preset"
            )
            audio = gr.Audio(label="Speech recording", sources=["upload", "microphone"], type="filepath", visible=False)
            emotion, reading = emotion_box("portrait-emotion", "empty: read from the speech", EMPTY_READING)
            seed, randomise = seed_controls()
            with gr.Accordion("Advanced settings", open=False, elem_id="portrait-advanced"):
                steps = gr.Slider(1, 50, value=10, step=1, label="Sampling steps", elem_id="portrait-steps")
                framing = gr.Radio(
                    list(FRAMINGS),
                    value="auto",
                    label="Framing (what the video shows)",
                    info="face crop: a square around the face; whole photo: the face animated inside the photo, "
                    "at the photo's own size and shape; auto: whole photo for wide or tall photos, else face crop",
                    elem_id="portrait-framing",
                )
                size = gr.Radio(
                    RESOLUTIONS,
                    value=256,
                    label="Face resolution",
                    info="the side of the face square in pixels (face crop: the video's size; whole photo: the "
                    "detail the face is rendered at before it goes back into the photo)",
                    elem_id="portrait-size",
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
            download = gr.File(label="Download mp4", elem_id="portrait-download")
            used_seed = gr.Number(label="Seed used", interactive=False, precision=0)
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
        [image, source, audio, text, emotion, seed, randomise, steps, size, max_seconds]
        + [pose_scale, blink_rate, gaze, framing, voice_preset, face],
        [video, reading, used_seed, download],
        api_name="portrait",
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
        show_progress_on=[video],
    )
    return {"emotion": emotion, "reading": reading}


def _script(examples_dir) -> str:
    try:
        return (examples_dir / "script.txt").read_text().strip()
    except OSError:
        return "Hello there."
