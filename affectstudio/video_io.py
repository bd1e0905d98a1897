"""Video probing, reading, writing and muxing (the video half of :mod:`.media`, which holds images, audio and the
atomic output paths every writer here uses).

Frames are ``uint8`` RGB arrays ``(t, h, w, 3)``. mp4 outputs are H.264 ``yuv420p`` + AAC with ``+faststart`` so
they play in browsers and any player; every writer is atomic (see :func:`.media.atomic_path`).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError, MediaDecodeError
from .media import PathLike, _existing, _partial_path, atomic_path, ffmpeg_exe, ffmpeg_path, with_headroom, write_wav


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
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", ffmpeg_path(path)], capture_output=True)
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
            nframes, secs = imageio_ffmpeg.count_frames_and_secs(ffmpeg_path(path))
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
    info: VideoInfo | None = None,
) -> Iterator[np.ndarray]:
    """Yield ``uint8 (h, w, 3)`` RGB frames one at a time (memory stays flat for long videos).

    ffmpeg reduces the frames while decoding, which is most of the cost of reading a long or large clip:
    ``fps`` resamples to that rate (ffmpeg's ``fps`` filter; ``fps_round`` is its timestamp rounding, ``"down"``
    makes frame k of a rate ``source / step`` source frame ``k * step``), then ``size`` ``(w, h)`` scales.
    ``fast`` skips H.264 deblocking and scales with fast bilinear filtering (about 20 % faster decoding), for
    analysis, which never needs those pixels exact. ``info``: the file's :func:`probe_video`, when the caller
    already has it (the file is probed otherwise).
    """
    if info is None:
        info = probe_video(src)  # a missing, corrupt or video-less file fails here
    path = Path(src).expanduser()
    w, h = size if size is not None else (info.width, info.height)
    filters = [] if fps is None else [f"fps={fps:.6f}:round={fps_round}"]
    if size is not None:
        filters.append(f"scale={w}:{h}" + (":flags=fast_bilinear" if fast else ""))
    cmd = [ffmpeg_exe(), "-v", "error", *(["-skip_loop_filter", "all"] if fast else []), "-i", ffmpeg_path(path)]
    cmd += ["-an"]
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


def frames_at(src: PathLike, seconds, max_side: int = 360, info: VideoInfo | None = None) -> list[np.ndarray]:
    """One ``uint8 (h, w, 3)`` frame at each of ``seconds`` (the first frame at or after it), the longer side at most
    ``max_side``: ffmpeg seeks to each time instead of decoding the clip, so a few samples of a long video are cheap
    (cheap checks: is there a face). A time past the end gives no frame."""
    if info is None:
        info = probe_video(src)
    s = min(1.0, max_side / max(info.width, info.height, 1))
    w, h = max(2, int(round(info.width * s / 2)) * 2), max(2, int(round(info.height * s / 2)) * 2)
    frames = []
    for t in seconds:
        cmd = [ffmpeg_exe(), "-v", "error", "-ss", f"{max(float(t), 0.0):.3f}", "-i", ffmpeg_path(src), "-an"]
        cmd += ["-frames:v", "1", "-vf", f"scale={w}:{h}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        out = subprocess.run(cmd, capture_output=True).stdout
        if len(out) >= w * h * 3:
            frames.append(np.frombuffer(out[: w * h * 3], np.uint8).reshape(h, w, 3))
    return frames


def read_video(src: PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Read a whole (short) video: ``(frames uint8 (t, h, w, 3), fps)``."""
    info = probe_video(src)
    frames = list(iter_video_frames(src, max_frames, info=info))
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
            ffmpeg_path(self._video_tmp if self.audio is not None else self._tmp),
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
            ffmpeg_path(video),
            "-i",
            ffmpeg_path(wav),
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
            ffmpeg_path(out),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed to mux audio into {out}: {proc.stderr.strip()}")
