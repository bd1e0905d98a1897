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
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstudio.errors import InputError, MissingFileError

from .embedding import EmotionEmbedding

CURVE_FILE_EXTENSIONS = (".json", ".csv")
_KEYFRAME = re.compile(r"^(?P<spec>.+?)\s*@\s*(?P<time>[-+]?\d*\.?\d+)\s*(?:s)?$")


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


def is_curve_text(text: str) -> bool:
    """True when ``text`` is written as keyframes (``SPEC@SECONDS[; ...]``)."""
    parts = [p.strip() for p in text.split(";") if p.strip()]
    return bool(parts) and all(_KEYFRAME.match(p) for p in parts)


def parse_curve_text(text: str, parse_state: Callable[[str], EmotionEmbedding]) -> EmotionCurve:
    """``'neutral@0; angry:0.8@3.5'`` → :class:`EmotionCurve`; each SPEC is read by ``parse_state``."""
    rows = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        m = _KEYFRAME.match(part)
        if m is None:
            raise InputError(f"cannot read emotion keyframe {part!r}: write keyframes like 'neutral@0; angry:0.8@3.5'")
        rows.append((float(m.group("time")), m.group("spec").strip()))
    return _curve_from_rows(rows, parse_state, text)


def load_curve_file(path: str | Path, parse_state: Callable[[str], EmotionEmbedding]) -> EmotionCurve:
    """A ``.json`` (``[{"time": s, "emotion": SPEC}, ...]``) or ``.csv`` (``time,emotion``) curve file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"emotion curve file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not a UTF-8 text file") from e
    rows: list[tuple[float, str]] = []
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            if not isinstance(data, list):
                raise ValueError("the top level must be a list")
            rows = [(float(item["time"]), str(item["emotion"])) for item in data]
        else:
            for row in csv.reader(text.splitlines()):
                if not row or not "".join(row).strip() or row[0].strip().lower() == "time":
                    continue  # blank line or header
                rows.append((float(row[0]), ",".join(row[1:]).strip()))
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read emotion curve {path}: expected {_FILE_FORMS[path.suffix.lower()]} ({e})") from e
    return _curve_from_rows(rows, parse_state, str(path))


_FILE_FORMS = {".json": '[{"time": seconds, "emotion": SPEC}, ...]', ".csv": "rows of time,emotion"}


def _curve_from_rows(rows: list[tuple[float, str]], parse_state, source: str) -> EmotionCurve:
    if not rows:
        raise InputError(f"emotion curve {source!r} has no keyframes")
    rows = sorted(rows, key=lambda r: r[0])
    times = [t for t, _ in rows]
    if len(set(times)) != len(times):
        raise InputError(f"emotion curve {source!r} has two keyframes at the same time")
    return EmotionCurve(np.array(times), [parse_state(spec) for _, spec in rows])
