"""Structure planner: tempo, bar lines fitted to the cuts, key, and per-bar targets.

* **Tempo** from arousal and motion (``base_tempo``), or the user's ``tempo``.
* **Bar lines**: every cut (at least 1.5 beats from the previous anchor) becomes a downbeat. Each span
  between anchors gets a whole number of beats, preferring whole 4/4 bars (then a 2/4 pickup bar) when the
  tempo change that needs stays within ``max_stretch``; otherwise the nearest whole number of beats and a
  shorter last bar. Each span keeps its own constant tempo, so every anchored cut lands exactly on a
  downbeat. The last span ends on the video's end when a whole bar count fits, else it runs on and fades.
* **Key** from the mean valence (major ≥ 0 > minor) or the user's ``key``; sections whose own valence is
  far on the other side borrow the parallel mode.
* **Per bar**: valence, arousal, intensity; ``density`` (0..1, note density) and ``loudness`` (0..1)
  targets — the role of Video2Music's regression head — from arousal, intensity and motion.
* **Sections** start at anchored cuts and every 8 bars within long shots; every other section is a step
  lighter in density, so each cut also changes the texture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from affectstudio.conditioning.emotion.embedding import EmotionEmbedding
from affectstudio.errors import InputError

from .theory import Key, parse_key

MIN_TEMPO, MAX_TEMPO = 56.0, 160.0
BRIGHT_TONICS = (0, 2, 7, 9, 4)  # C D G A E major
DARK_TONICS = (9, 2, 4, 0, 7)  # A D E C G minor


@dataclass
class MusicPlan:
    duration: float  # video seconds
    tempo: float  # base tempo (bpm)
    key: Key
    beat_times: np.ndarray  # (nb,) seconds
    bar_starts: np.ndarray  # (n,) seconds
    bar_ends: np.ndarray  # (n,) seconds
    bar_beats: np.ndarray  # (n,) beats in each bar (4, or 2/3 for pickups)
    bar_tempo: np.ndarray  # (n,) bpm
    valence: np.ndarray  # (n,)
    arousal: np.ndarray  # (n,)
    intensity: np.ndarray  # (n,)
    density: np.ndarray  # (n,) 0..1
    loudness: np.ndarray  # (n,) 0..1
    section: np.ndarray  # (n,) int
    cut_bar: np.ndarray  # (n,) bool: the bar starts on an anchored cut
    mode: list = field(default_factory=list)  # (n,) "major"/"minor" per bar
    anchored_cuts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    skipped_cuts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def num_bars(self) -> int:
        return len(self.bar_starts)

    @property
    def end_time(self) -> float:
        return float(self.bar_ends[-1])

    def bar_condition(self) -> np.ndarray:
        """(n, 4) per-bar control features: density, loudness, tempo (normalised), beats per bar / 4."""
        return np.stack(
            [self.density, self.loudness, (self.bar_tempo - 100.0) / 40.0, self.bar_beats / 4.0], -1
        ).astype(np.float32)


def base_tempo(arousal: float, motion: float = 0.0) -> float:
    """bpm from mean arousal (-1..1) and mean optical-flow motion (frame widths per second)."""
    bpm = 96.0 + 38.0 * arousal + 14.0 * np.tanh(3.0 * motion - 0.3)
    return float(np.clip(bpm, MIN_TEMPO + 8, MAX_TEMPO - 10))


def _span_beats(length: float, bpm: float, max_stretch: float) -> int:
    """Beats for a span of ``length`` seconds near ``bpm``: whole bars if the tempo change stays within
    ``max_stretch``, else whole half-bars, else the nearest whole number of beats (at least 1)."""
    beats = length * bpm / 60.0
    for unit, stretch in ((4, max_stretch), (2, 1.5 * max_stretch)):
        n = max(unit, int(round(beats / unit)) * unit)
        if abs(n / beats - 1.0) <= stretch:
            return n
    return max(1, int(round(beats)))


def fit_bars(duration: float, cuts: np.ndarray, bpm: float, max_stretch: float = 0.1):
    """Beat times and bar grouping with every anchored cut on a downbeat (see the module docstring).

    Returns ``(beat_times, bars, anchored, skipped)`` where ``bars`` is a list of (start, end, beats, tempo,
    starts_on_cut)."""
    beat = 60.0 / bpm
    anchors, skipped = [0.0], []
    for c in np.sort(np.asarray(cuts, np.float64)):
        if c - anchors[-1] >= 1.5 * beat and duration - c >= 1.0 * beat:
            anchors.append(float(c))
        else:
            skipped.append(float(c))
    beat_times: list[float] = []
    bars: list[tuple] = []
    for j, start in enumerate(anchors):
        last = j == len(anchors) - 1
        end = duration if last else anchors[j + 1]
        n = _span_beats(end - start, bpm, max_stretch)
        if last and abs(n * 60.0 / (end - start) / bpm - 1.0) > max_stretch:
            tempo = bpm  # the end does not fit: keep the tempo and run past the end (faded out)
            n = int(np.ceil((end - start) / beat))
        else:
            tempo = n * 60.0 / (end - start)
        b = 60.0 / tempo
        beat_times.extend(start + b * np.arange(n))
        k = 0
        while k < n:
            size = min(4, n - k)
            if n - k - size in (1,) and size == 4:  # avoid a lone 1-beat bar: 4+1 → 3+2
                size = 3
            bars.append((start + k * b, start + (k + size) * b, size, tempo, j > 0 and k == 0))
            k += size
    anchored, skipped_times = np.asarray(anchors[1:], np.float32), np.asarray(skipped, np.float32)
    return np.asarray(beat_times, np.float64), bars, anchored, skipped_times


def plan_structure(
    duration: float,
    cut_times,
    emotion: EmotionEmbedding,
    emotion_fps: float = 1.0,
    motion: np.ndarray | None = None,
    tempo: float | None = None,
    key: str | Key | None = None,
    rng: np.random.Generator | None = None,
    section_bars: int = 8,
) -> MusicPlan:
    """Plan a score for ``duration`` seconds (see the module docstring).

    ``emotion`` is a curve at ``emotion_fps`` (or static); ``motion`` per second (optional).
    """
    if not duration or duration <= 0:
        raise InputError(f"cannot score a clip of duration {duration}: it has no length")
    if tempo is not None and not MIN_TEMPO / 1.5 <= float(tempo) <= MAX_TEMPO * 1.5:
        raise InputError(f"tempo must be between {MIN_TEMPO / 1.5:.0f} and {MAX_TEMPO * 1.5:.0f} bpm, got {tempo}")
    rng = rng or np.random.default_rng(0)
    curve = emotion if emotion.is_curve else emotion.resample(max(1, int(np.ceil(duration * emotion_fps))))
    t_curve = (np.arange(curve.probs.shape[0]) + 0.5) / emotion_fps
    mot = np.zeros(1) if motion is None or len(motion) == 0 else np.asarray(motion, np.float64)
    bpm = float(tempo) if tempo is not None else base_tempo(float(np.mean(curve.arousal)), float(np.mean(mot)))
    beat_times, bars, anchored, skipped = fit_bars(duration, np.asarray(cut_times, np.float64), bpm)

    starts = np.array([b[0] for b in bars])
    ends = np.array([b[1] for b in bars])
    mid = 0.5 * (starts + ends)
    at = lambda x: np.interp(np.minimum(mid, duration), t_curve, x)  # noqa: E731
    valence, arousal = at(curve.valence), at(curve.arousal)
    intensity = at(np.asarray(curve.intensity, np.float64))
    mot_bar = np.interp(mid, (np.arange(len(mot)) + 0.5), mot) if len(mot) > 1 else np.full(len(bars), mot[0])
    density = np.clip(0.5 + 0.45 * arousal + 0.15 * (intensity - 0.5) + 0.25 * np.tanh(3 * mot_bar - 0.5), 0.05, 1.0)
    loudness = np.clip(0.55 + 0.35 * arousal + 0.2 * (intensity - 0.5), 0.1, 1.0)

    section, s = np.zeros(len(bars), int), 0
    since = 0
    for i, b in enumerate(bars):
        if i > 0 and (b[4] or since >= section_bars):
            s, since = s + 1, 0
        section[i] = s
        since += 1
    # contrast between neighbouring sections (a change you hear at the cut): every other one a step lighter
    density = np.clip(density - 0.13 * (section % 2), 0.05, 1.0).astype(np.float32)

    if key is not None:
        k = key if isinstance(key, Key) else parse_key(key)
    else:
        mean_v = float(np.mean(curve.valence))
        mode = "major" if mean_v >= 0.0 else "minor"
        tonics = BRIGHT_TONICS if mode == "major" else DARK_TONICS
        k = Key(int(tonics[rng.integers(len(tonics))]), mode)
    modes = []
    for sec in range(section.max() + 1):
        v = float(valence[section == sec].mean())
        borrow = key is None and ((k.mode == "major" and v < -0.35) or (k.mode == "minor" and v > 0.35))
        modes += [k.parallel().mode if borrow else k.mode] * int((section == sec).sum())
    return MusicPlan(
        duration=float(duration),
        tempo=bpm,
        key=k,
        beat_times=beat_times,
        bar_starts=starts,
        bar_ends=ends,
        bar_beats=np.array([b[2] for b in bars]),
        bar_tempo=np.array([b[3] for b in bars]),
        valence=valence.astype(np.float32),
        arousal=arousal.astype(np.float32),
        intensity=intensity.astype(np.float32),
        density=density.astype(np.float32),
        loudness=loudness.astype(np.float32),
        section=section,
        cut_bar=np.array([b[4] for b in bars]),
        mode=modes,
        anchored_cuts=anchored,
        skipped_cuts=skipped,
    )
