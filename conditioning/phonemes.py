"""Text front end for the voices: IPA phonemes with stress, word and pause boundaries from espeak-ng.

Uses the one process-wide espeak-ng instance of :mod:`affectstudio.conditioning.espeak` (its library and
lock) through ``espeak_TextToPhonemes`` in IPA mode, the way Piper voices were trained. The text is split
into clauses at punctuation first (the stock library drops the clause terminator), so commas, full stops
and question marks survive as pause tokens.

A :class:`PhonemeSequence` is a list of :class:`PhonemeToken` — one Unicode code point each (NFD), which is
exactly the unit a Piper ``.onnx.json`` ``phoneme_id_map`` indexes — with its kind (``vowel``,
``consonant``, ``stress``, ``modifier``, ``space``, ``pause``), the word it belongs to, the stress of its
syllable and a lip class for the aligner (``open`` vowels, ``closed`` bilabials, ``labiodental``, ``mid``
other consonants, ``rest`` pauses).
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from ..errors import EmptyTextError, InputError
from .espeak import espeak_engine

__all__ = [
    "LANGUAGES",
    "PhonemeToken",
    "PhonemeSequence",
    "phonemize",
    "resolve_language",
    "LIP_CLASSES",
    "PHONEME_FEATURE_DIM",
    "phoneme_features",
    "check_script",
    "drop_symbols",
    "MAX_CHARS_PER_SECOND",
]

# language code → espeak-ng voice. Any other espeak language name is accepted too (see resolve_language).
LANGUAGES: dict[str, str] = {"en": "en-us", "es": "es", "fr": "fr-fr", "de": "de", "it": "it", "pt": "pt"}
LIP_CLASSES = ("rest", "closed", "labiodental", "mid", "open")

_IPA_MODE = 0x02  # espeakPHONEMES_IPA
_VOWELS = set("aeiouyæøœɐɑɒɔɘəɚɛɜɞɤɨɪɯɵɶʉʊʌʏᵻɝ")
_BILABIAL = set("pbmɓʙɸβ")
_LABIODENTAL = set("fvɱʋ")
_STRESS = {"ˈ": 2, "ˌ": 1}
_PAUSE_PUNCT = ",.;:!?…"
_CLAUSE_RE = re.compile(r"([^,.;:!?…]+)([,.;:!?…]*)")


@dataclass
class PhonemeToken:
    symbol: str  # one code point (NFD)
    kind: str  # vowel | consonant | stress | modifier | space | pause
    word: int = -1  # index into PhonemeSequence.words (-1 for spaces and pauses)
    stress: int = 0  # 2 primary, 1 secondary, 0 unstressed (for vowels: its syllable's stress)

    @property
    def lip_class(self) -> str:
        if self.kind in ("space", "pause"):
            return "rest"
        if self.kind == "vowel":
            return "open"
        if self.symbol in _BILABIAL:
            return "closed"
        if self.symbol in _LABIODENTAL:
            return "labiodental"
        return "mid"

    @property
    def is_phone(self) -> bool:
        return self.kind in ("vowel", "consonant")


@dataclass
class PhonemeSequence:
    tokens: list[PhonemeToken]
    words: list[str] = field(default_factory=list)
    language: str = "en"
    voice: str = "en-us"

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def text(self) -> str:
        """The IPA string (what Piper's phonemizer would give)."""
        return "".join(t.symbol for t in self.tokens)

    @property
    def symbols(self) -> list[str]:
        return [t.symbol for t in self.tokens]

    def phrases(self) -> list[tuple[int, int]]:
        """``[start, end)`` token ranges between pause tokens (punctuation), pauses attached to the end."""
        out, start = [], 0
        for i, t in enumerate(self.tokens):
            if t.kind == "pause" and (i + 1 == len(self.tokens) or self.tokens[i + 1].kind != "pause"):
                out.append((start, i + 1))
                start = i + 1
        if start < len(self.tokens):
            out.append((start, len(self.tokens)))
        return [(a, b) for a, b in out if any(self.tokens[k].is_phone for k in range(a, b))]

    def word_text(self, start: int, end: int) -> str:
        """The written words of tokens ``[start, end)`` with a trailing punctuation mark if it is inside."""
        idx = sorted({t.word for t in self.tokens[start:end] if t.word >= 0})
        text = " ".join(self.words[i] for i in idx)
        marks = [t.symbol for t in self.tokens[start:end] if t.kind == "pause"]
        return text + (marks[-1] if marks and self.tokens[end - 1].kind == "pause" else "")

    def word_boundaries(self) -> list[int]:
        """Token indices of spaces and pauses (where a phrase may be split)."""
        return [i for i, t in enumerate(self.tokens) if t.kind in ("space", "pause")]


def resolve_language(language: str) -> str:
    """espeak-ng voice for a language code (``en``, ``es``, ``fr``, ``de``, … or any espeak voice name)."""
    lang = str(language or "en").strip().lower()
    voice = LANGUAGES.get(lang, lang)
    if voice not in espeak_engine().languages:
        known = ", ".join(sorted(LANGUAGES))
        raise InputError(f"unsupported language {language!r}: use one of {known} or an espeak-ng voice name")
    return voice


# ------------------------------------------------------------------------------ script checks (cheap)

#: a generous ceiling on speaking rate: fast speech is ~15-18 characters a second (spaces and punctuation counted);
#: a script over this many characters per second of its clip (or of --max-seconds) cannot fit and is refused
#: before any model loads (docs/cli.md, "Bad input")
MAX_CHARS_PER_SECOND = 25.0
_LATIN_LANGUAGES = set(
    "af an ca cs cy da de en eo es et eu fi fo fr ga gd gn haw hr ht hu ia id io is it jbo kl la lb lfn lt ltg lv mi "
    "ms mt nb nl om pap pl pt qu quc ro sk sl smj sq sv sw tk tn tr uz vi".split()
)
_SCRIPT_LANGUAGE = {
    "CJK": "cmn",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "HANGUL": "ko",
    "ARABIC": "ar",
    "HEBREW": "he",
    "CYRILLIC": "ru",
    "GREEK": "el",
    "DEVANAGARI": "hi",
    "THAI": "th",
}


_SCRIPT_NAMES = {"CJK": "Chinese/Japanese (CJK)"}


def drop_symbols(text: str) -> str:
    """``text`` without emoji and pictographic symbols (Unicode So/Sk, variation selectors, joiners, private use):
    a voice would otherwise spell them out by name ("grinning face party popper"). Letters, digits, punctuation,
    currency and maths signs stay (the voices say "5 €" and "2 + 2" as the language does)."""
    return "".join(
        " " if unicodedata.category(c) in ("So", "Sk", "Co", "Cn", "Cs") else c
        for c in str(text)
        if not (unicodedata.category(c) in ("Mn", "Me", "Cf") and not unicodedata.combining(c))
        and c not in "\ufe0e\ufe0f\u200d"
    )


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return "CJK" if name.startswith(("CJK", "IDEOGRAPHIC")) else name.split(" ")[0]


def check_script(
    text: str, seconds: float, language: str = "en", where: str = "the script", language_flag: bool = True
) -> str:
    """Cheap checks of a script before any model loads; returns the text as it will be spoken (emoji dropped).

    Empty, or nothing to pronounce (only punctuation or symbols) → :class:`EmptyTextError`; letters of a writing
    system the language's voice cannot read (Chinese, Arabic, Hebrew, … text with the default ``en``) → an error
    naming ``--language``; longer than ``seconds`` × :data:`MAX_CHARS_PER_SECOND` characters →
    :class:`InputTooLongError` saying the limit. ``language_flag``: the command has a ``--language`` option (the
    message names it; otherwise it says the voice speaks ``language`` only)."""
    from ..errors import InputTooLongError

    if text is None or not str(text).strip():
        raise EmptyTextError(f"{where} is empty: give some words to speak")
    spoken = " ".join(drop_symbols(text).split())
    letters = [c for c in spoken if c.isalnum()]
    if not letters:
        raise EmptyTextError(f"{where} has nothing to pronounce (only punctuation or symbols): give some words")
    base = resolve_language(language).split("-")[0]
    if base in _LATIN_LANGUAGES:
        foreign = sorted({_script(c) for c in letters if c.isalpha() and _script(c) != "LATIN"})
        if foreign:
            hint = _SCRIPT_LANGUAGE.get(foreign[0])
            names = ", ".join(_SCRIPT_NAMES.get(s, s.title()) for s in foreign)
            todo = (
                "pass --language with the text's language" + (f" (e.g. --language {hint})" if hint else "")
                if language_flag
                else f"this command's voice speaks {language!r} only (affectstudio dub takes --language)"
            )
            raise InputError(f"{where} is written in {names} letters, which the {language!r} voice cannot read: {todo}")
    limit = int(max(float(seconds), 1.0) * MAX_CHARS_PER_SECOND)
    if len(spoken) > limit:
        raise InputTooLongError(
            f"{where} is {len(spoken)} characters; {float(seconds):.1f} s fits at most {limit} "
            f"({MAX_CHARS_PER_SECOND:g} characters a second): shorten it"
        )
    return spoken


def _clause_ipa(text: str, voice_ident: str) -> str:
    eng = espeak_engine()
    lib = eng.lib
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    data = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
    ptr = ctypes.c_char_p(ctypes.addressof(data))
    parts = []
    with eng.lock:
        if lib.espeak_SetVoiceByName(voice_ident.encode()) != 0:
            raise InputError(f"espeak-ng could not select voice {voice_ident!r}")
        while ptr.value:
            out = lib.espeak_TextToPhonemes(ctypes.byref(ptr), 1, _IPA_MODE)  # 1 = espeakCHARS_UTF8
            if out:
                parts.append(out.decode("utf-8", errors="ignore"))
    return " ".join(p.strip() for p in parts if p.strip())


def phonemize(text: str, language: str = "en") -> PhonemeSequence:
    """IPA phoneme tokens of ``text`` in ``language`` with word, stress and pause information.

    Raises :class:`EmptyTextError` for empty text or text with nothing to pronounce.
    """
    if text is None or not str(text).strip():
        raise EmptyTextError("the script is empty: give some words to speak")
    voice = resolve_language(language)
    ident = espeak_engine().languages[voice]
    text = " ".join(drop_symbols(str(text)).split())
    tokens: list[PhonemeToken] = []
    words: list[str] = []
    for clause, punct in _CLAUSE_RE.findall(text):
        if not clause.strip():
            continue
        written = clause.split()
        ipa = unicodedata.normalize("NFD", _clause_ipa(clause.strip(), ident))
        ipa_words = [w for w in ipa.split(" ") if w]
        if len(ipa_words) != len(written):  # espeak merged or split words: phonemize word by word
            ipa_words = [unicodedata.normalize("NFD", _clause_ipa(w, ident)).replace(" ", "") for w in written]
            keep = [k for k, w in enumerate(ipa_words) if w]
            written, ipa_words = [written[k] for k in keep], [ipa_words[k] for k in keep]
        for k, w in enumerate(ipa_words):
            if tokens and tokens[-1].kind not in ("space",):
                tokens.append(PhonemeToken(" ", "space"))
            wi = len(words)
            words.append(written[k])
            pending_stress = 0
            for ch in w:
                if ch in _STRESS:
                    pending_stress = _STRESS[ch]
                    tokens.append(PhonemeToken(ch, "stress", wi, pending_stress))
                elif ch in _VOWELS:
                    tokens.append(PhonemeToken(ch, "vowel", wi, pending_stress))
                elif unicodedata.category(ch).startswith("M") or ch in "ːˑʰʲʷ̃":
                    tokens.append(PhonemeToken(ch, "modifier", wi, pending_stress))
                elif ch.strip():
                    tokens.append(PhonemeToken(ch, "consonant", wi, pending_stress))
        marks = [c for c in punct if c in _PAUSE_PUNCT][:1]
        if marks and tokens:
            if tokens[-1].kind == "space":
                tokens.pop()
            tokens.append(PhonemeToken(marks[0], "pause"))
    while tokens and tokens[-1].kind == "space":
        tokens.pop()
    if not any(t.is_phone for t in tokens):
        raise EmptyTextError(f"the script {text[:40]!r} has nothing to pronounce")
    return PhonemeSequence(tokens=tokens, words=words, language=str(language), voice=voice)


# ------------------------------------------------------------------------------------ frame features

PHONEME_FEATURE_DIM = 64
_KINDS = ("vowel", "consonant", "stress", "modifier", "space", "pause")


def _symbol_code(symbol: str) -> np.ndarray:
    """A fixed pseudo-random ±1 code (32 dims) per symbol, so different phonemes of one class differ."""
    seed = int.from_bytes(hashlib.blake2b(symbol.encode("utf-8"), digest_size=4).digest(), "little")
    return np.random.default_rng(seed).choice(np.array([-1.0, 1.0], np.float32), 32)


def phoneme_features(
    seq: PhonemeSequence,
    durations: np.ndarray,
    fps: float,
    num_frames: int | None = None,
    offset: float = 0.0,
    token_times: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame phoneme features ``(t, 64)`` and the token index of every frame ``(t,)`` (-1: silence) for the
    tokens laid out with ``durations`` (s) from ``offset`` s. Columns: lip class (5), kind (6), stress (3),
    word-initial / word-final (2), position in the phrase (1), phrase-final word (1), position inside the
    token (1), log duration (1), silence (1), reserved (11), symbol code (32)."""
    durations = np.asarray(durations, dtype=np.float64)
    if token_times is None:  # contiguous from ``offset``
        ends = offset + np.cumsum(durations)
        starts = ends - durations
    else:  # tokens at given times (phrases with silences between)
        starts, ends = np.asarray(token_times, dtype=np.float64).T
    n = int(num_frames if num_frames is not None else np.ceil(ends[-1] * fps)) if len(seq) else int(num_frames or 0)
    t = (np.arange(n) + 0.5) / fps
    k = np.clip(np.searchsorted(ends, t, side="right"), 0, max(len(seq) - 1, 0))
    inside = (t >= starts[k]) & (t < ends[k]) & (ends[k] > starts[k])
    k = np.where(inside, k, -1)
    phrase_pos = np.zeros(len(seq))
    final = np.zeros(len(seq))
    for a, b in seq.phrases():
        phrase_pos[a:b] = np.linspace(0.0, 1.0, b - a)
        last_word = max((tok.word for tok in seq.tokens[a:b]), default=-1)
        final[a:b] = [1.0 if tok.word == last_word and last_word >= 0 else 0.0 for tok in seq.tokens[a:b]]
    per_token = np.zeros((len(seq), PHONEME_FEATURE_DIM), dtype=np.float32)
    for i, tok in enumerate(seq.tokens):
        f = per_token[i]
        f[LIP_CLASSES.index(tok.lip_class)] = 1
        f[5 + _KINDS.index(tok.kind)] = 1
        f[11 + min(tok.stress, 2)] = 1
        prev_w = seq.tokens[i - 1].word if i > 0 else -2
        next_w = seq.tokens[i + 1].word if i + 1 < len(seq) else -2
        f[14], f[15] = float(tok.word >= 0 and prev_w != tok.word), float(tok.word >= 0 and next_w != tok.word)
        f[16], f[17] = phrase_pos[i], final[i]
        f[19] = np.log(max(durations[i], 1e-3) / 0.08)
        f[32:] = _symbol_code(tok.symbol)
    out = np.zeros((n, PHONEME_FEATURE_DIM), dtype=np.float32)
    out[inside] = per_token[k[inside]]
    span = np.maximum(durations[np.maximum(k, 0)], 1e-6)
    out[inside, 18] = ((t - starts[np.maximum(k, 0)]) / span)[inside]
    out[~inside, 20] = 1.0
    return out, k
