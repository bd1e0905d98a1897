"""Audio features for speech: per-video-frame content tokens (:func:`audio_features`: 80 log-mel bins,
log-energy, log-F0, voicing), :func:`frame_rms`, :func:`envelope`, :func:`speech_activity`,
:func:`speech_loudness` (the articulation target of lip motion), :func:`estimate_f0`, and augmentation
(:func:`augment`: gain, additive noise at an SNR, synthetic reverb) for the data engines."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import InputError
from ..media import resample

__all__ = [
    "FEATURE_DIM",
    "N_MELS",
    "audio_features",
    "frame_rms",
    "envelope",
    "speech_activity",
    "speech_loudness",
    "estimate_f0",
    "add_noise",
    "add_reverb",
    "apply_gain",
    "augment",
]


# ------------------------------------------------------------------------------------- audio features

N_MELS = 80
FEATURE_DIM = N_MELS + 3  # log-mel, log-energy, log-F0, voicing
_FEAT_SR = 16000
_N_FFT = 1024  # 64 ms window at 16 kHz: long enough for the autocorrelation pitch tracker down to 60 Hz
_F0_MIN, _F0_MAX = 60.0, 500.0


@functools.lru_cache(maxsize=4)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    from librosa.filters import mel

    return mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=40.0, fmax=sr / 2, htk=False).astype(np.float32)


_BLOCK_FRAMES = 1500  # one minute of video frames per block of per-frame analysis


def _frames(wave: np.ndarray, sample_rate: int, fps: float, win: int, block: int | None = None):
    """``(t, win)`` windows centred on each video frame's centre ``(i + 0.5) / fps``, and ``t``. With ``block``,
    an iterator over consecutive ``(≤ block, win)`` slices of them instead of the array (long inputs: the
    per-frame work then never holds every window and its spectra at once)."""
    n = wave.size
    t = max(1, math.ceil(n / sample_rate * fps - 1e-9))
    centres = np.rint((np.arange(t) + 0.5) * sample_rate / fps).astype(np.int64)
    pad = win // 2
    padded = np.pad(wave, (pad, pad + win))
    offsets = np.arange(win)[None, :]  # windows indexed in the padded wave (shifted by the padding)
    if block is None:
        return padded[centres[:, None] + offsets], t
    return (padded[centres[i : i + block, None] + offsets] for i in range(0, t, block)), t


def frame_rms(wave: np.ndarray, sample_rate: int, fps: float = 25.0, win: float = 0.04) -> np.ndarray:
    """``(t,)`` RMS of a ``win``-second window centred on each frame (t = ceil(duration * fps))."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size == 0:
        return np.zeros(0, dtype=np.float32)
    w = max(2, int(round(win * sample_rate)))
    frames, _ = _frames(wave, sample_rate, fps, w)
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)).astype(np.float32)


def envelope(wave: np.ndarray, sample_rate: int, fps: float = 25.0) -> np.ndarray:
    """``(t,)`` per-frame RMS amplitude envelope (window = one frame period)."""
    return frame_rms(wave, sample_rate, fps, win=1.0 / fps)


def speech_activity(wave: np.ndarray, sample_rate: int, fps: float = 25.0, floor_db: float = -55.0) -> np.ndarray:
    """``(t,)`` bool speech/silence per frame from energy with an adaptive threshold.

    The threshold sits 35 % of the way from the noise floor (10th percentile of frame dB) to the speech
    level (95th percentile), never below ``floor_db`` dBFS. Audio with less than 6 dB between the two (silence,
    stationary noise or tone) has no speech-like modulation and is all ``False``. Gaps of one frame are
    closed and isolated single active frames removed.
    """
    db = 20 * np.log10(frame_rms(wave, sample_rate, fps, win=2.0 / fps) + 1e-9)
    if db.size == 0:
        return np.zeros(0, dtype=bool)
    lo, hi = np.percentile(db, 10), np.percentile(db, 95)
    if hi - lo < 6.0 and hi < floor_db + 30:
        return np.zeros(db.shape, dtype=bool)
    if hi - lo < 6.0:  # loud and steady throughout (continuous speech in a short clip): use the floor only
        active = db > floor_db
    else:
        active = db > max(floor_db, lo + 0.35 * (hi - lo))
    if active.size >= 3:
        a = active.copy()
        a[1:-1] |= active[:-2] & active[2:]  # close 1-frame gaps
        a[1:-1] &= active[:-2] | active[2:]  # drop isolated frames
        active = a
    return active


LOUDNESS_RANGE_DB = 30.0  # from the speech's loud level down to where the jaw rests
LOUDNESS_WINDOW_S = 0.032  # the window of audio_features' log-energy column


def speech_loudness(
    wave: np.ndarray, sample_rate: int, fps: float = 25.0, range_db: float = LOUDNESS_RANGE_DB
) -> np.ndarray:
    """``(t,)`` float32 in [0, 1]: how loud each frame is within the speech's own range, 0 outside speech.

    Each frame's level (RMS of a 32 ms window at its centre, in dB) is taken relative to the speech's loud level
    (the 95th percentile over :func:`speech_activity` frames) and mapped linearly from ``-range_db`` dB (0) to
    that level (1). A gain changes nothing and the noise floor plays no part; frames that are not speech are 0.
    Vowel nuclei come out near 1, consonants lower, pauses 0 — the loudness a jaw follows in speech (mouth
    opening and the acoustic envelope co-vary at the syllable rate: Chandrasekaran et al., PLoS Comput Biol
    2009). ``t = ceil(duration * fps)``, as :func:`audio_features`.
    """
    if range_db <= 0:
        raise InputError(f"range_db must be > 0, got {range_db}")
    level = 20 * np.log10(frame_rms(wave, sample_rate, fps, win=LOUDNESS_WINDOW_S).astype(np.float64) + 1e-9)
    active = speech_activity(wave, sample_rate, fps)
    if not active.any():
        return np.zeros(level.shape, dtype=np.float32)
    top = np.percentile(level[active], 95)
    return (np.clip((level - top) / range_db + 1.0, 0.0, 1.0) * active).astype(np.float32)


def estimate_f0(
    wave: np.ndarray, sample_rate: int, fps: float = 25.0, method: str = "acf"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame F0 in Hz (0 unvoiced) and voicing flag, ``(t,)`` each.

    ``method="acf"`` (default, ~1000× real time): normalised autocorrelation of a 64 ms window at 16 kHz via
    the FFT with parabolic peak refinement; voiced when the peak correlation exceeds 0.5 and the frame is
    not silent. ``method="dio"``: pyworld DIO + StoneMask (more accurate, ~20-50× slower).
    """
    wave = np.asarray(wave, dtype=np.float32)
    x = resample(wave, sample_rate, _FEAT_SR) if sample_rate != _FEAT_SR else wave
    if method == "dio":
        import pyworld

        xd = x.astype(np.float64)
        t_len = max(1, math.ceil(wave.size / sample_rate * fps - 1e-9))
        period = 1000.0 / fps
        f0, tt = pyworld.dio(xd, _FEAT_SR, f0_floor=_F0_MIN, f0_ceil=_F0_MAX, frame_period=period)
        f0 = pyworld.stonemask(xd, f0, tt, _FEAT_SR)
        # dio frames sit at k/fps; move to frame centres (i + 0.5)/fps by interpolating the voiced track
        centres = (np.arange(t_len) + 0.5) / fps
        f0i = np.interp(centres, tt, f0)
        near = f0[np.clip(np.rint(centres * fps).astype(int), 0, len(f0) - 1)]
        f0c = np.where(near > 0, f0i, 0.0).astype(np.float32)
        return f0c, f0c > 0
    frames, _ = _frames(x, _FEAT_SR, fps, _N_FFT)
    return _acf_f0(frames)


def _acf_f0(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, win = frames.shape
    w = np.hanning(win).astype(np.float32)
    xw = (frames - frames.mean(axis=1, keepdims=True)) * w
    spec = np.fft.rfft(xw, n=2 * win, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :win]  # (t, win)
    wac = np.fft.irfft(np.abs(np.fft.rfft(w, n=2 * win)) ** 2)[:win]  # window bias correction
    ac = ac / np.maximum(wac[None, :], 1e-6 * wac[0])
    energy = ac[:, :1]
    r = ac / np.maximum(energy, 1e-12)
    lo, hi = int(_FEAT_SR / _F0_MAX), int(_FEAT_SR / _F0_MIN)
    seg = r[:, lo : hi + 1]
    k = np.argmax(seg, axis=1)
    peak = seg[np.arange(t), k]
    # prefer the shortest lag whose correlation is close to the best (octave-error guard)
    cand = seg >= 0.95 * peak[:, None]
    first = np.argmax(cand, axis=1)
    # walk from the first candidate to its local maximum
    for _ in range(4):
        nxt = np.minimum(first + 1, seg.shape[1] - 1)
        move = seg[np.arange(t), nxt] > seg[np.arange(t), first]
        first = np.where(move, nxt, first)
    k = first
    kk = np.clip(k, 1, seg.shape[1] - 2)
    a, b, c = seg[np.arange(t), kk - 1], seg[np.arange(t), kk], seg[np.arange(t), kk + 1]
    denom = a - 2 * b + c
    delta = np.where(np.abs(denom) > 1e-9, 0.5 * (a - c) / np.where(np.abs(denom) > 1e-9, denom, 1.0), 0.0)
    lag = lo + kk + np.clip(delta, -1, 1)
    rms_db = 10 * np.log10(energy[:, 0] + 1e-12)  # mean square of the frame (window-corrected)
    voiced = (b > 0.5) & (rms_db > -50.0)
    f0 = np.where(voiced, _FEAT_SR / lag, 0.0).astype(np.float32)
    return f0, voiced


def _log_f0_feature(f0: np.ndarray) -> np.ndarray:
    """log2(f0 / 55 Hz) / 4: ~0.25 at 110 Hz, ~0.5 at 220 Hz; exactly 0 when unvoiced."""
    return np.where(f0 > 0, np.log2(np.maximum(f0, 1.0) / 55.0) / 4.0, 0.0).astype(np.float32)


def audio_features(wave: np.ndarray, sample_rate: int, fps: float = 25.0, f0_method: str = "acf") -> np.ndarray:
    """Content tokens at the video frame rate: ``(t, FEATURE_DIM)`` float32 with ``t = ceil(duration * fps)``.

    Columns: ``[0:80]`` log-mel (16 kHz, 64 ms Hann window centred on each frame, 40 Hz–8 kHz), a fixed
    affine map of log10 power to about [-1, 1] (no per-utterance statistics, so windows of a long input
    get the same features as the whole); ``[80]`` log-energy (frame RMS in dBFS / 40 + 1, ~0 at -40 dBFS);
    ``[81]`` log-F0 (``log2(f0/55)/4``, 0 unvoiced); ``[82]`` voicing flag (0/1).
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise InputError(f"audio_features needs a mono wave (n,), got shape {wave.shape}")
    if wave.size == 0:
        return np.zeros((0, FEATURE_DIM), dtype=np.float32)
    x = resample(wave, sample_rate, _FEAT_SR) if sample_rate != _FEAT_SR else wave
    blocks, t = _frames(x, _FEAT_SR, fps, _N_FFT, block=_BLOCK_FRAMES)  # (≤ block, 1024) each: flat memory
    mel_basis = _mel_basis(_FEAT_SR, _N_FFT, N_MELS).T
    w = np.hanning(_N_FFT).astype(np.float32)
    logmel, energy, f0, voiced = [], [], [], []
    for frames in blocks:
        spec = np.fft.rfft(frames * w, axis=1)  # (k, 513)
        power = (spec.real**2 + spec.imag**2).astype(np.float32)
        logmel.append((np.log10(power @ mel_basis + 1e-6) + 2.0) / 3.0)  # (k, 80), ~[-1.3, 1] for speech
        mid = frames[:, _N_FFT // 2 - _N_FFT // 4 : _N_FFT // 2 + _N_FFT // 4]  # 32 ms
        energy.append((20 * np.log10(np.sqrt(np.mean(mid**2, axis=1)) + 1e-5)) / 40.0 + 1.0)
        if f0_method == "acf":
            f, v = _acf_f0(frames)
            f0.append(f)
            voiced.append(v)
    if f0_method == "acf":
        f0_all, voiced_all = np.concatenate(f0), np.concatenate(voiced)
    else:
        f0_all, voiced_all = estimate_f0(wave, sample_rate, fps, method=f0_method)
    feats = np.concatenate(
        [
            np.concatenate(logmel),
            np.concatenate(energy)[:, None],
            _log_f0_feature(f0_all)[:, None],
            voiced_all[:, None].astype(np.float32),
        ],
        axis=1,
    )
    return np.ascontiguousarray(feats[:t], dtype=np.float32)


# --------------------------------------------------------------------------------------- augmentation


def _np_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise InputError("augment needs a seeded generator (numpy Generator or torch.Generator)")
    import torch

    if isinstance(rng, torch.Generator):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng).item())
        return np.random.default_rng(seed)
    return np.random.default_rng(int(rng))


def apply_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    return np.clip(np.asarray(wave, dtype=np.float32) * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, rng, color: str = "white") -> np.ndarray:
    """Add white or pink noise at ``snr_db`` relative to the wave's active (non-silent) power."""
    g = _np_rng(rng)
    wave = np.asarray(wave, dtype=np.float32)
    noise = g.standard_normal(wave.size).astype(np.float32)
    if color == "pink":  # 1/f shaping in the frequency domain
        spec = np.fft.rfft(noise)
        f = np.arange(spec.size, dtype=np.float32)
        spec = spec / np.sqrt(np.maximum(f, 1.0))
        noise = np.fft.irfft(spec, n=wave.size).astype(np.float32)
    p = wave.astype(np.float64) ** 2
    active = p[p > 1e-3 * (p.max() + 1e-12)]  # power where the signal is present, not the silences
    p_sig = float(active.mean()) if active.size else float(p.mean())
    p_noise = float(np.mean(noise.astype(np.float64) ** 2)) + 1e-12
    noise *= math.sqrt(p_sig / p_noise / 10 ** (snr_db / 10))
    return np.clip(wave + noise, -1.0, 1.0).astype(np.float32)


def add_reverb(wave: np.ndarray, sample_rate: int, rt60: float, rng, wet: float = 0.3) -> np.ndarray:
    """Convolve with a synthetic room: exponentially decaying noise (60 dB decay over ``rt60`` s)."""
    from scipy.signal import fftconvolve

    g = _np_rng(rng)
    wave = np.asarray(wave, dtype=np.float32)
    n = max(1, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    ir = g.standard_normal(n) * np.exp(-6.9078 * t / max(rt60, 1e-3))
    ir[0] = 0.0
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    rev = fftconvolve(wave, ir)[: wave.size]
    out = (1 - wet) * wave + wet * rev * (np.std(wave) / (np.std(rev) + 1e-9))
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def augment(
    wave: np.ndarray,
    sample_rate: int,
    rng,
    snr_db: tuple[float, float] = (10.0, 35.0),
    rt60: tuple[float, float] = (0.15, 0.7),
    gain_db: tuple[float, float] = (-9.0, 3.0),
    p_noise: float = 0.7,
    p_reverb: float = 0.5,
) -> np.ndarray:
    """Random reverb (probability ``p_reverb``), noise (``p_noise``, white or pink) and gain, drawn from
    ``rng`` (a numpy ``Generator`` or a ``torch.Generator``)."""
    g = _np_rng(rng)
    out = np.asarray(wave, dtype=np.float32)
    if g.random() < p_reverb:
        out = add_reverb(out, sample_rate, float(g.uniform(*rt60)), g, wet=float(g.uniform(0.15, 0.5)))
    if g.random() < p_noise:
        out = add_noise(out, float(g.uniform(*snr_db)), g, color="pink" if g.random() < 0.5 else "white")
    return apply_gain(out, float(g.uniform(*gain_db)))
