"""Lip activity from raw video: per-frame mouth opening, speech/non-speech spans and opening peaks.

The face mesh (mediapipe, through :mod:`affectstudio.conditioning.face`) runs in tracking mode on frames
downscaled (by ffmpeg, while decoding) to at most ``max_side`` pixels, at most ``analysis_fps`` frames a second
(default 25: a 50 or 60 fps clip is analysed at half rate; at 12.5 fps fast mouth openings were missed);
the opening curve is interpolated back to the clip's frame rate. Mouth opening is the inner-lip gap
(mesh points 13–14) over the interocular distance (33–263), so it does not depend on the face's size.

Speech spans: frames near a clear opening above the clip's rest level (a moving maximum bridges plosive and
bilabial closures, a morphological closing), blips shorter than ``min_span`` s dropped. Peaks: local maxima
of the smoothed opening (syllable nuclei).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from affectstudio.errors import InputError, NoFaceError
from affectstudio.media import PathLike
from affectstudio.video_io import iter_video_frames, probe_video

__all__ = ["LipActivity", "analyze_lips", "lip_activity_from_opening", "spans_from_mask", "span_iou"]

_UPPER, _LOWER, _EYE_R, _EYE_L = 13, 14, 33, 263


@dataclass
class LipActivity:
    """``opening`` (t,) float32 at ``fps`` (inner-lip gap / interocular distance), ``active`` (t,) bool,
    ``spans`` [(start s, end s)], ``peaks`` frame indices, ``face_found`` (t,) bool, clip ``duration`` s."""

    opening: np.ndarray
    active: np.ndarray
    fps: float
    duration: float
    spans: list[tuple[float, float]] = field(default_factory=list)
    peaks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    face_found: np.ndarray | None = None
    analysis_seconds: float = 0.0

    @property
    def num_frames(self) -> int:
        return int(self.opening.size)

    @property
    def active_seconds(self) -> float:
        return float(sum(b - a for a, b in self.spans))

    def normalized_opening(self) -> np.ndarray:
        """Opening scaled to [0, 1] between the rest level (5th percentile) and the 95th percentile."""
        lo, hi = np.percentile(self.opening, 5), np.percentile(self.opening, 95)
        return np.clip((self.opening - lo) / max(hi - lo, 1e-4), 0.0, 1.0).astype(np.float32)


def spans_from_mask(mask: np.ndarray, fps: float) -> list[tuple[float, float]]:
    """``[(start s, end s)]`` of the runs of True in a per-frame mask."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(s / fps, e / fps) for s, e in zip(starts, ends)]


def span_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two per-frame boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    union = np.sum(a | b)
    return 1.0 if union == 0 else float(np.sum(a & b) / union)


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or x.size < 2:
        return x.astype(np.float32)
    w = np.hanning(k + 2)[1:-1]
    w /= w.sum()
    return np.convolve(np.pad(x, (k // 2, k - 1 - k // 2), mode="edge"), w, mode="valid").astype(np.float32)


def lip_activity_from_opening(
    opening: np.ndarray,
    fps: float,
    min_span: float = 0.15,
    reach: float = 0.3,
    shrink: float = 0.0,
    threshold: float = 0.12,
) -> tuple[np.ndarray, np.ndarray]:
    """``(active (t,) bool, peaks)`` from a per-frame opening curve (interocular units, larger = more open).

    A frame is active when the mouth opens above ``rest + threshold * (p95 - rest)`` within ``reach`` s of
    it (a moving maximum bridges the closures of plosives and bilabials, so gaps under ``2 * reach`` s stay
    inside a span and spans reach ``reach`` s beyond the first and last openings, where the voice starts and
    fades); the mask is then eroded by ``shrink`` s and runs shorter than ``min_span`` s dropped. A clip
    whose opening barely varies (< 0.03 interocular) has no speech."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    x = np.asarray(opening, dtype=np.float32)
    if x.size == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    xs = _smooth(x, max(1, int(round(0.08 * fps))))
    rest, top = float(np.percentile(xs, 5)), float(np.percentile(xs, 95))
    if top - rest < 0.03:
        return np.zeros(x.size, dtype=bool), np.zeros(0, dtype=np.int64)
    env = maximum_filter1d(xs, 2 * int(round(reach * fps)) + 1, mode="nearest")
    active = env > rest + threshold * (top - rest)
    active = minimum_filter1d(active.astype(np.uint8), 2 * int(round(shrink * fps)) + 1, mode="nearest").astype(bool)
    short = int(round(min_span * fps))
    runs = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    for s, e in zip(runs[::2], runs[1::2]):
        if e - s < short:
            active[s:e] = False
    # peaks: local maxima of the smoothed opening inside active frames, at least ~0.1 s apart
    mid = (xs[1:-1] >= xs[:-2]) & (xs[1:-1] > xs[2:]) & active[1:-1]
    peaks = np.flatnonzero(mid) + 1
    keep: list[int] = []
    last = -(10**9)
    for p in peaks:
        if p - last >= max(1, int(0.1 * fps)):
            keep.append(int(p))
            last = int(p)
    return active, np.asarray(keep, dtype=np.int64)


def _openings(frames_iter, step: int, max_side: int) -> tuple[list[int], list[float]]:
    from affectstudio.conditioning.face import quiet_native_logs

    return quiet_native_logs(_track_openings)(frames_iter, step, max_side)


def _track_openings(frames_iter, step: int, max_side: int) -> tuple[list[int], list[float]]:
    import cv2

    from affectstudio.conditioning.face import MEDIAPIPE_LOCK, mediapipe_solutions

    sol = mediapipe_solutions()
    idx, values = [], []
    with sol.face_mesh.FaceMesh(
        static_image_mode=False,
        max_num_faces=1,
        refine_landmarks=False,
        min_detection_confidence=0.4,
        min_tracking_confidence=0.5,
    ) as mesh:
        for i, frame in enumerate(frames_iter):
            if i % step:
                continue
            h, w = frame.shape[:2]
            s = min(1.0, max_side / max(h, w))
            small = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else frame
            with MEDIAPIPE_LOCK:
                res = mesh.process(np.ascontiguousarray(small))
            idx.append(i)
            if not res.multi_face_landmarks:
                values.append(math.nan)
                continue
            lm = res.multi_face_landmarks[0].landmark
            sh, sw = small.shape[:2]
            pts = {k: np.array([lm[k].x * sw, lm[k].y * sh]) for k in (_EYE_R, _EYE_L, _UPPER, _LOWER)}
            eye = float(np.linalg.norm(pts[_EYE_R] - pts[_EYE_L]))
            values.append(float(np.linalg.norm(pts[_UPPER] - pts[_LOWER])) / max(eye, 1e-6))
    return idx, values


def _decode_reduced(video: PathLike, info, rate: float, max_side: int):
    """Frames at ``rate`` fps, scaled so the longer side is at most ``max_side``: ffmpeg drops and scales them
    while decoding, which is most of the cost of reading a long or large clip."""
    s = min(1.0, max_side / max(info.width, info.height))
    w, h = max(2, int(round(info.width * s / 2)) * 2), max(2, int(round(info.height * s / 2)) * 2)
    return iter_video_frames(video, size=(w, h), fps=rate, fps_round="down", info=info)


def analyze_lips(
    video: PathLike,
    analysis_fps: float = 25.0,
    max_side: int = 360,
    min_face_fraction: float = 0.5,
    max_seconds: float | None = None,
) -> LipActivity:
    """Lip activity of the main face in ``video``.

    Raises :class:`NoFaceError` when fewer than ``min_face_fraction`` of the analysed frames show a face,
    ``MediaDecodeError``/``MissingFileError`` for unreadable files, ``InputError`` for a clip longer than
    ``max_seconds``."""
    import time

    t0 = time.perf_counter()
    info = probe_video(video, count_frames=True)  # num_frames: the video stream's own
    if max_seconds is not None and info.duration > max_seconds:
        raise InputError(f"the video lasts {info.duration:.1f} s; the limit is {max_seconds:.0f} s")
    fps = info.fps if info.fps > 0 else 25.0
    step = max(1, int(round(fps / analysis_fps)))
    idx, values = _openings(_decode_reduced(video, info, fps / step, max_side), 1, max_side)
    idx = [i * step for i in idx]  # analysed frame k is source frame k * step
    n = max(info.num_frames, (idx[-1] + 1) if idx else 0)
    vals = np.asarray(values, dtype=np.float64)
    found = ~np.isnan(vals)
    if not idx or found.mean() < min_face_fraction:
        pct = 0 if not idx else round(100 * found.mean())
        raise NoFaceError(
            f"a face was found in only {pct}% of the video's frames: dubbing needs one clearly visible face"
        )
    t = np.arange(n)
    opening = np.interp(t, np.asarray(idx)[found], vals[found]).astype(np.float32)
    face = np.interp(t, np.asarray(idx), found.astype(np.float64)) > 0.5
    active, peaks = lip_activity_from_opening(opening, fps)
    duration = n / fps
    return LipActivity(
        opening=opening,
        active=active,
        fps=fps,
        duration=duration,
        spans=spans_from_mask(active, fps),
        peaks=peaks,
        face_found=face,
        analysis_seconds=time.perf_counter() - t0,
    )
