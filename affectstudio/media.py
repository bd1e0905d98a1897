"""Image, audio and video reading and writing: the one place media touches disk.

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
import tempfile
from dataclasses import dataclass
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
# AAC decoders overshoot the input's peaks; keep the encoded track's true peak this far below full scale.
AAC_HEADROOM_DB = 1.5


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    try:
        import imageio_ffmpeg
    except ImportError as e:  # pragma: no cover - it is a core dependency
        raise DependencyError("imageio-ffmpeg is not installed: run scripts/setup.sh") from e
    return imageio_ffmpeg.get_ffmpeg_exe()


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
            with Image.open(path) as im:
                im.load()
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
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
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    m = re.search(r"Audio:.*?(\d+) Hz", proc.stderr)
    return int(m.group(1)) if m else None


def _decode_with_ffmpeg(path: Path, sample_rate: int | None) -> tuple[np.ndarray, int]:
    sr = sample_rate or _ffmpeg_audio_rate(path)
    if sr is None:
        raise MediaDecodeError(f"no audio track found in {path}")
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le", "-"]
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


# ------------------------------------------------------------------------------------------------ video


@dataclass
class VideoInfo:
    width: int  # of the decoded frames (a rotation in the header is applied)
    height: int
    fps: float
    num_frames: int
    duration: float  # seconds
    has_audio: bool


_VIDEO_STREAM = re.compile(r"Stream #.*?Video:.*?(\d{2,5})x(\d{2,5}).*?([\d.]+) (?:fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees|rotate\s*:\s*(-?[\d.]+)", re.IGNORECASE)


def probe_video(src: PathLike, count_frames: bool = False) -> VideoInfo:
    """Size, frame rate, duration and audio presence of a video file.

    By default from the container header alone, in one ffmpeg call that decodes nothing: ``duration`` is the
    container's (which includes an audio track longer than the video) and ``num_frames`` is duration × fps.
    ``count_frames=True`` also decodes the video stream once to count its frames: ``num_frames`` and
    ``duration`` are then the video stream's own. Width and height are those of the decoded frames (a 90° rotation
    in the header swaps them). Raises MissingFileError, or MediaDecodeError when the file is not a video or holds
    no video frames.
    """
    path = _existing(src, "video")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True)
    err = proc.stderr.decode(errors="replace")
    video = _VIDEO_STREAM.search(err)
    if video is None:
        if "Invalid data" in err or "moov atom not found" in err or "Duration" not in err:
            raise MediaDecodeError(f"cannot read video {path}: not a valid video file")
        raise MediaDecodeError(f"video {path} has no video frames")
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", err)
    duration = 3600 * int(dur.group(1)) + 60 * int(dur.group(2)) + float(dur.group(3)) if dur else 0.0
    w, h, fps = int(video.group(1)), int(video.group(2)), float(video.group(3))
    rotation = _ROTATION.search(err)
    if rotation is not None and round(float(rotation.group(1) or rotation.group(2))) % 180 == 90:
        w, h = h, w  # ffmpeg turns the frames upright while decoding
    num_frames = int(round(duration * fps))
    if count_frames:
        import imageio_ffmpeg

        try:
            nframes, secs = imageio_ffmpeg.count_frames_and_secs(str(path))
        except (RuntimeError, OSError) as e:
            msg = str(e).strip().splitlines()
            raise MediaDecodeError(f"cannot read video {path}: {msg[-1] if msg else e}") from e
        if not nframes:
            raise MediaDecodeError(f"video {path} has no video frames")
        num_frames, duration = int(nframes), float(secs)
    return VideoInfo(w, h, fps, num_frames, duration, re.search(r"Stream #.*?Audio:", err) is not None)


def iter_video_frames(
    src: PathLike,
    max_frames: int | None = None,
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    fps_round: str = "near",
    fast: bool = False,
) -> Iterator[np.ndarray]:
    """Yield ``uint8 (h, w, 3)`` RGB frames one at a time (memory stays flat for long videos).

    ffmpeg reduces the frames while decoding, which is most of the cost of reading a long or large clip:
    ``fps`` resamples to that rate (ffmpeg's ``fps`` filter; ``fps_round`` is its timestamp rounding, ``"down"``
    makes frame k of a rate ``source / step`` source frame ``k * step``), then ``size`` ``(w, h)`` scales.
    ``fast`` skips H.264 deblocking and scales with fast bilinear filtering (about 20 % faster decoding), for
    analysis, which never needs those pixels exact.
    """
    info = probe_video(src)  # a missing, corrupt or video-less file fails here
    path = Path(src).expanduser()
    w, h = size if size is not None else (info.width, info.height)
    filters = [] if fps is None else [f"fps={fps:.6f}:round={fps_round}"]
    if size is not None:
        filters.append(f"scale={w}:{h}" + (":flags=fast_bilinear" if fast else ""))
    cmd = [ffmpeg_exe(), "-v", "error", *(["-skip_loop_filter", "all"] if fast else []), "-i", str(path), "-an"]
    cmd += ["-vf", ",".join(filters)] if filters else []
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    nbytes = w * h * 3
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: ffmpeg never blocks on a full stderr
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, bufsize=nbytes * 8)
        assert proc.stdout is not None  # stdout=PIPE
        try:
            count = 0
            while max_frames is None or count < max_frames:
                buf = proc.stdout.read(nbytes)
                if len(buf) < nbytes:
                    if buf:
                        log.seek(0)
                        msg = log.read().decode(errors="replace").strip().splitlines()
                        raise MediaDecodeError(f"cannot decode video {path}: {msg[-1] if msg else 'truncated frame'}")
                    break
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
                count += 1
        finally:
            proc.stdout.close()
            proc.kill()
            proc.wait()


def read_video(src: PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Read a whole (short) video: ``(frames uint8 (t, h, w, 3), fps)``."""
    info = probe_video(src)
    frames = list(iter_video_frames(src, max_frames))
    if not frames:
        raise MediaDecodeError(f"video {src} has no decodable frames")
    return np.stack(frames), info.fps


class VideoWriter:
    """Stream frames into an H.264/AAC mp4, atomically.

    >>> with VideoWriter("out.mp4", fps=25, audio=wave, sample_rate=24000) as w:
    ...     for chunk in chunks:
    ...         w.write(chunk)          # (h, w, 3) or (t, h, w, 3) uint8

    The audio track is padded with silence or cut to the video's duration and given AAC headroom. Odd frame
    sizes are padded by one pixel (yuv420p needs even sizes). Nothing appears at ``path`` unless the whole
    file was encoded.
    """

    def __init__(
        self,
        path: PathLike,
        fps: float,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
        crf: int = 18,
        preset: str = "veryfast",
    ):
        if audio is not None and not sample_rate:
            raise InputError("VideoWriter needs sample_rate with audio")
        self.path, self.fps, self.crf, self.preset = Path(path), float(fps), crf, preset
        self.audio = None if audio is None else np.asarray(audio, dtype=np.float32)
        self.sample_rate = sample_rate
        self.num_frames = 0
        self._proc: subprocess.Popen | None = None
        self._size: tuple[int, int] | None = None
        self._tmp = _partial_path(self.path)
        self._video_tmp = self._tmp.with_name(self._tmp.stem + ".video.mp4")

    def __enter__(self) -> "VideoWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def _start(self, h: int, w: int) -> None:
        self._size = (h, w)
        cmd = [
            ffmpeg_exe(),
            "-y",
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            f"{self.fps}",
            "-i",
            "-",
        ]
        if h % 2 or w % 2:
            cmd += ["-vf", f"pad={w + w % 2}:{h + h % 2}"]
        cmd += [
            "-c:v",
            "libx264",
            "-preset",
            self.preset,
            "-crf",
            str(self.crf),
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(self._video_tmp if self.audio is not None else self._tmp),
        ]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise InputError(f"frames must be uint8 (t, h, w, 3), got {frames.dtype} {frames.shape}")
        if self._proc is None:
            self._start(*frames.shape[1:3])
        elif frames.shape[1:3] != self._size:
            raise InputError(f"frame size changed from {self._size} to {frames.shape[1:3]}")
        assert self._proc is not None and self._proc.stdin is not None  # started above with stdin=PIPE
        try:
            self._proc.stdin.write(np.ascontiguousarray(frames).tobytes())
        except BrokenPipeError as e:
            raise RuntimeError(f"ffmpeg stopped while encoding {self.path}: {self._stderr()}") from e
        self.num_frames += frames.shape[0]

    def _stderr(self) -> str:
        assert self._proc is not None and self._proc.stderr is not None  # started with stderr=PIPE
        return self._proc.stderr.read().decode(errors="replace").strip()

    def _finish(self) -> None:
        if self._proc is None:
            raise InputError(f"no frames were written to {self.path}")
        assert self._proc.stdin is not None  # started with stdin=PIPE
        self._proc.stdin.close()
        err = self._stderr()
        if self._proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed to encode {self.path}: {err}")
        if self.audio is not None:
            assert self.sample_rate is not None  # checked in __init__: audio needs a sample rate
            _mux(self._video_tmp, self.audio, self.sample_rate, self.num_frames / self.fps, self._tmp)
        os.replace(self._tmp, self.path)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._finish()
        finally:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._tmp.unlink(missing_ok=True)
            self._video_tmp.unlink(missing_ok=True)


def write_video(
    path: PathLike, frames: np.ndarray, fps: float, audio: np.ndarray | None = None, sample_rate: int | None = None
) -> Path:
    """Write frames (and optional mono audio) to an mp4 in one go."""
    with VideoWriter(path, fps, audio=audio, sample_rate=sample_rate) as w:
        w.write(frames)
    return Path(path)


def mux_audio(video: PathLike, audio: np.ndarray, sample_rate: int, path: PathLike) -> Path:
    """Replace (or add) the audio track of ``video``, copying its video stream; the output keeps the video's
    duration (audio cut or padded with silence)."""
    src = _existing(video, "video")
    duration = probe_video(src, count_frames=True).duration  # the video stream's own length
    path = Path(path)
    with atomic_path(path) as tmp:
        _mux(src, audio, sample_rate, duration, tmp)
    return path


def _mux(video: Path, audio: np.ndarray, sample_rate: int, duration: float, out: Path) -> None:
    """Mux ``audio`` (fitted to ``duration`` seconds, with AAC headroom) with ``video``'s stream into ``out``."""
    n = int(round(duration * sample_rate))
    track = np.zeros(n, dtype=np.float32)
    audio = np.asarray(audio, dtype=np.float32)[:n]
    track[: audio.size] = audio
    with tempfile.TemporaryDirectory() as td:  # the system temp folder: a killed process leaves nothing beside out
        wav = write_wav(Path(td) / "track.wav", with_headroom(track), sample_rate)
        cmd = [
            ffmpeg_exe(),
            "-y",
            "-v",
            "error",
            "-i",
            str(video),
            "-i",
            str(wav),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-b:a",
            "160k",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(out),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed to mux audio into {out}: {proc.stderr.strip()}")


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
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if not tmp.exists():
        raise RuntimeError(f"nothing was written to {path}")
    os.replace(tmp, path)
