"""Arranger: per-bar chords + the plan's density/loudness targets → a multi-track ``pretty_midi`` score.

Five parts (General MIDI programs from a :class:`~.styles.StylePreset`):

* ``pad`` — the chord, voice-led (closest voicing to the previous one), held or comped on the beats;
* ``arp`` — chord tones broken in quarters, eighths or sixteenths as density rises;
* ``bass`` — root; root–fifth; eighth-note patterns; octave drive;
* ``melody`` — a two-bar rhythm motif per section, repeated with variation; chord tones on strong beats,
  scale steps between, an arch contour, long notes at phrase ends; optional per-bar pitch-class weights and
  register from the Music DiT steer the pitch choice;
* ``drums`` — none / soft pulse / backbeat / busier / driving, with a crash and kick on every bar that
  starts on a cut and a fill leading into it.

Density level per bar = ``round(density × 4)``; velocity from the loudness target. Times come from the
plan's beat grid (tempo may differ per shot); the MIDI file carries the same tempo map and meters.
"""

from __future__ import annotations

import numpy as np

from .planner import MusicPlan
from .styles import StylePreset
from .theory import PROGRESSIONS, Chord, Key

PART_NAMES = ("pad", "arp", "bass", "melody", "drums")
KICK, SNARE, HAT, OPEN_HAT, CRASH, RIDE, LOW_TOM, MID_TOM, HIGH_TOM = 36, 38, 42, 46, 49, 51, 45, 47, 50

# melody rhythm cells per density level: (onset beat, length in beats) within a 4-beat bar
RHYTHMS = {
    0: [((0, 4),), ((0, 2), (2, 2)), ((0, 3), (3, 1))],
    1: [((0, 2), (2, 2)), ((0, 1.5), (1.5, 0.5), (2, 2)), ((0, 1), (1, 1), (2, 2)), ((0, 3), (3, 1))],
    2: [
        ((0, 1), (1, 1), (2, 1.5), (3.5, 0.5)),
        ((0, 1.5), (1.5, 0.5), (2, 1), (3, 1)),
        ((0, 1), (1, 0.5), (1.5, 0.5), (2, 2)),
        ((0.5, 0.5), (1, 1), (2, 1), (3, 1)),
    ],
    3: [
        ((0, 0.5), (0.5, 0.5), (1, 1), (2, 0.5), (2.5, 0.5), (3, 1)),
        ((0, 1), (1, 0.5), (1.5, 0.5), (2, 1), (3, 0.5), (3.5, 0.5)),
        ((0, 0.75), (0.75, 0.75), (1.5, 0.5), (2, 1), (3, 1)),
    ],
    4: [
        ((0, 0.5), (0.5, 0.5), (1, 0.5), (1.5, 0.5), (2, 0.5), (2.5, 0.25), (2.75, 0.25), (3, 1)),
        ((0, 0.5), (0.5, 0.25), (0.75, 0.25), (1, 0.5), (1.5, 0.5), (2, 0.5), (2.5, 0.5), (3, 0.5), (3.5, 0.5)),
    ],
}


def _voicing(pcs: tuple[int, ...], prev: list[int] | None, low: int = 52, high: int = 72) -> list[int]:
    """Close voicing of pitch classes within [low, high], nearest to ``prev`` (voice leading)."""
    candidates = []
    for inv in range(len(pcs)):
        order = pcs[inv:] + pcs[:inv]
        for base in range(low, high - 6):
            notes, p = [], base - 1
            for pc in order:
                p = p + 1 + (pc - (p + 1)) % 12
                notes.append(p)
            if notes[-1] <= high and notes[0] % 12 == order[0]:
                candidates.append(notes)
    if not candidates:
        return [60 + pc for pc in pcs]
    target = prev or [60, 64, 67]
    cost = [
        abs(np.mean(c) - np.mean(target)) + 0.3 * sum(min(abs(n - t) for t in target) for n in c) for c in candidates
    ]
    return candidates[int(np.argmin(cost))]


def _cell_from_grid(grid: np.ndarray, beats: int) -> tuple:
    """Eighth-note onset grid (8,) → a rhythm cell ((onset, length), ...) within ``beats``."""
    starts = [i / 2 for i in np.where(grid)[0] if i / 2 < beats]
    ends = starts[1:] + [float(beats)]
    return tuple((s, e - s) for s, e in zip(starts, ends))


class Arranger:
    """Writes one score. ``rng`` is the only source of randomness."""

    def __init__(
        self,
        plan: MusicPlan,
        chords: list[Chord],
        style: StylePreset,
        rng: np.random.Generator,
        melody_weights: np.ndarray | None = None,
        register: np.ndarray | None = None,
        onsets: np.ndarray | None = None,
    ):
        import pretty_midi

        self.pm_mod = pretty_midi
        self.plan, self.chords, self.style, self.rng = plan, chords, style, rng
        self.melody_weights, self.register, self.onsets = melody_weights, register, onsets
        levels = np.rint(np.asarray(plan.density) * 4).astype(int)
        self.levels = np.clip(levels, 0, 4)
        self.notes: dict[str, list] = {p: [] for p in PART_NAMES}

    # ----------------------------------------------------------------------------------------- helpers
    def key_at(self, bar: int) -> Key:
        return Key(self.plan.key.tonic, self.plan.mode[bar])

    def time(self, bar: int, beat: float) -> float:
        p = self.plan
        return float(p.bar_starts[bar] + beat * 60.0 / p.bar_tempo[bar])

    def velocity(self, bar: int, accent: float = 0.0, part_gain: float = 0.0) -> int:
        v = 42 + 62 * float(self.plan.loudness[bar]) + accent + part_gain + self.rng.normal(0, 3)
        return int(np.clip(v, 20, 124))

    def add(self, part: str, pitch: int, bar: int, beat: float, length: float, vel: int, humanize: bool = True):
        start = self.time(bar, beat)
        beats = self.plan.bar_beats[bar]
        end_beat = beat + length
        if end_beat <= beats:
            end = self.time(bar, end_beat)
        else:  # rings into the next bar
            end = self.time(bar, beats) + (end_beat - beats) * 60.0 / self.plan.bar_tempo[bar]
        if humanize and beat > 0:
            start += float(self.rng.normal(0, 0.006))
        if self.style.swing and abs(beat % 1 - 0.5) < 1e-6:
            start += self.style.swing * 30.0 / self.plan.bar_tempo[bar]
        self.notes[part].append((int(pitch), max(0.0, start), max(start + 0.05, end - 0.01), int(vel)))

    # ------------------------------------------------------------------------------------------- parts
    def write_pad(self):
        prev = None
        for bar, chord in enumerate(self.chords):
            key, lvl, beats = self.key_at(bar), self.levels[bar], self.plan.bar_beats[bar]
            high = self.plan.section[bar] % 2 == 1  # alternate sections voice the chords higher
            voicing = _voicing(chord.pitch_classes(key), prev, low=57 if high else 52, high=77 if high else 72)
            prev = voicing
            if self.style.pad_style == "comp" and lvl >= 2:
                hits = [(0, 1.5), (1.5, 1), (2.5, 1.5)] if lvl >= 3 else [(0, 2), (2, 2)]
                hits = [(b, min(l, beats - b)) for b, l in hits if b < beats]
            else:
                hits = [(0, beats)]
            for beat, length in hits:
                cut = beat == 0 and bool(self.plan.cut_bar[bar])
                vel = self.velocity(bar, accent=14 if cut else (4 if beat == 0 else 0), part_gain=-12)
                for n in voicing:
                    self.add("pad", n, bar, beat, length + (0.3 if self.style.pad_style == "sustain" else 0), vel)

    def write_arp(self):
        if self.style.arp is None:
            return
        prev = None
        for bar, chord in enumerate(self.chords):
            lvl, beats = self.levels[bar], self.plan.bar_beats[bar]
            if lvl == 0:
                continue
            voicing = _voicing(chord.pitch_classes(self.key_at(bar)), prev, low=60, high=79)
            prev = voicing
            tones = voicing + [voicing[0] + 12]
            # each section has its own figure (a section change is heard at the cut): up-down, or broken
            if self.plan.section[bar] % 2 == 0:
                order = tones + tones[-2:0:-1]
            else:
                order = [tones[0], tones[2], tones[1], tones[-1]]
            slow = self.plan.bar_tempo[bar] < 100  # slow music keeps a quarter-note pulse
            step = {1: 1.0, 2: 1.0 if slow else 0.5, 3: 0.5, 4: 0.25}[int(lvl)]
            for i, beat in enumerate(np.arange(0, beats, step)):
                vel = self.velocity(bar, accent=6 if beat % 1 == 0 else 0, part_gain=-16)
                self.add("arp", order[i % len(order)], bar, float(beat), step * (1.5 if step >= 1 else 1.1), vel)

    def write_bass(self):
        for bar, chord in enumerate(self.chords):
            key, lvl, beats = self.key_at(bar), self.levels[bar], self.plan.bar_beats[bar]
            root = 36 + (chord.root(key) - 36) % 12
            fifth = root + 7 if root + 7 <= 50 else root - 5
            if lvl <= 0:
                pattern = [(0, beats, root)]
            elif lvl == 1:
                pattern = [(0, 2, root), (2, 2, root)]
            elif lvl == 2:
                pattern = [(0, 2, root), (2, 1.5, fifth), (3.5, 0.5, root)]
            elif lvl == 3:
                pattern = [(0, 1, root), (1.5, 0.5, root), (2, 1, fifth), (3, 0.5, root), (3.5, 0.5, root + 12)]
            else:
                pattern = [(b, 0.5, root + (12 if i % 2 else 0)) for i, b in enumerate(np.arange(0, 4, 0.5))]
            for beat, length, pitch in pattern:
                if beat < beats:
                    vel = self.velocity(bar, 6 if beat == 0 else 0, -4)
                    self.add("bass", pitch, bar, beat, min(length, beats - beat), vel)

    def write_melody(self):
        p, rng = self.plan, self.rng
        n = p.num_bars
        start_bar = 2 if n >= 8 and not p.cut_bar[:2].any() else 0  # a short intro without melody
        centre = 12 * (self.style.melody_octave + 1) - 3 + int(round(4 * float(np.mean(p.valence))))
        prev_pitch, motif, section = None, None, -1
        for bar in range(start_bar, n):
            if p.section[bar] != section:
                section, phrase_bar = p.section[bar], 0
                motif = [RHYTHMS[int(lv)][rng.integers(len(RHYTHMS[int(lv)]))] for lv in (self.levels[bar],) * 2]
            lvl, beats = int(self.levels[bar]), int(p.bar_beats[bar])
            cell = motif[phrase_bar % 2]
            if phrase_bar % 4 == 3 and rng.random() < 0.6 or bar == n - 1:
                cell = ((0, 2), (2, 2)) if beats >= 4 else ((0, beats),)  # phrase end: longer notes
            elif self.onsets is not None and (self.onsets[bar] > 0.5).sum() >= 1:
                cell = _cell_from_grid(self.onsets[bar] > 0.5, beats)
            elif lvl != int(self.levels[max(bar - 1, 0)]) and rng.random() < 0.5:
                cell = RHYTHMS[lvl][rng.integers(len(RHYTHMS[lvl]))]
            key = self.key_at(bar)
            scale_pcs = set(key.scale)
            chord_pcs = set(self.chords[bar].pitch_classes(key))
            reg = centre if self.register is None else int(round(centre + 6 * float(self.register[bar])))
            span = np.arange(reg - 8, reg + 10)
            arch = np.sin(np.pi * (phrase_bar % 8 + 0.5) / 8.0)  # phrase contour
            for onset, length in cell:
                if onset >= beats:
                    continue
                length = min(length, beats - onset)
                strong = onset % 2 == 0
                cands = np.array([q for q in span if q % 12 in chord_pcs or (not strong and q % 12 in scale_pcs)])
                w = np.ones(len(cands))
                if prev_pitch is not None:
                    iv = np.abs(cands - prev_pitch)
                    w *= np.exp(-iv / 3.0) * np.where(iv == 0, 0.35, 1.0) * np.where(iv > 9, 0.05, 1.0)
                w *= np.exp(-(((cands - (reg + 4 * arch)) / 6.0) ** 2))
                if self.melody_weights is not None:
                    w *= 0.3 + np.asarray(self.melody_weights[bar])[(cands - key.tonic) % 12]
                if bar == n - 1 and onset + length >= beats - 1e-6:
                    w *= np.where(cands % 12 == key.tonic, 8.0, 0.2)
                pitch = int(rng.choice(cands, p=w / w.sum()))
                vel = self.velocity(bar, accent=8 if onset == 0 else 2, part_gain=6)
                self.add("melody", pitch, bar, float(onset), float(length) * 0.95, vel)
                prev_pitch = pitch
            phrase_bar += 1

    def write_drums(self):
        if not self.style.drums:
            # without a kit, mark cuts with a soft low piano/string accent in the bass part instead
            for bar in np.where(self.plan.cut_bar)[0]:
                root = 36 + (self.chords[bar].root(self.key_at(bar)) - 36) % 12
                low = root - 12 if root >= 36 else root
                self.add("bass", low, int(bar), 0.0, 1.0, self.velocity(bar, 14), humanize=False)
            return
        p, g = self.plan, 1.0 * self.style.drum_scale

        def hit(pitch, bar, beat, accent=0.0, gain=0.0, humanize=True):
            vel = int(np.clip(self.velocity(bar, accent, gain) * g, 15, 127))
            self.add("drums", pitch, bar, beat, 0.25, vel, humanize=humanize)

        for bar in range(p.num_bars):
            lvl, beats = int(self.levels[bar]), int(p.bar_beats[bar])
            if p.cut_bar[bar] or bar == 0:
                hit(CRASH, bar, 0, 10, humanize=False)
                hit(KICK, bar, 0, 12, humanize=False)
            if bar + 1 < p.num_bars and p.cut_bar[bar + 1] and lvl >= 1:  # fill into the cut
                fill = np.arange(max(0, beats - 1), beats, 0.25 if lvl >= 3 else 0.5)
                for i, b in enumerate(fill):
                    hit((HIGH_TOM, MID_TOM, LOW_TOM, SNARE)[i % 4] if lvl >= 3 else SNARE, bar, float(b), 2 * i, -6)
                beats_main = max(0, beats - 1)
            else:
                beats_main = beats
            if lvl == 0:
                continue
            for b in np.arange(0, beats_main, 0.5 if lvl >= 2 else 1.0):
                b = float(b)
                on_beat = b % 1 == 0
                if lvl >= 2 or on_beat:
                    hit(RIDE if lvl == 1 else HAT, bar, b, 4 if on_beat else 0, -18)
                if lvl == 4 and not on_beat:
                    hit(HAT, bar, b + 0.25, 0, -24)
                if on_beat and int(b) % 2 == 0 and (lvl >= 2 or b == 0):
                    hit(KICK, bar, b, 6, -2 if lvl >= 2 else -10)
                if on_beat and int(b) % 2 == 1 and lvl >= 2:
                    hit(SNARE, bar, b, 4, -4)
                if lvl >= 3 and b == 2.5:
                    hit(KICK, bar, b, 0, -6)
                if lvl == 4 and on_beat and int(b) % 2 == 1:
                    hit(KICK, bar, b, 0, -6)

    # ------------------------------------------------------------------------------------------- score
    def arrange(self):
        """Write every part and return a ``pretty_midi.PrettyMIDI`` with the plan's tempo map and meters."""
        self.write_pad()
        self.write_arp()
        self.write_bass()
        self.write_melody()
        self.write_drums()
        return self.to_midi()

    def to_midi(self):
        pm_mod, p, s = self.pm_mod, self.plan, self.style
        pm = pm_mod.PrettyMIDI(initial_tempo=float(p.bar_tempo[0]), resolution=480)
        # tempo map: one tempo per bar (shots have their own tempo)
        scales, tick = [], 0
        for b in range(p.num_bars):
            if not scales or abs(scales[-1][1] - 60.0 / (p.bar_tempo[b] * 480)) > 1e-12:
                scales.append((tick, 60.0 / (p.bar_tempo[b] * 480)))
            tick += int(p.bar_beats[b]) * 480
        pm._tick_scales = scales
        pm._update_tick_to_time(tick + 480 * 64)
        meter = None
        for b in range(p.num_bars):
            if p.bar_beats[b] != meter:
                meter = int(p.bar_beats[b])
                pm.time_signature_changes.append(pm_mod.TimeSignature(meter, 4, float(p.bar_starts[b])))
        pm.key_signature_changes.append(pm_mod.KeySignature(p.key.tonic + (12 if p.key.mode == "minor" else 0), 0.0))
        programs = {"pad": s.pad, "arp": s.arp, "bass": s.bass, "melody": s.melody, "drums": s.drum_kit}
        for part in PART_NAMES:
            if not self.notes[part]:
                continue
            inst = pm_mod.Instrument(program=int(programs[part] or 0), is_drum=part == "drums", name=part)
            for pitch, start, end, vel in sorted(self.notes[part], key=lambda n: n[1]):
                inst.notes.append(pm_mod.Note(velocity=vel, pitch=pitch, start=start, end=end))
            pm.instruments.append(inst)
        return pm


def chords_from_plan(plan: MusicPlan, rng: np.random.Generator) -> list[Chord]:
    """Rule-based harmony (used without a Music DiT): per section a four-bar progression chosen by mode and
    energy, cycled; each new section starts on the first chord of its progression (a harmonic change lands
    on every anchored cut); the last two bars are a dominant–tonic cadence when the music ends on the video's end."""
    chords: list[Chord] = []
    for sec in range(int(plan.section.max()) + 1):
        bars = np.where(plan.section == sec)[0]
        mode = plan.mode[bars[0]]
        energy = "high" if float(plan.arousal[bars].mean()) > 0.15 else "low"
        options = PROGRESSIONS[(mode, energy)]
        prog = options[rng.integers(len(options))]
        if chords and prog[0] == chords[-1]:
            prog = prog[1:] + prog[:1]
        chords += [prog[i % len(prog)] for i in range(len(bars))]
    if len(chords) >= 3 and plan.end_time <= plan.duration + 1e-3:  # a cadence where the music ends on time
        chords[-2] = Chord(7, "maj" if plan.mode[-1] == "minor" else "dom7")
        chords[-1] = Chord(0, "min" if plan.mode[-1] == "minor" else "maj")
    return chords
