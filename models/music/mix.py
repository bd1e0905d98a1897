"""Mixing: stems → one track at −14 LUFS with ducking under speech, a fade-out and a true-peak ceiling.

Order: sum the stems; apply the ducking gain (−``duck_db`` where the clip has speech, 80 ms attack,
400 ms release) and the fade-out; normalise the integrated loudness (ITU-R BS.1770 via ``pyloudnorm``) to
``target_lufs`` while a look-ahead peak limiter holds sample peaks 0.7 dB under ``ceiling_db`` (loudness and
limiting alternate until within 0.25 LU); finally the 4×-oversampled true peak is checked against
``ceiling_db`` (docs/cli.md asks for ~1 dB of AAC headroom) and the whole mix scaled down if it passes.
The same gain curve is applied to every stem, so the stems still sum to the mix.
"""

from __future__ import annotations

import numpy as np

from affectstudio.errors import DependencyError

TARGET_LUFS = -14.0
CEILING_DB = -1.5


def gain_curve(
    n: int,
    sample_rate: int,
    speech: np.ndarray | None = None,
    speech_fps: float = 25.0,
    duck_db: float = 9.0,
    fade_start: float | None = None,
    fade_end: float | None = None,
) -> np.ndarray:
    """(n,) linear gain: ducking under ``speech`` (bool per 1/speech_fps s) and a fade to silence."""
    g = np.ones(n, np.float32)
    if speech is not None and np.any(speech):
        t = np.arange(n) / sample_rate
        on = np.asarray(speech, np.float32)[np.clip((t * speech_fps).astype(int), 0, len(speech) - 1)]
        target = 1.0 - (1.0 - 10 ** (-duck_db / 20)) * on
        # one-pole smoothing at a control rate of 100 Hz: fast attack, slow release
        hop = sample_rate // 100
        ctrl = target[::hop]
        out = np.empty_like(ctrl)
        level = 1.0
        a_att, a_rel = np.exp(-1 / (0.08 * 100)), np.exp(-1 / (0.4 * 100))
        for i, x in enumerate(ctrl):
            a = a_att if x < level else a_rel
            level = a * level + (1 - a) * x
            out[i] = level
        g *= np.interp(np.arange(n), np.arange(len(ctrl)) * hop, out).astype(np.float32)
    if fade_start is not None and fade_end is not None and fade_end > fade_start:
        t = np.arange(n) / sample_rate
        ramp = np.clip((fade_end - t) / (fade_end - fade_start), 0.0, 1.0)
        g *= (np.sin(0.5 * np.pi * ramp) ** 2).astype(np.float32)
    return g


def integrated_loudness(wave: np.ndarray, sample_rate: int, fast: bool = False) -> float:
    """ITU-R BS.1770 integrated loudness (LUFS). ``fast``: measured on every other sample (the K-weighted
    level of music changes by < 0.1 LU; used inside the mastering loop, the final check is full-rate)."""
    try:
        import pyloudnorm
    except ImportError as e:
        raise DependencyError("loudness normalisation needs pyloudnorm: run scripts/setup.sh") from e
    if fast:
        wave, sample_rate = np.asarray(wave)[::2], sample_rate // 2
    block = min(0.4, max(0.05, len(wave) / sample_rate / 2))
    return float(pyloudnorm.Meter(sample_rate, block_size=block).integrated_loudness(np.asarray(wave, np.float64)))


def true_peak(wave: np.ndarray, candidates: int = 512, half: int = 32) -> float:
    """4×-oversampled peak (linear), computed around the ``candidates`` largest sample peaks (inter-sample
    peaks sit next to sample peaks; 60 s at 44.1 kHz: ~5 ms instead of ~0.8 s for the whole signal)."""
    from scipy.signal import resample_poly

    wave = np.asarray(wave, np.float32)
    if wave.size <= 2 * candidates * half:
        return float(np.abs(resample_poly(wave, 4, 1)).max(initial=0.0))
    top = np.argpartition(np.abs(wave), -candidates)[-candidates:]
    padded = np.pad(wave, half)
    segments = padded[top[:, None] + np.arange(2 * half)[None]]  # (k, 2·half) centred on each peak
    up = np.abs(resample_poly(segments, 4, 1, axis=1))[:, 4 * (half - 4) : 4 * (half + 4)]  # centre: no edge ringing
    return float(max(up.max(), np.abs(wave).max()))


def limiter_gain(
    wave: np.ndarray, sample_rate: int, ceiling: float, lookahead: float = 0.005, release: float = 0.08
) -> np.ndarray:
    """(n,) gain of a look-ahead peak limiter: reduction only where ``|wave|`` would pass ``ceiling``, ramped
    in over ``lookahead`` and held/released over ``release`` seconds."""
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    peak = np.abs(wave)
    if peak.max(initial=0.0) <= ceiling:
        return np.ones_like(wave)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-9))
    la, rel = max(1, int(lookahead * sample_rate)), int(release * sample_rate)
    held = -maximum_filter1d(-need, size=2 * la + 1 + rel, origin=-rel // 2)
    return np.minimum(uniform_filter1d(held, size=la), held).astype(np.float32)


def master(
    stems: dict[str, np.ndarray],
    sample_rate: int,
    duration: float,
    speech: np.ndarray | None = None,
    fade: float = 2.0,
    target_lufs: float = TARGET_LUFS,
    ceiling_db: float = CEILING_DB,
    dynamics: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Mix ``stems`` to exactly ``duration`` seconds: (mix, processed stems). ``dynamics = (times, gain_db)``
    is a slow gain curve (the plan's per-bar loudness targets) applied before normalisation, so quiet and
    loud passages keep their difference after it."""
    n = int(round(duration * sample_rate))
    fitted = {k: np.pad(v[:n], (0, max(0, n - len(v)))).astype(np.float32) for k, v in stems.items()}
    raw = np.sum(list(fitted.values()), axis=0) if fitted else np.zeros(n, np.float32)
    fade = min(fade, 0.25 * duration)
    g = gain_curve(n, sample_rate, speech, fade_start=duration - fade, fade_end=duration + 0.05 * fade)
    if dynamics is not None:
        from scipy.ndimage import uniform_filter1d

        hop = sample_rate // 100
        ctrl = np.interp(np.arange(0, n, hop) / sample_rate, dynamics[0], dynamics[1])
        ctrl = uniform_filter1d(ctrl, size=50, mode="nearest")  # 0.5 s crossfades between bars
        g = g * (10 ** (np.interp(np.arange(n), np.arange(0, n, hop), ctrl) / 20)).astype(np.float32)
    base = raw * g
    ceiling = 10 ** ((ceiling_db - 0.7) / 20)  # sample-peak ceiling, with margin for inter-sample peaks
    level, limit = 1.0, np.ones(n, np.float32)
    for _ in range(6):  # normalise, limit, re-measure: converges in 2–4 rounds on peaky material
        loud = integrated_loudness(base * level * limit, sample_rate, fast=True)
        if not np.isfinite(loud) or abs(loud - target_lufs) < 0.25:
            break
        level *= 10 ** ((target_lufs - loud) / 20)
        limit = limiter_gain(base * level, sample_rate, ceiling)
    g = g * level * limit
    mix = raw * g
    tp = true_peak(mix)
    if tp > 10 ** (ceiling_db / 20):  # rare: an inter-sample peak above the margin
        g *= 10 ** (ceiling_db / 20) / tp
        mix = raw * g
    out_stems = {k: (v * g).astype(np.float32) for k, v in fitted.items()}
    return np.clip(mix, -1.0, 1.0).astype(np.float32), out_stems
