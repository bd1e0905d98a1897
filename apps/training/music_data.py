"""Data engine for the Music DiT: symbolic music → per-bar roll tokens, plan features and emotion labels.

Sources:

* the music21 corpus (offline, ships with music21): the 371 Bach chorales (four-part harmony: chords from
  all voices, melody = soprano) and Essen / O'Neill folk tunes (melody only; each bar's chord is the
  diatonic triad that best covers its melody notes);
* a folder of MIDI files (``affectstudio train music --data DIR``, Lakh-like): melody = the highest sounding
  non-drum note (skyline), harmony = every other pitched note, bars from the file's downbeats, key by
  Krumhansl–Schmuckler; optional labels ``labels.csv`` (``file,emotion`` with any emotion spec).

Everything is key-relative (tonic = pitch class 0; see :mod:`affectstudio.models.music.codec`).

Emotion labels (no corpus carries any): valence from the mode (major +, minor −) and the melody's register;
arousal from note density (notes per beat, smoothed over 4 bars) and the tempo (chorales ~72 bpm, Essen
~100, O'Neill dance tunes ~120). Augmentation at sampling time: *parallel mode* (major ↔ minor by moving
scale degrees 3, 6, 7; valence flips with it) and *transposition* (±6 semitones, which in key-relative form
moves only the register channel).

Extraction takes a few minutes on 2 cores and is cached (``~/.cache/affectstudio/music_bars_v1.pkl``).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from affectstudio.conditioning.video import probs_from_vad
from affectstudio.models.music.codec import (
    BAR_CHANNELS,
    BASS,
    CHORD,
    DENSITY,
    MELODY,
    REGISTER,
    encode_bar,
    plan_features,
    to_model,
)
from affectstudio.models.music.theory import CHORD_TEMPLATES, MODES, estimate_key

CACHE = Path(os.environ.get("AFFECTSTUDIO_CACHE", Path.home() / ".cache" / "affectstudio")) / "music_bars_v1.pkl"
MAJOR_TO_MINOR = {4: 3, 9: 8, 11: 10}
MINOR_TO_MAJOR = {3: 4, 8: 9, 10: 11}


@dataclass
class Piece:
    name: str
    bars: np.ndarray  # (n, 48) tokens in 0..1 units (encode_bar)
    beats: np.ndarray  # (n,) quarter-note beats per bar
    minor: bool
    tempo: float
    label: np.ndarray | None = None  # (12,) a user's emotion label for the whole piece (as_condition)

    def emotion(self, minor: bool | None = None, register_shift: float = 0.0) -> np.ndarray:
        """(n, 12) per-bar affect condition (8 probs, VAD, intensity): the piece's label when it has one,
        else derived from mode, register, density and tempo."""
        if self.label is not None and (minor is None or minor == self.minor):
            return np.repeat(self.label[None].astype(np.float32), len(self.bars), 0)
        minor = self.minor if minor is None else minor
        dens = np.convolve(self.bars[:, DENSITY], np.ones(4) / 4, mode="same")  # notes per beat / 2
        reg = self.bars[:, REGISTER] + register_shift
        valence = np.clip((-0.45 if minor else 0.45) + 0.25 * np.clip(reg, -1, 1) + 0.1 * (dens - 0.5), -1, 1)
        arousal = np.clip(-0.55 + 1.1 * dens + 0.6 * (self.tempo - 100.0) / 60.0, -1, 1)
        dominance = np.clip(0.3 * valence + 0.3 * arousal, -1, 1)
        vad = np.stack([valence, arousal, dominance], -1).astype(np.float32)
        intensity = np.clip(np.linalg.norm(vad[:, :2], axis=-1), 0.2, 1.0)[:, None]
        return np.concatenate([probs_from_vad(vad), vad, intensity], -1).astype(np.float32)


# --------------------------------------------------------------------------------------------- extraction


def bars_from_notes(melody, harmony, bar_starts, bar_lengths, tonic: int, fill_chords: bool, mode: str):
    """Notes ``[(pitch, start_q, length_q)]`` (quarter notes) → tokens ``(n, 48)`` for the given bars: melody
    notes that start in a bar, harmony notes sounding in it (clipped to it); key-relative pitches."""
    tokens = []
    for start, length in zip(bar_starts, bar_lengths):
        end = start + length
        mel = [(p - tonic, s - start, min(d, end - s)) for p, s, d in melody if start <= s < end]
        harm = [
            (p - tonic, max(s, start) - start, min(s + d, end) - max(s, start))
            for p, s, d in harmony
            if s < end and s + d > start
        ]
        if fill_chords:
            harm = _triad_for(mel, mode, length)
        tokens.append(encode_bar(harm, mel, length))
    return np.stack(tokens) if tokens else np.zeros((0, BAR_CHANNELS), np.float32)


def _triad_for(melody, mode: str, length: float):
    """The diatonic triad covering most of a bar's melody (duration-weighted), as sustained chord notes."""
    chroma = np.zeros(12, np.float32)
    for p, _, d in melody:
        chroma[int(p) % 12] += d
    if chroma.sum() == 0:
        return []
    scale = set(MODES[mode])
    best, best_score = None, -1.0
    for row in CHORD_TEMPLATES:
        pcs = np.flatnonzero(row)
        if len(pcs) != 3 or not set(pcs) <= scale:
            continue
        score = chroma[pcs].sum() + 0.01 * (0 in pcs)
        if score > best_score:
            best, best_score = pcs, score
    assert best is not None  # every mode's scale holds diatonic triads
    root = int(best[0])
    return [(48 + root, 0.0, length)] + [(60 + int(pc), 0.0, length) for pc in best]


def piece_from_music21(score, name: str, tempo: float, melody_only: bool) -> Piece | None:
    """A music21 score → :class:`Piece` (None when it has no usable 2–4-beat bars)."""
    key = score.analyze("key")
    tonic, mode = key.tonic.pitchClass, ("minor" if key.mode == "minor" else "major")
    parts = list(score.parts) or [score]
    measures = list(parts[0].getElementsByClass("Measure"))
    if len(measures) < 4:
        return None
    starts = [float(m.offset) for m in measures]
    lengths = [float(m.duration.quarterLength) for m in measures]

    def notes_of(part):
        out = []
        for n in part.flatten().notes:
            for p in getattr(n, "pitches", ()):
                out.append((int(p.midi), float(n.getOffsetInHierarchy(part)), float(n.duration.quarterLength)))
        return out

    melody = notes_of(parts[0])
    harmony = [] if melody_only else [n for part in parts for n in notes_of(part)]
    keep = [i for i, ln in enumerate(lengths) if 2.0 <= ln <= 4.0 and abs(ln * 2 - round(ln * 2)) < 1e-6]
    if len(keep) < 4:
        return None
    bars = bars_from_notes(
        melody, harmony, [starts[i] for i in keep], [lengths[i] for i in keep], tonic, melody_only, mode
    )
    return Piece(name, bars, np.array([lengths[i] for i in keep], np.float32), mode == "minor", tempo)


def extract_corpus(max_folk: int = 600, log=print) -> list[Piece]:
    """Bach chorales + Essen + O'Neill tunes from the music21 corpus (cached, see the module docstring)."""
    if CACHE.exists():
        with open(CACHE, "rb") as f:
            return pickle.load(f)
    import warnings

    from music21 import corpus

    warnings.filterwarnings("ignore")
    pieces: list[Piece] = []
    for i, path in enumerate(corpus.chorales.Iterator(returnType="filename")):
        p = piece_from_music21(corpus.parse(path), f"bach/{path}", 72.0, melody_only=False)
        if p is not None:
            pieces.append(p)
        if i % 50 == 0:
            log(f"chorales: {i} parsed, {len(pieces)} pieces")
    folk = 0
    for composer, tempo, files in (("essenFolksong", 100.0, 2), ("oneills1850", 120.0, 3)):
        for path in list(corpus.getComposer(composer))[:files]:
            opus = corpus.parse(path)
            for k, s in enumerate(list(opus.scores) if hasattr(opus, "scores") else [opus]):
                if folk >= max_folk:
                    break
                try:
                    p = piece_from_music21(s, f"{composer}/{Path(path).stem}/{k}", tempo, melody_only=True)
                except (AttributeError, ValueError, TypeError, IndexError, ZeroDivisionError):  # malformed ABC
                    p = None
                if p is not None:
                    pieces.append(p)
                    folk += 1
            log(f"{composer}: {folk} folk pieces so far")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(".partial")
    with open(tmp, "wb") as f:
        pickle.dump(pieces, f)
    os.replace(tmp, CACHE)
    return pieces


def read_labels(path: str | Path) -> dict[str, np.ndarray]:
    """``labels.csv`` rows ``file,emotion`` (any emotion spec) → {relative file: (12,) condition}."""
    import csv

    from affectstudio.conditioning.emotion import EmotionEmbedding, parse_emotion_spec
    from affectstudio.errors import InputError

    out = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) < 2 or row[0].strip().lower() in ("file", ""):
                continue
            if len(row) > 2:
                raise InputError(f"{path}: each row is 'file,emotion' (got {row})")
            spec = parse_emotion_spec(row[1].strip())
            if not isinstance(spec, EmotionEmbedding):
                raise InputError(f"{path}: one emotion per file, not a curve (got {row[1].strip()!r})")
            emb = spec.mean() if spec.is_curve else spec
            out[row[0].strip()] = emb.as_condition().numpy()
    return out


def extract_midi_folder(folder: str | Path, labels: dict[str, np.ndarray] | None = None) -> list[Piece]:
    """Every ``.mid``/``.midi`` under ``folder`` → pieces (see the module docstring); ``labels`` from
    :func:`read_labels` (keys relative to ``folder``)."""
    import pretty_midi

    from affectstudio.errors import InputError

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not files:
        raise InputError(f"no .mid files found under {folder}")
    pieces = []
    for path in files:
        try:
            pm = pretty_midi.PrettyMIDI(str(path))
        except (OSError, ValueError, EOFError, KeyError, IndexError):
            continue  # unreadable MIDI: skipped (reported as a count)
        notes = [(n.pitch, n.start, n.end) for inst in pm.instruments if not inst.is_drum for n in inst.notes]
        if len(notes) < 16:
            continue
        beat_times = pm.get_beats()

        def beat(t: float, beat_times: np.ndarray = beat_times) -> float:
            return float(np.interp(t, beat_times, np.arange(len(beat_times))))

        q = [(p, beat(s), max(0.1, beat(e) - beat(s))) for p, s, e in notes]
        chroma = np.zeros(12)
        for p, _, d in q:
            chroma[p % 12] += d
        key, _ = estimate_key(chroma)
        # skyline melody: at each onset the highest note
        by_onset: dict[float, tuple] = {}
        for n in q:
            k = round(n[1] * 4) / 4
            if k not in by_onset or n[0] > by_onset[k][0]:
                by_onset[k] = n
        melody = sorted(by_onset.values(), key=lambda n: n[1])
        mel_set = set(melody)
        harmony = [n for n in q if n not in mel_set]
        downbeats = [beat(t) for t in pm.get_downbeats()]
        starts = downbeats[:-1]
        lengths = list(np.diff(downbeats))
        keep = [i for i, ln in enumerate(lengths) if 2 <= round(ln) <= 4]
        if len(keep) < 4:
            continue
        tempo = float(pm.estimate_tempo()) if len(pm.get_onsets()) > 10 else 110.0
        bars = bars_from_notes(
            melody,
            harmony,
            [starts[i] for i in keep],
            [round(lengths[i]) for i in keep],
            key.tonic,
            not harmony,
            key.mode,
        )
        rel = str(path.relative_to(folder))
        pieces.append(
            Piece(
                rel,
                bars,
                np.array([round(lengths[i]) for i in keep], np.float32),
                key.mode == "minor",
                float(np.clip(tempo / 2 if tempo > 180 else tempo, 50, 180)),
                None if labels is None else labels.get(rel),
            )
        )
    if not pieces:
        raise InputError(f"none of the {len(files)} MIDI files under {folder} has 4+ bars of pitched notes")
    return pieces


# ------------------------------------------------------------------------------------------------ dataset


def _swap_mode(x: np.ndarray, to_minor: bool) -> np.ndarray:
    """Parallel-mode augmentation on key-relative chroma channels."""
    y = x.copy()
    table = MAJOR_TO_MINOR if to_minor else MINOR_TO_MAJOR
    for sl in (CHORD, MELODY, BASS):
        block = x[:, sl].copy()
        out = block.copy()
        for src, dst in table.items():
            out[:, dst] = np.maximum(out[:, dst], block[:, src])
            out[:, src] = 0.0 if src not in table.values() else out[:, src]
        y[:, sl] = out
    return y


class MusicBarData:
    """Flow data module over pieces: random windows of ``window`` bars with augmentation."""

    def __init__(self, pieces: list[Piece], window: int = 16, augment: bool = True):
        self.pieces = [p for p in pieces if len(p.bars) >= 4]
        self.window, self.augment = window, augment

    def example(self, piece: Piece, start: int, rng: np.random.Generator) -> tuple:
        n = min(self.window, len(piece.bars) - start)
        x = piece.bars[start : start + n].copy()
        minor = piece.minor
        if self.augment and rng.random() < 0.5:
            minor = not minor
            x = _swap_mode(x, minor)
        shift = 0.0
        if self.augment:
            shift = float(rng.integers(-6, 7)) / 12.0
            x[:, REGISTER] = np.clip(x[:, REGISTER] + shift * (x[:, DENSITY] > 0), -1, 1)
        emo = piece.emotion(minor, shift)[start : start + n]
        beats = piece.beats[start : start + n]
        phrase = (np.arange(start, start + n)) % 8
        section = phrase % 4 == 0
        cut = section & (rng.random(n) < 0.4)
        dens = x[:, DENSITY]
        loud = np.clip(0.55 + 0.35 * emo[:, 9] + 0.2 * (emo[:, 11] - 0.5), 0.1, 1.0)
        feats = plan_features(
            dens,
            loud,
            np.full(n, piece.tempo),
            beats,
            cut,
            section,
            phrase,
            np.full(n, minor),
            emo[:, 8],
            emo[:, 9],
            np.arange(start, start + n) / len(piece.bars),
        )
        return to_model(x), feats, emo, n

    def sample(self, batch_size: int, generator: torch.Generator) -> dict:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        rng = np.random.default_rng(seed)
        w = self.window
        x0 = np.zeros((batch_size, w, BAR_CHANNELS), np.float32)
        content = np.zeros((batch_size, w, 16), np.float32)
        emotion = np.zeros((batch_size, w, 12), np.float32)
        mask = np.zeros((batch_size, w), bool)
        for b in range(batch_size):
            piece = self.pieces[rng.integers(len(self.pieces))]
            start = int(rng.integers(0, max(1, len(piece.bars) - w + 1)))
            x, f, e, n = self.example(piece, start, rng)
            x0[b, :n], content[b, :n], emotion[b, :n], mask[b, :n] = x, f, e, True
            emotion[b, n:] = e[-1]
        return {
            "x0": torch.from_numpy(x0),
            "content": {"bars": torch.from_numpy(content)},
            "emotion": torch.from_numpy(emotion),
            "mask": torch.from_numpy(mask),
            "content_mask": {"bars": torch.from_numpy(mask)},
        }


def corpus_statistics(pieces: list[Piece]) -> dict:
    """Melody pitch-class entropy per bar and notes per beat in the corpus (the range generated music should
    fall in)."""
    ent, npb = [], []
    for p in pieces:
        for tok, _beats in zip(p.bars, p.beats):
            h = tok[MELODY]
            if h.sum() > 0:
                q = h / h.sum()
                ent.append(float(-(q[q > 0] * np.log2(q[q > 0])).sum()))
                npb.append(float(tok[DENSITY] * 2))
    return {
        "bars": len(ent),
        "pc_entropy_bar_p10_p50_p90": np.percentile(ent, [10, 50, 90]).round(2).tolist(),
        "notes_per_beat_p10_p50_p90": np.percentile(npb, [10, 50, 90]).round(2).tolist(),
    }
