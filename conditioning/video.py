"""Video analysis: what a score needs to know about a clip.

One decoding pass (ffmpeg, downscaled to :data:`ANALYSIS_WIDTH` px, at the source rate capped at
:data:`MAX_DECODE_FPS`) gives, on a regular analysis grid of ``analysis_fps`` samples per second:

* **scene cuts** — content difference between consecutive frames (mean absolute HSV difference on a 64 px
  thumbnail, as PySceneDetect's content detector does), thresholded adaptively against the clip's own
  frame-to-frame noise; a cut is timed at the first frame of the new shot (one source frame of precision);
* **motion** — mean Farnebäck optical-flow magnitude (OpenCV) between consecutive source frames, in frame
  widths per second (pairs that straddle a cut are skipped);
* **visual attributes** (EmoVid's cues) — brightness, saturation, colourfulness (Hasler & Süsstrunk) and
  warmth of the hue;
* **faces** — about one frame per second through the shared face emotion encoder
  (:func:`~affectstudio.conditioning.emotion.load_encoder` ``("face")``);
* **speech** on the clip's own audio track (for ducking the music under it).

:meth:`VideoAnalysis.emotion_curve` fuses these into a per-second :class:`EmotionEmbedding` curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectstudio.conditioning.emotion.embedding import _ANCHORS, EmotionEmbedding
from affectstudio.errors import InputError, MediaDecodeError
from affectstudio.media import PathLike, _decode_with_ffmpeg, _existing
from affectstudio.video_io import VideoInfo, VideoWriter, iter_video_frames, probe_video

ANALYSIS_WIDTH = 320  # decoded frame width (faces are read at this size)
MAX_DECODE_FPS = 30.0  # higher frame rates are decimated while decoding
THUMB = (64, 36)  # cut detection thumbnail (w, h)
FLOW_WIDTH = 128  # optical flow runs on frames this wide
FACE_FPS = 0.5  # face emotion reads per second
SPEECH_FPS = 25.0  # speech activity rate


@dataclass
class VideoAnalysis:
    """Per-sample features on a regular grid ``times`` (seconds) plus scene cuts and speech activity."""

    duration: float
    fps: float  # source frame rate
    size: tuple[int, int]  # source (w, h)
    times: np.ndarray  # (k,) analysis grid, seconds
    brightness: np.ndarray  # (k,) 0..1 (mean luma)
    saturation: np.ndarray  # (k,) 0..1 (mean HSV saturation)
    colourfulness: np.ndarray  # (k,) Hasler–Süsstrunk M / 100 (≈ 0..1.2)
    warmth: np.ndarray  # (k,) -1 (blue/cyan) .. 1 (red/orange/yellow), saturation-weighted
    motion: np.ndarray  # (k,) optical-flow magnitude, frame widths per second
    cut_times: np.ndarray  # (c,) seconds, first frame of each new shot
    cut_scores: np.ndarray  # (c,) content-difference strength (times the adaptive threshold)
    face_times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (f,) seconds of face reads
    face_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.float32))  # (f, 8)
    speech: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (s,) at SPEECH_FPS
    timings: dict = field(default_factory=dict)  # stage → seconds

    @property
    def analysis_fps(self) -> float:
        return float(len(self.times) / self.duration) if self.duration > 0 else 0.0

    def speech_at(self, t: np.ndarray) -> np.ndarray:
        """Speech activity (0/1 float) at times ``t`` (seconds)."""
        if self.speech.size == 0:
            return np.zeros(np.shape(t), np.float32)
        idx = np.clip((np.asarray(t) * SPEECH_FPS).astype(int), 0, self.speech.size - 1)
        return self.speech[idx].astype(np.float32)

    def visual_vad(self, times: np.ndarray) -> np.ndarray:
        """(n, 3) valence/arousal/dominance from the visual cues alone at ``times``.

        Valence rises with brightness, colourfulness and warm hues; arousal with motion, saturation and the
        local cut rate (EmoVid's and the film-music literature's cues). Coefficients are hand-set so that a
        mid-grey, still, unedited shot is neutral and each cue alone moves a quarter to half of the range;
        the sums pass through tanh.
        """
        f = lambda x: np.interp(times, self.times, x)  # noqa: E731
        bright, col, sat = f(self.brightness), f(self.colourfulness), f(self.saturation)
        warm, motion = f(self.warmth), f(self.motion)
        cut_rate = np.array([np.sum(np.abs(self.cut_times - t) < 4.0) / 8.0 for t in times])  # cuts per second
        valence = 1.6 * (bright - 0.45) + 0.7 * (col - 0.3) + 0.25 * warm
        arousal = (
            0.9 * np.tanh(4.0 * motion) - 0.35 + 0.6 * (sat - 0.3) + 0.5 * np.tanh(2.0 * cut_rate) + 0.2 * (col - 0.3)
        )
        valence, arousal = np.tanh(valence), np.tanh(arousal)  # saturate smoothly: extremes stay readable
        dominance = 0.5 * (bright - 0.45) + 0.2 * arousal
        return np.clip(np.stack([valence, arousal, dominance], -1), -1, 1).astype(np.float32)

    def emotion_curve(self, fps: float = 1.0, face_weight: float = 0.6) -> EmotionEmbedding:
        """Per-``1/fps``-second emotion curve: visual cues, with faces (where found) blended in."""
        n = max(1, int(math.ceil(self.duration * fps)))
        t = (np.arange(n) + 0.5) / fps
        vad = self.visual_vad(t)
        intensity = np.clip(np.linalg.norm(vad[:, :2], axis=-1) * 1.2, 0.2, 1.0)
        probs = probs_from_vad(vad)
        if len(self.face_times):
            near = np.abs(t[:, None] - self.face_times[None]) <= 1.0 / fps  # (n, f)
            has = near.any(1)
            if has.any():
                w = near / np.maximum(near.sum(1, keepdims=True), 1)
                face = w @ self.face_probs  # (n, 8)
                probs[has] = (1 - face_weight) * probs[has] + face_weight * face[has]
                vad[has] = (1 - face_weight) * vad[has] + face_weight * np.clip(face[has] @ _ANCHORS, -1, 1)
        return EmotionEmbedding(probs=probs / probs.sum(-1, keepdims=True), vad=vad, intensity=intensity)


def probs_from_vad(vad: np.ndarray, temperature: float = 0.12) -> np.ndarray:
    """Soft nearest-anchor categorical distribution for VAD points ``(..., 3)`` → ``(..., 8)``."""
    d2 = ((np.asarray(vad, np.float32)[..., None, :] - _ANCHORS) ** 2).sum(-1)  # (..., 8)
    logits = -d2 / temperature
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)).astype(np.float32)


# ------------------------------------------------------------------------------------------- decoding


def iter_analysis_frames(path: PathLike, info: VideoInfo, fps: float, width: int = ANALYSIS_WIDTH):
    """Yield ``uint8 (h, width, 3)`` frames at ``fps`` (ffmpeg scales and decimates while decoding) of the video
    that ``info`` (:func:`~affectstudio.video_io.probe_video`) describes."""
    w = int(width) - int(width) % 2
    h = max(2, int(round(info.height * w / info.width / 2)) * 2)
    return iter_video_frames(path, size=(w, h), fps=fps if fps < info.fps - 1e-3 else None, fast=True, info=info)


def _colour_stats(frame: np.ndarray) -> tuple[float, float, float, float]:
    """brightness, saturation, colourfulness, warmth of a small RGB frame."""
    import cv2

    rgb = frame.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    sat = hsv[..., 1].astype(np.float32) / 255.0
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = (np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())) * 255 / 100
    hue = hsv[..., 0].astype(np.float32) * (2 * np.pi / 180)  # OpenCV hue is 0..180
    warm = float((np.cos(hue - np.pi / 6) * sat).sum() / max(sat.sum(), 1e-6))  # + for reds/oranges
    return float(luma.mean()), float(sat.mean()), float(colourful), warm


def analyze_video(
    path: PathLike, analysis_fps: float = 4.0, faces: bool = True, speech: bool = True, max_seconds: float | None = None
) -> VideoAnalysis:
    """Analyse a video file (see the module docstring). Raises MissingFileError / MediaDecodeError."""
    import time

    import cv2

    path = _existing(path, "video")
    t0 = time.perf_counter()
    info = probe_video(path)
    if info.duration <= 0 or info.num_frames < 1:
        raise MediaDecodeError(f"video {path} has zero duration")
    if max_seconds is not None and info.duration > max_seconds:
        from affectstudio.errors import InputTooLongError

        raise InputTooLongError(f"video {path} is {info.duration:.1f} s long; the limit is {max_seconds:.0f} s")
    dec_fps = min(info.fps, MAX_DECODE_FPS)
    step = max(1, int(round(dec_fps / analysis_fps)))  # colour/flow every `step` decoded frames
    face_step = max(1, int(round(dec_fps / FACE_FPS)))
    diffs, stats, motion, stat_t, face_frames = [], [], [], [], []
    prev_hsv, prev_gray = None, None
    timings = {"probe_s": time.perf_counter() - t0}
    t_dec = time.perf_counter()
    i = -1
    for i, frame in enumerate(iter_analysis_frames(path, info, dec_fps)):
        thumb = cv2.resize(frame, THUMB, interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)  # uint8; OpenCV hue runs 0..180
        if prev_hsv is None:
            diffs.append(0.0)
        else:
            h, s_, v, _ = cv2.mean(cv2.absdiff(hsv, prev_hsv))
            diffs.append((h * 255.0 / 180.0 + s_ + v) / 3.0)
        prev_hsv = hsv
        if i % step in (0, 1 % step):  # colour and flow need the small frame only on the analysis grid
            small = cv2.resize(
                frame, (FLOW_WIDTH, max(2, FLOW_WIDTH * frame.shape[0] // frame.shape[1])), interpolation=cv2.INTER_AREA
            )
            gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
            if i % step == 0:
                stats.append(_colour_stats(small))
                stat_t.append(i / dec_fps)
                motion.append(np.nan)
            if i % step == 1 % step and prev_gray is not None and i > 0:
                flow = cv2.calcOpticalFlowFarneback(prev_gray, gray, None, 0.5, 2, 9, 2, 5, 1.1, 0)
                mag = float(np.linalg.norm(flow, axis=-1).mean()) * dec_fps / gray.shape[1]
                motion[-1] = mag if diffs[-1] < 30 else np.nan  # a pair across a cut is no motion
            prev_gray = gray
        if faces and i % face_step == face_step // 2:
            face_frames.append((i / dec_fps, frame.copy()))
    if i < 0:
        raise MediaDecodeError(f"video {path} has no decodable frames")
    timings["decode_features_s"] = time.perf_counter() - t_dec
    n_dec = i + 1
    # the video stream's own length (a container's duration can include a longer audio track)
    duration = n_dec / dec_fps if n_dec > 1 else float(info.duration)
    cut_times, cut_scores = detect_cuts(np.asarray(diffs, np.float32), dec_fps)
    motion_arr = np.asarray(motion, np.float32)
    if np.isnan(motion_arr).all():
        motion_arr[:] = 0.0
    else:
        idx = np.arange(len(motion_arr))
        ok = ~np.isnan(motion_arr)
        motion_arr = np.interp(idx, idx[ok], motion_arr[ok]).astype(np.float32)
    st = np.asarray(stats, np.float32).reshape(-1, 4)
    result = VideoAnalysis(
        duration=float(duration),
        fps=info.fps,
        size=(info.width, info.height),
        times=np.asarray(stat_t, np.float32),
        brightness=st[:, 0],
        saturation=st[:, 1],
        colourfulness=st[:, 2],
        warmth=st[:, 3],
        motion=motion_arr,
        cut_times=cut_times,
        cut_scores=cut_scores,
        timings=timings,
    )
    if face_frames:
        t_face = time.perf_counter()
        result.face_times, result.face_probs = read_faces(face_frames)
        timings["faces_s"] = time.perf_counter() - t_face
    if speech and info.has_audio:
        t_sp = time.perf_counter()
        result.speech = detect_speech(path)
        timings["speech_s"] = time.perf_counter() - t_sp
    return result


def detect_cuts(
    diffs: np.ndarray,
    fps: float,
    min_shot: float = 0.5,
    threshold: float = 2.0,
    floor: float = 8.0,
    prominence: float = 1.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut times from per-frame content differences ``diffs`` (0 for the first frame).

    A frame is a cut when its difference exceeds ``max(floor, threshold × the median of its ±1 s
    neighbourhood)``, stands ``prominence`` times above every other frame within ±3 frames (a fast pan or a
    fade raises many neighbours together; a cut is one spike) and is the largest within ``min_shot``
    seconds. Scores are the difference over that threshold.
    """
    n = len(diffs)
    if n < 2:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    half = max(1, int(round(fps)))
    padded = np.pad(diffs, half, mode="edge")
    local = np.array([np.median(padded[k : k + 2 * half + 1]) for k in range(n)], np.float32)
    thr = np.maximum(floor, threshold * local)
    near = np.pad(diffs, 3, mode="constant")
    neighbours = np.array([max(np.max(near[k : k + 3]), np.max(near[k + 4 : k + 7])) for k in range(n)], np.float32)
    cand = np.where((diffs > thr) & (diffs > prominence * neighbours))[0]
    cand = cand[cand > 0]
    gap = max(1, int(round(min_shot * fps)))
    keep: list[int] = []
    for k in sorted(cand, key=lambda k: -diffs[k]):
        if all(abs(k - j) >= gap for j in keep):
            keep.append(int(k))
    keep.sort()
    scores = np.asarray([diffs[k] / thr[k] for k in keep], np.float32)
    return (np.asarray(keep, np.float32) / fps).astype(np.float32), scores


def read_faces(frames: list[tuple[float, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(times, probs (f, 8)) for the sampled frames that show a face, via the bundled face encoder."""
    import cv2

    from affectstudio.conditioning.emotion import load_encoder
    from affectstudio.conditioning.face import analyze_faces

    times, probs = [], []
    encoder, cascade = None, _haar()
    for t, frame in frames:
        if cascade is not None:  # a cheap screen first: most frames of most videos have no big face
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            if not len(cascade.detectMultiScale(gray, 1.2, 4, minSize=(24, 24))):
                continue
        found = analyze_faces(frame, max_faces=1)
        if not found or found[0].area < 24 * 24:
            continue
        encoder = encoder or load_encoder("face")
        probs.append(encoder.encode_landmarks(found[0].landmarks).probs)
        times.append(t)
    return np.asarray(times, np.float32), np.asarray(probs, np.float32).reshape(-1, 8)


def _haar():
    import cv2

    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path)) if path.is_file() else None
    return None if cascade is None or cascade.empty() else cascade


def detect_speech(src, sample_rate: int = 16000) -> np.ndarray:
    """Speech activity at :data:`SPEECH_FPS` on a clip's audio track: energy-gated frames whose energy is
    mostly in the speech band (250–4000 Hz) and whose level is modulated at syllable rates (steady music
    and hum are not speech). An empty array when the file has no audio."""
    from scipy.signal import stft

    from affectstudio.conditioning.speech_features import speech_activity

    try:  # ffmpeg resamples while decoding (cheaper than decoding at 48 kHz and resampling here)
        wave, sr = _decode_with_ffmpeg(_existing(src, "video"), sample_rate)
    except MediaDecodeError:
        return np.zeros(0, bool)
    if wave.size == 0:
        return np.zeros(0, bool)
    active = speech_activity(wave, sr, fps=SPEECH_FPS)
    hop = int(sr / SPEECH_FPS)
    f, _, z = stft(wave, sr, nperseg=2 * hop, noverlap=hop, boundary=None, padded=True)
    power = np.abs(z) ** 2  # (freq, t)
    band = power[(f >= 250) & (f <= 4000)].sum(0) / np.maximum(power.sum(0), 1e-12)
    n = min(active.size, band.size)
    speechy = active[:n] & (band[:n] > 0.6)
    # syllable-rate modulation of the log energy over ~1 s windows
    loud = np.log(power.sum(0)[:n] + 1e-10)
    win = int(SPEECH_FPS)
    if n > win:
        kernel = np.ones(win) / win
        mean = np.convolve(loud, kernel, mode="same")
        var = np.convolve((loud - mean) ** 2, kernel, mode="same")
        speechy &= var > 0.5
    out = np.zeros(active.size, bool)
    out[:n] = speechy
    return out


# ------------------------------------------------------------------------------------ synthetic clips


def synthetic_clip(
    path: PathLike,
    mood: str = "bright",
    duration: float = 8.0,
    cut_times=(),
    fps: float = 25.0,
    size: tuple[int, int] = (320, 180),
    speech: tuple[float, float] | None = None,
    seed: int = 0,
) -> Path:
    """Write a test clip with known properties (for tests, the demo and the benchmark).

    ``mood="bright"``: bright, saturated warm colours and fast-moving shapes; ``"dark"``: dark, desaturated
    blue and slow. Each shot (between ``cut_times``) has its own palette and shape layout, so every cut is a
    hard content change. ``speech=(start, end)`` adds a speech-like audio track (syllable-modulated,
    formant-filtered noise) in that span; otherwise the clip has no audio.
    """
    if mood not in ("bright", "dark"):
        raise InputError(f"mood must be 'bright' or 'dark', got {mood!r}")
    rng = np.random.default_rng(seed)
    w, h = size
    n = int(round(duration * fps))
    bounds = [0.0, *sorted(float(c) for c in cut_times), duration]
    bright = mood == "bright"
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    texture = rng.normal(0, 10 if bright else 5, (h, w, 1)).astype(np.float32)
    shots = []
    for j in range(len(bounds) - 1):
        hue = (0.02 + 0.1 * (j % 2) + rng.uniform(0, 0.03)) if bright else (0.55 + 0.1 * (j % 2) + rng.uniform(0, 0.03))
        base = _hsv_to_rgb(hue, 0.85 if bright else 0.2, (0.95 - 0.2 * (j % 2)) if bright else (0.3 - 0.1 * (j % 2)))
        accent = _hsv_to_rgb((hue + 0.5) % 1.0, 0.9 if bright else 0.15, 1.0 if bright else 0.35)
        centres = rng.uniform([0, 0], [w, h], (4, 2))
        vel = rng.normal(0, 1, (4, 2)) * (w * (0.9 if bright else 0.08))  # px per second
        shots.append((base, accent, centres, vel, rng.uniform(0.3, 1.0)))
    with VideoWriter(
        path,
        fps,
        audio=None if speech is None else _speechlike(duration, speech, seed),
        sample_rate=None if speech is None else 16000,
    ) as writer:
        for k in range(n):
            t = k / fps
            s = min(int(np.searchsorted(bounds, t, side="right")) - 1, len(shots) - 1)
            base, accent, centres, vel, grad = shots[s]
            img = base[None, None] * (1 - 0.35 * grad * yy[..., None] / h) + texture
            pos = centres + vel * (t - bounds[s])
            pos = np.mod(pos, [w, h])
            for cx, cy in pos:
                mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < (0.12 * h) ** 2
                img[mask] = accent
            writer.write(np.clip(img, 0, 255).astype(np.uint8))
    return Path(path)


def _hsv_to_rgb(hue: float, sat: float, val: float) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(hue, sat, val), np.float32) * 255


def _speechlike(duration: float, span: tuple[float, float], seed: int, sr: int = 16000) -> np.ndarray:
    from scipy.signal import butter, lfilter

    rng = np.random.default_rng(seed + 1)
    n = int(duration * sr)
    t = np.arange(n) / sr
    pulse = (np.sin(2 * np.pi * 120 * t) > 0.9).astype(np.float32)  # 120 Hz glottal pulses
    voiced = lfilter(*butter(2, [400, 2500], btype="band", fs=sr), pulse + 0.05 * rng.normal(size=n))
    syll = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 2  # ~4 syllables per second
    gate = ((t >= span[0]) & (t < span[1])).astype(np.float32)
    wave = voiced * syll * gate
    return (0.3 * wave / max(np.abs(wave).max(), 1e-6)).astype(np.float32)
