"""Emotional prosody targets and their exact application to a rendered voice.

Targets (per frame, from the per-frame emotion): ``f0`` (mean-F0 ratio), ``range`` (F0 excursion factor in
the log domain), ``rate`` (speaking-rate factor, applied through the voice's per-phoneme durations, not
here), ``energy`` (dB), ``tilt`` (dB above ~1 kHz: pressed/bright voice > 0, lax/breathy < 0) and ``noise``
(the VITS noise scale factor: more expressive variation for high arousal). Full-intensity values follow the
vocal-emotion literature (Scherer 2003; Juslin & Laukka 2003; Banse & Scherer 1996): joy and anger higher,
wider, louder and faster; sadness lower, flatter, quieter, slower and darker; fear high and fast but not
wider; surprise high and very wide. A mix or a curve blends them by the emotion probabilities (ratios in
the log domain) and scales them by the intensity.

Application (measured to sound best here, see the README): F0 through Praat's PSOLA (praat-parselmouth
``Manipulation`` → new ``PitchTier`` → overlap-add resynthesis), which keeps the neural voice's timbre;
energy and tilt as smooth gain and high-shelf envelopes.
"""

from __future__ import annotations

import numpy as np

from affectstudio.conditioning.espeak import PROSODY_TARGETS
from affectstudio.errors import DependencyError

__all__ = [
    "PROSODY_TARGETS",
    "TARGET_NAMES",
    "emotion_targets",
    "apply_pitch",
    "apply_energy",
    "f0_track",
    "neutral_median_f0",
]

TARGET_NAMES = ("f0", "range", "rate", "energy", "tilt", "noise")
# PROSODY_TARGETS (label → full-intensity targets) is the one table, kept in conditioning/espeak.py; espeak-ng's
# presets derive from it there
_LOG = ("f0", "range", "rate", "noise")


def emotion_targets(probs: np.ndarray, intensity: np.ndarray | float) -> dict[str, np.ndarray]:
    """Per-frame targets from emotion probabilities ``(t, 8)`` (or ``(8,)``) in the order of
    ``conditioning.emotion.EMOTIONS`` and intensity ``(t,)`` or a scalar. Returns ``{name: (t,)}``."""
    from affectstudio.conditioning.emotion import EMOTIONS

    p = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    a = np.broadcast_to(np.asarray(intensity, dtype=np.float64), (p.shape[0],))
    out = {}
    for name in TARGET_NAMES:
        v = np.array([PROSODY_TARGETS[e][name] for e in EMOTIONS])
        if name in _LOG:
            out[name] = np.exp(a * (p @ np.log(v)))
        else:
            out[name] = a * (p @ v)
    return out


def _parselmouth():
    try:
        import parselmouth
        from parselmouth.praat import call
    except ImportError as e:
        raise DependencyError("prosody needs praat-parselmouth: pip install 'affectstudio[speech]'") from e
    return parselmouth, call


def f0_track(
    wave: np.ndarray, sr: int, floor: float = 60.0, ceiling: float = 400.0, step: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """``(times s, f0 Hz with 0 unvoiced)`` from Praat's autocorrelation pitch tracker."""
    parselmouth, _ = _parselmouth()
    pitch = parselmouth.Sound(np.asarray(wave, dtype=np.float64), sr).to_pitch(
        time_step=step, pitch_floor=floor, pitch_ceiling=ceiling
    )
    return pitch.xs(), np.nan_to_num(pitch.selected_array["frequency"])


def neutral_median_f0(wave: np.ndarray, sr: int) -> float:
    """Median F0 (Hz) of a rendering before any emotional prosody (0 when nothing is voiced)."""
    _, f0 = f0_track(wave, sr)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size else 0.0


def apply_pitch(
    wave: np.ndarray,
    sr: int,
    times: np.ndarray,
    ratio: np.ndarray,
    spread: np.ndarray,
    floor: float = 60.0,
    ceiling: float = 400.0,
    contour: np.ndarray | None = None,
    min_f0: float = 0.0,
) -> np.ndarray:
    """Move F0 to ``ref * ratio(t) * (f0 / ref) ** spread(t)`` (``ref`` the running median F0 over ±0.75 s, so
    the range grows around the phrase's own declination) with PSOLA;
    ``contour`` (optional, same times) adds a log2-F0 offset in octaves (the DiT's frame-level residual);
    ``min_f0`` (Hz) is a floor: a low emotion (sad) never pushes the voice into creak.

    ``times`` (k,) seconds at which ``ratio``/``spread`` are given (interpolated between). Unvoiced parts are
    untouched; the output has the input's length."""
    parselmouth, call = _parselmouth()
    wave = np.asarray(wave, dtype=np.float64)
    snd = parselmouth.Sound(wave, sr)
    manip = call(snd, "To Manipulation", 0.01, floor, ceiling)
    tier = call(manip, "Extract pitch tier")
    n = int(call(tier, "Get number of points"))
    if n == 0:
        return wave.astype(np.float32)
    pt = np.array([call(tier, "Get time from index", i + 1) for i in range(n)])
    f0 = np.array([call(tier, "Get value at index", i + 1) for i in range(n)])
    # the reference follows the phrase's own declination: a running median of log-F0 over ±0.75 s
    logf = np.log(np.maximum(f0, 1.0))
    ref = np.exp(np.array([np.median(logf[np.abs(pt - t) <= 0.75]) for t in pt]))
    r = np.interp(pt, times, ratio)
    s = np.interp(pt, times, spread)
    new = ref * r * np.exp(s * np.log(np.maximum(f0, 1.0) / ref))
    if contour is not None:
        new = new * 2.0 ** np.interp(pt, times, contour)
    new = np.clip(new, max(floor * 0.9, min_f0), ceiling * 1.2)
    out_tier = call("Create PitchTier", "emotion", snd.xmin, snd.xmax)
    for t, v in zip(pt, new):
        call(out_tier, "Add point", float(t), float(v))
    call([manip, out_tier], "Replace pitch tier")
    out = call(manip, "Get resynthesis (overlap-add)").values[0]
    y = np.zeros(wave.size, dtype=np.float32)
    y[: min(out.size, wave.size)] = out[: wave.size]
    return y


def apply_energy(
    wave: np.ndarray, sr: int, times: np.ndarray, gain_db: np.ndarray, tilt_db: np.ndarray, corner_hz: float = 1000.0
) -> np.ndarray:
    """Time-varying gain and high-shelf tilt (``times`` seconds at which ``gain_db``/``tilt_db`` are given)."""
    from scipy.signal import butter, sosfilt

    wave = np.asarray(wave, dtype=np.float32)
    t = np.arange(wave.size) / sr
    g = 10 ** (np.interp(t, times, gain_db) / 20)
    k = 10 ** (np.interp(t, times, tilt_db) / 20) - 1.0
    if np.any(np.abs(k) > 1e-4):
        sos = butter(2, corner_hz, btype="highpass", fs=sr, output="sos")
        wave = wave + k.astype(np.float32) * sosfilt(sos, wave).astype(np.float32)
    return (wave * g).astype(np.float32)
