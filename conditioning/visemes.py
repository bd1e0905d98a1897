"""Visemes: espeak-ng English phoneme mnemonics → 14 viseme classes (:data:`VISEMES`,
:func:`phoneme_to_viseme`) → articulatory targets (jaw_open, lip_round, lip_spread, lip_closed) in [0, 1]
(:data:`VISEME_TARGETS`, :func:`viseme_targets`)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = [
    "VISEMES",
    "VISEME_TARGETS",
    "VISEME_TARGET_NAMES",
    "PHONEME_VISEMES",
    "phoneme_to_viseme",
    "viseme_targets",
    "split_stress",
]


def split_stress(sym: str) -> tuple[str, int]:
    """An espeak-ng phoneme mnemonic without its stress marks, and the stress (2 primary, 1 secondary, 0 none)."""
    stress = 2 if "'" in sym else 1 if "," in sym else 0
    return sym.replace("'", "").replace(",", ""), stress


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
    sym, _ = split_stress(symbol)
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
