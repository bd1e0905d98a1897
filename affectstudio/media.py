"""Image and audio reading and writing, atomic output paths, the ffmpeg binary: with :mod:`.video_io` (video
probing, reading, writing, muxing), the one place media touches disk.

Frames are ``uint8`` RGB arrays ``(t, h, w, 3)``; waveforms are ``float32`` mono in [-1, 1].
Decoding and encoding go through the ffmpeg binary that ``imageio-ffmpeg`` ships, so mp3/m4a/mp4 work
without a system ffmpeg. Every writer is atomic: it writes a hidden temporary file beside the target and
renames it into place only when the whole output is complete, so a failure never leaves a partial file.
mp4 outputs are H.264 ``yuv420p`` + AAC with ``+faststart`` so they play in browsers and any player.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import warnings
from pathlib import Path
from typing import Iterator, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DependencyError, InputError, MediaDecodeError, MissingFileError

PathLike = Union[str, os.PathLike]
ImageInput = Union[PathLike, Image.Image, np.ndarray]
AudioInput = Union[PathLike, tuple, np.ndarray]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".aac")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
#: the largest image read (PIL warns beyond it and refuses twice it; both are errors here): 64 MP is 8000 x 8000
MAX_IMAGE_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # every PIL open in the process, ours or a library's
# AAC decoders overshoot the input's peaks; keep the encoded track's true peak this far below full scale.
AAC_HEADROOM_DB = 1.5


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    try:
        import imageio_ffmpeg
    except ImportError as e:  # pragma: no cover - it is a core dependency
        raise DependencyError("imageio-ffmpeg is not installed: run scripts/setup.sh") from e
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_path(path: PathLike) -> str:
    """A path as ffmpeg must see it: always a file, never a protocol. ``concat:a.mp4`` or ``http:x`` is a file name
    that passed our existence check; given bare, ffmpeg would open the protocol instead. The ``file:`` prefix with
    the absolute path leaves no such reading."""
    return "file:" + os.path.abspath(os.fspath(path))


def _existing(path: PathLike, kind: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"{kind} file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaDecodeError(f"{kind} file is empty: {path}")
    return path


def _name(src) -> str:
    return str(src) if isinstance(src, (str, os.PathLike)) else f"<{type(src).__name__}>"


# ----------------------------------------------------------------------------------------------- images


def load_image(src: ImageInput) -> np.ndarray:
    """Read an image (path, PIL image or array) as ``uint8`` RGB ``(h, w, 3)``."""
    if isinstance(src, (str, os.PathLike)):
        path = _existing(src, "image")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    im.load()
                    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise MediaDecodeError(
                f"image {path} is larger than {MAX_IMAGE_PIXELS // 1_000_000} megapixels (its header may lie: a "
                "'decompression bomb'); use a smaller photo"
            ) from None
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise MediaDecodeError(f"cannot read image {path}: not a valid image file ({e})") from e
    if isinstance(src, Image.Image):
        return np.asarray(src.convert("RGB"), dtype=np.uint8).copy()
    if isinstance(src, np.ndarray):
        arr = src
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4) or min(arr.shape[:2]) < 1:
            raise InputError(f"image array must be (h, w, 3) RGB, got shape {src.shape}")
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        arr = arr[..., :3]
        if arr.dtype != np.uint8:
            arr = np.asarray(arr, dtype=np.float32)
            if arr.max(initial=0.0) <= 1.0:
                arr = arr * 255.0
            arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(arr)
    raise InputError(f"unsupported image input of type {type(src).__name__}: pass a path, PIL image or array")


def save_image(path: PathLike, image: np.ndarray) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(load_image(image)).save(tmp, format=Image.registered_extensions().get(path.suffix.lower()))
    return path


# ------------------------------------------------------------------------------------------------ audio


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (scipy); returns float32."""
    wave = np.asarray(wave, dtype=np.float32)
    if orig_sr == target_sr or wave.size == 0:
        return wave
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_sr), int(target_sr))
    return resample_poly(wave, int(target_sr) // g, int(orig_sr) // g).astype(np.float32)


def _ffmpeg_audio_rate(path: Path) -> int | None:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", ffmpeg_path(path)], capture_output=True, text=True)
    m = re.search(r"Audio:.*?(\d+) Hz", proc.stderr)
    return int(m.group(1)) if m else None


def _decode_with_ffmpeg(path: Path, sample_rate: int | None) -> tuple[np.ndarray, int]:
    sr = sample_rate or _ffmpeg_audio_rate(path)
    if sr is None:
        raise MediaDecodeError(f"no audio track found in {path}")
    cmd = [ffmpeg_exe(), "-v", "error", "-i", ffmpeg_path(path), "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise MediaDecodeError(f"cannot decode audio from {path}: {msg[-1] if msg else 'ffmpeg failed'}")
    return np.frombuffer(proc.stdout, dtype=np.float32).copy(), sr


def load_audio(
    src: AudioInput, sample_rate: int | None = None, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Read audio as mono ``float32`` in [-1, 1]; returns ``(wave, sr)``.

    ``src`` is a path (wav/flac/ogg read directly; mp3/m4a and the audio track of mp4/mov through ffmpeg),
    a ``(wave, sr)`` tuple, or an array (then ``sample_rate`` says its rate). With ``sample_rate`` the result
    is resampled to it. ``max_seconds`` raises :class:`InputTooLongError` for longer inputs.
    """
    from .errors import InputTooLongError

    if isinstance(src, (str, os.PathLike)):
        path = _existing(src, "audio")
        wave, sr = None, None
        if path.suffix.lower() in (".wav", ".flac", ".ogg"):
            import soundfile as sf

            try:
                data, sr = sf.read(str(path), dtype="float32", always_2d=True)
                wave = data.mean(axis=1)
            except (RuntimeError, sf.LibsndfileError):
                wave = None  # e.g. a .wav with an exotic codec: let ffmpeg try
        if wave is None:
            wave, sr = _decode_with_ffmpeg(path, None)
        name = str(path)
    elif isinstance(src, tuple) and len(src) == 2:
        wave, sr = np.asarray(src[0], dtype=np.float32), int(src[1])
        name = "<audio array>"
    elif isinstance(src, np.ndarray):
        if sample_rate is None:
            raise InputError("an audio array needs its sample_rate (or pass a (wave, sr) tuple)")
        wave, sr = np.asarray(src, dtype=np.float32), int(sample_rate)
        name = "<audio array>"
    else:
        raise InputError(f"unsupported audio input of type {type(src).__name__}: pass a path or (wave, sr)")
    assert sr is not None  # every branch above sets it (decoders, the tuple, or an error)
    if wave.ndim == 2:  # (n, channels) or (channels, n)
        wave = wave.mean(axis=1 if wave.shape[0] > wave.shape[1] else 0)
    if wave.ndim != 1:
        raise InputError(f"audio must be mono (n,) or (n, channels), got shape {wave.shape}")
    if wave.size == 0:
        raise MediaDecodeError(f"audio {name} contains no samples")
    if not np.all(np.isfinite(wave)):
        raise MediaDecodeError(f"audio {name} contains NaN or infinite samples")
    if max_seconds is not None and wave.size / sr > max_seconds:
        raise InputTooLongError(
            f"audio {name} is {wave.size / sr:.1f} s long; the limit is {max_seconds:.0f} s "
            "(raise it with max_audio_seconds / --max-seconds)"
        )
    if sample_rate is not None and sample_rate != sr:
        wave, sr = resample(wave, sr, sample_rate), int(sample_rate)
    return np.clip(wave, -1.0, 1.0).astype(np.float32), int(sr)


def with_headroom(wave: np.ndarray, headroom_db: float = AAC_HEADROOM_DB) -> np.ndarray:
    """Scale ``wave`` down (never up) so its 4x-oversampled true peak sits ``headroom_db`` below full scale."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size == 0:
        return wave
    peak = true_peak(wave)
    limit = 10 ** (-headroom_db / 20)
    return (wave * (limit / peak)).astype(np.float32) if peak > limit else wave


def true_peak(wave: np.ndarray, block: int = 1 << 20, context: int = 256) -> float:
    """Peak of ``wave`` oversampled 4x (the inter-sample peak an encoder's reconstruction can reach), computed in
    blocks with ``context`` samples of the neighbours on each side, so memory stays flat on long tracks."""
    from scipy.signal import resample_poly

    peak = 0.0
    for start in range(0, wave.size, block):
        lo, hi = max(0, start - context), min(wave.size, start + block + context)
        up = resample_poly(wave[lo:hi], 4, 1)[4 * (start - lo) : 4 * (min(start + block, wave.size) - lo)]
        peak = max(peak, float(np.abs(up).max()))
    return peak


def write_wav(path: PathLike, wave: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM wav, atomically."""
    import soundfile as sf

    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(
            str(tmp),
            np.clip(np.asarray(wave, dtype=np.float32), -1, 1),
            int(sample_rate),
            subtype="PCM_16",
            format="WAV",
        )
    return path


# ----------------------------------------------------------------------------------------------- atomic


def _partial_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it into place, on failure delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial_path(path)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to {path}")
        try:
            os.replace(tmp, path)  # inside the clean-up: a failed rename (the target is a folder…) leaves nothing
        except IsADirectoryError:
            raise InputError(f"output {path} is a folder: give a file name") from None
        except OSError as e:
            raise InputError(f"cannot write {path}: {e.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
