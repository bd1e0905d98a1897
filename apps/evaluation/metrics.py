"""The project's pure quality metrics — the one lip-sync evaluator, identity and expression summaries.

Used by the independent portrait evaluation (:mod:`affectstudio.apps.evaluation.quality`, dlib landmarks of
rendered frames)
and by the trainer's quick check (:mod:`affectstudio.apps.evaluation.portrait_eval`, the lip gap decoded from generated
motion): the same envelope, silence detection and correlations, so their numbers compare.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

FPS = 25.0
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_NAME = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "surprised": "surprise",
    "fearful": "fear",
    "disgusted": "disgust",
}

# inner-lip pairs of dlib's 68-point layout (0-based): upper 61, 62, 63 face lower 67, 66, 65
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)

ENVELOPE_WINDOW_S = 0.04
ENVELOPE_SMOOTH_FRAMES = 3
SILENCE_REL_THRESHOLD = 0.1  # of the envelope's 95th percentile (-20 dB)
SILENCE_CORE_MARGIN = 3  # frames from any speech frame


# ------------------------------------------------------------------------------------------ pure metrics


def moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Centred ``n``-frame moving average, edges padded with the edge value (``n <= 1``: unchanged)."""
    x = np.asarray(x, dtype=np.float64)
    if n <= 1 or x.size == 0:
        return x
    padded = np.pad(x, (n // 2, n - 1 - n // 2), mode="edge")
    return np.convolve(padded, np.ones(n) / n, mode="valid")


def rms_envelope(
    wave: np.ndarray,
    sample_rate: int,
    num_frames: Optional[int] = None,
    fps: float = FPS,
    window_s: float = ENVELOPE_WINDOW_S,
    smooth: int = ENVELOPE_SMOOTH_FRAMES,
) -> np.ndarray:
    """``(t,)`` RMS of a ``window_s`` window centred on each frame's centre ``(i + 0.5) / fps``, then a
    centred ``smooth``-frame moving average. ``t`` defaults to ``ceil(duration * fps)``."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    if num_frames is None:
        num_frames = int(np.ceil(wave.size / sample_rate * fps - 1e-9))
    win = max(2, int(round(window_s * sample_rate)))
    centres = np.rint((np.arange(num_frames) + 0.5) * sample_rate / fps).astype(np.int64)
    padded = np.pad(wave, (win // 2, win))
    windows = padded[centres[:, None] + np.arange(win)[None, :]]  # (t, win)
    return moving_average(np.sqrt(np.mean(windows**2, axis=1)), smooth)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the common length, ignoring frames where either is NaN; NaN if undefined."""
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], dtype=np.float64), np.asarray(b[:n], dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def lagged_pearson(gap: np.ndarray, env: np.ndarray, max_lag: int = 3) -> dict[int, float]:
    """Correlation of ``gap[i + lag]`` with ``env[i]`` for each lag in frames (positive: the mouth lags)."""
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            out[lag] = pearson(gap[lag:], env[: len(env) - lag])
        else:
            out[lag] = pearson(gap[: len(gap) + lag], env[-lag:])
    return out


def interocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the eye centres of 68-point landmarks ``(..., 68, 2)`` → ``(...)``."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.linalg.norm(lm[..., LEFT_EYE, :].mean(-2) - lm[..., RIGHT_EYE, :].mean(-2), axis=-1)


def inner_lip_gap(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening of 68-point landmarks ``(..., 68, 2)`` in inter-ocular units → ``(...)``.

    The mean of the three upper/lower inner-lip distances, never negative (dlib puts touching lips on the
    same points)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    upper = lm[..., [u for u, _ in INNER_LIP_PAIRS], :]
    lower = lm[..., [l for _, l in INNER_LIP_PAIRS], :]
    return np.linalg.norm(lower - upper, axis=-1).mean(-1) / interocular(lm)


def outer_lip_height(landmarks: np.ndarray) -> np.ndarray:
    """Outer-lip height (top of the upper lip 51 to bottom of the lower lip 57) in inter-ocular units; it
    follows jaw drop even when the lips stay sealed, so it is reported beside the inner-lip gap."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.linalg.norm(lm[..., 57, :] - lm[..., 51, :], axis=-1) / interocular(lm)


def silence_mask(env: np.ndarray, rel_threshold: float = SILENCE_REL_THRESHOLD) -> np.ndarray:
    """``(t,)`` True where the envelope is below ``rel_threshold`` × its 95th percentile."""
    env = np.asarray(env, dtype=np.float64)
    if env.size == 0:
        return np.zeros(0, dtype=bool)
    return env < rel_threshold * np.percentile(env, 95)


def core_silence(silent: np.ndarray, margin: int = SILENCE_CORE_MARGIN) -> np.ndarray:
    """Silent frames at least ``margin`` frames away from any speech frame (the mouth has had time to close)."""
    speech = ~np.asarray(silent, dtype=bool)
    near = speech.copy()
    for k in range(1, margin + 1):
        near[k:] |= speech[:-k]
        near[:-k] |= speech[k:]
    return ~near


def masked_mean(x: np.ndarray, mask: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)[: len(mask)]
    vals = x[np.asarray(mask[: len(x)], dtype=bool) & np.isfinite(x)]
    return float(vals.mean()) if vals.size else float("nan")


def lipsync_metrics(gap: np.ndarray, gap_reversed: np.ndarray, env: np.ndarray, reference_gap: float) -> dict:
    """Headline lip-sync numbers from per-frame gaps (forward and reversed-speech clips) and the forward
    envelope."""
    n = min(len(gap), len(gap_reversed), len(env))
    gap, gap_reversed, env = gap[:n], gap_reversed[:n], env[:n]
    silent = silence_mask(env)
    core = core_silence(silent)
    lags = lagged_pearson(gap, env)
    best = max(lags, key=lambda k: -np.inf if np.isnan(lags[k]) else lags[k])
    return {
        "frames": int(n),
        "corr_envelope": pearson(gap, env),
        "corr_reversed_control": pearson(gap_reversed, env),
        "corr_by_lag_frames": {str(k): v for k, v in lags.items()},
        "best_lag_frames": int(best),
        "silent_frames": int(silent.sum()),
        "core_silent_frames": int(core.sum()),
        "gap_speech_mean": masked_mean(gap, ~silent),
        "gap_silence_mean": masked_mean(gap, silent),
        "gap_core_silence_mean": masked_mean(gap, core),
        "gap_core_silence_p90": float(np.nanpercentile(gap[core], 90)) if core.any() else float("nan"),
        "gap_reference_photo": float(reference_gap),
        "gap_reversed_speech_mean": masked_mean(gap_reversed, ~silent),
    }


def identity_stats(distances: np.ndarray, threshold: float = 0.40) -> dict:
    """Summary of per-frame embedding distances to the reference (NaN frames: no face found)."""
    d = np.asarray(distances, dtype=np.float64)
    ok = d[np.isfinite(d)]
    if ok.size == 0:
        return {"frames": int(d.size), "faces_found": 0}
    return {
        "frames": int(d.size),
        "faces_found": int(ok.size),
        "mean": float(ok.mean()),
        "median": float(np.median(ok)),
        "p95": float(np.percentile(ok, 95)),
        "max": float(ok.max()),
        f"fraction_le_{threshold:.2f}": float((ok <= threshold).mean()),
    }


def emotion_agreement(probs: np.ndarray, asked: str, labels: Sequence[str] = FER_LABELS) -> dict:
    """Fraction of frames whose top label is ``asked`` (mapped to the classifier's names), the mean
    probability vector and the histogram of top labels. Rows of NaN (no face) are skipped."""
    p = np.asarray(probs, dtype=np.float64)
    p = p[np.isfinite(p).all(axis=1)] if p.size else p.reshape(0, len(labels))
    target = FER_NAME.get(asked, asked)
    if target not in labels:
        raise ValueError(f"{asked!r} has no counterpart among {labels}")
    top = p.argmax(axis=1) if len(p) else np.zeros(0, dtype=int)
    counts = np.bincount(top, minlength=len(labels))
    return {
        "frames": int(len(p)),
        "asked": asked,
        "classifier_label": target,
        "top_label_agreement": float((top == labels.index(target)).mean()) if len(p) else float("nan"),
        "mean_probs": {lab: float(v) for lab, v in zip(labels, p.mean(axis=0))} if len(p) else {},
        "top_label_counts": {lab: int(c) for lab, c in zip(labels, counts) if c},
    }
