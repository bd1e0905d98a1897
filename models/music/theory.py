"""Music theory tables: keys, scales, the chord vocabulary and emotion-indexed progressions.

Chords are key-relative: a :class:`Chord` is a root degree in semitones above the tonic plus a quality, so
the same progression serves every key; :meth:`Chord.pitch_classes` places it in a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from affectstudio.errors import InputError

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_NOTE_INDEX = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MODES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
QUALITIES = {  # intervals above the root
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "sus4": (0, 5, 7),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dom7": (0, 4, 7, 10),
}


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0..11
    mode: str  # "major" | "minor"

    @property
    def scale(self) -> tuple[int, ...]:
        return tuple((self.tonic + s) % 12 for s in MODES[self.mode])

    @property
    def name(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {self.mode}"

    def parallel(self) -> "Key":
        return Key(self.tonic, "minor" if self.mode == "major" else "major")


def parse_key(text: str) -> Key:
    """``C``, ``c major``, ``Am``, ``F# minor``, ``Bbm``, ``eb min`` → :class:`Key` (InputError otherwise)."""
    m = re.fullmatch(r"\s*([A-Ga-g])\s*([#b♯♭]?)\s*(m|min|minor|maj|major|M)?\s*", str(text))
    if not m:
        raise InputError(f"cannot read key {text!r}: write it like 'C', 'A minor', 'F#m' or 'Eb major'")
    letter, acc, mode = m.groups()
    tonic = (_NOTE_INDEX[letter.upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(acc, 0)) % 12
    return Key(tonic, "minor" if mode in ("m", "min", "minor") else "major")


@dataclass(frozen=True)
class Chord:
    degree: int  # root, semitones above the tonic
    quality: str

    def pitch_classes(self, key: Key) -> tuple[int, ...]:
        return tuple((key.tonic + self.degree + i) % 12 for i in QUALITIES[self.quality])

    def root(self, key: Key) -> int:
        return (key.tonic + self.degree) % 12

    def symbol(self, key: Key) -> str:
        suffix = {"maj": "", "min": "m", "dim": "dim", "sus4": "sus4", "maj7": "maj7", "min7": "m7", "dom7": "7"}
        return NOTE_NAMES[self.root(key)] + suffix[self.quality]


# The vocabulary: every root × quality (84 chords); index = degree * len(QUALITIES) + quality index.
QUALITY_NAMES = tuple(QUALITIES)
CHORD_VOCAB: tuple[Chord, ...] = tuple(Chord(d, q) for d in range(12) for q in QUALITY_NAMES)
CHORD_TEMPLATES = np.zeros((len(CHORD_VOCAB), 12), np.float32)  # key-relative chroma, tonic = 0
for _i, _c in enumerate(CHORD_VOCAB):
    CHORD_TEMPLATES[_i, list(_c.pitch_classes(Key(0, "major")))] = 1.0


def chord_from_chroma(chroma: np.ndarray, mode: str, prev: Chord | None = None) -> Chord:
    """Nearest vocabulary chord to a key-relative 12-bin chroma (cosine), with a prior toward the mode's
    diatonic chords and triads (and a small bonus for staying on ``prev``, against flicker)."""
    c = np.asarray(chroma, np.float32)
    c = c / (np.linalg.norm(c) + 1e-6)
    t = CHORD_TEMPLATES / np.linalg.norm(CHORD_TEMPLATES, axis=1, keepdims=True)
    score = t @ c
    scale = set(MODES[mode])
    diatonic = np.array([set(ch.pitch_classes(Key(0, "major"))) <= scale for ch in CHORD_VOCAB], np.float32)
    triad = np.array([len(QUALITIES[ch.quality]) == 3 and ch.quality != "sus4" for ch in CHORD_VOCAB], np.float32)
    score = score + 0.25 * diatonic + 0.05 * triad
    if mode == "minor":  # harmonic-minor dominant
        score[CHORD_VOCAB.index(Chord(7, "maj"))] += 0.2
        score[CHORD_VOCAB.index(Chord(7, "dom7"))] += 0.15
    if prev is not None:
        score[CHORD_VOCAB.index(prev)] += 0.05
    return CHORD_VOCAB[int(np.argmax(score))]


def _prog(text: str) -> tuple[Chord, ...]:
    """``"0:maj 9:min 5:maj 7:maj"`` → chords."""
    return tuple(Chord(int(d), q) for d, q in (tok.split(":") for tok in text.split()))


# Four-bar progressions indexed by (mode, energy): low energy = calm/sad, high = driving/tense.
PROGRESSIONS: dict[tuple[str, str], tuple[tuple[Chord, ...], ...]] = {
    ("major", "low"): (
        _prog("0:maj7 5:maj7 9:min7 5:maj"),
        _prog("0:maj 4:min 5:maj 0:maj"),
        _prog("0:maj 9:min 2:min7 7:sus4"),
        _prog("5:maj 0:maj 7:maj 9:min"),
    ),
    ("major", "high"): (
        _prog("0:maj 7:maj 9:min 5:maj"),
        _prog("0:maj 5:maj 7:maj 5:maj"),
        _prog("9:min 5:maj 0:maj 7:maj"),
        _prog("0:maj 9:min 5:maj 7:dom7"),
        _prog("5:maj 7:maj 4:min 9:min"),
    ),
    ("minor", "low"): (
        _prog("0:min 8:maj 3:maj 10:maj"),
        _prog("0:min 5:min 8:maj 7:maj"),
        _prog("0:min 10:maj 8:maj 7:sus4"),
        _prog("0:min7 5:min7 10:maj 3:maj7"),
    ),
    ("minor", "high"): (
        _prog("0:min 10:maj 8:maj 7:maj"),
        _prog("0:min 8:maj 10:maj 0:min"),
        _prog("0:min 1:maj 0:min 7:dom7"),
        _prog("0:min 5:min 7:maj 0:min"),
        _prog("8:maj 10:maj 0:min 0:min"),
    ),
}

# The music21 Krumhansl–Kessler profiles, for estimating a key from audio/MIDI chroma.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88], np.float32)
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17], np.float32)


def estimate_key(chroma: np.ndarray) -> tuple[Key, float]:
    """Krumhansl–Schmuckler key estimate from a 12-bin absolute chroma; returns (key, correlation)."""
    c = np.asarray(chroma, np.float64)
    best = (Key(0, "major"), -2.0)
    for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(c, np.roll(prof, tonic))[0, 1])
            if r > best[1]:
                best = (Key(tonic, mode), r)
    return best
