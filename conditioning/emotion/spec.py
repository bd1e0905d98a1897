"""Emotion specs (docs/cli.md): every way a user names an emotion, parsed into one :class:`EmotionEmbedding`.

* ``happy`` — a label (synonyms such as ``joy`` accepted), intensity 1 unless ``intensity`` is given;
* ``happy:0.6`` — a label alone with a number: the number is the intensity;
* ``happy:0.6,surprised:0.4`` — a mix: the numbers are weights (normalised), intensity from ``intensity``
  (default 1);
* free text — ``a quiet, simmering anger`` — read by the text encoder;
* a path to a speech recording (``.wav .flac .mp3 .m4a .ogg``) or a face image (``.png .jpg …``) — read by the
  speech / face encoder. A spec ending in such an extension that does not exist is a missing-file error,
  never free text; ``word:number`` must name a known label (``zorblax:0.5`` is an error, not free text);
* an emotion curve — ``neutral@0; angry:0.8@3.5`` or a ``.json``/``.csv`` keyframe file — parsed into an
  :class:`~affectstudio.conditioning.emotion.curve.EmotionCurve` (see :mod:`.curve`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path

from affectstudio.errors import EmptyTextError, InputError, MissingFileError, UnknownEmotionError, quote_value
from affectstudio.media import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS

from .curve import CURVE_FILE_EXTENSIONS, EmotionCurve, is_curve_text, load_curve_file, parse_curve_text
from .embedding import EMOTIONS, LABEL_SYNONYMS, EmotionEmbedding, canonical_label

_WEIGHTED = re.compile(r"^\s*([A-Za-z_-]+)\s*:\s*([-+]?\d*\.?\d+)\s*$")
_LABEL_COLON = re.compile(r"^\s*([A-Za-z_-]+)\s*:\s*(\S.*?)\s*$")
_WORD = re.compile(r"^[a-z]{4,}$")
_ENCODERS = {
    "text": ("affectstudio.conditioning.emotion.text", "TextEmotionEncoder"),
    "speech": ("affectstudio.conditioning.emotion.speech", "SpeechEmotionEncoder"),
    "face": ("affectstudio.conditioning.emotion.face", "FaceEmotionEncoder"),
}


@functools.lru_cache(maxsize=None)
def load_encoder(kind: str):
    """The bundled encoder for ``kind`` (text, speech, face), loaded once per process."""
    import importlib

    module, name = _ENCODERS[kind]
    return getattr(importlib.import_module(module), name).from_pretrained()


def _check_weight(label: str, value: str, what: str) -> float:
    w = float(value)
    if not 0.0 <= w <= 1.0 and what == "intensity":
        raise InputError(f"emotion intensity must be in [0, 1], got {quote_value(f'{label}:{value}')}")
    if w < 0:
        raise InputError(f"emotion weights must be ≥ 0, got {quote_value(f'{label}:{value}')}")
    return w


def _one_edit_apart(a: str, b: str) -> bool:
    """One substitution, insertion, deletion or swap of neighbours turns ``a`` into ``b`` (and ``a != b``)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long)) if x != y), len(short))
    return short[i:] == long[i + 1 :]


def _misspelled_label(word: str) -> str | None:
    """The label (or a synonym of five letters or more) a single word is one typo away from ('angyr' → 'angry'),
    or None: free text ('content', 'calmly', 'furious') stays free text."""
    word = word.lower()
    if not _WORD.match(word):
        return None
    close = [name for name in LABEL_SYNONYMS if len(name) >= 5 and _one_edit_apart(word, name)]
    return min(close, key=lambda n: (n not in EMOTIONS, n)) if close else None


def _parse_labels(spec: str) -> EmotionEmbedding | None:
    """A label, ``label:intensity`` or a mix; None when ``spec`` is not of those forms (free text)."""
    parts = [p for p in spec.split(",")]
    weighted = [_WEIGHTED.match(p) for p in parts]
    if len(parts) == 1 and spec.strip().lower() in LABEL_SYNONYMS:
        return EmotionEmbedding.from_label(canonical_label(spec))
    for part in parts:  # 'angry:nan', 'sad:high': a known label with something that is not a number
        m = _LABEL_COLON.match(part)
        if m and m.group(1).lower() in LABEL_SYNONYMS and not _WEIGHTED.match(part):
            raise InputError(
                f"emotion {quote_value(part.strip())}: the number after ':' must be a finite number "
                "(an intensity in [0, 1], or a weight in a mix)"
            )
    if len(parts) == 1 and not weighted[0]:
        guess = _misspelled_label(spec.strip())
        if guess is not None:
            raise UnknownEmotionError(f"unknown emotion {quote_value(spec.strip())} — did you mean {guess!r}?")
    if not all(weighted):
        if any(weighted) and len(parts) > 1:
            raise InputError(f"cannot read emotion mix {quote_value(spec)}: write it like 'happy:0.6,surprised:0.4'")
        return None
    matches = [m for m in weighted if m is not None]  # all matched (checked above)
    if len(parts) == 1:
        label, value = matches[0].groups()
        return EmotionEmbedding.from_label(canonical_label(label), _check_weight(label, value, "intensity"))
    weights: dict[str, float] = {}
    for m in matches:
        label = canonical_label(m.group(1))
        weights[label] = weights.get(label, 0.0) + _check_weight(m.group(1), m.group(2), "weight")
    if sum(weights.values()) <= 0:
        raise InputError(f"emotion mix {quote_value(spec)} has no positive weight")
    return EmotionEmbedding.from_mix(weights)


def parse_emotion_spec(spec, intensity: float | None = None) -> EmotionEmbedding | EmotionCurve:
    """Parse any emotion spec (see the module docstring): an :class:`EmotionEmbedding`, or an
    :class:`EmotionCurve` for keyframes / a curve file (``curve.at_frames(n, fps)`` gives per-frame states).

    ``spec`` may also be an ``EmotionEmbedding``, an ``EmotionCurve``, a ``{label: weight}`` mapping or a
    ``Path``. ``intensity`` (0..1) overrides the intensity of every form.
    """
    if intensity is not None and not 0.0 <= float(intensity) <= 1.0:
        raise InputError(f"emotion intensity must be in [0, 1], got {intensity}")
    if isinstance(spec, (EmotionEmbedding, EmotionCurve)):
        emb = spec
    elif isinstance(spec, Mapping):
        emb = EmotionEmbedding.from_mix({canonical_label(k): float(v) for k, v in spec.items()})
    elif isinstance(spec, (str, os.PathLike)):
        emb = _parse_string(spec)
    else:
        raise InputError(f"unsupported emotion spec of type {type(spec).__name__}")
    return emb if intensity is None else emb.with_intensity(float(intensity))


def _parse_string(spec) -> EmotionEmbedding | EmotionCurve:
    text = os.fspath(spec).strip()
    if not text:
        raise EmptyTextError("the emotion spec is empty: give a label (e.g. 'happy'), a mix, a description or a file")
    suffix = Path(text).suffix.lower()
    if suffix in CURVE_FILE_EXTENSIONS:
        return load_curve_file(text, _parse_state)
    if is_curve_text(text):
        return parse_curve_text(text, _parse_state)
    if isinstance(spec, os.PathLike) or suffix in AUDIO_EXTENSIONS + IMAGE_EXTENSIONS:
        path = Path(text).expanduser()
        if not path.is_file():
            raise MissingFileError(f"emotion reference file not found: {path}")
        if suffix in AUDIO_EXTENSIONS:
            return load_encoder("speech").encode(path)
        if suffix in IMAGE_EXTENSIONS:
            return load_encoder("face").encode(path)
        raise InputError(f"cannot read an emotion from {path}: use a speech recording or a face image")
    emb = _parse_labels(text)
    return emb if emb is not None else load_encoder("text").encode(text)


def _parse_state(spec: str) -> EmotionEmbedding:
    """One keyframe's SPEC: any static form (a curve inside a curve is an error)."""
    emb = _parse_string(spec)
    if isinstance(emb, EmotionCurve):
        raise InputError(f"an emotion keyframe cannot itself be a curve: {quote_value(spec)}")
    return emb
