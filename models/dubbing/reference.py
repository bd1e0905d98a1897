"""Reference voice (``--voice REF.wav``): move the base voice toward a recorded speaker without training.

Three measured steps, all signal processing on the finished speech (offline, no speaker model):

1. pitch level: the ratio of the reference's median F0 to the voice's (applied with the emotion's F0 targets);
2. vocal-tract length: a formant shift (Praat's ``Change gender`` resynthesis, pitch left alone) by the ratio
   of the reference's mean F1–F3 to the voice's, clipped to 0.85–1.2;
3. spectral envelope: an equaliser that moves the voice's long-term average spectrum (third-octave smoothed)
   toward the reference's, clipped to ±10 dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectstudio.errors import NoSpeechError

from .prosody import f0_track

__all__ = ["SpeakerProfile", "speaker_profile", "match_speaker"]


@dataclass
class SpeakerProfile:
    median_f0: float
    formants: np.ndarray  # (3,) mean F1..F3 in Hz over voiced frames
    ltas_db: np.ndarray  # (bands,) long-term average spectrum, third-octave bands
    sample_rate: int


_BANDS = 1000.0 * 2.0 ** (np.arange(-15, 13) / 3.0)  # 31 Hz … 16 kHz centres, third-octave


def _ltas(wave: np.ndarray, sr: int) -> np.ndarray:
    from scipy.signal import welch

    f, p = welch(wave.astype(np.float64), sr, nperseg=2048)
    out = []
    for c in _BANDS:
        m = (f >= c / 2 ** (1 / 6)) & (f < c * 2 ** (1 / 6))
        out.append(10 * np.log10(p[m].mean() + 1e-14) if m.any() else np.nan)
    return np.asarray(out)


def speaker_profile(wave: np.ndarray, sr: int) -> SpeakerProfile:
    """Pitch, formants and spectrum of a speech recording; :class:`NoSpeechError` when there is no speech."""
    import parselmouth
    from parselmouth.praat import call

    wave = np.asarray(wave, dtype=np.float64)
    _, f0 = f0_track(wave, sr)
    voiced = f0[f0 > 0]
    if voiced.size < 20 or float(np.sqrt(np.mean(wave**2))) < 1e-3:
        raise NoSpeechError("the reference voice has no speech in it: give a recording of the speaker talking")
    snd = parselmouth.Sound(wave, sr)
    formant = call(snd, "To Formant (burg)", 0.01, 5, 5500 if np.median(voiced) > 160 else 5000, 0.025, 50)
    pitch = snd.to_pitch(time_step=0.01, pitch_floor=60, pitch_ceiling=400)
    times = pitch.xs()[np.nan_to_num(pitch.selected_array["frequency"]) > 0]
    fm = np.array(
        [[call(formant, "Get value at time", k, float(t), "Hertz", "Linear") for k in (1, 2, 3)] for t in times]
    )
    return SpeakerProfile(float(np.median(voiced)), np.nanmean(fm, axis=0), _ltas(wave, sr), sr)


def match_speaker(
    wave: np.ndarray,
    sr: int,
    own: SpeakerProfile,
    ref: SpeakerProfile,
    formant_shift: bool = True,
    equalize: bool = True,
) -> np.ndarray:
    """Formant shift and spectral equalisation of ``wave`` from ``own`` toward ``ref`` (pitch is set elsewhere)."""
    import parselmouth
    from parselmouth.praat import call

    out = np.asarray(wave, dtype=np.float64)
    if formant_shift:
        ratio = float(np.clip(np.nanmean(ref.formants / own.formants), 0.85, 1.2))
        if abs(ratio - 1) > 0.01:
            snd = parselmouth.Sound(out, sr)
            # Change gender: pitch floor/ceiling, formant shift ratio, new pitch median (0 = keep), range, duration
            out = call(snd, "Change gender", 60, 400, ratio, 0, 1.0, 1.0).values[0][: out.size]
            out = np.pad(out, (0, max(0, wave.size - out.size)))
    if equalize:
        gain = np.clip(np.nan_to_num(ref.ltas_db - own.ltas_db, nan=0.0), -10, 10)
        gain -= np.interp(1000.0, _BANDS, gain)  # keep the level at 1 kHz; loudness is set later
        spec = np.fft.rfft(out)
        freqs = np.fft.rfftfreq(out.size, 1 / sr)
        g = np.interp(np.log2(np.maximum(freqs, 20.0)), np.log2(_BANDS), gain)
        out = np.fft.irfft(spec * 10 ** (g / 20), n=out.size)
    return out.astype(np.float32)
