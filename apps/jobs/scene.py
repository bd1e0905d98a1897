"""Scenes: a portrait photo + a script + one emotion (or curve) → the talking portrait speaking the emotional
text-to-speech of the dubbing pipeline, with a score from the music pipeline mixed under it, ducked under the
voice. The same emotion spec steers all three generators (docs/cli.md, ``affectstudio scene``).

Built from the one-function-per-job renderers and the cached pipelines of :mod:`affectstudio.apps.jobs.render`:

1. voice — ``DubbingPipeline`` with ``video=None`` (plain emotional TTS; the curve's times are seconds of speech);
2. face  — :func:`render_portrait` lip-synced to that voice, with the same emotion;
3. score — :func:`render_music` on the face clip, with the same emotion (the pipeline ducks the score where the
   clip's audio has speech);
4. mix   — voice + score × ``music_gain_db``, muxed into the face clip with AAC headroom (``video_io.mux_audio``).
Every step writes into a temporary folder beside ``output``; only the finished mp4 is renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

from affectstudio.errors import InputError


def work_prefix(output: Path) -> str:
    """The scene's temporary folder beside ``output`` is ``.NAME.scene-PID-XXXX/`` (voice, face, score)."""
    return f".{Path(output).stem}.scene-"


def remove_stale_work(output: Path) -> list[Path]:
    """Remove the temporary folders a killed scene render of ``output`` left (their process is gone); a running
    render's folder is kept. Called before every scene render and by ``batch --resume``."""
    removed = []
    for d in Path(output).parent.glob(f"{work_prefix(output)}*"):
        pid = d.name[len(work_prefix(output)) :].split("-", 1)[0]
        if d.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


MUSIC_GAIN_DB = -6.0  # the score under the voice, after the music pipeline's own ducking
MUSIC_STEPS = 8  # music pipeline sampling steps


def default_emotion(text: str) -> str:
    """With no emotion given, the script's own emotion (text encoder) — one spec for all three generators."""
    from affectstudio.apps.jobs.render import read_emotions

    emb = read_emotions(text=text)[0]
    return f"{emb.label}:{float(emb.intensity):.2f}" if emb.label != "neutral" else "neutral"


def render_scene(
    image: Path,
    text: str,
    output: Path,
    emotion: Optional[str] = None,
    style: Optional[str] = None,
    voice: Optional[Path] = None,
    seed: int = 0,
    steps: int = 10,
    size: int = 256,
    device: str = "auto",
    music_gain_db: float = MUSIC_GAIN_DB,
    wav: Optional[Path] = None,
    voice_wav: Optional[Path] = None,
    music_wav: Optional[Path] = None,
    plot: Optional[Path] = None,
    stems: Optional[Path] = None,
    voice_preset: Optional[str] = None,
    face: Union[str, int] = "auto",
) -> Path:
    """A scene into ``output`` (.mp4): the portrait speaking ``text`` in the dubbing pipeline's emotional voice, with
    the music pipeline's score ducked under it; one ``emotion`` (or curve) steers all three. ``wav``: also the final
    mix alone; ``voice_wav`` / ``music_wav``: the voice and the score (ducked, before the music gain) alone;
    ``plot``: the score's emotion over time (.png); ``stems``: a folder for the score's per-instrument WAVs;
    ``face``: which face of a group photo speaks (``auto``, ``largest``, ``center`` or N, left to right from 0).
    Returns ``output``.

    The renderer the CLI, the studio and the batch ``scene`` task call; the batch job keys are read from this
    signature."""
    import numpy as np

    from affectstudio.apps.jobs.preflight import (
        preflight_portrait,
        require_distinct,
        require_files,
        require_output,
        require_seed,
        require_voice_preset,
    )
    from affectstudio.apps.jobs.render import load_pipeline, render_music, render_portrait, resolve_device
    from affectstudio.media import load_audio, resample, with_headroom, write_wav
    from affectstudio.video_io import mux_audio

    output = Path(output)
    # 0. cheap checks first (files, text, face, emotion spec), before any generator loads
    require_seed(seed)
    preflight_portrait(image, None, text, emotion, None, size, output, None, face)
    require_files(voice=voice)
    require_voice_preset(voice_preset)
    require_distinct(
        {"output": output, "wav": wav, "voice-wav": voice_wav, "music-wav": music_wav, "plot": plot},
        {"image": image, "voice": voice, "emotion": emotion},
    )
    for path, suffix in ((wav, ".wav"), (voice_wav, ".wav"), (music_wav, ".wav"), (plot, ".png")):
        if path is not None:
            require_output(path, suffix)
    if not -40.0 <= float(music_gain_db) <= 12.0:
        raise InputError(f"music gain must be between -40 and 12 dB, got {music_gain_db}")
    spec = emotion if emotion is not None else default_emotion(text)
    dev = resolve_device(device)
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work(output)
    with tempfile.TemporaryDirectory(prefix=f"{work_prefix(output)}{os.getpid()}-", dir=output.parent) as td:
        work = Path(td)
        # 1. the voice: emotional text-to-speech from the dubbing pipeline (no video to time it to)
        import torch

        from affectstudio.pipelines.dubbing import DubbingPipeline

        speech = load_pipeline(DubbingPipeline, dev)(
            video=None,
            text=text,
            emotion=spec,
            reference_audio=voice,
            generator=torch.Generator("cpu").manual_seed(seed),
            voice=voice_preset,
        )
        spoken = speech.save(work / "voice.wav")
        # 2. the face speaking it, steered by the same emotion
        face_clip = render_portrait(
            image=image,
            output=work / "face.mp4",
            audio=spoken,
            emotion=spec,
            seed=seed,
            steps=steps,
            size=size,
            device=str(dev),
            face=face,
        )
        # 3. the score for that clip, steered by the same emotion, ducked where the clip speaks
        render_music(
            video=face_clip,
            output=work / "music.mp4",
            emotion=spec,
            style=style,
            seed=seed,
            wav=work / "score.wav",
            steps=MUSIC_STEPS,
            plot=plot,
            stems=stems,
        )
        score, sr = load_audio(work / "score.wav")
        voice_wave = resample(speech.waveform, speech.sample_rate, sr)
        n = max(len(score), len(voice_wave))
        mix = np.zeros(n, np.float32)
        mix[: len(voice_wave)] += voice_wave
        mix[: len(score)] += score * np.float32(10 ** (music_gain_db / 20))
        mix = with_headroom(mix)
        # 4. one mp4: the face clip's picture with the mixed sound
        mux_audio(face_clip, mix, sr, output)
        if wav is not None:
            write_wav(wav, mix, sr)
        if voice_wav is not None:
            speech.save(voice_wav)
        if music_wav is not None:
            write_wav(music_wav, score, sr)
    return output


SHOWCASE_TEXT = "I was so calm this morning. Then I saw what you did, and now I am furious!"
SHOWCASE_CURVE = "neutral@0; angry:0.9@3"


def scene_showcase(output_dir: Path):
    """The demo's closing clip: the bundled portrait, one curve from calm to furious steering face, voice and score."""
    from affectstudio.assets import asset_path

    path = Path(output_dir) / "scene.mp4"
    render_scene(  # the bundled portrait is a woman: the female voice preset speaks for her
        image=asset_path("samples", "portrait.jpg"),
        text=SHOWCASE_TEXT,
        output=path,
        emotion=SHOWCASE_CURVE,
        seed=0,
        voice_preset="jess",
    )
    yield f"wrote {path} (scene: one curve '{SHOWCASE_CURVE}' steers the face, the voice and the score)"
