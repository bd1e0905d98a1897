"""Emotion curves (docs/cli.md, "EMOTION CURVE"): keyframes in seconds, interpolated in the emotion space.

* ``'neutral@0; angry:0.8@3.5; sad@6'`` — ``SPEC@SECONDS`` keyframes separated by ``;`` (any SPEC form);
* a ``.json`` file ``[{"time": s, "emotion": SPEC}, ...]`` or a ``.csv`` file with ``time,emotion`` rows.

Between keyframes the state is interpolated linearly in the emotion space (probabilities, VAD, intensity);
before the first and after the last keyframe it is held. :meth:`EmotionCurve.at_frames` turns a curve into
the per-frame :class:`EmotionEmbedding` a generator conditions on.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstudio.errors import InputError, MissingFileError, quote_value

from .embedding import EmotionEmbedding

CURVE_FILE_EXTENSIONS = (".json", ".csv")
_KEYFRAME = re.compile(r"^(?P<spec>[^@]*?)\s*@\s*(?P<time>[^@\s]+?)\s*(?:s)?$")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_NUMERIC_START = re.compile(r"^([-+.\d]|nan|inf)", re.IGNORECASE)
_LABELISH = re.compile(r"^[A-Za-z_-]+(\s*:\s*\S+)?(\s*,\s*[A-Za-z_-]+\s*:\s*\S+)*$")


@dataclass
class EmotionCurve:
    """Keyframes ``(times[i], states[i])`` with ``times`` ascending, in seconds; each state is static."""

    times: np.ndarray  # (k,)
    states: list[EmotionEmbedding]

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64)
        if len(self.states) == 0 or self.times.shape != (len(self.states),):
            raise InputError("an emotion curve needs one time per keyframe and at least one keyframe")
        if np.any(self.times < 0) or np.any(np.diff(self.times) <= 0):
            raise InputError(f"emotion curve times must be ≥ 0 and increasing, got {self.times.tolist()}")
        self.states = [s.mean() if s.is_curve else s for s in self.states]

    @property
    def duration(self) -> float:
        """Time of the last keyframe (seconds)."""
        return float(self.times[-1])

    def at_times(self, seconds: Sequence[float] | np.ndarray) -> EmotionEmbedding:
        """The per-time states ``(len(seconds), ·)``, linear between keyframes, held outside them."""
        t = np.asarray(seconds, dtype=np.float64)
        k = len(self.states)
        probs = np.stack([s.probs for s in self.states])  # (k, 8)
        vad = np.stack([s.vad for s in self.states])  # (k, 3)
        inten = np.array([float(s.intensity) for s in self.states])  # (k,)
        if k == 1:
            w_lo, lo, hi = np.ones_like(t), np.zeros(t.shape, int), np.zeros(t.shape, int)
        else:
            hi = np.clip(np.searchsorted(self.times, t, side="right"), 1, k - 1)
            lo = hi - 1
            frac = np.clip((t - self.times[lo]) / (self.times[hi] - self.times[lo]), 0.0, 1.0)
            w_lo = 1.0 - frac
        mix = lambda a: (w_lo[:, None] * a[lo] + (1 - w_lo)[:, None] * a[hi]).astype(np.float32)  # noqa: E731
        p = mix(probs)
        return EmotionEmbedding(probs=p / p.sum(-1, keepdims=True), vad=mix(vad), intensity=mix(inten[:, None])[:, 0])

    def at_frames(self, num_frames: int, fps: float) -> EmotionEmbedding:
        """One state per frame of a ``num_frames`` clip at ``fps`` (frame ``i`` at ``i / fps`` seconds)."""
        if num_frames < 1:
            raise InputError(f"num_frames must be >= 1, got {num_frames}")
        return self.at_times(np.arange(num_frames) / float(fps))

    def with_intensity(self, intensity: float) -> "EmotionCurve":
        return EmotionCurve(self.times, [s.with_intensity(float(intensity)) for s in self.states])

    def describe(self) -> str:
        return "; ".join(f"{s.describe()} @ {t:g} s" for t, s in zip(self.times, self.states))

    def to_list(self) -> list[dict]:
        """``[{"time": s, "emotion": {...}}, ...]`` (the JSON curve-file form, with embeddings as dicts)."""
        return [{"time": float(t), "emotion": s.to_dict()} for t, s in zip(self.times, self.states)]


def _keyframe_parts(text: str) -> list[tuple[str, str, str]]:
    """``(keyframe as written, SPEC, time as written)`` for each ``;``-separated part that ends in ``@TOKEN``;
    a part without ``@`` has an empty time."""
    out = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        m = _KEYFRAME.match(part)
        out.append((part, m.group("spec").strip(), m.group("time")) if m else (part, part, ""))
    return out


def _looks_like_keyframe(spec: str, time: str) -> bool:
    """``SPEC@TIME`` is meant as a keyframe when the time looks numeric (``3``, ``-1``, ``2,5``, ``nan``) or the
    SPEC is a label, ``label:number`` or a mix (``happy@abc``); ``mail me @home`` stays free text."""
    if not time:
        return False
    if _NUMERIC_START.match(time):
        return True
    return bool(_LABELISH.match(spec))


def is_curve_text(text: str) -> bool:
    """True when ``text`` is written as keyframes (``SPEC@SECONDS[; ...]``): any part that looks like a keyframe
    makes the whole text a curve, so a malformed keyframe is an error naming it, never free text."""
    return any(_looks_like_keyframe(spec, time) for _, spec, time in _keyframe_parts(text))


def parse_curve_text(text: str, parse_state: Callable[[str], EmotionEmbedding]) -> EmotionCurve:
    """``'neutral@0; angry:0.8@3.5'`` → :class:`EmotionCurve`; each SPEC is read by ``parse_state``. Every part must
    be ``SPEC@SECONDS`` with a finite time ≥ 0, times strictly increasing; an error names the bad keyframe."""
    rows = []
    for part, spec, time in _keyframe_parts(text):
        if not time:
            raise InputError(
                f"emotion keyframe {quote_value(part)} has no time: write keyframes like 'neutral@0; angry:0.8@3.5'"
            )
        if not spec:
            raise InputError(f"emotion keyframe {quote_value(part)} has no emotion before '@'")
        rows.append((_keyframe_time(time, f"emotion keyframe {quote_value(part)}"), spec))
    return _curve_from_rows(rows, parse_state, text)


def _keyframe_time(value: object, where: str, quote: bool = True) -> float:
    """A keyframe time: a finite number of seconds ≥ 0 (``2,5`` is refused with a hint, ``nan`` and ``inf`` too).
    ``quote=False`` (a file's field): the message does not repeat the value."""
    shown = f" {quote_value(value)}" if quote else ""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{where}: the time{shown} is not a number of seconds")
    if isinstance(value, str):
        if not _NUMBER.match(value.strip()):
            hint = " (write decimals with a dot)" if re.fullmatch(r"[-+]?\d+,\d+", value.strip()) else ""
            raise InputError(f"{where}: the time{shown} is not a number of seconds{hint}")
        value = float(value)
    t = float(value)
    if not math.isfinite(t) or t < 0:
        raise InputError(f"{where}: the time must be a finite number of seconds ≥ 0, got {t:g}")
    return t


def load_curve_file(path: str | Path, parse_state: Callable[[str], EmotionEmbedding]) -> EmotionCurve:
    """A ``.json`` (``[{"time": s, "emotion": SPEC}, ...]``) or ``.csv`` (``time,emotion``) curve file."""
    return _curve_from_rows(read_curve_rows(path), parse_state, str(Path(path).expanduser()))


MAX_CURVE_FILE_BYTES = 1 << 20


def read_curve_rows(path: str | Path) -> list[tuple[float, str]]:
    """The ``(time, SPEC)`` rows of a curve file, in file order, SPECs unparsed. Errors name the row and quote at
    most a short, sanitised value, never the file's text."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"emotion curve file not found: {path}")
    if path.stat().st_size > MAX_CURVE_FILE_BYTES:
        raise InputError(f"emotion curve {path} is larger than {MAX_CURVE_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not a UTF-8 text file") from e
    form = _FILE_FORMS[path.suffix.lower()]
    bad = lambda what: InputError(f"cannot read emotion curve {path}: {what}; expected {form}")  # noqa: E731
    rows: list[tuple[str, object, str]] = []  # (where, time as written, spec)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise bad("not valid JSON") from None
        if not isinstance(data, list):
            raise bad("the top level must be a list")
        for i, item in enumerate(data, 1):
            if not isinstance(item, dict) or "time" not in item or "emotion" not in item:
                raise bad(f"keyframe {i} is not an object with 'time' and 'emotion'")
            if not isinstance(item["emotion"], str):
                raise bad(f"keyframe {i}: 'emotion' must be a string")
            rows.append((f"keyframe {i}", item["time"], item["emotion"]))
    else:
        try:
            records = list(csv.reader(text.splitlines()))
        except csv.Error:
            raise bad("not a valid CSV file") from None
        for i, row in enumerate(records, 1):
            if not row or not "".join(row).strip() or (i == 1 and row[0].strip().lower() == "time"):
                continue  # blank line or header
            rows.append((f"row {i}", row[0].strip(), ",".join(row[1:]).strip()))
    return [(_keyframe_time(t, f"emotion curve {path}, {where}", quote=False), spec) for where, t, spec in rows]


_FILE_FORMS = {".json": '[{"time": seconds, "emotion": SPEC}, ...]', ".csv": "rows of time,emotion"}


def _curve_from_rows(rows: list[tuple[float, str]], parse_state, source: str) -> EmotionCurve:
    """Rows in the order written; times must already increase strictly (never re-sorted behind the user's back)."""
    if not rows:
        raise InputError(f"emotion curve {quote_value(source)} has no keyframes")
    for (t0, _), (t1, spec) in zip(rows, rows[1:]):
        if t1 <= t0:
            raise InputError(
                f"emotion keyframe {quote_value(f'{spec}@{t1:g}')} comes at or before {t0:g} s: keyframe times must "
                "be strictly increasing"
            )
    return EmotionCurve(np.array([t for t, _ in rows]), [parse_state(spec) for _, spec in rows])
