"""Speech engine and audio features.

* :func:`synthesize` — espeak-ng through its C library (the copy the ``espeakng-loader`` wheel ships, so no
  system package is needed) with the event API: phoneme and word events carry sample positions, so every
  phoneme gets exact start/end times. Output is float32 mono at :data:`SPEECH_SAMPLE_RATE` (24 kHz).
* :func:`prosody_for` — emotional prosody presets (rate / pitch / pitch range / volume) per emotion label.
* :data:`VISEMES`, :func:`phoneme_to_viseme`, :data:`VISEME_TARGETS` — espeak-ng English phoneme mnemonics →
  14 viseme classes → articulatory targets (jaw_open, lip_round, lip_spread, lip_closed) in [0, 1].
* :func:`audio_features` — per-video-frame content tokens: 80 log-mel bins, log-energy, log-F0, voicing.
* :func:`speech_activity`, :func:`envelope` — per-frame speech/silence and RMS, used by the lip-sync checks.
* :func:`augment` — gain, additive noise at an SNR and synthetic reverb for the data engines.
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

__all__ = [
    "SPEECH_SAMPLE_RATE",
    "Phoneme",
    "SpeechSynthesis",
    "Prosody",
    "PROSODY_PRESETS",
    "synthesize",
    "list_voices",
    "list_variants",
    "prosody_for",
    "VISEMES",
    "VISEME_TARGETS",
    "VISEME_TARGET_NAMES",
    "PHONEME_VISEMES",
    "phoneme_to_viseme",
    "viseme_targets",
    "FEATURE_DIM",
    "N_MELS",
    "audio_features",
    "frame_rms",
    "envelope",
    "speech_activity",
    "estimate_f0",
    "add_noise",
    "add_reverb",
    "apply_gain",
    "augment",
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
                raise InputError(f"unknown voice {voice!r}: see affectstudio.conditioning.speech.list_voices()")
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
def _engine() -> _Espeak:
    return _Espeak()


def list_voices() -> list[str]:
    """Language voices espeak-ng knows (``"en-us"``, ``"en-gb"``, ``"fr-fr"``, …); append ``+variant``
    (see :func:`list_variants`) to change the speaker, e.g. ``"en-us+f3"``."""
    return sorted(_engine().languages)


def list_variants() -> list[str]:
    """Speaker variants (``m1``…``m7``, ``f1``…``f5``, ``klatt``, named voices…) usable as ``voice+variant``."""
    return sorted(_engine().variants)


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


def _split_stress(sym: str) -> tuple[str, int]:
    stress = 2 if "'" in sym else 1 if "," in sym else 0
    return sym.replace("'", "").replace(",", ""), stress


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
    eng = _engine()
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
    samples, events = _engine().synth(
        text, name, int(np.clip(rate_wpm, 80, 450)), int(np.clip(pitch, 0, 100)), int(np.clip(pitch_range, 0, 100)),
        int(np.clip(volume, 0, 200)),
    )  # fmt: skip
    src_sr = _engine().sample_rate
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
        symbol, stress = _split_stress(sym)
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


# Offsets at full intensity from a neutral baseline: rate as a factor, pitch/range in espeak units,
# volume as a factor. After the vocal-emotion literature (Scherer 2003; Juslin & Laukka 2003): high-arousal
# emotions are faster, louder, higher and wider; sadness slower, lower, quieter and flatter.
PROSODY_PRESETS: dict[str, dict[str, float]] = {
    "neutral": {"rate": 1.00, "pitch": 0.0, "range": 0.0, "volume": 1.00},
    "happy": {"rate": 1.10, "pitch": 12.0, "range": 30.0, "volume": 1.15},
    "sad": {"rate": 0.75, "pitch": -15.0, "range": -35.0, "volume": 0.70},
    "angry": {"rate": 1.20, "pitch": 6.0, "range": 40.0, "volume": 1.50},
    "fearful": {"rate": 1.30, "pitch": 22.0, "range": 5.0, "volume": 0.95},
    "disgusted": {"rate": 0.85, "pitch": -10.0, "range": 10.0, "volume": 1.00},
    "surprised": {"rate": 1.05, "pitch": 25.0, "range": 45.0, "volume": 1.25},
    "contempt": {"rate": 0.90, "pitch": -8.0, "range": -15.0, "volume": 0.90},
}


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


# ------------------------------------------------------------------------------------------- visemes

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "RR", "WU", "aa", "E", "I", "O", "U")
VISEME_TARGET_NAMES = ("jaw_open", "lip_round", "lip_spread", "lip_closed")
# One table: articulatory targets per viseme, each in [0, 1].
VISEME_TARGETS: dict[str, tuple[float, float, float, float]] = {
    "sil": (0.00, 0.00, 0.00, 0.90),
    "PP": (0.00, 0.10, 0.00, 1.00),  # p b m: lips pressed
    "FF": (0.10, 0.00, 0.20, 0.60),  # f v: lower lip to teeth
    "TH": (0.20, 0.00, 0.20, 0.00),  # T D: tongue between teeth
    "DD": (0.25, 0.00, 0.25, 0.00),  # t d n l
    "kk": (0.30, 0.00, 0.15, 0.00),  # k g N h
    "CH": (0.20, 0.60, 0.00, 0.00),  # tS dZ S Z: protruded
    "SS": (0.10, 0.00, 0.50, 0.00),  # s z: teeth together, spread
    "RR": (0.20, 0.50, 0.00, 0.00),  # r 3:
    "WU": (0.15, 0.90, 0.00, 0.00),  # w: tight round
    "aa": (0.90, 0.00, 0.30, 0.00),  # a A: V aI aU
    "E": (0.55, 0.00, 0.50, 0.00),  # E e eI @ 3
    "I": (0.30, 0.00, 0.80, 0.00),  # i: I j
    "O": (0.65, 0.75, 0.00, 0.00),  # O: 0 oU OI
    "U": (0.30, 0.85, 0.00, 0.00),  # u: U
}

# espeak-ng English mnemonics (en / en-us / en-gb voices), dumped from synthesis of long varied text.
PHONEME_VISEMES: dict[str, str] = {
    # pauses
    "_": "sil", "_:": "sil", "_!": "sil", "_^_": "sil", "_|": "sil", "||": "sil", "|": "sil",
    # bilabials / labiodentals / dentals
    "p": "PP", "b": "PP", "m": "PP", "m-": "PP",
    "f": "FF", "v": "FF",
    "T": "TH", "D": "TH",
    # alveolars
    "t": "DD", "d": "DD", "n": "DD", "l": "DD", "t#": "DD", "d#": "DD", "n-": "DD", "l/": "DD", "l-": "DD",
    "t2": "DD", "d2": "DD", "?": "DD", "L": "DD", "t[": "DD", "d[": "DD",
    # velars, glottal
    "k": "kk", "g": "kk", "N": "kk", "h": "kk", "x": "kk", "k2": "kk", "g2": "kk", "n^": "kk",
    # postalveolars
    "tS": "CH", "dZ": "CH", "S": "CH", "Z": "CH", "S;": "CH", "C": "CH",
    # sibilants
    "s": "SS", "z": "SS", "z#": "SS", "s2": "SS", "ts": "SS",
    # approximants
    "r": "RR", "r-": "RR", "*": "DD", "R": "RR", "3:": "RR", "3": "E", "w": "WU", "w#": "WU", "W": "WU", "j": "I",
    ";": "I",  # palatalisation mark some accents emit as its own event
    # open vowels
    "a": "aa", "a#": "aa", "A:": "aa", "A@": "aa", "aa": "aa", "A": "aa", "V": "aa", "aI": "aa", "aI@": "aa",
    "aI3": "aa", "aI2": "aa", "VR": "aa", "aU": "aa", "aU@": "aa", "a2": "aa", "A#": "aa",
    # mid / central vowels
    "E": "E", "e": "E", "e@": "E", "eI": "E", "@": "E", "@2": "E", "@5": "E", "@L": "E", "@-": "E", "E2": "E",
    "E@": "E", "e#": "E",
    # close front vowels
    "i": "I", "i:": "I", "I": "I", "I#": "I", "I2": "I", "i@": "I", "i@3": "I", "IR": "I", "i#": "I",
    # rounded back vowels
    "O": "O", "O2": "O", "O:": "O", "O@": "O", "0": "O", "0@": "O", "oU": "O", "OI": "O", "o@": "O", "o": "O",
    "oU#": "O",
    "u:": "U", "U": "U", "U@": "U", "u": "U", "u@": "U", "y": "U",
}  # fmt: skip


def phoneme_to_viseme(symbol: str) -> str:
    """Viseme class of an espeak-ng phoneme mnemonic (stress marks ignored; unknown → best guess by its
    first character, pauses → ``sil``)."""
    sym, _ = _split_stress(symbol)
    if sym in PHONEME_VISEMES:
        return PHONEME_VISEMES[sym]
    if not sym or sym.startswith("_") or sym.startswith("|"):
        return "sil"
    for k in range(len(sym) - 1, 0, -1):  # strip modifiers: "oU#" → "oU" → "o"
        if sym[:k] in PHONEME_VISEMES:
            return PHONEME_VISEMES[sym[:k]]
    return "E"  # an unseen vowel-like symbol: a neutral half-open mouth


def viseme_targets(viseme: str) -> np.ndarray:
    """``(4,)`` float32 targets (jaw_open, lip_round, lip_spread, lip_closed) of a viseme."""
    if viseme not in VISEME_TARGETS:
        raise InputError(f"unknown viseme {viseme!r}: one of {', '.join(VISEMES)}")
    return np.asarray(VISEME_TARGETS[viseme], dtype=np.float32)


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


def _frames(wave: np.ndarray, sample_rate: int, fps: float, win: int) -> tuple[np.ndarray, int]:
    """``(t, win)`` windows centred on each video frame's centre ``(i + 0.5) / fps``."""
    n = wave.size
    t = max(1, math.ceil(n / sample_rate * fps - 1e-9))
    centres = np.rint((np.arange(t) + 0.5) * sample_rate / fps).astype(np.int64)
    pad = win // 2
    padded = np.pad(wave, (pad, pad + win))
    idx = centres[:, None] + np.arange(win)[None, :]  # (t, win), shifted by the padding
    return padded[idx], t


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
    frames, t = _frames(x, _FEAT_SR, fps, _N_FFT)  # (t, 1024)
    w = np.hanning(_N_FFT).astype(np.float32)
    spec = np.fft.rfft(frames * w, axis=1)  # (t, 513)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = power @ _mel_basis(_FEAT_SR, _N_FFT, N_MELS).T  # (t, 80)
    logmel = (np.log10(mel + 1e-6) + 2.0) / 3.0  # ~[-1.3, 1] for speech in [-1, 1]
    rms = np.sqrt(np.mean(frames[:, _N_FFT // 2 - _N_FFT // 4 : _N_FFT // 2 + _N_FFT // 4] ** 2, axis=1))  # 32 ms
    energy = (20 * np.log10(rms + 1e-5)) / 40.0 + 1.0
    if f0_method == "acf":
        f0, voiced = _acf_f0(frames)
    else:
        f0, voiced = estimate_f0(wave, sample_rate, fps, method=f0_method)
    feats = np.concatenate(
        [logmel, energy[:, None], _log_f0_feature(f0)[:, None], voiced[:, None].astype(np.float32)], axis=1
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
