"""The cheap checks of every job, run before torch or any generator loads: files, output types, specs, media
headers, the face. Each ``preflight_*`` raises a typed :class:`~affectstudio.errors.InputError` and returns what it
parsed, so the job does not parse it again."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from affectstudio.errors import EmptyTextError, InputError, MissingFileError

PORTRAIT_SIZES = (256, 512, 0)  # as pipelines.portrait.SIZES, without importing torch for a check
MAX_VIDEO_SECONDS = 600.0  # as DubbingPipeline's max_video_seconds and the music pipeline's limit
DEFAULT_MAX_SECONDS = 600.0  # longest speech: --max-seconds' default; with --text, the script's length bound


@dataclass
class PortraitRead:
    """What :func:`preflight_portrait` read, handed to the pipeline so nothing is read twice: the parsed ``emotion``
    (``None``: read from the speech), the decoded ``audio`` ``(wave, sr)`` (``None`` with a script) and the ``face``
    chosen (a :class:`~affectstudio.conditioning.face_choice.FaceChoice`: the one face analysis of the job)."""

    emotion: Any = None
    audio: Optional[tuple] = None
    face: Any = None


def require_files(**paths) -> None:
    for flag, path in paths.items():
        if path is not None and not Path(path).is_file():
            raise MissingFileError(f"--{flag} file not found: {path}")


def require_output(path: Path, suffix: str) -> None:
    """An output path of the right type that can be written: not a folder, in a folder (or under one that will be
    made) where this process can create files — checked before rendering, not found out after it."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise InputError(f"output must be a {suffix} file, got {path}")
    if path.is_dir():
        raise InputError(f"output {path} is a folder: give a file name ending in {suffix}")
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the writer makes the missing folders; the first existing one must take them
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: {folder} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise InputError(f"cannot write {path}: the folder {folder} is not writable ({e.strerror})") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def require_distinct(outputs: dict[str, Optional[Path]], inputs: dict[str, object]) -> None:
    """No output is one of the inputs (resolved paths, or the same file through another name: a hard link) nor
    another output: ``dub --video X -o X`` would overwrite the clip it reads. Keys are the flags."""
    ins = {k: Path(v) for k, v in inputs.items() if isinstance(v, (str, os.PathLike)) and Path(v).is_file()}
    outs = {k: Path(v) for k, v in outputs.items() if v is not None}
    for i, (flag, out) in enumerate(outs.items()):
        for in_flag, src in ins.items():
            if _same_file(out, src):
                raise InputError(
                    f"--{flag} {out} is the --{in_flag} input: writing it would destroy the input; choose another "
                    "output path"
                )
        for other_flag, other in list(outs.items())[i + 1 :]:
            if _same_file(out, other):
                raise InputError(f"--{flag} and --{other_flag} are the same file {out}: give two different paths")


def require_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise InputError(f"--seed must be a whole number from 0 to {2**32 - 1}, got {seed}")


def video_clip(video: Path, max_seconds: float = MAX_VIDEO_SECONDS, count_frames: bool = True):
    """Probe a clip cheaply: the header first (a file whose header claims hours is refused without decoding it),
    then (``count_frames``) the frames counted; a still image or a one-frame file is not a clip. Returns the
    probe."""
    from affectstudio.errors import InputTooLongError, MediaDecodeError
    from affectstudio.video_io import probe_video

    header = probe_video(video)
    if header.duration > max_seconds:
        raise InputTooLongError(f"video {video} lasts {header.duration:.0f} s; the limit is {max_seconds:.0f} s")
    info = probe_video(video, count_frames=True) if count_frames else header
    if info.num_frames < 2 or info.duration <= 0:
        raise MediaDecodeError(f"video {video} is a single image ({info.num_frames} frame), not a clip")
    if info.duration > max_seconds:
        raise InputTooLongError(f"video {video} lasts {info.duration:.0f} s; the limit is {max_seconds:.0f} s")
    return info


def require_face_in_clip(video: Path, info, samples: int = 5) -> None:
    """A face in at least one of ``samples`` frames spread over the clip (seeking, not decoding it all): a clip
    with no face at all is refused in a second or two instead of after the whole lip analysis. The lip analysis
    itself still requires the face in most frames."""
    import numpy as np

    from affectstudio.conditioning.face import analyze_faces
    from affectstudio.errors import NoFaceError
    from affectstudio.video_io import frames_at

    times = (np.arange(samples) + 0.5) / samples * info.duration
    for frame in frames_at(video, times, info=info):
        if analyze_faces(frame, max_faces=1):
            return
    raise NoFaceError(
        f"no face found in video {video} ({samples} frames sampled): dubbing needs one clearly visible face"
    )


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
    Returns what it read (:class:`PortraitRead`): the pipeline takes the audio and the face from it."""
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
    require_distinct({"output": output}, {"image": image, "audio": audio, "emotion": emotion})
    if text is not None:
        from affectstudio.conditioning.phonemes import check_script

        limit = DEFAULT_MAX_SECONDS if max_seconds is None else float(max_seconds)
        check_script(text, limit, "en", "--text", language_flag=False)
    parse_face(face)
    parsed = None if emotion is None else parse_emotion_spec(emotion, intensity=intensity)
    speech = None
    if audio is not None:
        speech = load_audio(audio, max_seconds=600.0 if max_seconds is None else max_seconds)
    # no face: NoFaceError naming the file; --face N past the last face: how many there are
    return PortraitRead(emotion=parsed, audio=speech, face=choose_face(image, face))


def require_voice_preset(name: Optional[str], voice_model: Optional[Path] = None) -> None:
    """``--voice-preset`` names a preset (``affectstudio voices``) and is not given with ``--voice-model``."""
    if name is None:
        return
    from affectstudio.models.dubbing.voices import voice_preset

    voice_preset(name)
    if voice_model is not None:
        raise InputError("give --voice-preset or --voice-model, not both")


def preflight_speak(
    text: str,
    output: Path,
    emotion: Optional[str],
    intensity: Optional[float],
    voice: Optional[Path],
    language: str,
    voice_preset: Optional[str] = None,
    seed: int = 0,
):
    """The cheap checks of ``affectstudio speak`` (text-to-speech): the script and its length, the language, the
    preset, the reference file, the output (.wav, not an input), the emotion spec. Returns the parsed emotion."""
    from affectstudio.conditioning.emotion import parse_emotion_spec
    from affectstudio.conditioning.phonemes import check_script, resolve_language

    if text is None or not str(text).strip():
        raise EmptyTextError("--text is empty: give the words to speak")
    require_seed(seed)
    require_files(voice=voice)
    require_output(output, ".wav")
    require_distinct({"output": output}, {"voice": voice, "emotion": emotion})
    resolve_language(language)
    require_voice_preset(voice_preset)
    check_script(text, MAX_VIDEO_SECONDS, language, "--text")
    return None if emotion is None else parse_emotion_spec(emotion, intensity=intensity)


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
    voice_preset: Optional[str] = None,
):
    """Everything about a dubbing job that is cheap to check, before any model loads: files, output types, the
    script, the language, the emotion spec, the video's decodability, the reference voice. Returns the parsed
    emotion."""
    from affectstudio.conditioning.emotion import parse_emotion_spec
    from affectstudio.conditioning.phonemes import check_script, resolve_language

    if text is None or not str(text).strip():
        raise EmptyTextError("--text is empty: give the words to speak")
    require_files(video=video, voice=voice, **{"voice-model": voice_model})
    require_output(output, ".mp4")
    if wav is not None:
        require_output(wav, ".wav")
    require_distinct(
        {"output": output, "wav": wav},
        {"video": video, "voice": voice, "voice-model": voice_model, "emotion": emotion},
    )
    resolve_language(language)
    require_voice_preset(voice_preset, voice_model)
    info = video_clip(video)  # header first: a file claiming hours, a still image, a one-frame file fail fast
    check_script(text, info.duration, language, "--text")  # a script the clip cannot hold, before any model loads
    require_face_in_clip(video, info)
    parsed = None if emotion is None else parse_emotion_spec(emotion, intensity=intensity)
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

    require_files(video=video, soundfont=soundfont)
    require_output(output, ".mp4")
    for path, suffix in ((wav, ".wav"), (midi, ".mid"), (plot, ".png")):
        if path is not None:
            require_output(path, suffix)
    require_distinct(
        {"output": output, "wav": wav, "midi": midi, "plot": plot},
        {"video": video, "soundfont": soundfont, "emotion": emotion},
    )
    if key is not None:
        parse_key(key)
    if soundfont is not None:
        load_soundfont(soundfont)
    parsed = None
    if emotion is not None:
        from affectstudio.conditioning.emotion import parse_emotion_spec

        parsed = parse_emotion_spec(emotion)
    video_clip(video, count_frames=False)  # corrupt, video-less, one-frame, too long: fails before any model loads
    return parsed


def preflight_emotion(text=None, text_file=None, audio=None, image=None) -> None:
    """``affectstudio emotion``'s cheap checks, before an encoder loads: text with something to read (not only
    punctuation), the text file, the audio decodes and is not silent, the image decodes and shows a face."""
    import unicodedata

    from affectstudio.errors import NoSpeechError

    if text is not None:
        if not any(unicodedata.category(c)[0] in "LNS" for c in str(text)):
            raise EmptyTextError("--text has no words in it (only punctuation or spaces): nothing to read")
    if text_file is not None:
        require_files(**{"text-file": text_file})
    if audio is not None:
        import numpy as np

        from affectstudio.media import load_audio

        wave, _ = load_audio(audio, max_seconds=DEFAULT_MAX_SECONDS)
        if float(np.max(np.abs(wave))) < 1e-4:
            raise NoSpeechError(f"audio {audio} is silent: there is no speech to read an emotion from")
    if image is not None:
        from affectstudio.conditioning.face import analyze_face

        analyze_face(image)  # unreadable, a decompression bomb, or no face: one typed error
