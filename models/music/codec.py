"""The per-bar roll codec: what the Music DiT generates, one token per bar, key-relative.

Why per bar: chords, density and loudness change at bar lines (and our bar lines sit on the cuts), a 60 s
score is only ~30 tokens, and everything below a bar (voicings, patterns, drums) is the arranger's job.
Why key-relative: pitch classes are counted from the tonic, so the model learns harmony in one key and
transposition only moves the register channel.

Bar token ``x`` (48 channels, roughly in [-1, 1]):

====  =====================================================================================
0-11  chord chroma (pitch classes of the bar's chords, duration-weighted, max 1)
12-23 melody pitch-class histogram (duration-weighted, max 1)
24-35 bass pitch class (lowest note's pitch class, duration-weighted, max 1)
36-43 melody onsets on the eighth-note grid of a 4-beat bar (1 = a note starts there)
44    melody density: notes per beat / 2
45    melody register: (mean MIDI pitch - 67) / 12
46    melody range: (max - min pitch) / 12
47    chord changes in the bar / 2
====  =====================================================================================

Content stream ``bars`` (16 channels per bar): the plan's targets — density, loudness, tempo, meter, cut /
section flags, phrase position, mode, valence, arousal, position in the piece. All values are mapped to
[-1, 1] (``x * 2 - 1`` for 0..1 channels) before the DiT sees them.
"""

from __future__ import annotations

import numpy as np

from .theory import CHORD_TEMPLATES, CHORD_VOCAB, MODES, Chord, Key

BAR_CHANNELS = 48
PLAN_CHANNELS = 16
CHORD, MELODY, BASS, ONSETS = slice(0, 12), slice(12, 24), slice(24, 36), slice(36, 44)
DENSITY, REGISTER, RANGE, CHANGES = 44, 45, 46, 47
GRID = 8  # eighth notes per 4-beat bar


def encode_bar(chord_notes, melody_notes, beats: float = 4.0) -> np.ndarray:
    """One bar → its 48-channel token (in 0..1 / signed units, before :func:`to_model`).

    ``chord_notes``/``melody_notes``: ``[(key_relative_pitch, onset_beat, length_beats), ...]``; pitches are
    MIDI numbers transposed so the tonic is pitch class 0.
    """
    x = np.zeros(BAR_CHANNELS, np.float32)
    for pitch, _, length in chord_notes:
        x[CHORD][int(pitch) % 12] += length
    if chord_notes:
        low = min(p for p, _, _ in chord_notes)
        for pitch, _, length in chord_notes:
            if pitch == low:
                x[BASS][int(pitch) % 12] += length
    for pitch, onset, length in melody_notes:
        x[MELODY][int(pitch) % 12] += length
        slot = int(round(onset * 2))
        if 0 <= slot < GRID:
            x[ONSETS][slot] = 1.0
    for sl in (CHORD, MELODY, BASS):
        m = x[sl].max()
        if m > 0:
            x[sl] /= m
    if melody_notes:
        pitches = np.array([p for p, _, _ in melody_notes], np.float32)
        x[DENSITY] = min(1.0, len(melody_notes) / max(beats, 1.0) / 2.0)
        x[REGISTER] = np.clip((pitches.mean() - 67.0) / 12.0, -1, 1)
        x[RANGE] = min(1.0, (pitches.max() - pitches.min()) / 12.0)
    onsets = sorted({round(o * 2) / 2 for _, o, _ in chord_notes})
    x[CHANGES] = min(1.0, max(0, len(onsets) - 1) / 2.0)
    return x


def to_model(x: np.ndarray) -> np.ndarray:
    """0..1 channels → [-1, 1] (register stays signed)."""
    y = np.asarray(x, np.float32) * 2.0 - 1.0
    y[..., REGISTER] = np.asarray(x, np.float32)[..., REGISTER]
    return y


def from_model(y: np.ndarray) -> np.ndarray:
    x = (np.asarray(y, np.float32) + 1.0) / 2.0
    x[..., REGISTER] = np.asarray(y, np.float32)[..., REGISTER]
    return np.clip(x, -1.0, 1.0)


def plan_features(
    density, loudness, tempo, beats, cut, section_start, phrase_pos, minor, valence, arousal, position
) -> np.ndarray:
    """Per-bar plan features ``(n, 16)`` in [-1, 1] (the DiT's ``bars`` content stream)."""
    n = len(density)
    f = np.zeros((n, PLAN_CHANNELS), np.float32)
    f[:, 0] = 2 * np.asarray(density) - 1
    f[:, 1] = 2 * np.asarray(loudness) - 1
    f[:, 2] = np.clip((np.asarray(tempo) - 100.0) / 40.0, -1, 1)
    f[:, 3] = np.asarray(beats) / 2.0 - 1.0
    f[:, 4] = 2 * np.asarray(cut, np.float32) - 1
    f[:, 5] = 2 * np.asarray(section_start, np.float32) - 1
    f[:, 6] = np.sin(2 * np.pi * np.asarray(phrase_pos) / 8.0)
    f[:, 7] = np.cos(2 * np.pi * np.asarray(phrase_pos) / 8.0)
    f[:, 8] = 2 * np.asarray(minor, np.float32) - 1
    f[:, 9] = np.asarray(valence)
    f[:, 10] = np.asarray(arousal)
    f[:, 11] = 2 * np.asarray(position) - 1
    f[:, 12] = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    f[:, 13] = np.where(np.arange(n) % 4 < 2, 1.0, -1.0)
    f[:, 14] = np.where(np.arange(n) == n - 1, 1.0, -1.0)
    f[:, 15] = np.where(np.arange(n) >= n - 2, 1.0, -1.0)
    return f


def decode_chords(
    chord_chroma: np.ndarray,
    modes: list[str],
    contrast: float = 0.6,
    repeat_cost: float = 0.3,
    fifth_bonus: float = 0.08,
) -> list[Chord]:
    """Per-bar chord chroma ``(n, 12)`` (0..1) → chords, by Viterbi over the vocabulary.

    Emission: cosine between the bar's chroma *minus* ``contrast`` × the piece's mean chroma (a tonic-heavy
    corpus makes every bar look a little like I; the contrast keeps what is specific to the bar) and each
    template, plus a prior for the mode's diatonic chords and plain triads. Transition: a cost for holding
    the same chord (harmony should move about once a bar) and a bonus for root motion by a fourth or fifth.
    """
    n = len(chord_chroma)
    if n == 0:
        return []
    x = np.clip(np.asarray(chord_chroma, np.float32), 0, None)
    x = x - contrast * x.mean(0, keepdims=True)
    t = CHORD_TEMPLATES / np.linalg.norm(CHORD_TEMPLATES, axis=1, keepdims=True)  # (v, 12)
    emit = (x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)) @ t.T  # (n, v)
    prior = {m: _chord_prior(m) for m in set(modes)}
    emit = emit + np.stack([prior[m] for m in modes])
    roots = np.array([c.degree for c in CHORD_VOCAB])
    motion = (roots[None, :] - roots[:, None]) % 12  # (from, to)
    trans = np.where(np.eye(len(CHORD_VOCAB), dtype=bool), -repeat_cost, 0.0)
    trans = trans + np.where(np.isin(motion, (5, 7)), fifth_bonus, 0.0)
    score, back = emit[0].copy(), np.zeros((n, len(CHORD_VOCAB)), int)
    for i in range(1, n):
        total = score[:, None] + trans  # (from, to)
        back[i] = np.argmax(total, axis=0)
        score = total[back[i], np.arange(len(CHORD_VOCAB))] + emit[i]
    path = [int(np.argmax(score))]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return [CHORD_VOCAB[k] for k in reversed(path)]


def _chord_prior(mode: str) -> np.ndarray:
    scale = set(MODES[mode])
    prior = np.zeros(len(CHORD_VOCAB), np.float32)
    for k, ch in enumerate(CHORD_VOCAB):
        pcs = set(ch.pitch_classes(Key(0, "major")))
        prior[k] += 0.3 if pcs <= scale else 0.0
        prior[k] += {"maj": 0.08, "min": 0.08, "dom7": 0.02, "maj7": 0.0, "min7": 0.0, "sus4": -0.35, "dim": -0.1}[
            ch.quality
        ]
    if mode == "minor":  # harmonic-minor dominant
        prior[CHORD_VOCAB.index(Chord(7, "maj"))] += 0.3
        prior[CHORD_VOCAB.index(Chord(7, "dom7"))] += 0.25
    return prior


def decode_bars(y: np.ndarray, modes: list[str]) -> dict:
    """Model output ``(n, 48)`` → chords (key-relative :class:`Chord` per bar, :func:`decode_chords`), melody
    pitch-class weights ``(n, 12)``, register ``(n,)``, onset grids ``(n, 8)`` and density ``(n,)``."""
    x = from_model(y)
    chords = decode_chords(np.clip(x[:, CHORD], 0, 1) + 0.5 * np.clip(x[:, BASS], 0, 1), modes)
    return {
        "chords": chords,
        "melody_weights": np.clip(x[:, MELODY], 0, 1),
        "register": np.clip(x[:, REGISTER], -1, 1),
        "onsets": np.clip(x[:, ONSETS], 0, 1),
        "density": np.clip(x[:, DENSITY], 0, 1),
    }
