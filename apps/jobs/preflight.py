"""The cheap checks of every job, run before torch or any generator loads: files, output types, specs, media
headers, the face. Each ``preflight_*`` raises a typed :class:`~affectstudio.errors.InputError` and returns what it
parsed, so the job does not parse it again."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from affectstudio.errors import EmptyTextError, InputError, MissingFileError

PORTRAIT_SIZES = (256, 512, 0)  # as pipelines.portrait.SIZES, without importing torch for a check


def require_files(**paths) -> None:
    for flag, path in paths.items():
        if path is not None and not Path(path).is_file():
            raise MissingFileError(f"--{flag} file not found: {path}")


def require_output(path: Path, suffix: str) -> None:
    if Path(path).suffix.lower() != suffix:
        raise InputError(f"output must be a {suffix} file, got {path}")


def preflight_portrait(
    image: Path,
    audio: Optional[Path],
    text: Optional[str],
    emotion: Optional[str],
    intensity: Optional[float],
    size: int,
    output: Path,
    max_seconds: Optional[float],
    face: str | int = "auto",
):
    """Everything about a portrait job that can be wrong, checked before torch or any generator loads: files,
    output type, size, the emotion spec, the audio's decodability and length, and the face to animate (a face in
    the photo; ``face``: a valid choice, a face number the photo has).
    Returns the parsed emotion (``None``: read from the speech)."""
    from affectstudio.conditioning.emotion import parse_emotion_spec
    from affectstudio.conditioning.face_choice import choose_face, parse_face
    from affectstudio.media import load_audio

    if (audio is None) == (text is None):
        raise InputError("give exactly one of --audio (speech to lip-sync) or --text (a script to speak)")
    if text is not None and not text.strip():
        raise EmptyTextError("--text is empty: give some words to speak")
    if size not in PORTRAIT_SIZES:
        raise InputError(f"--size must be 256, 512 or 0 (the source crop), got {size}")
    require_files(image=image, audio=audio)
    require_output(output, ".mp4")
    parse_face(face)
    parsed = None if emotion is None else parse_emotion_spec(emotion, intensity=intensity)
    if audio is not None:
        load_audio(audio, max_seconds=600.0 if max_seconds is None else max_seconds)
    choose_face(image, face)  # no face: NoFaceError naming the file; --face N past the last face: how many there are
    return parsed


def preflight_dub(
    video: Path,
    text: str,
    output: Path,
    emotion: Optional[str],
    intensity: Optional[float],
    voice: Optional[Path],
    language: str,
    wav: Optional[Path],
    voice_model: Optional[Path],
):
    """Everything about a dubbing job that is cheap to check, before any model loads: files, output types, the
    script, the language, the emotion spec, the video's decodability, the reference voice. Returns the parsed
    emotion."""
    from affectstudio.conditioning.emotion import parse_emotion_spec
    from affectstudio.conditioning.phonemes import resolve_language
    from affectstudio.video_io import probe_video

    if text is None or not str(text).strip():
        raise EmptyTextError("--text is empty: give the words to speak")
    require_files(video=video, voice=voice, **{"voice-model": voice_model})
    require_output(output, ".mp4")
    if wav is not None:
        require_output(wav, ".wav")
    resolve_language(language)
    parsed = None if emotion is None else parse_emotion_spec(emotion, intensity=intensity)
    probe_video(video, count_frames=True)
    return parsed


def preflight_music(
    video: Path,
    output: Path,
    emotion: Optional[str],
    soundfont: Optional[Path],
    key: Optional[str],
    wav: Optional[Path],
    midi: Optional[Path],
    plot: Optional[Path],
):
    """Everything about a music job that is cheap to check, before any model loads: files, output types, the
    emotion spec, the key, the SoundFont header, the video's decodability. Returns the parsed emotion."""
    from affectstudio.models.music.synth import load_soundfont
    from affectstudio.models.music.theory import parse_key
    from affectstudio.video_io import probe_video

    require_files(video=video)
    require_output(output, ".mp4")
    for path, suffix in ((wav, ".wav"), (midi, ".mid"), (plot, ".png")):
        if path is not None:
            require_output(path, suffix)
    if key is not None:
        parse_key(key)
    if soundfont is not None:
        load_soundfont(soundfont)
    parsed = None
    if emotion is not None:
        from affectstudio.conditioning.emotion import parse_emotion_spec

        parsed = parse_emotion_spec(emotion)
    info = probe_video(video)  # a corrupt or video-less file fails here, before any model loads
    if info.duration <= 0:
        raise InputError(f"video {video} has zero duration")
    return parsed
