"""Studio tab "Scene": a portrait photo + a script + one emotion or curve → the portrait speaking the dubbing
pipeline's emotional voice with the music pipeline's score ducked under it (``apps.jobs.scene.render_scene``)."""

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
    zip_folder,
)
from affectstudio.apps.studio.faces import face_picker
from affectstudio.models.dubbing.voices import DEFAULT_VOICE, voice_choices

# Stages in the order their bars arrive, seconds measured on a warm studio process (2 busy CPU cores, the bundled
# portrait, a 13-word script, 256 px: 7.2 s in all); the first call also imports and loads the three generators.
PLAN = JobPlan(
    prepare=Stage("checking the inputs, voicing the script", 0.3),
    bars=(
        Stage("shaping the voice's prosody", 0.4),
        Stage("sampling face motion", 4.5, lead=3.9),
        Stage("rendering frames", 0.65),
        Stage("composing the score", 0.5, lead=0.5),
    ),
    finish=Stage("synthesising the score, mixing it under the voice, writing the mp4", 0.9),
    loads=("the voice", "the portrait model", "the music model"),
    cold_seconds=20.0,
)
RESOLUTIONS = [("256 px", 256), ("512 px", 512), ("the photo's own", 0)]
EMPTY_READING = "*Empty: the emotion is read from the script.*"


def render(
    image,
    text,
    emotion,
    style,
    voice,
    seed,
    randomise,
    steps,
    size,
    music_gain_db,
    voice_preset=None,
    face="auto",
    progress=gr.Progress(),
):
    from affectstudio.apps.jobs.scene import render_scene

    require(bool(image), "Upload a portrait photo (one clearly visible face).")
    require(bool(clean_text(text)), "Type the script the portrait speaks.")
    emotion = clean_text(emotion)
    reading = emotion_reading(emotion, EMPTY_READING)  # a malformed spec stops here, in the CLI's words
    seed = pick_seed(seed, randomise)
    out = output_file(f"scene_{slug(emotion, 'from-script')}_seed{seed}.mp4")
    wav, voice_wav, music_wav = (out.with_name(f"scene_{part}.wav") for part in ("mix", "voice", "music"))
    plot, stems = out.with_name("scene_emotion.png"), out.with_name("stems")
    run_render(
        render_scene,
        progress,
        PLAN,
        image=file_or_none(image),
        text=clean_text(text),
        output=out,
        emotion=emotion,
        style=clean_text(style),
        voice=file_or_none(voice),
        voice_preset=voice_preset or None,
        seed=seed,
        steps=int(steps),
        size=int(size),
        music_gain_db=float(music_gain_db),
        wav=wav,
        voice_wav=voice_wav,
        music_wav=music_wav,
        plot=plot,
        stems=stems,
        face=clean_text(str(face) if face is not None else None) or "auto",
    )
    archive = zip_folder(stems, out.with_name("scene_music_stems.zip"))
    files = [str(p) for p in (out, wav, voice_wav, music_wav, plot, archive)]
    return str(out), reading, str(voice_wav), str(music_wav), str(plot), files, seed


def build_tab(examples_dir) -> dict:
    gr.Markdown(
        "One emotion — or a curve over time — steers a face, a voice and a score together: the portrait "
        "speaks the script in the dubbing pipeline's emotional voice, and the music pipeline scores the "
        "clip under it, ducked whenever the voice speaks. Curve times are seconds of speech."
    )
    with gr.Row():
        with gr.Column():
            image, preview = photo_input("Portrait photo", "scene-image", height=200)
            face = face_picker(image, preview, "scene-face")
            text = gr.Textbox(label="Script", lines=3, elem_id="scene-text")
            voice_preset = gr.Dropdown(
                voice_choices(), value=DEFAULT_VOICE, label="Voice", elem_id="scene-voice-preset"
            )
            emotion, reading = emotion_box("scene-emotion", "empty: read from the script", EMPTY_READING)
            style = gr.Textbox(label="Music style (free text, optional)", placeholder="sad piano, epic trailer, …")
            seed, randomise = seed_controls()
            with gr.Accordion("Advanced settings", open=False, elem_id="scene-advanced"):
                voice = gr.Audio(
                    label="Reference voice (its pitch level is matched; optional)",
                    sources=["upload", "microphone"],
                    type="filepath",
                )
                steps = gr.Slider(1, 50, value=10, step=1, label="Portrait sampling steps", elem_id="scene-steps")
                size = gr.Radio(
                    RESOLUTIONS,
                    value=256,
                    label="Face resolution",
                    info="the side of the face square in pixels (a wide or tall photo is kept whole, its face "
                    "rendered at this detail)",
                )
                music_gain = gr.Slider(-30, 0, value=-6, step=1, label="Music level under the voice (dB)")
            go = gr.Button("Render scene", variant="primary", elem_id="scene-render")
        with gr.Column():
            result = gr.Video(label="Scene", elem_id="scene-video")
            with gr.Row():
                voice_track = gr.Audio(label="Voice alone (WAV)", type="filepath", elem_id="scene-voice")
                music_track = gr.Audio(label="Music alone (WAV)", type="filepath", elem_id="scene-music")
            plot = gr.Image(
                label="The score's emotion over time", type="filepath", show_label=False, elem_id="scene-plot"
            )
            files = gr.Files(label="Downloads (mp4, mix, voice, music, plot, music stems)", elem_id="scene-files")
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
        [image, text, emotion, style, voice, seed, randomise, steps, size, music_gain, voice_preset, face],
        [result, reading, voice_track, music_track, plot, files, used_seed],
        api_name="scene",
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
        show_progress_on=[result],
    )
    return {"emotion": emotion, "reading": reading}
