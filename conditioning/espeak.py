"""Speech engine: espeak-ng synthesis with exact phoneme times, and emotional prosody presets.

* :func:`synthesize` — espeak-ng through its C library (the copy the ``espeakng-loader`` wheel ships, so no
  system package is needed) with the event API: phoneme and word events carry sample positions, so every
  phoneme gets exact start/end times. Output is float32 mono at :data:`SPEECH_SAMPLE_RATE` (24 kHz).
* :func:`espeak_engine` — the one process-wide espeak-ng instance (also used by :mod:`.phonemes`).
* :func:`prosody_for` — emotional prosody presets (rate / pitch / pitch range / volume) per emotion label.

Visemes are in :mod:`.visemes`; log-mel / F0 / energy / envelope features and augmentation in
:mod:`.speech_features`.
"""

from __future__ import annotations

import ctypes
import functools
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from ..errors import DependencyError, EmptyTextError, InputError
from ..media import resample
from .visemes import phoneme_to_viseme, split_stress

__all__ = [
    "SPEECH_SAMPLE_RATE",
    "Phoneme",
    "SpeechSynthesis",
    "Prosody",
    "PROSODY_PRESETS",
    "PROSODY_TARGETS",
    "synthesize",
    "list_voices",
    "list_variants",
    "prosody_for",
]

SPEECH_SAMPLE_RATE = 24000

# ------------------------------------------------------------------------------------ espeak-ng binding

# espeak_AUDIO_OUTPUT / espeakINITIALIZE_* / espeak_EVENT_TYPE / espeak_PARAMETER values from speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EV_LIST_TERMINATED, _EV_WORD, _EV_END, _EV_PHONEME = 0, 1, 5, 7
_P_RATE, _P_VOLUME, _P_PITCH, _P_RANGE = 1, 2, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character index of the word in the text
        ("length", ctypes.c_int),  # word length in characters (WORD events)
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index at espeak's own rate
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Espeak:
    """One process-wide libespeak-ng instance; the library is not re-entrant, so every call holds ``lock``."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:
            raise DependencyError("espeakng-loader is not installed: pip install 'affectstudio[speech]'") from e
        self.lock = threading.Lock()
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        data = espeakng_loader.get_data_path().encode()
        sr = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if sr <= 0:
            raise DependencyError(f"espeak-ng failed to initialise (data at {data.decode()})")
        self.sample_rate = int(sr)
        self._chunks: list[bytes] = []
        self._events: list[tuple] = []
        self._callback = _SynthCallback(self._on_synth)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.languages = self._list(None)
        spec = _Voice(languages=b"variant")
        self.variants = self._list(ctypes.byref(spec))

    def _list(self, spec) -> dict[str, str]:
        out, p, i = {}, self.lib.espeak_ListVoices(spec), 0
        while p[i]:
            v = p[i].contents
            lang = v.languages[1:].split(b"\0")[0].decode() if v.languages else ""
            ident = v.identifier.decode()
            out[ident.split("/")[-1] if lang == "variant" else lang] = ident
            i += 1
        return out

    def _on_synth(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(ctypes.string_at(wav, n * 2))
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            e = events[i]
            if e.type == _EV_PHONEME:
                self._events.append(
                    (_EV_PHONEME, e.sample, e.text_position, 0, bytes(e.id.string).split(b"\0")[0].decode())
                )
            elif e.type == _EV_WORD:
                self._events.append((_EV_WORD, e.sample, e.text_position, e.length, ""))
            i += 1
        return 0

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, volume: int):
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise InputError(f"unknown voice {voice!r}: see affectstudio.conditioning.espeak.list_voices()")
            for par, val in ((_P_RATE, rate), (_P_PITCH, pitch), (_P_RANGE, pitch_range), (_P_VOLUME, volume)):
                self.lib.espeak_SetParameter(par, int(val), 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8") + b"\0"
            err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed with code {err}")
            samples = np.frombuffer(b"".join(self._chunks), dtype=np.int16).copy()
            return samples, list(self._events)


@functools.lru_cache(maxsize=1)
def espeak_engine() -> _Espeak:
    return _Espeak()


def list_voices() -> list[str]:
    """Language voices espeak-ng knows (``"en-us"``, ``"en-gb"``, ``"fr-fr"``, …); append ``+variant``
    (see :func:`list_variants`) to change the speaker, e.g. ``"en-us+f3"``."""
    return sorted(espeak_engine().languages)


def list_variants() -> list[str]:
    """Speaker variants (``m1``…``m7``, ``f1``…``f5``, ``klatt``, named voices…) usable as ``voice+variant``."""
    return sorted(espeak_engine().variants)


# ------------------------------------------------------------------------------------------- synthesis


@dataclass
class Phoneme:
    symbol: str  # espeak-ng mnemonic without stress marks; pauses start with "_"
    start: float  # seconds
    end: float
    stress: int = 0  # 2 primary ('), 1 secondary (,), 0 none

    @property
    def viseme(self) -> str:
        return phoneme_to_viseme(self.symbol)


@dataclass
class SpeechSynthesis:
    wave: np.ndarray  # (n,) float32 in [-1, 1]
    sample_rate: int
    phonemes: list[Phoneme] = field(default_factory=list)  # contiguous, covering [0, duration]
    words: list[tuple[str, float, float]] = field(default_factory=list)  # (text, start s, end s)

    @property
    def duration(self) -> float:
        return self.wave.size / self.sample_rate

    def viseme_track(self, fps: float = 25.0) -> list[str]:
        """Viseme active at each video frame centre (``ceil(duration * fps)`` frames)."""
        n = math.ceil(self.duration * fps - 1e-9)
        starts = np.array([p.start for p in self.phonemes])
        out = []
        for i in range(n):
            k = int(np.searchsorted(starts, (i + 0.5) / fps, side="right")) - 1
            out.append(self.phonemes[max(k, 0)].viseme if self.phonemes else "sil")
        return out


def _token_at(text: str, i: int) -> tuple[int, str]:
    """The written token (whitespace-delimited, outer punctuation stripped) holding character ``i``:
    ``(token start, token text)``. espeak reports several words inside one token ("3:45", "2024") and
    short spans for contractions ("didn" of "didn't"); both map back to the whole token."""
    i = min(max(i, 0), max(len(text) - 1, 0))
    a, b = i, i
    while a > 0 and not text[a - 1].isspace():
        a -= 1
    while b < len(text) and not text[b].isspace():
        b += 1
    tok = text[a:b]
    lead = len(tok) - len(tok.lstrip(_PUNCT))
    return a + lead, tok.strip(_PUNCT) or tok


_PUNCT = "\"'“”‘’.,;:!?()[]{}<>«»-–—…"


def _resolve_voice(voice: str, language: str | None) -> str:
    eng = espeak_engine()
    base, _, variant = (voice or "").partition("+")
    if language:
        base = language
    if base not in eng.languages:
        raise InputError(f"unknown voice {voice!r}: choose one of list_voices() (e.g. 'en-us'), optionally '+variant'")
    if variant and variant not in eng.variants:
        raise InputError(f"unknown voice variant {variant!r}: choose one of list_variants() (e.g. 'f3', 'm2')")
    ident = eng.languages[base]  # espeak selects by voice file, e.g. "en-gb" → "gmw/en"
    return f"{ident}+{variant}" if variant else ident


def synthesize(
    text: str,
    voice: str = "en-us",
    rate_wpm: float = 175,
    pitch: float = 50,
    pitch_range: float = 50,
    volume: float = 100,
    language: str | None = None,
) -> SpeechSynthesis:
    """Speak ``text`` with espeak-ng; returns the 24 kHz wave with phoneme and word timings.

    ``voice`` is a language voice (``list_voices()``) optionally with ``+variant``; ``language`` overrides
    its language part. ``rate_wpm`` 80–450, ``pitch`` and ``pitch_range`` 0–100, ``volume`` 0–200 (espeak's
    own units). Phonemes are contiguous: the first starts at 0 and the last ends at the end of the audio.
    """
    if text is None or not str(text).strip():
        raise EmptyTextError("text is empty: give some words to speak")
    text = " ".join(str(text).split())
    name = _resolve_voice(voice, language)
    samples, events = espeak_engine().synth(
        text, name, int(np.clip(rate_wpm, 80, 450)), int(np.clip(pitch, 0, 100)), int(np.clip(pitch_range, 0, 100)),
        int(np.clip(volume, 0, 200)),
    )  # fmt: skip
    src_sr = espeak_engine().sample_rate
    n_src = samples.size
    wave = resample(samples.astype(np.float32) / 32768.0, src_sr, SPEECH_SAMPLE_RATE)
    wave = np.clip(wave, -1.0, 1.0).astype(np.float32)
    duration = wave.size / SPEECH_SAMPLE_RATE
    to_s = lambda s: min(max(s, 0), n_src) / src_sr * (duration * src_sr / max(n_src, 1))  # noqa: E731

    # phonemes: each ends where the next starts; a leading pause covers the lead-in silence
    raw = [(to_s(s), pos, sym) for kind, s, pos, _, sym in events if kind == _EV_PHONEME]
    phonemes: list[Phoneme] = []
    owner: list[int] = []  # text position of the word each phoneme belongs to (0: none)
    if not raw or raw[0][0] > 0:
        phonemes.append(Phoneme("_", 0.0, raw[0][0] if raw else duration))
        owner.append(0)
    for t, pos, sym in raw:
        if phonemes and t <= phonemes[-1].start:  # zero-length event: the later one wins
            phonemes.pop()
            owner.pop()
        symbol, stress = split_stress(sym)
        phonemes.append(Phoneme(symbol, t, duration, stress))
        owner.append(0 if symbol.startswith("_") else pos)
    while len(phonemes) > 1 and phonemes[-1].start >= duration - 1e-6:  # events at the very end
        phonemes.pop()
        owner.pop()
    for a, b in zip(phonemes[:-1], phonemes[1:]):
        a.end = b.start
    phonemes[-1].end = duration

    # words: written tokens; start/end from their own sounding phonemes (several espeak words in one
    # token, as in numbers, are merged)
    words: list[tuple[str, float, float]] = []
    last_token = -1
    for kind, s, pos, _length, _ in events:
        if kind != _EV_WORD:
            continue
        own = [p for p, o in zip(phonemes, owner) if o == pos]
        start, end = (own[0].start, own[-1].end) if own else (to_s(s), to_s(s))
        tok_start, tok = _token_at(text, pos - 1)
        if tok_start == last_token and words:
            w, s0, e0 = words[-1]
            words[-1] = (w, s0, max(e0, end))
        else:
            words.append((tok, start, max(end, start)))
        last_token = tok_start
    return SpeechSynthesis(wave=wave, sample_rate=SPEECH_SAMPLE_RATE, phonemes=phonemes, words=words)


# ------------------------------------------------------------------------------------ emotional prosody


@dataclass(frozen=True)
class Prosody:
    """espeak-ng prosody: ``rate_wpm`` words/min, ``pitch``/``pitch_range`` 0–100, ``volume`` 0–200."""

    rate_wpm: float = 175.0
    pitch: float = 50.0
    pitch_range: float = 50.0
    volume: float = 100.0

    def as_kwargs(self) -> dict:
        return {"rate_wpm": self.rate_wpm, "pitch": self.pitch, "pitch_range": self.pitch_range, "volume": self.volume}


# The one emotion → prosody table (issue 19): full-intensity targets after the vocal-emotion literature (Scherer
# 2003; Juslin & Laukka 2003; Banse & Scherer 1996): joy and anger higher, wider, louder and faster; sadness lower,
# flatter, quieter, slower and darker; fear high and fast but not wider; surprise high and very wide. Ratios for
# f0 (mean F0), range (F0 excursion), rate (speaking rate) and noise (the neural voice's noise scale); dB for
# energy and tilt (above ~1 kHz). The dubbing voice uses it as it is (models/dubbing/prosody.py); espeak-ng's
# presets below are derived from it.
PROSODY_TARGETS: dict[str, dict[str, float]] = {
    "neutral": {"f0": 1.00, "range": 1.00, "rate": 1.00, "energy": 0.0, "tilt": 0.0, "noise": 1.00},
    "happy": {"f0": 1.22, "range": 1.40, "rate": 1.08, "energy": 3.0, "tilt": 2.0, "noise": 1.10},
    "sad": {"f0": 0.88, "range": 0.55, "rate": 0.80, "energy": -5.0, "tilt": -4.0, "noise": 0.85},
    "angry": {"f0": 1.12, "range": 1.30, "rate": 1.10, "energy": 6.0, "tilt": 5.0, "noise": 1.10},
    "fearful": {"f0": 1.25, "range": 0.90, "rate": 1.15, "energy": -1.0, "tilt": -1.0, "noise": 1.15},
    "disgusted": {"f0": 0.93, "range": 1.00, "rate": 0.88, "energy": 0.5, "tilt": 0.5, "noise": 1.00},
    "surprised": {"f0": 1.28, "range": 1.50, "rate": 1.00, "energy": 3.0, "tilt": 2.0, "noise": 1.10},
    "contempt": {"f0": 0.94, "range": 0.80, "rate": 0.92, "energy": -1.0, "tilt": 0.0, "noise": 0.95},
}
ESPEAK_UNITS_PER_OCTAVE = 60.0  # espeak-ng pitch / range units for a doubling of F0 / of the excursion


def _espeak_preset(t: dict[str, float]) -> dict[str, float]:
    """espeak-ng's form of a row of :data:`PROSODY_TARGETS`: rate as a factor, pitch and range as offsets in
    espeak units (:data:`ESPEAK_UNITS_PER_OCTAVE` per octave), volume as an amplitude factor (half the dB: espeak's
    volume is not a calibrated gain)."""
    return {
        "rate": t["rate"],
        "pitch": round(ESPEAK_UNITS_PER_OCTAVE * math.log2(t["f0"]), 1),
        "range": round(ESPEAK_UNITS_PER_OCTAVE * math.log2(t["range"]), 1),
        "volume": round(10 ** (t["energy"] / 40.0), 3),
    }


PROSODY_PRESETS: dict[str, dict[str, float]] = {k: _espeak_preset(v) for k, v in PROSODY_TARGETS.items()}


def prosody_for(emotion_label: str, intensity: float = 1.0, base: Prosody | None = None) -> Prosody:
    """Prosody for ``emotion_label`` at ``intensity`` in [0, 1] (0 = the neutral ``base``)."""
    from ..errors import UnknownEmotionError

    key = str(emotion_label).strip().lower()
    if key not in PROSODY_PRESETS:
        raise UnknownEmotionError(f"unknown emotion {emotion_label!r}: choose one of {', '.join(PROSODY_PRESETS)}")
    base = base or Prosody()
    a = float(np.clip(intensity, 0.0, 1.0))
    p = PROSODY_PRESETS[key]
    return Prosody(
        rate_wpm=float(np.clip(base.rate_wpm * (1 + a * (p["rate"] - 1)), 80, 450)),
        pitch=float(np.clip(base.pitch + a * p["pitch"], 0, 100)),
        pitch_range=float(np.clip(base.pitch_range + a * p["range"], 0, 100)),
        volume=float(np.clip(base.volume * (1 + a * (p["volume"] - 1)), 0, 200)),
    )
