"""Studio tab "Music for Video": a clip → a score that follows its mood and lands changes on the cuts, through
``apps.jobs.render.render_music`` (the same function as ``affectstudio music`` and batch jobs)."""

from __future__ import annotations

from pathlib import Path

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
    rename,
    require,
    run_render,
    seed_controls,
    user_error,
    zip_folder,
)

# Stages in the order their bars arrive, seconds measured on a warm studio process (2 busy CPU cores, the bundled
# 4 s clip, 8 steps: 4.6 s in all, most of it analysing the clip and synthesising the score).
PLAN = JobPlan(
    prepare=Stage("analysing the clip's mood, motion and cuts; planning bars and key", 1.1),
    bars=(Stage("generating the score", 0.2),),
    finish=Stage("synthesising the instruments, writing WAV, MIDI, stems and the video", 3.3),
    loads=("the music model",),
    cold_seconds=6.0,
)
STYLES = ["sad piano", "warm strings", "epic trailer", "synthwave", "jazz trio", "acoustic folk"]
EMPTY_READING = "*Empty: the emotion is read from the video.*"


def parse_tempo(value) -> float | None:
    """The tempo box: empty means automatic (from the emotion and the cuts); otherwise beats per minute."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    try:
        return float(text.lower().removesuffix("bpm").strip())
    except ValueError:
        raise user_error(f"tempo must be a number of beats per minute (e.g. 112), got {text!r}") from None


def score_facts(midi: Path) -> tuple[str, float]:
    """Key and tempo as written into the score's MIDI (key signature, the median bar tempo)."""
    import numpy as np
    import pretty_midi

    from affectstudio.models.music.theory import NOTE_NAMES

    pm = pretty_midi.PrettyMIDI(str(midi))
    key = "unknown key"
    if pm.key_signature_changes:
        number = pm.key_signature_changes[0].key_number
        key = f"{NOTE_NAMES[number % 12]} {'minor' if number >= 12 else 'major'}"
    _, tempi = pm.get_tempo_changes()
    return key, float(np.median(tempi)) if len(tempi) else 120.0


def render(video, emotion, style, seed, randomise, steps, tempo, key, soundfont, progress=gr.Progress()):
    from affectstudio.apps.jobs.render import render_music

    require(bool(video), "Upload a video clip to score.")
    emotion = clean_text(emotion)
    reading = emotion_reading(emotion, EMPTY_READING)  # a malformed spec stops here, in the CLI's words
    bpm = parse_tempo(tempo)
    seed = pick_seed(seed, randomise)
    out = output_file("music.mp4")
    names = {s: out.with_name(f"score{s}") for s in (".wav", ".mid", ".png")}
    stems = out.with_name("stems")
    run_render(
        render_music,
        progress,
        PLAN,
        video=file_or_none(video),
        output=out,
        emotion=emotion,
        style=clean_text(style),
        soundfont=file_or_none(soundfont),
        seed=seed,
        wav=names[".wav"],
        midi=names[".mid"],
        plot=names[".png"],
        stems=stems,
        tempo=bpm,
        key=clean_text(key),
        steps=int(steps),
    )
    key_name, bpm_used = score_facts(names[".mid"])
    tag = f"{key_name.replace(' ', '-')}_{bpm_used:.0f}bpm"
    video_out = rename(out, f"music_{tag}_seed{seed}.mp4")
    wav, midi, plot = (rename(p, f"score_{tag}{s}") for s, p in names.items())
    archive = zip_folder(stems, out.with_name(f"stems_{tag}.zip"))
    facts = f"**Score** — {key_name}, {bpm_used:.0f} bpm median bar tempo (bar lines fitted to the cuts), seed {seed}"
    return str(video_out), reading, str(wav), str(plot), facts, [str(p) for p in (wav, midi, plot, archive)], seed


def build_tab(examples_dir) -> dict:
    gr.Markdown(
        "Score a video: the music follows the clip's mood (or the emotion you give), changes land on its "
        "cuts and the score ducks under speech. Also writes the score as WAV and MIDI, the plot and the stems."
    )
    with gr.Row():
        with gr.Column():
            video = gr.Video(label="Video clip", sources=["upload"], elem_id="music-video-in")
            emotion, reading = emotion_box(
                "music-emotion", "empty: read from the video", EMPTY_READING, "Emotion or emotion curve (optional)"
            )
            style = gr.Dropdown(
                STYLES,
                value=None,
                allow_custom_value=True,
                label="Style (pick one or type your own)",
                info="empty: chosen from the emotion",
                elem_id="music-style",
            )
            seed, randomise = seed_controls()
            with gr.Accordion("Advanced settings", open=False, elem_id="music-advanced"):
                steps = gr.Slider(1, 50, value=8, step=1, label="Sampling steps")
                tempo = gr.Textbox(
                    label="Tempo (bpm)",
                    placeholder="automatic: from the emotion and the cuts",
                    info="empty: automatic; a number from 40 to 240 sets it (bar lines still land on the cuts)",
                    elem_id="music-tempo",
                )
                key = gr.Textbox(
                    label="Key",
                    placeholder="automatic: from the emotion",
                    info="e.g. A minor, Eb, F#m; empty: automatic",
                )
                soundfont = gr.File(
                    label="General MIDI SoundFont (.sf2/.sf3, optional)", file_types=[".sf2", ".sf3"], type="filepath"
                )
            go = gr.Button("Score the video", variant="primary", elem_id="music-render")
        with gr.Column():
            result = gr.Video(label="Video with the score", elem_id="music-video-out")
            audio = gr.Audio(label="Score (WAV)", type="filepath")
            facts = gr.Markdown(elem_id="music-facts")
            plot = gr.Image(label="Emotion over time, cuts and bars", type="filepath", show_label=False)
            files = gr.Files(label="Downloads (WAV, MIDI, plot, stems)", elem_id="music-files")
            used_seed = gr.Number(label="Seed used", interactive=False, precision=0)
    sample = examples_dir / "silent_talk.mp4"
    if sample.is_file():
        gr.Examples(
            [[str(sample), "", "warm strings"], [str(sample), "neutral@0; fearful:0.9@3", None]],
            inputs=[video, emotion, style],
            label="Examples",
        )
    go.click(
        render,
        [video, emotion, style, seed, randomise, steps, tempo, key, soundfont],
        [result, reading, audio, plot, facts, files, used_seed],
        api_name="music",
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
        show_progress_on=[result],
    )
    return {"emotion": emotion, "reading": reading}
