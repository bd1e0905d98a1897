"""Synthetic talking-clip data engine for the talking-portrait motion DiT.

Each clip is made from scratch, seeded (:func:`make_clip`):

* **speech** — English sentences from a template grammar (:func:`random_sentence`), 1–3 segments separated by
  digital-silence pauses (0.15–1.0 s) plus lead-in/tail silence, spoken by espeak-ng
  (:func:`affectstudio.conditioning.espeak.synthesize`) over many accents × speaker variants, at 120–260 wpm
  and random pitch / range, with the clip's emotional prosody (:func:`prosody_for`); phoneme timings come
  from the libespeak-ng event API;
* **audio augmentation** — speed perturbation (tempo and pitch, ×0.9–1.1), spectral tilt, level, reverb and
  noise (:func:`affectstudio.conditioning.speech_features.augment`); the features (:func:`audio_features`, 25 fps) are
  computed on the augmented audio, the motion targets from the clean timings;
* **articulation** — viseme targets (:data:`VISEME_TARGETS`) blended by Cohen–Massaro dominance functions
  with anticipation (a phoneme's influence reaches ~60 ms further back than forward), evaluated at 200 Hz and
  averaged over each frame; bilabials force lip closure (``lip_press`` 1, jaw shut) on the frames they cover,
  silences relax to a closed mouth; jaw opening is modulated by the clean audio's loudness (loud syllables
  open wider) and by arousal;
* **expression** — a label or a Dirichlet mix with an intensity, sometimes a change of emotion mid-clip (an
  emotion curve); the action-unit channels are the probability-weighted EMFACS prototypes
  (:data:`EMFACS_PROTOTYPES`) × intensity, following the condition with a short lag, with slow fluctuations
  and brow raises on some stressed syllables;
* **head pose** — a small emotion-dependent posture (sad looks down, surprise lifts the head, contempt tilts),
  smooth drift whose amplitude rises with arousal and with speaking, and nods on stressed, loud syllables.

Arrays per clip: ``content (t, FEATURE_DIM)`` audio features, ``motion (t, len(DIT_CHANNELS))`` in
:data:`DIT_CHANNELS` order (the units of :mod:`affectstudio.models.portrait`), ``emotion (t, 12)`` the
condition (``EmotionEmbedding.as_condition``), ``speech (t,)`` bool frames inside a sounding phoneme.

Blink and gaze are not DiT channels: the pipeline adds them procedurally at ``blink_rate``.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstudio.conditioning.emotion.embedding import EMOTIONS, EmotionEmbedding, vad_from_probs
from affectstudio.conditioning.emotion.facs import EMFACS_PROTOTYPES, side_weights
from affectstudio.conditioning.espeak import SPEECH_SAMPLE_RATE, Phoneme, Prosody, prosody_for, synthesize
from affectstudio.conditioning.speech_features import FEATURE_DIM, audio_features, augment, frame_rms
from affectstudio.conditioning.visemes import VISEME_TARGETS, phoneme_to_viseme
from affectstudio.media import resample
from affectstudio.models.portrait import GENERATED_CHANNELS, IDLE_CHANNELS

from .sentences import ACCENTS, VARIANTS, random_sentence

__all__ = [
    "DIT_CHANNELS",
    "PROCEDURAL_CHANNELS",
    "FPS",
    "ClipSpec",
    "articulation_track",
    "build_dataset",
    "load_or_build_dataset",
    "make_clip",
    "random_sentence",
]

FPS = 25.0
# Channels the pipeline draws itself (idle motion), not the DiT.
PROCEDURAL_CHANNELS = tuple(IDLE_CHANNELS)
# The DiT's channels, in order: MOTION_CHANNELS without blink and gaze (articulation, AUs, head pose).
DIT_CHANNELS: tuple[str, ...] = tuple(GENERATED_CHANNELS)
_CH = {c: i for i, c in enumerate(DIT_CHANNELS)}

# ---------------------------------------------------------------------------------------------- the clip


@dataclass
class ClipSpec:
    """Ranges of the engine (defaults: the bundled checkpoint's recipe)."""

    min_frames: int = 100  # clips are padded with silence to at least this many frames (one training window)
    max_speech_s: float = 8.0
    rate_wpm: tuple[float, float] = (120.0, 260.0)
    p_neutral: float = 0.2
    p_mix: float = 0.25
    p_curve: float = 0.3
    p_augment: float = 0.85


def _sample_emotion(rng: np.random.Generator, spec: ClipSpec) -> tuple[np.ndarray, float]:
    """(probs (8,), intensity)."""
    u = rng.random()
    probs = np.zeros(len(EMOTIONS), dtype=np.float32)
    if u < spec.p_neutral:
        probs[0] = 1.0
        return probs, float(rng.uniform(0.0, 1.0))
    if u < spec.p_neutral + spec.p_mix:
        k = int(rng.integers(2, 4))
        idx = rng.choice(np.arange(1, len(EMOTIONS)), size=k, replace=False)
        if rng.random() < 0.3:
            idx[0] = 0  # some neutral in the mix
        probs[idx] = rng.dirichlet(np.full(k, 1.0)).astype(np.float32)
    else:
        probs[int(rng.integers(1, len(EMOTIONS)))] = 1.0
    return probs / probs.sum(), float(rng.uniform(0.3, 1.0))


def _smooth_noise(rng: np.random.Generator, n: int, sigma_frames: float) -> np.ndarray:
    """Unit-variance smooth Gaussian noise (n,) (white noise through a Gaussian kernel)."""
    from scipy.ndimage import gaussian_filter1d

    pad = int(4 * sigma_frames) + 1
    x = gaussian_filter1d(rng.standard_normal(n + 2 * pad), sigma_frames)[pad : pad + n]
    return (x / (x.std() + 1e-8)).astype(np.float32)


def _lowpass_lag(x: np.ndarray, tau_frames: float) -> np.ndarray:
    """First-order lag along axis 0 (the face follows its intent with a short delay), started at x[0]."""
    a = 1.0 - math.exp(-1.0 / max(tau_frames, 1e-3))
    out = np.empty_like(x)
    acc = x[0].copy()
    for i in range(x.shape[0]):
        acc = acc + a * (x[i] - acc)
        out[i] = acc
    return out


# (jaw_open, lip_round, lip_spread, lip_press, lips_part) per viseme; lip_closed → lip_press, silence relaxed
def _viseme_vector(vis: str) -> np.ndarray:
    jaw, rnd, spread, closed = VISEME_TARGETS[vis]
    if vis == "sil":
        return np.array([0.0, 0.0, 0.0, 0.3, 0.0], np.float32)
    part = 0.0 if closed >= 0.6 else 0.25 + 0.15 * jaw
    return np.array([jaw, rnd, spread, closed, part], np.float32)


_DOMINANCE = {
    "sil": 1.2,
    "PP": 2.5,
    "FF": 1.8,
    "WU": 1.5,
    "CH": 1.2,
    "SS": 0.9,
    "RR": 0.9,
    "TH": 0.7,
    "DD": 0.4,
    "kk": 0.3,
}  # vowels 1.0; tongue consonants borrow their lips from the vowels


def articulation_track(
    phonemes, num_frames: int, loudness: np.ndarray | None = None, gain: float = 1.0, anticipation: float = 0.06
) -> np.ndarray:
    """``(num_frames, 5)`` jaw_open, lip_round, lip_spread, lip_press, lips_part at 25 fps from phoneme timings.

    Cohen–Massaro dominance blending on a 200 Hz grid (each phoneme ``i`` with target ``T_i``, centre ``c_i``,
    half-length ``h_i``: ``D_i(t) = a_i exp(-((t - c_i) / w)²)`` with ``w = h_i + anticipation`` before the
    centre and ``w = h_i + anticipation / 2`` after), averaged over each frame's 40 ms. ``loudness (t,)`` in
    [0, ~1.3] (frame RMS / the clip's speech level) scales the jaw (``0.55 + 0.6·loudness``), ``gain`` all
    opening. Bilabials then force closure on every frame they overlap by ≥ 40 % (and on the frame nearest
    their centre): ``lip_press = 1``, ``jaw_open ≤ 0.03``, ``lips_part = 0``.
    """
    grid_dt = 0.005
    tg = (np.arange(int(math.ceil(num_frames / FPS / grid_dt))) + 0.5) * grid_dt  # (g,)
    if not phonemes:
        return np.tile(_viseme_vector("sil"), (num_frames, 1))
    vis = [phoneme_to_viseme(p.symbol) for p in phonemes]
    starts = np.array([p.start for p in phonemes])
    ends = np.array([max(p.end, p.start + 1e-3) for p in phonemes])
    centre, half = (starts + ends) / 2, (ends - starts) / 2
    targets = np.stack([_viseme_vector(v) for v in vis])  # (p, 5)
    amp = np.array([_DOMINANCE.get(v, 1.0) * (2.0 if v == "sil" and h > 0.12 else 1.0) for v, h in zip(vis, half)])
    d = tg[:, None] - centre[None, :]  # (g, p)
    w = np.where(d < 0, half[None] + anticipation, half[None] + anticipation / 2)
    dom = amp[None] * np.exp(-((d / w) ** 2))  # (g, p)
    dom += 1e-9
    val = dom @ targets / dom.sum(1, keepdims=True)  # (g, 5)
    per = int(round(1 / FPS / grid_dt))
    need = num_frames * per
    val = np.pad(val, ((0, max(0, need - len(val))), (0, 0)), mode="edge")[:need]
    out = val.reshape(num_frames, per, 5).mean(1).astype(np.float32)  # (t, 5)

    if loudness is not None:
        out[:, 0] *= np.clip(0.55 + 0.6 * loudness[:num_frames], 0.4, 1.35)
    out[:, [0, 2, 4]] *= gain
    out[:, 1] *= min(gain, 1.2)

    # bilabial closure on the frames the phoneme covers
    f0 = np.arange(num_frames) / FPS
    for v, s, e in zip(vis, starts, ends):
        if v != "PP":
            continue
        overlap = np.clip(np.minimum(e, f0 + 1 / FPS) - np.maximum(s, f0), 0, None) * FPS  # (t,)
        hit = overlap >= 0.4
        hit[min(num_frames - 1, int((s + e) / 2 * FPS))] = True
        out[hit, 0] = np.minimum(out[hit, 0], 0.03)
        out[hit, 3] = 1.0
        out[hit, 4] = 0.0
    return np.clip(out, 0.0, 1.5)


def _prototype_matrix() -> np.ndarray:
    """(8, len(DIT_CHANNELS)) expression of each emotion at intensity 1 in DiT channels."""
    m = np.zeros((len(EMOTIONS), len(DIT_CHANNELS)), np.float32)
    for e, label in enumerate(EMOTIONS):
        for au in EMFACS_PROTOTYPES[label]:
            r, l = side_weights(label, au)
            w = 0.5 * (r + l)
            if au == "AU14":
                m[e, _CH["AU14R"]] += r
                m[e, _CH["AU14L"]] += l
            elif au == "AU10":
                m[e, _CH["upper_lip_raise"]] += w
            elif au == "AU26":  # jaw drop of fear/surprise: mostly parted lips, a little jaw
                m[e, _CH["lips_part"]] += 0.5 * w
                m[e, _CH["jaw_open"]] += 0.15 * w
            elif au in _CH:
                m[e, _CH[au]] += w
    return m


_POSTURE = {  # (yaw, pitch, roll) radians at intensity 1; pitch > 0 = nose down
    "sad": (0.0, 0.07, 0.0), "angry": (0.0, 0.04, 0.0), "surprised": (0.0, -0.05, 0.0),
    "fearful": (0.0, -0.02, 0.0), "contempt": (0.03, -0.03, 0.05), "happy": (0.0, -0.015, 0.02),
    "disgusted": (0.02, 0.01, -0.02),
}  # fmt: skip


def _synthesize_segments(rng: np.random.Generator, spec: ClipSpec, prosody: Prosody, voice: str):
    """Speech of 1–3 sentences with pauses and lead/tail silence → (wave, phonemes, text)."""
    sr = SPEECH_SAMPLE_RATE
    n_seg = int(rng.choice([1, 1, 2, 2, 3]))
    waves, phonemes, texts = [], [], []
    t = float(rng.uniform(0.05, 1.0))
    waves.append(np.zeros(int(t * sr), np.float32))
    phonemes.append(Phoneme("_", 0.0, t))
    speech = 0.0
    for k in range(n_seg):
        text = random_sentence(rng)
        syn = synthesize(text, voice=voice, **prosody.as_kwargs())
        if speech + syn.duration > spec.max_speech_s and k > 0:
            break
        if syn.duration > spec.max_speech_s:  # cut at a phoneme boundary
            cut = max([p.end for p in syn.phonemes if p.end <= spec.max_speech_s] or [spec.max_speech_s])
            syn.wave = syn.wave[: int(cut * sr)]
            syn.phonemes = [p for p in syn.phonemes if p.start < cut]
            syn.phonemes[-1].end = min(syn.phonemes[-1].end, cut)
        texts.append(text)
        for p in syn.phonemes:
            phonemes.append(Phoneme(p.symbol, p.start + t, p.end + t, p.stress))
        waves.append(syn.wave)
        t += syn.wave.size / sr
        speech += syn.wave.size / sr
        pause = float(rng.uniform(0.15, 1.0)) if k < n_seg - 1 else float(rng.uniform(0.05, 1.0))
        waves.append(np.zeros(int(pause * sr), np.float32))
        phonemes.append(Phoneme("_", t, t + pause))
        t += pause
    wave = np.concatenate(waves)
    return wave, phonemes, " ".join(texts)


def _tilt(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random first-order spectral tilt (brighter or duller voice / microphone)."""
    from scipy.signal import lfilter

    a = float(rng.uniform(-0.6, 0.6))
    if a >= 0:  # pre-emphasis-like: brighter
        y = lfilter([1.0, -a], [1.0], wave)
    else:  # one-pole low-pass: duller
        y = lfilter([1.0 + a], [1.0, a], wave)
    y = y * (np.std(wave) / (np.std(y) + 1e-9))
    return np.clip(y, -1, 1).astype(np.float32)


def make_clip(seed: int, spec: ClipSpec | None = None) -> dict:
    """One synthetic talking clip, fully determined by ``seed``.

    Returns ``content (t, FEATURE_DIM)``, ``motion (t, len(DIT_CHANNELS))``, ``emotion (t, 12)``, ``speech (t,)``
    bool, ``wave`` (the augmented 24 kHz audio the features were computed from) and ``meta`` (text, voice,
    emotions, intensity, rate).
    """
    spec = spec or ClipSpec()
    rng = np.random.default_rng([int(seed), 0x5EED])
    sr = SPEECH_SAMPLE_RATE

    # 1. emotion (static, or a change mid-clip)
    probs_a, inten_a = _sample_emotion(rng, spec)
    curve = rng.random() < spec.p_curve
    probs_b, inten_b = _sample_emotion(rng, spec) if curve else (probs_a, inten_a)
    dominant = EMOTIONS[int(np.argmax(probs_a))]

    # 2. speech with the emotion's prosody
    base = Prosody(
        rate_wpm=float(rng.uniform(135, 235)), pitch=float(rng.uniform(25, 75)),
        pitch_range=float(rng.uniform(25, 75)), volume=100.0,
    )  # fmt: skip
    pros = prosody_for(dominant, inten_a, base=base)
    pros = Prosody(float(np.clip(pros.rate_wpm, *spec.rate_wpm)), pros.pitch, pros.pitch_range, pros.volume)
    variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
    voice = ACCENTS[int(rng.integers(len(ACCENTS)))] + (f"+{variant}" if variant else "")
    wave, phonemes, text = _synthesize_segments(rng, spec, pros, voice)

    # speed perturbation (tempo and pitch together); phoneme times scale with it
    if rng.random() < 0.5:
        f = float(rng.uniform(0.9, 1.1))
        wave = resample(wave, sr, int(round(sr / f)))
        scale = 1.0 / f
        for p in phonemes:
            p.start, p.end = p.start * scale, p.end * scale
    # pad to a training window
    dur_min = spec.min_frames / FPS
    if wave.size / sr < dur_min:
        extra = dur_min - wave.size / sr + 0.02
        lead = float(rng.uniform(0, extra))
        wave = np.concatenate(
            [np.zeros(int(lead * sr), np.float32), wave, np.zeros(int((extra - lead) * sr) + 1, np.float32)]
        )
        lead = int(lead * sr) / sr
        for p in phonemes:
            p.start, p.end = p.start + lead, p.end + lead
        phonemes.insert(0, Phoneme("_", 0.0, lead))
        phonemes.append(Phoneme("_", phonemes[-1].end, wave.size / sr))
    peak = float(np.abs(wave).max()) + 1e-9
    clean = wave / peak * 10 ** (float(rng.uniform(-12, -1)) / 20)

    # 3. audio augmentation → features
    noisy = clean
    if rng.random() < spec.p_augment:
        if rng.random() < 0.5:
            noisy = _tilt(noisy, rng)
        noisy = augment(noisy, sr, rng, gain_db=(-10.0, 4.0))
    content = audio_features(noisy, sr, fps=FPS)  # (t, F)
    t = content.shape[0]

    # 4. per-frame emotion condition
    tt = np.arange(t) / FPS
    if curve:
        t_switch = float(rng.uniform(0.25, 0.75)) * t / FPS
        ramp = float(rng.uniform(0.3, 1.5))
        a = np.clip((tt - t_switch) / ramp, 0, 1)[:, None]  # (t, 1)
    else:
        a = np.zeros((t, 1))
    probs = ((1 - a) * probs_a + a * probs_b).astype(np.float32)
    probs /= probs.sum(1, keepdims=True)
    inten = ((1 - a[:, 0]) * inten_a + a[:, 0] * inten_b).astype(np.float32)
    emb = EmotionEmbedding(probs=probs, vad=vad_from_probs(probs), intensity=inten)
    emotion = emb.as_condition().numpy()  # (t, 12)
    arousal = float(np.clip(np.mean(emb.vad[:, 1] * inten), -1, 1))

    # 5. articulation
    speech_mask = np.zeros(t, bool)
    for p in phonemes:
        if phoneme_to_viseme(p.symbol) != "sil":
            speech_mask[int(p.start * FPS) : int(math.ceil(p.end * FPS))] = True
    rms = frame_rms(clean, sr, FPS, win=0.04)[:t]
    level = np.percentile(rms[speech_mask], 90) if speech_mask.any() else 1.0
    loud = np.clip(rms / (level + 1e-9), 0, 1.3)
    gain = float(rng.uniform(0.8, 1.15)) * (1 + 0.15 * arousal)
    art = articulation_track(phonemes, t, loudness=loud, gain=gain)
    motion = np.zeros((t, len(DIT_CHANNELS)), np.float32)
    for j, name in enumerate(("jaw_open", "lip_round", "lip_spread", "lip_press", "lips_part")):
        motion[:, _CH[name]] = art[:, j]

    # 6. expression: EMFACS prototypes × intensity, lagging the condition, slowly fluctuating
    expr = (probs * inten[:, None]) @ _prototype_matrix()  # (t, C)
    expr = _lowpass_lag(expr, tau_frames=float(rng.uniform(2.0, 6.0)))
    fluct = 1.0 + 0.12 * _smooth_noise(rng, t, sigma_frames=20.0)
    expr *= fluct[:, None]
    # speech brows: AU1+AU2 pulses on some stressed vowels
    brow = np.zeros(t, np.float32)
    for p in phonemes:
        if p.stress == 2 and phoneme_to_viseme(p.symbol) in ("aa", "E", "I", "O", "U") and rng.random() < 0.25:
            brow += 0.18 * (1 + max(arousal, 0)) * np.exp(-0.5 * ((tt - p.start) / 0.12) ** 2)
    expr[:, _CH["AU1"]] += brow
    expr[:, _CH["AU2"]] += 0.8 * brow
    articulation = {_CH[c] for c in ("jaw_open", "lip_round", "lip_spread", "lip_press", "lips_part")}
    for j in range(len(DIT_CHANNELS)):
        if j in articulation:
            motion[:, j] += expr[:, j]
        elif DIT_CHANNELS[j] not in ("yaw", "pitch", "roll"):
            motion[:, j] = expr[:, j]

    # 7. head pose
    active = _lowpass_lag(speech_mask.astype(np.float32)[:, None], 8.0)[:, 0]  # (t,) smoothed activity
    amp = float(rng.uniform(0.012, 0.035)) * (1.0 + 0.8 * max(arousal, -0.5))
    posture = np.zeros((t, 3), np.float32)
    for e, label in enumerate(EMOTIONS):
        if label in _POSTURE:
            posture += (probs[:, e] * inten)[:, None] * np.asarray(_POSTURE[label], np.float32)[None]
    posture = _lowpass_lag(posture, 8.0)
    drift = np.stack([_smooth_noise(rng, t, s) for s in (18.0, 14.0, 22.0)], 1) * np.array([1.0, 0.6, 0.5])
    pose = posture + amp * (0.35 + 0.65 * active)[:, None] * drift
    nod = np.zeros(t, np.float32)
    for p in phonemes:
        if p.stress == 2 and rng.random() < 0.5:
            k = min(t - 1, int(p.start * FPS))
            nod += loud[k] * np.exp(-0.5 * ((tt - p.start - 0.08) / 0.1) ** 2)
    pose[:, 1] += float(rng.uniform(0.01, 0.03)) * (1 + 0.5 * max(arousal, 0)) * nod
    pose += np.asarray(rng.uniform(-0.015, 0.015, 3), np.float32)[None]
    for j, name in enumerate(("yaw", "pitch", "roll")):
        motion[:, _CH[name]] = pose[:, j]

    meta = {
        "seed": int(seed), "text": text, "voice": voice, "rate_wpm": pros.rate_wpm,
        "emotion_start": {EMOTIONS[i]: round(float(p), 3) for i, p in enumerate(probs_a) if p > 0},
        "emotion_end": {EMOTIONS[i]: round(float(p), 3) for i, p in enumerate(probs_b) if p > 0},
        "intensity": [round(inten_a, 3), round(inten_b, 3)], "curve": bool(curve),
    }  # fmt: skip
    return {
        "content": content.astype(np.float32),
        "motion": motion.astype(np.float32),
        "emotion": emotion.astype(np.float32),
        "speech": speech_mask,
        "wave": noisy.astype(np.float32),
        "phonemes": phonemes,
        "meta": meta,
    }


# ------------------------------------------------------------------------------------------------ dataset


def _clip_arrays(seed: int) -> dict:
    c = make_clip(seed)
    return {k: c[k] for k in ("content", "motion", "emotion", "speech")} | {"meta": c["meta"]}


def build_dataset(num_clips: int, seed: int = 0, workers: int = 2, log_every: int = 100) -> dict:
    """``num_clips`` clips (clip ``i`` from seed ``seed * 1_000_003 + i``), concatenated along time.

    Returns ``content (T, F)``, ``motion (T, C)``, ``emotion (T, 12)``, ``speech (T,)``, ``offsets (N + 1,)``
    and ``meta`` (list of dicts). Deterministic for a seed regardless of ``workers``.
    """
    seeds = [seed * 1_000_003 + i for i in range(num_clips)]
    t0 = time.time()
    clips: list[dict] = []
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            for i, c in enumerate(pool.imap(_clip_arrays, seeds, chunksize=4)):
                clips.append(c)
                if log_every and (i + 1) % log_every == 0:
                    print(f"data: {i + 1}/{num_clips} clips, {time.time() - t0:.0f} s", flush=True)
    else:
        for i, s in enumerate(seeds):
            clips.append(_clip_arrays(s))
            if log_every and (i + 1) % log_every == 0:
                print(f"data: {i + 1}/{num_clips} clips, {time.time() - t0:.0f} s", flush=True)
    lengths = [c["content"].shape[0] for c in clips]
    return {
        "content": np.concatenate([c["content"] for c in clips]),
        "motion": np.concatenate([c["motion"] for c in clips]),
        "emotion": np.concatenate([c["emotion"] for c in clips]),
        "speech": np.concatenate([c["speech"] for c in clips]),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "meta": [c["meta"] for c in clips],
    }


def load_or_build_dataset(num_clips: int, seed: int, cache_dir: Path, workers: int = 2) -> dict:
    """:func:`build_dataset`, cached as an npz under ``cache_dir`` keyed by size, seed and the channel list."""
    key = hashlib.sha1(json.dumps([num_clips, seed, DIT_CHANNELS, FEATURE_DIM, "v1"]).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"portrait_synth_{num_clips}_{seed}_{key}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        data = {k: z[k] for k in ("content", "motion", "emotion", "speech", "offsets")}
        data["meta"] = json.loads(str(z["meta"]))
        return data
    data = build_dataset(num_clips, seed, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        **{k: data[k] for k in ("content", "motion", "emotion", "speech", "offsets")},
        meta=np.array(json.dumps(data["meta"])),
    )
    tmp.replace(path)
    return data
