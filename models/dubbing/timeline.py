"""Put a voice on a timeline: phrases at exact times with exact per-phoneme durations, then emotional prosody.

Works with both voices: :class:`~affectstudio.models.dubbing.piper.PiperVoice` (durations exact to its 11.6 ms hop
through the duration-control inputs) and :class:`~affectstudio.models.dubbing.espeak.EspeakVoice` (words
time-warped with PSOLA). Output level: the neutral voice is normalised to ``LEVEL_DBFS`` active RMS, emotion
energy offsets are added on top, and a soft limiter keeps the true peak under the AAC headroom.
"""

from __future__ import annotations

import re

import numpy as np

from affectstudio.conditioning.alignment import Segment
from affectstudio.conditioning.phonemes import PhonemeSequence
from affectstudio.media import AAC_HEADROOM_DB, resample

from .piper import PiperVoice
from .prosody import apply_energy, apply_pitch

__all__ = [
    "LEVEL_DBFS",
    "LONG_TEXT_CHARS",
    "sentence_chunks",
    "join_speech",
    "active_rms_db",
    "speak_segments",
    "speak_free",
    "apply_targets",
    "finish",
]

LEVEL_DBFS = -23.0  # active-speech RMS of the neutral voice
_LEAD = (1, 2)  # hops before the first / after the last phoneme of a Piper phrase


def _trim(seq: PhonemeSequence, a: int, b: int) -> tuple[int, int]:
    """Drop leading/trailing spaces (and leading pauses) of a token range."""
    while a < b and seq.tokens[a].kind in ("space", "pause"):
        a += 1
    while b > a and seq.tokens[b - 1].kind == "space":
        b -= 1
    return a, b


def _sub(seq: PhonemeSequence, a: int, b: int) -> PhonemeSequence:
    return PhonemeSequence(seq.tokens[a:b], seq.words, seq.language, seq.voice)


def speak_segments(
    voice,
    seq: PhonemeSequence,
    segments: list[Segment],
    durations: np.ndarray,
    total: float,
    noise_scale: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Each segment's tokens spoken from ``segment.start`` to ``segment.end`` with ``durations`` (s per
    token). Returns ``(wave, sample_rate, token_times (n, 2) s)``; the wave lasts exactly ``total`` s."""
    sr = voice.sample_rate
    out = np.zeros(int(round(total * sr)), dtype=np.float32)
    times = np.zeros((len(seq), 2))
    for seg in segments:
        a, b = _trim(seq, seg.token_start, seg.token_end)
        if a >= b:
            continue
        d = np.asarray(durations[a:b], dtype=np.float64)
        s0 = int(round(seg.start * sr))
        if isinstance(voice, PiperVoice):
            hop = voice.config.hop_length
            n_hops = max(int(round(seg.duration * sr / hop)) - sum(_LEAD), b - a)
            bounds = np.round(np.cumsum(d) / max(d.sum(), 1e-9) * n_hops).astype(int)
            frames = np.diff(np.concatenate([[0], bounds]))
            sub = _sub(seq, a, b)
            scales, offsets = voice.frame_controls(sub, frames, lead_frames=_LEAD)
            r = voice.render(sub, scales, offsets, noise_scale=voice.config.noise_scale * noise_scale, seed=seed)
            wave = r.wave
            starts = seg.start + (_LEAD[0] + np.concatenate([[0], np.cumsum(r.frames)[:-1]])) * hop / sr
            times[a:b, 0], times[a:b, 1] = starts, starts + r.frames * hop / sr
        else:
            d = d * (seg.duration / max(d.sum(), 1e-9))
            wave = voice.render_timed(seq, a, b, d)
            ends = seg.start + np.cumsum(d)
            times[a:b, 0], times[a:b, 1] = ends - d, ends
        n = min(wave.size, out.size - s0)
        if n > 0:
            out[s0 : s0 + n] += wave[:n]
    return out, sr, times


def speak_free(
    voice,
    seq: PhonemeSequence,
    token_scales: np.ndarray,
    noise_scale: float = 1.0,
    seed: int = 0,
    lead: float = 0.15,
    tail: float = 0.25,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Text-to-speech at the voice's own timing with each token's duration times ``token_scales``.
    Returns ``(wave, sample_rate, token_times)`` with ``lead``/``tail`` seconds of silence around."""
    sr = voice.sample_rate
    token_scales = np.asarray(token_scales, dtype=np.float64)
    if isinstance(voice, PiperVoice):
        ids, owner = voice.token_ids(seq)
        scales = np.where(owner >= 0, token_scales[np.maximum(owner, 0)], 1.0)
        r = voice.render(seq, scales, noise_scale=voice.config.noise_scale * noise_scale, seed=seed)
        hop = voice.config.hop_length
        starts = lead + (r.lead_frames[0] + np.concatenate([[0], np.cumsum(r.frames)[:-1]])) * hop / sr
        times = np.stack([starts, starts + r.frames * hop / sr], axis=1)
        wave = r.wave
    else:
        nat = voice.natural_durations(seq)
        d = nat * token_scales
        segs, t = [], 0.0
        for a, b in seq.phrases():
            segs.append(Segment(a, b, t, t + d[a:b].sum()))
            t += d[a:b].sum()
        wave, _, times = speak_segments(voice, seq, segs, d, t, noise_scale, seed)
        times = times + lead
    pad_a, pad_b = np.zeros(int(lead * sr), np.float32), np.zeros(int(tail * sr), np.float32)
    return np.concatenate([pad_a, wave.astype(np.float32), pad_b]), sr, times


def apply_targets(
    wave: np.ndarray,
    sr: int,
    times: np.ndarray,
    targets: dict[str, np.ndarray],
    f0_offset: np.ndarray | None = None,
    f0_floor: float = 0.0,
) -> np.ndarray:
    """Emotional prosody: F0 level/range (+ optional per-time offset in octaves) by PSOLA, energy and tilt;
    ``targets`` maps f0/range/energy/tilt to values at ``times`` (s); F0 never goes below ``f0_floor`` Hz."""
    if times.size == 1:
        times = np.array([0.0, wave.size / sr])
        targets = {k: np.repeat(v, 2) for k, v in targets.items()}
        f0_offset = None if f0_offset is None else np.repeat(f0_offset, 2)
    changes_pitch = np.any(np.abs(np.log(targets["f0"])) > 1e-3) or np.any(np.abs(np.log(targets["range"])) > 1e-3)
    if changes_pitch or (f0_offset is not None and np.any(np.abs(f0_offset) > 1e-3)):
        wave = apply_pitch(wave, sr, times, targets["f0"], targets["range"], contour=f0_offset, min_f0=f0_floor)
    return apply_energy(wave, sr, times, targets["energy"], targets["tilt"])


def active_rms_db(wave: np.ndarray, sr: int) -> float:
    frame = max(1, int(0.02 * sr))
    x = wave[: wave.size // frame * frame].astype(np.float64)
    if x.size == 0:
        return -120.0
    db = 10 * np.log10(np.mean(x.reshape(-1, frame) ** 2, axis=1) + 1e-12)
    active = db[db > db.max() - 30]
    return float(10 * np.log10(np.mean(10 ** (active / 10))))


def finish(
    wave: np.ndarray, sr: int, target_sr: int, gain_db: float = 0.0, reference_db: float | None = None
) -> np.ndarray:
    """Resample to ``target_sr``, set the level (``LEVEL_DBFS`` + ``gain_db``; ``reference_db``: the neutral
    rendering's level, so emotion energy offsets survive the normalisation) and soft-limit the peaks."""
    y = resample(np.asarray(wave, dtype=np.float32), sr, target_sr) if sr != target_sr else np.asarray(wave, np.float32)
    level = active_rms_db(y, target_sr) if reference_db is None else reference_db
    y = y * 10 ** ((LEVEL_DBFS + gain_db - level) / 20)
    ceiling = 10 ** (-AAC_HEADROOM_DB / 20)
    knee = 0.7 * ceiling
    over = np.abs(y) > knee
    if np.any(over):  # soft knee: tanh above 70 % of the ceiling
        s = np.sign(y[over])
        y[over] = s * (knee + (ceiling - knee) * np.tanh((np.abs(y[over]) - knee) / (ceiling - knee)))
    return y.astype(np.float32)


LONG_TEXT_CHARS = 400  # text-to-speech of a longer script is spoken in groups of whole sentences


def sentence_chunks(text: str, limit: int = LONG_TEXT_CHARS) -> list[str]:
    """``text`` cut into groups of whole sentences of at most ``limit`` characters (a longer sentence stays whole);
    one group when the text is short."""
    sentences = [s for s in re.split(r"(?<=[.!?…])\s+", " ".join(text.split())) if s]
    chunks: list[str] = []
    for sentence in sentences:
        if chunks and len(chunks[-1]) + 1 + len(sentence) <= limit:
            chunks[-1] = f"{chunks[-1]} {sentence}"
        else:
            chunks.append(sentence)
    return chunks


def join_speech(parts: list) -> dict:
    """Speech outputs spoken one after another (each with ``waveform``, ``sample_rate``, ``phonemes``,
    ``durations``, ``token_times``, ``timings``, ``emotion``) as one: the fields of the joined output."""
    sr = parts[0].sample_rate
    offsets = np.cumsum([0.0] + [p.waveform.size / sr for p in parts[:-1]])
    timings: dict[str, float] = {}
    for p in parts:
        for k, v in p.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    return {
        "waveform": np.concatenate([p.waveform for p in parts]).astype(np.float32),
        "sample_rate": sr,
        "phonemes": [s for p in parts for s in p.phonemes],
        "durations": np.concatenate([p.durations for p in parts]),
        "token_times": np.concatenate([p.token_times + t for p, t in zip(parts, offsets)]),
        "emotion": parts[-1].emotion,
        "timings": timings,
    }
