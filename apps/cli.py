"""The ``affectstudio`` command line (contract: docs/cli.md).

Every user mistake ends as one ``error: ...`` line on stderr and exit code 2: typed :class:`InputError`s from the
library and click's usage errors alike. Commands import their heavy dependencies inside the function, so
``affectstudio --help`` stays instant.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

# Before torch loads: OpenMP threads that wait sleep instead of spinning. On a busy machine (2 cores shared by
# several processes) spinning threads fight the other processes for the cores: a 1 s portrait took 7.9 s with two
# threads spinning and 0.74 s with them passive (0.68 s on one thread), the first call 16.1 s vs 4.6 s. An explicit
# OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer  # noqa: E402
from typer.exceptions import TyperException  # noqa: E402  # click's UsageError and kin (typer vendors click)

from affectstudio.errors import AffectStudioError, DependencyError, InputError

app = typer.Typer(
    name="affectstudio",
    help="Emotional media generation: talking portraits, dubbing and music for video.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EMOTION_HELP = (
    "a label ('happy', 'sad:0.5'), a mix ('happy:0.6,surprised:0.4'), free text ('a quiet, simmering "
    "anger'), or a path to a speech .wav or a face image"
)
DEVICE_HELP = "cpu, cuda, or auto (cuda when available)"


# ---------------------------------------------------------------------------------------------- emotion


@app.command()
def emotion(
    text: Optional[str] = typer.Option(None, "--text", help="a sentence or a description of a feeling"),
    text_file: Optional[Path] = typer.Option(None, "--text-file", help="a UTF-8 text file, one input per line"),
    audio: Optional[Path] = typer.Option(None, "--audio", help="a speech recording (wav/flac/mp3/m4a/mp4)"),
    image: Optional[Path] = typer.Option(None, "--image", help="a photo with a face"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object per input"),
) -> None:
    """Read the emotion in text, speech or a face, in the shared emotion space."""
    from affectstudio.apps.jobs.preflight import preflight_emotion
    from affectstudio.apps.jobs.render import read_emotions

    given = {"--text": text, "--text-file": text_file, "--audio": audio, "--image": image}
    chosen = [k for k, v in given.items() if v is not None]
    if len(chosen) != 1:
        raise InputError(
            "give exactly one of --text, --text-file, --audio, --image"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    preflight_emotion(text=text, text_file=text_file, audio=audio, image=image)  # before any encoder loads
    results = read_emotions(text=text, text_file=text_file, audio=audio, image=image)
    for emb in results:
        typer.echo(json.dumps(emb.to_dict()) if as_json else emb.describe())


# ----------------------------------------------------------------------------------------------- portrait


@app.command()
def portrait(
    image: Path = typer.Option(..., "--image", help="portrait photo with one clearly visible face"),
    audio: Optional[Path] = typer.Option(None, "--audio", help="speech to lip-sync (wav/flac/mp3/m4a/mp4)"),
    text: Optional[str] = typer.Option(None, "--text", help="a script to speak instead of --audio"),
    emotion: Optional[str] = typer.Option(None, "--emotion", help=EMOTION_HELP + "; default: read from the speech"),
    intensity: Optional[float] = typer.Option(None, "--intensity", min=0.0, max=1.0, help="emotion intensity 0..1"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="random seed (0 to 2^32-1)"),
    steps: int = typer.Option(10, "--steps", min=1, max=200, help="diffusion sampling steps"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    size: int = typer.Option(256, "--size", help="output size: 256, 512, or 0 for the source crop"),
    max_seconds: Optional[float] = typer.Option(
        None, "--max-seconds", min=1.0, help="longest speech accepted (default 600 s)"
    ),
    paste_back: Optional[bool] = typer.Option(
        None,
        "--paste-back/--crop",
        help="animate the face inside the whole photo at its own size and "
        "aspect, or output the square face crop (default: paste back "
        "when the photo is not roughly square)",
    ),
    pose_scale: float = typer.Option(1.0, "--pose-scale", min=0.0, help="head-motion amplitude (0: still head)"),
    blink_rate: float = typer.Option(15.0, "--blink-rate", min=0.0, help="blinks per minute (0: none)"),
    gaze: str = typer.Option("natural", "--gaze", help="natural (small saccades) or camera (eyes held on the lens)"),
    face: str = typer.Option(
        "auto",
        "--face",
        help="which face of a group photo: auto (the largest; near-equal ones: the most central), largest, "
        "center, or N (counted left to right from 0)",
    ),
    voice_preset: Optional[str] = typer.Option(
        None, "--voice-preset", help="who speaks: a name from 'affectstudio voices' (default joe, male; jess, female)"
    ),
    output: Path = typer.Option(..., "-o", "--output", help="output .mp4"),
) -> None:
    """Animate a portrait photo: lip-synced to speech, showing an emotion (25 fps mp4)."""
    from affectstudio.apps.jobs.render import render_portrait

    _print_notes()
    path = render_portrait(
        image=image,
        audio=audio,
        text=text,
        emotion=emotion,
        intensity=intensity,
        seed=seed,
        steps=steps,
        device=device,
        size=size,
        output=output,
        max_seconds=max_seconds,
        paste_back=paste_back,
        pose_scale=pose_scale,
        blink_rate=blink_rate,
        gaze=gaze,
        face=face,
        voice_preset=voice_preset,
    )
    typer.echo(f"wrote {path}")


# ------------------------------------------------------------------------------------- later generators


@app.command()
def dub(
    video: Path = typer.Option(..., "--video"),
    text: str = typer.Option(..., "--text"),
    emotion: Optional[str] = typer.Option(None, "--emotion", help=EMOTION_HELP),
    intensity: Optional[float] = typer.Option(None, "--intensity", min=0.0, max=1.0),
    voice: Optional[Path] = typer.Option(None, "--voice", help="reference voice .wav (its pitch level is matched)"),
    language: str = typer.Option("en", "--language", help="en (neural voice), es, fr, de, … (espeak-ng)"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="random seed (0 to 2^32-1)"),
    output: Path = typer.Option(..., "-o", "--output", help="output .mp4: the clip with the speech"),
    wav: Optional[Path] = typer.Option(None, "--wav", help="also write the speech alone as .wav"),
    voice_model: Optional[Path] = typer.Option(
        None, "--voice-model", help="your own Piper voice .onnx (its .onnx.json beside it)"
    ),
    voice_preset: Optional[str] = typer.Option(
        None, "--voice-preset", help="who speaks: a name from 'affectstudio voices' (default joe, male; jess, female)"
    ),
    redraw_face: bool = typer.Option(
        False,
        "--redraw-face",
        help="speak at a natural rate and re-animate the speaker's mouth and expression on every frame to it",
    ),
    face: str = typer.Option(
        "auto",
        "--face",
        help="with --redraw-face: which face (auto, largest, center, or N counted left to right from 0)",
    ),
) -> None:
    """Dub a clip: emotional speech timed to the speaker's lips (--redraw-face: the lips redrawn to the speech)."""
    from affectstudio.apps.jobs.render import render_dub

    _print_notes()

    path = render_dub(
        video=video,
        text=text,
        output=output,
        emotion=emotion,
        intensity=intensity,
        voice=voice,
        language=language,
        seed=seed,
        wav=wav,
        voice_model=voice_model,
        voice_preset=voice_preset,
        redraw_face=redraw_face,
        face=face,
    )
    typer.echo(f"wrote {path}")


@app.command()
def speak(
    text: str = typer.Option(..., "--text", help="the words to speak"),
    emotion: Optional[str] = typer.Option(None, "--emotion", help=EMOTION_HELP + ", or a curve 'neutral@0; angry@3'"),
    intensity: Optional[float] = typer.Option(None, "--intensity", min=0.0, max=1.0, help="emotion intensity 0..1"),
    voice_preset: Optional[str] = typer.Option(
        None, "--voice-preset", help="who speaks: a name from 'affectstudio voices' (default joe, male; jess, female)"
    ),
    voice: Optional[Path] = typer.Option(None, "--voice", help="reference voice .wav (3-30 s of the speaker)"),
    language: str = typer.Option("en", "--language", help="en (neural voice), es, fr, de, … (espeak-ng)"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="random seed (0 to 2^32-1)"),
    output: Path = typer.Option(..., "-o", "--output", help="output .wav"),
) -> None:
    """Emotional text-to-speech (the dubbing pipeline with no video)."""
    from affectstudio.apps.jobs.render import render_speech

    path = render_speech(
        text=text,
        output=output,
        emotion=emotion,
        intensity=intensity,
        voice=voice,
        voice_preset=voice_preset,
        language=language,
        seed=seed,
    )
    typer.echo(f"wrote {path}")


@app.command()
def voices() -> None:
    """List the voice presets: NAME<TAB>female|male<TAB>LANGUAGE<TAB>LICENCE."""
    from affectstudio.models.dubbing.voices import voice_lines

    for line in voice_lines():
        typer.echo(line)


@app.command()
def music(
    video: Path = typer.Option(..., "--video"),
    emotion: Optional[str] = typer.Option(
        None, "--emotion", help=EMOTION_HELP + ", or a curve 'calm@0; fearful:0.9@20'; default: read from the video"
    ),
    style: Optional[str] = typer.Option(None, "--style", help="free text: 'sad piano', 'epic trailer', 'synthwave'"),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont", help="a General MIDI .sf2/.sf3 SoundFont"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="random seed (0 to 2^32-1)"),
    output: Path = typer.Option(..., "-o", "--output", help="output .mp4: the video with the score under its sound"),
    wav: Optional[Path] = typer.Option(None, "--wav", help="also write the score alone as .wav"),
    midi: Optional[Path] = typer.Option(None, "--midi", help="also write the score as MIDI"),
    stems: Optional[Path] = typer.Option(None, "--stems", help="also write one .wav per part into this folder"),
    tempo: Optional[float] = typer.Option(None, "--tempo", min=40, max=240, help="bpm (default: from the video)"),
    key: Optional[str] = typer.Option(None, "--key", help="'C', 'A minor', 'F#m' (default: from the emotion)"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="also write a PNG of the emotion curve, cuts and bars"),
) -> None:
    """Score a video: music that follows its mood and lands changes on the cuts."""
    from affectstudio.apps.jobs.render import render_music

    paths = render_music(
        video=video,
        output=output,
        emotion=emotion,
        style=style,
        soundfont=soundfont,
        seed=seed,
        wav=wav,
        midi=midi,
        stems=stems,
        tempo=tempo,
        key=key,
        plot=plot,
    )
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command()
def scene(
    image: Path = typer.Option(..., "--image", help="portrait photo with one clearly visible face"),
    text: str = typer.Option(..., "--text", help="the script the portrait speaks"),
    emotion: Optional[str] = typer.Option(
        None, "--emotion", help=EMOTION_HELP + ", or a curve 'neutral@0; angry@3'; default: read from the script"
    ),
    style: Optional[str] = typer.Option(None, "--style", help="music style as free text ('sad piano')"),
    voice: Optional[Path] = typer.Option(None, "--voice", help="reference voice .wav (its pitch level is matched)"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="random seed (0 to 2^32-1)"),
    steps: int = typer.Option(10, "--steps", min=1, max=200, help="portrait sampling steps"),
    size: int = typer.Option(256, "--size", help="output size: 256, 512, or 0 for the source crop"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    music_gain_db: float = typer.Option(-6.0, "--music-gain-db", help="score level under the voice (dB)"),
    output: Path = typer.Option(..., "-o", "--output", help="output .mp4"),
    wav: Optional[Path] = typer.Option(None, "--wav", help="also write the mixed sound alone as .wav"),
    voice_wav: Optional[Path] = typer.Option(None, "--voice-wav", help="also write the voice alone as .wav"),
    music_wav: Optional[Path] = typer.Option(None, "--music-wav", help="also write the score alone as .wav"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="also write the score's emotion over time as .png"),
    stems: Optional[Path] = typer.Option(None, "--stems", help="also write the score's per-instrument WAVs here"),
    voice_preset: Optional[str] = typer.Option(
        None, "--voice-preset", help="who speaks: a name from 'affectstudio voices' (default joe, male; jess, female)"
    ),
    face: str = typer.Option(
        "auto",
        "--face",
        help="which face of a group photo speaks: auto, largest, center, or N counted left to right from 0",
    ),
) -> None:
    """A talking portrait speaking emotional TTS with a ducked score; one emotion (or curve) steers all three."""
    from affectstudio.apps.jobs.scene import render_scene

    path = render_scene(
        image=image,
        text=text,
        output=output,
        emotion=emotion,
        style=style,
        voice=voice,
        seed=seed,
        steps=steps,
        size=size,
        device=device,
        music_gain_db=music_gain_db,
        wav=wav,
        voice_wav=voice_wav,
        music_wav=music_wav,
        plot=plot,
        stems=stems,
        voice_preset=voice_preset,
        face=face,
    )
    extras = [p for p in (wav, voice_wav, music_wav, plot, stems) if p is not None]
    typer.echo("wrote " + ", ".join(str(p) for p in [path, *extras]))


@app.command()
def batch(
    jobs: Path = typer.Argument(..., help="job file (YAML)"),
    out_dir: Path = typer.Option(..., "--out-dir"),
    resume: bool = typer.Option(False, "--resume"),
    processes: int = typer.Option(1, "--processes", min=1, help="local worker processes (1: no cluster at all)"),
    address: Optional[str] = typer.Option(
        None, "--address", help="join an existing Dask cluster, e.g. tcp://10.0.0.5:8786"
    ),
) -> int:
    """Render many jobs from a YAML file, resumably, with a manifest."""
    from affectstudio.apps.jobs.batch import run_batch

    return run_batch(jobs, out_dir, resume=resume, processes=processes, address=address)


@app.command()
def studio(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(7860, "--port")) -> None:
    """Open the Gradio studio."""
    from affectstudio.apps.studio.app import launch

    launch(host=host, port=port)


# ----------------------------------------------------------------------------------------- demo & bench


@app.command()
def demo(output_dir: Path = typer.Option(Path("demo_output"), "-o", "--output-dir")) -> None:
    """Render the showcase from the bundled assets."""
    from affectstudio.apps.demo import run_demo

    for line in run_demo(output_dir):
        typer.echo(line)


@app.command()
def bench(
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results here"),
    pipelines: str = typer.Option(
        "all",
        "--pipelines",
        help="comma-separated: emotion, portrait, music, dubbing, cold-start (fresh processes, 1 s inputs), "
        "portrait-long (5 min of video: memory); all = every one but portrait-long",
    ),
) -> None:
    """Measure speed (fps, real-time factor, memory) and print JSON."""
    from affectstudio.apps.evaluation.bench import run_bench

    result = run_bench(device=device, names=[p.strip() for p in pipelines.split(",") if p.strip()])
    text = json.dumps(result, indent=2)
    typer.echo(text)
    if json_out is not None:
        from affectstudio.media import atomic_path

        with atomic_path(json_out) as tmp:
            tmp.write_text(text + "\n")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def train(
    ctx: typer.Context,
    target: Optional[str] = typer.Argument(
        None, help="portrait, dubbing, music, emotion-text, emotion-speech, emotion-face"
    ),
) -> None:
    """Train or retrain a model: `affectstudio train TARGET [trainer options]` (`affectstudio train TARGET --help`
    lists the trainer's own options)."""
    from affectstudio.apps.training import TRAINERS, run_trainer

    if target is None or target in ("-h", "--help"):
        typer.echo(
            "usage: affectstudio train TARGET [options]   (affectstudio train TARGET --help for its options)\n"
            f"targets: {', '.join(TRAINERS)}"
        )
        return
    run_trainer(target, list(ctx.args))


# ------------------------------------------------------------------------------------------------- main


class _NoteLine(logging.Handler):
    """A library note as one ``note: ...`` line on the stderr of the moment (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"note: {record.getMessage()}\n")


def _print_notes() -> None:
    """Show the library's user-facing notes (the ``affectstudio.notes`` logger, e.g. which face of a group photo
    is animated) as ``note:`` lines on stderr."""
    from affectstudio.conditioning.face_choice import NOTES_LOGGER

    log = logging.getLogger(NOTES_LOGGER)
    log.setLevel(logging.INFO)
    if not any(isinstance(h, _NoteLine) for h in log.handlers):
        log.addHandler(_NoteLine())


def _error(message: str, code: int) -> int:
    first, *rest = str(message).strip().splitlines() or ["unknown error"]
    sys.stderr.write(f"error: {first}\n" + "".join(f"  {line}\n" for line in rest))
    return code


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="affectstudio", standalone_mode=False)
    except typer.Abort:
        return sys.exit(_error("aborted", 130))
    except TyperException as e:
        return sys.exit(_error(e.format_message() if hasattr(e, "format_message") else str(e), 2))
    except InputError as e:
        return sys.exit(_error(str(e), 2))
    except DependencyError as e:
        return sys.exit(_error(str(e), 3))
    except AffectStudioError as e:
        return sys.exit(_error(str(e), 1))
    except KeyboardInterrupt:
        return sys.exit(_error("interrupted", 130))
    sys.exit(rv if isinstance(rv, int) else 0)
