"""One function per job, shared by the CLI, the studio and batch rendering: validated inputs in (the cheap checks
of :mod:`.preflight` first), a file out. The scene, which composes three of these, is :mod:`.scene`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Optional, Union

from affectstudio.apps.jobs.preflight import (
    preflight_dub,
    preflight_music,
    preflight_portrait,
    preflight_speak,
    require_seed,
    require_voice_preset,
)
from affectstudio.errors import EmptyTextError, InputError, MissingFileError


def resolve_device(device: str):
    """``auto`` → cuda when available, else cpu; a clear error when cuda is asked for and absent."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"unknown device {device!r}: use cpu, cuda or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but this machine has no CUDA GPU (use --device cpu)")
    return torch.device(device)


_pipelines: dict = {}
_pipelines_lock = threading.Lock()


def load_pipeline(cls, device) -> Any:
    """The bundled ``cls.from_pretrained()`` on ``device``, loaded once per process (CLI, studio, each batch worker)
    and reused by every later job."""
    key = (cls, str(device))
    with _pipelines_lock:
        if key not in _pipelines:
            _pipelines[key] = cls.from_pretrained().to(device)
        return _pipelines[key]


def render_portrait(
    image: Path,
    output: Path,
    audio: Optional[Path] = None,
    text: Optional[str] = None,
    emotion: Optional[str] = None,
    intensity: Optional[float] = None,
    seed: int = 0,
    steps: int = 10,
    device: str = "auto",
    size: int = 256,
    max_seconds: Optional[float] = None,
    paste_back: Optional[bool] = None,
    pose_scale: float = 1.0,
    blink_rate: float = 15.0,
    gaze: str = "natural",
    face: Union[str, int] = "auto",
    voice_preset: Optional[str] = None,
) -> Path:
    """Check the inputs (:func:`preflight_portrait`), then run the bundled ``TalkingPortraitPipeline`` streaming
    into ``output``. ``face``: which face of a group photo (``auto``, ``largest``, ``center`` or N, counted left to
    right from 0); with several faces the pipeline logs which one on ``affectstudio.notes`` (the CLI's ``note:``)."""
    if gaze not in ("natural", "camera"):
        raise InputError(f"--gaze must be natural or camera, got {gaze!r}")
    require_seed(seed)
    read = preflight_portrait(image, audio, text, emotion, intensity, size, output, max_seconds, face)
    require_voice_preset(voice_preset)
    import torch

    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    dev = resolve_device(device)
    pipe = load_pipeline(TalkingPortraitPipeline, dev)
    pipe(
        image=image,
        audio=read.audio,  # decoded once, by the preflight
        text=text,
        emotion=read.emotion,
        emotion_intensity=intensity,
        num_inference_steps=steps,
        size=size,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_path=output,
        output_type="none",
        max_audio_seconds=max_seconds,
        paste_back=paste_back,
        pose_scale=pose_scale,
        blink_rate=blink_rate,
        gaze=gaze,
        face=read.face,  # the preflight's face analysis, not made again
        voice=voice_preset,
    )
    return Path(output)


def render_dub(
    video: Path,
    text: str,
    output: Path,
    emotion: Optional[str] = None,
    intensity: Optional[float] = None,
    voice: Optional[Path] = None,
    language: str = "en",
    seed: int = 0,
    wav: Optional[Path] = None,
    voice_model: Optional[Path] = None,
    device: str = "cpu",
    voice_preset: Optional[str] = None,
    redraw_face: bool = False,
    face: Union[str, int] = "auto",
) -> Path:
    """Check the inputs (:func:`preflight_dub`), then dub ``video`` with the bundled ``DubbingPipeline``; writes
    ``output`` (.mp4) and optionally ``wav``. Nothing is written when any step fails. ``redraw_face``: the speech at a
    natural rate and the speaker's mouth and expression re-animated to it (``face``: which face, as the portrait's)."""
    require_seed(seed)
    parsed = preflight_dub(video, text, output, emotion, intensity, voice, language, wav, voice_model, voice_preset)
    if redraw_face:
        from affectstudio.conditioning.face_choice import parse_face

        parse_face(face)  # a bad --face: one error line before any model loads
    import torch

    from affectstudio.pipelines.dubbing import DubbingPipeline

    pipe = load_pipeline(DubbingPipeline, resolve_device(device))
    out = pipe(
        video=video,
        text=text,
        emotion=parsed,
        emotion_intensity=intensity,
        reference_audio=voice,
        language=language,
        generator=torch.Generator("cpu").manual_seed(seed),
        voice_model=None if voice_model is None else str(voice_model),
        voice=voice_preset,
        redraw_face=redraw_face,
        face=face,
        output_path=output if redraw_face else None,
    )
    if wav is not None:
        out.save(wav)
    return Path(output) if redraw_face else out.save(output)


def render_speech(
    text: str,
    output: Path,
    emotion: Optional[str] = None,
    intensity: Optional[float] = None,
    voice: Optional[Path] = None,
    voice_preset: Optional[str] = None,
    language: str = "en",
    seed: int = 0,
    device: str = "cpu",
) -> Path:
    """``affectstudio speak``: check the inputs (:func:`preflight_speak`), then emotional text-to-speech with the
    bundled ``DubbingPipeline`` (no video) into ``output`` (.wav). Nothing is written when any step fails."""
    parsed = preflight_speak(text, output, emotion, intensity, voice, language, voice_preset, seed)
    import torch

    from affectstudio.pipelines.dubbing import DubbingPipeline

    pipe = load_pipeline(DubbingPipeline, resolve_device(device))
    out = pipe(
        video=None,
        text=text,
        emotion=parsed,
        emotion_intensity=intensity,
        reference_audio=voice,
        language=language,
        generator=torch.Generator("cpu").manual_seed(seed),
        voice=voice_preset,
    )
    return out.save(output)


def render_music(
    video: Path,
    output: Path,
    emotion: Optional[str] = None,
    style: Optional[str] = None,
    soundfont: Optional[Path] = None,
    seed: int = 0,
    wav: Optional[Path] = None,
    midi: Optional[Path] = None,
    stems: Optional[Path] = None,
    tempo: Optional[float] = None,
    key: Optional[str] = None,
    plot: Optional[Path] = None,
    steps: int = 8,
) -> list[Path]:
    """Validate cheaply (files, output types, emotion spec, key, SoundFont header), then score ``video`` with the
    bundled ``VideoMusicPipeline`` and write the mp4 (plus wav / mid / stems / png when asked)."""
    require_seed(seed)
    parsed_emotion = preflight_music(video, output, emotion, soundfont, key, wav, midi, plot)
    import torch

    from affectstudio.pipelines.music import VideoMusicPipeline

    pipe = VideoMusicPipeline.from_pretrained()
    out = pipe(
        video=video,
        emotion=parsed_emotion,
        style=style,
        tempo=tempo,
        key=key,
        soundfont=soundfont,
        num_inference_steps=steps,
        generator=torch.Generator("cpu").manual_seed(seed),
        stems=stems is not None,
    )
    written = [out.save(output, video=video)]
    for path in (wav, midi, plot):
        if path is not None:
            written.append(out.save(path))
    if stems is not None:
        written += out.save_stems(stems)
    return written


def read_emotions(
    text: Optional[str] = None,
    text_file: Optional[str | Path] = None,
    audio: Optional[str | Path] = None,
    image: Optional[str | Path] = None,
) -> list:
    """Emotion readings (``EmotionEmbedding``) for one source: a text, each line of a text file, speech or a face."""
    from affectstudio.conditioning.emotion import load_encoder

    if text is not None:
        return [load_encoder("text").encode(text)]
    if text_file is not None:
        path = Path(text_file)
        if not path.is_file():
            raise MissingFileError(f"text file not found: {path}")
        try:
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as e:
            raise InputError(f"{path} is not a UTF-8 text file") from e
        lines = [ln for ln in lines if ln]
        if not lines:
            raise EmptyTextError(f"{path} has no text in it")
        return load_encoder("text").encode(lines)
    if audio is not None:
        return [load_encoder("speech").encode(audio)]
    if image is not None:
        return [load_encoder("face").encode(image)]
    raise InputError("nothing to read an emotion from")
