"""Monotonic lip–phoneme aligner: per-phoneme durations that fill the lip-active spans of a clip.

An algorithm, no weights. Two levels:

1. **Phrases to spans** — the script is cut at word boundaries into as many phrases as the clip has
   lip-active spans (dynamic programming over the cut points: cutting at punctuation is free, between
   words costs a little; each phrase's natural duration should match its span's length in log ratio; a span
   may stay silent at a cost per second). Pauses fall on closed or inactive stretches by construction.
2. **Phonemes to frames** inside a span — dynamic time warping between the phrase's expected mouth
   opening (vowels open, bilabials closed, labiodentals nearly closed, other consonants half open), laid out
   at its natural timing stretched to the span, and the observed opening; each phoneme's stretch is then
   limited to ``[min_stretch, max_stretch]`` times the span's average and the span filled exactly.

The result covers the whole clip: silence before, between and after the phrases, durations in seconds
summing to the clip's duration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectstudio.errors import InputError

from .lips import LipActivity
from .phonemes import PhonemeSequence

__all__ = ["Segment", "LipAlignment", "align_to_lips", "expected_opening", "dtw_path", "merge_spans", "spoken_length"]

_OPENING = {"open": 1.0, "mid": 0.45, "labiodental": 0.15, "closed": 0.0, "rest": 0.05}


@dataclass
class Segment:
    """Tokens ``[token_start, token_end)`` spoken from ``start`` to ``end`` seconds (one lip span)."""

    token_start: int
    token_end: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class LipAlignment:
    """``durations`` (n_tokens,) seconds of each token inside its segment; ``segments`` in time order; the
    clip's ``total`` duration (segments + silences)."""

    durations: np.ndarray
    segments: list[Segment]
    total: float
    lip_active: float = 0.0  # seconds of lip activity in the clip (the spans used)
    silent_lips: float = 0.0  # seconds of it left without speech (a script too short for the clip)

    def token_times(self) -> np.ndarray:
        """``(n_tokens, 2)`` start/end seconds of every token in the clip."""
        out = np.zeros((self.durations.size, 2))
        for seg in self.segments:
            t = seg.start
            for i in range(seg.token_start, seg.token_end):
                out[i] = (t, t + self.durations[i])
                t += self.durations[i]
        return out

    def speech_mask(self, fps: float, num_frames: int) -> np.ndarray:
        """Per-frame bool: inside a segment."""
        t = (np.arange(num_frames) + 0.5) / fps
        m = np.zeros(num_frames, dtype=bool)
        for seg in self.segments:
            m |= (t >= seg.start) & (t < seg.end)
        return m


def expected_opening(
    seq: PhonemeSequence, durations: np.ndarray, fps: float, start: int = 0, end: int | None = None
) -> np.ndarray:
    """Mouth-opening template of tokens ``[start, end)`` laid out with ``durations`` (s), sampled at ``fps``."""
    end = len(seq) if end is None else end
    bounds = np.concatenate([[0.0], np.cumsum(durations[start:end])])
    n = max(1, int(round(bounds[-1] * fps)))
    t = (np.arange(n) + 0.5) / fps
    k = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, end - start - 1)
    vals = np.array([_OPENING[seq.tokens[i].lip_class] for i in range(start, end)], dtype=np.float32)
    return vals[k]


def dtw_path(a: np.ndarray, b: np.ndarray, band: float = 0.25, off_diag: float = 0.15) -> np.ndarray:
    """Monotonic DTW path ``(m, 2)`` between 1-D sequences (absolute difference cost, a Sakoe–Chiba band of
    ``band`` × length, a penalty ``off_diag`` for horizontal/vertical steps)."""
    n, m = a.size, b.size
    cost = np.abs(a[:, None] - b[None, :])
    w = max(int(band * max(n, m)), abs(n - m) + 2)
    big = 1e9
    acc = np.full((n + 1, m + 1), big)
    acc[0, 0] = 0.0
    move = np.zeros((n + 1, m + 1), dtype=np.int8)
    for i in range(1, n + 1):
        c = i * m / n
        lo, hi = max(1, int(c - w)), min(m, int(c + w) + 1)
        for j in range(lo, hi + 1):
            opts = (acc[i - 1, j - 1], acc[i - 1, j] + off_diag, acc[i, j - 1] + off_diag)
            k = int(np.argmin(opts))
            acc[i, j] = cost[i - 1, j - 1] + opts[k]
            move[i, j] = k
    i, j, path = n, m, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        k = move[i, j]
        i, j = (i - 1, j - 1) if k == 0 else (i - 1, j) if k == 1 else (i, j - 1)
    return np.asarray(path[::-1], dtype=np.int64)


SILENT_LIPS_COST = 5.0  # per second of lip activity left silent: lips moving in silence is what viewers notice
MAX_SLOWDOWN = 2.5  # a phrase is spoken at most this much slower than the voice's own pace ...
MIN_SYLLABLE_RATE = 2.0  # ... and never under 2 syllables a second
COMFORT = np.log(1.15)  # rate changes within ±15 % cost nothing


def _syllables(seq: PhonemeSequence, a: int, b: int) -> int:
    return sum(1 for t in seq.tokens[a:b] if t.kind == "vowel")


def spoken_length(seq: PhonemeSequence, natural: np.ndarray, a: int, b: int, span_length: float) -> float:
    """How long tokens ``[a, b)`` are spoken when given a lip span of ``span_length`` s: the whole span, unless that
    would be slower than :data:`MAX_SLOWDOWN` × the natural pace or :data:`MIN_SYLLABLE_RATE` (a short script
    leaves the rest of the span silent rather than drawl)."""
    nat = float(natural[a:b].sum())
    slowest = max(nat, min(nat * MAX_SLOWDOWN, _syllables(seq, a, b) / MIN_SYLLABLE_RATE))
    return min(span_length, slowest)


def _split_phrases(
    seq: PhonemeSequence, natural: np.ndarray, spans: list[tuple[float, float]]
) -> list[tuple[int, int, int]]:
    """Assign token ranges to spans: ``[(span index, token start, token end)]`` (spans may stay empty).

    Cost of a phrase in a span: the speaking-rate change beyond ±15 % (log ratio squared) plus
    :data:`SILENT_LIPS_COST` per second of the span left silent; an empty span costs its whole length. Cutting
    between words costs a little, at punctuation nothing. So the words spread over every span while the script
    has enough of them, at a rate between natural/2 (or 2 syllables/s) and ``max_rate`` × natural."""
    n = len(seq)
    cuts = [0] + [i + 1 for i in seq.word_boundaries()] + [n]
    cuts = sorted(set(cuts))
    cut_cost = {c: (0.0 if c > 0 and seq.tokens[c - 1].kind == "pause" else 0.35) for c in cuts}
    cum = np.concatenate([[0.0], np.cumsum(natural)])
    k_spans, n_cuts = len(spans), len(cuts)
    big = 1e9
    # best[k][c]: spans[:k] consumed tokens up to cuts[c]
    best = np.full((k_spans + 1, n_cuts), big)
    back = np.full((k_spans + 1, n_cuts), -1, dtype=np.int64)
    best[0, 0] = 0.0
    for k in range(1, k_spans + 1):
        length = spans[k - 1][1] - spans[k - 1][0]
        for c in range(n_cuts):
            # span k stays silent
            if best[k - 1, c] < big:
                v = best[k - 1, c] + SILENT_LIPS_COST * length
                if v < best[k, c]:
                    best[k, c], back[k, c] = v, c
            for p in range(c):
                if best[k - 1, p] >= big:
                    continue
                nat = cum[cuts[c]] - cum[cuts[p]]
                if nat <= 0:
                    continue
                spoken = spoken_length(seq, natural, cuts[p], cuts[c], length)
                v = (
                    best[k - 1, p]
                    + max(abs(np.log(nat / max(spoken, 1e-3))) - COMFORT, 0.0) ** 2 * 4.0
                    + SILENT_LIPS_COST * (length - spoken)
                    + (cut_cost[cuts[c]] if c < n_cuts - 1 else 0.0)
                )
                if v < best[k, c]:
                    best[k, c], back[k, c] = v, p
    c, out = n_cuts - 1, []
    for k in range(k_spans, 0, -1):
        p = int(back[k, c])
        if p != c:
            out.append((k - 1, cuts[p], cuts[c]))
        c = p
    return out[::-1]


def merge_spans(spans: list[tuple[float, float]], min_gap: float = 0.12) -> list[tuple[float, float]]:
    """Lip spans with a gap under ``min_gap`` s between them are one span (a brief closure is a consonant, not a
    pause)."""
    out: list[tuple[float, float]] = []
    for a, b in spans:
        if out and a - out[-1][1] < min_gap:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _fit_segment(
    seq: PhonemeSequence,
    natural: np.ndarray,
    a: int,
    b: int,
    opening: np.ndarray,
    fps: float,
    min_stretch: float,
    max_stretch: float,
) -> np.ndarray:
    """Durations (s) of tokens ``[a, b)`` filling ``opening.size / fps`` seconds, warped to the lips."""
    length = opening.size / fps
    nat = natural[a:b].astype(np.float64).copy()
    # a phrase-final pause shrinks to almost nothing: the silence after the span is the pause
    for i in range(b - 1, a - 1, -1):
        if seq.tokens[i].kind not in ("pause", "space"):
            break
        nat[i - a] = min(nat[i - a], 0.03)
    if nat.sum() <= 0:
        return np.full(b - a, length / (b - a))
    uniform = nat * (length / nat.sum())
    template = expected_opening(seq, np.concatenate([np.zeros(a), uniform]), fps, a, b)
    obs = opening
    if template.size >= 4 and obs.size >= 4:
        path = dtw_path(template, obs)
        # template frame → observed frame (mean over the path), then token boundaries through the map
        tmap = np.zeros(template.size)
        for i in range(template.size):
            tmap[i] = path[path[:, 0] == i, 1].mean()
        bounds = np.concatenate([[0.0], np.cumsum(uniform)]) * fps  # in template frames
        warped = np.interp(bounds, np.arange(template.size) + 0.5, tmap + 0.5, left=0.0, right=float(obs.size))
        warped[0], warped[-1] = 0.0, float(obs.size)
        warped = np.maximum.accumulate(warped)
        dur = np.diff(warped) / fps
    else:
        dur = uniform
    ratio = length / nat.sum()
    dur = np.clip(dur, nat * ratio * min_stretch, nat * ratio * max_stretch)
    return dur * (length / max(dur.sum(), 1e-9))


def align_to_lips(
    seq: PhonemeSequence,
    natural: np.ndarray,
    lips: LipActivity,
    min_stretch: float = 0.5,
    max_stretch: float = 2.0,
    max_rate: float = 1.9,
) -> LipAlignment:
    """Durations for every token of ``seq`` (``natural``: the voice's own seconds per token) so the speech
    sits in the lip-active spans of ``lips`` and the total equals the clip's duration.

    Raises :class:`InputError` when the script cannot be spoken in the clip even ``max_rate`` times faster
    than natural (the message says how long it needs)."""
    natural = np.asarray(natural, dtype=np.float64)
    if natural.shape != (len(seq),):
        raise InputError(f"natural durations must have one value per token ({len(seq)}), got {natural.shape}")
    total = lips.duration
    speech_need = float(natural.sum())
    spans = [s for s in merge_spans(list(lips.spans)) if s[1] - s[0] >= 0.1]
    active = sum(b - a for a, b in spans)
    if not spans:  # no visible lip movement: centre the speech in the clip
        length = min(total * 0.9, speech_need)
        spans, active = [((total - length) / 2, (total + length) / 2)], length
    if speech_need > max_rate * active + 1e-6:
        raise InputError(
            f"the script is too long for the clip: it needs about {speech_need:.1f} s of speech "
            f"(at least {speech_need / max_rate:.1f} s spoken fast) but the lips move for only {active:.1f} s "
            f"of the {total:.1f} s clip; shorten the script or use a longer clip"
        )
    opening = lips.normalized_opening()
    assignment = _split_phrases(seq, natural, spans)
    durations = np.zeros(len(seq))
    segments: list[Segment] = []
    for k, a, b in assignment:
        s0, s1 = spans[k]
        s1 = s0 + spoken_length(seq, natural, a, b, s1 - s0)  # speech starts with the lips; a short phrase ends early
        f0, f1 = int(round(s0 * lips.fps)), max(int(round(s1 * lips.fps)), int(round(s0 * lips.fps)) + 1)
        obs = opening[f0:f1]
        durations[a:b] = _fit_segment(seq, natural, a, b, obs, lips.fps, min_stretch, max_stretch) * (
            (s1 - s0) / (obs.size / lips.fps)
        )
        segments.append(Segment(a, b, s0, s1))
    covered = sum(max(0.0, min(seg.end, b) - max(seg.start, a)) for seg in segments for a, b in spans)
    return LipAlignment(
        durations=durations, segments=segments, total=total, lip_active=active, silent_lips=active - covered
    )
