"""Data engine for the Prosody DiT: emotional renders of the base voice, and real (video, transcript, audio)
folders.

Synthetic examples (:func:`render_example`): a sentence (``configs/emotion_text_train.tsv``), a random
emotion (a label or a two-label mix, intensity 0–1, some neutral), the literature prosody targets of
:mod:`affectstudio.models.dubbing.prosody` with random variation (per utterance: F0 level/range, rate, energy, tilt;
per phoneme: duration jitter, stressed-vowel lengthening with arousal, phrase-final lengthening with
sadness). The neutral voice speaks the sentence with those durations (exact, through its duration inputs),
PSOLA and gain apply the F0/energy targets, and the *measured* F0 change (Praat pitch of the result over
the neutral render) becomes the target. Everything is laid out on the pre-prosody timeline (the voice's own
durations at 25 fps): ``features (n, 64)`` phoneme features, ``x0 (n, 4)`` = (log duration ratio, F0 change
in octaves, energy dB, tilt dB) divided by :data:`X0_SCALE`, and the 12-number emotion condition.

Real folders (:func:`load_folder`): ``<name>.mp4|.wav`` + ``<name>.txt`` (+ optional ``<name>.emotion``
holding a label or spec), as in V2C / GRID / ESD layouts. Targets come from the recording against the base
voice speaking the same transcript: durations from a DTW alignment of their MFCCs, F0 and energy
differences per phoneme.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from affectstudio.conditioning.emotion import EMOTIONS, EmotionEmbedding, parse_emotion_spec
from affectstudio.conditioning.phonemes import PhonemeSequence, phoneme_features, phonemize
from affectstudio.errors import InputError
from affectstudio.models.dubbing.prosody import apply_energy, apply_pitch, emotion_targets, f0_track

__all__ = ["FPS", "X0_SCALE", "render_example", "build_dataset", "ProsodyData", "load_folder", "example_from_recording"]

FPS = 25.0
X0_SCALE = np.array([0.3, 0.25, 6.0, 5.0], dtype=np.float32)  # dur log-ratio, F0 octaves, energy dB, tilt dB


def training_sentences() -> list[str]:
    from affectstudio.configs import __file__ as cfg_init

    path = Path(cfg_init).with_name("emotion_text_train.tsv")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or "\t" not in line:
            continue
        out.append(line.split("\t", 1)[1].strip())
    return [s for s in out if 3 <= len(s.split()) <= 22]


def random_emotion(rng: np.random.Generator) -> EmotionEmbedding:
    if rng.random() < 0.12:  # neutral at any intensity: a user's "neutral" arrives with intensity 1
        return EmotionEmbedding.from_label("neutral", float(rng.uniform(0.0, 1.0)))
    a = EMOTIONS[rng.integers(1, len(EMOTIONS))]
    intensity = float(rng.uniform(0.0, 1.0) ** 0.7)
    if rng.random() < 0.3:
        b = EMOTIONS[rng.integers(0, len(EMOTIONS))]
        w = float(rng.uniform(0.5, 0.9))
        return EmotionEmbedding.from_mix({a: w, b: 1 - w} if a != b else {a: 1.0}, intensity=intensity)
    return EmotionEmbedding.from_label(a, intensity)


def _frame_map(durs_src: np.ndarray, durs_dst: np.ndarray, n: int, fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """For each frame of the source timeline: its token and the matching time on the destination timeline."""
    e_src = np.cumsum(durs_src)
    s_src = e_src - durs_src
    s_dst = np.cumsum(durs_dst) - durs_dst
    t = (np.arange(n) + 0.5) / fps
    k = np.clip(np.searchsorted(e_src, t, side="right"), 0, len(durs_src) - 1)
    r = np.clip((t - s_src[k]) / np.maximum(durs_src[k], 1e-6), 0.0, 1.0)
    return k, s_dst[k] + r * durs_dst[k]


def _f0_change(base: np.ndarray, shaped: np.ndarray, sr: int, at: np.ndarray) -> np.ndarray:
    """log2(F0 shaped / F0 base) at times ``at`` (interpolated over unvoiced stretches), clipped to ±1 octave."""
    tb, fb = f0_track(base, sr)
    _, fs = f0_track(shaped, sr)
    m = min(fb.size, fs.size)
    ok = (fb[:m] > 0) & (fs[:m] > 0)
    if ok.sum() < 3:
        return np.zeros(at.size, dtype=np.float32)
    ratio = np.log2(fs[:m][ok] / fb[:m][ok])
    return np.clip(np.interp(at, tb[:m][ok], ratio), -1.0, 1.0).astype(np.float32)


def render_example(voice, text: str, emotion: EmotionEmbedding, rng: np.random.Generator, seed: int = 0) -> dict:
    """One synthetic training example (see the module docstring)."""
    from affectstudio.models.dubbing.timeline import speak_free

    seq = phonemize(text)
    natural = voice.natural_durations(seq, seed=seed)
    tg = {k: float(v[0]) for k, v in emotion_targets(emotion.probs, float(emotion.intensity)).items()}
    arousal = float(emotion.arousal) * float(emotion.intensity)
    sad = float(emotion.probs[EMOTIONS.index("sad")]) * float(emotion.intensity)
    tg["f0"] *= float(np.exp(rng.normal(0, 0.03)))
    tg["range"] *= float(np.exp(rng.normal(0, 0.1)))
    tg["rate"] *= float(np.exp(rng.normal(0, 0.04)))
    tg["energy"] += float(rng.normal(0, 0.8))
    tg["tilt"] += float(rng.normal(0, 0.8))
    # per-phoneme durations: global rate, stressed vowels longer with arousal, phrase-final words longer when sad
    factor = np.full(len(seq), 1.0 / tg["rate"])
    feats, _ = phoneme_features(seq, natural, FPS)
    for i, tok in enumerate(seq.tokens):
        if tok.kind == "vowel" and tok.stress == 2:
            factor[i] *= 1.0 + 0.25 * max(arousal, 0.0)
    for a, b in seq.phrases():
        last = max(tok.word for tok in seq.tokens[a:b])
        for i in range(a, b):
            if seq.tokens[i].word == last:
                factor[i] *= 1.0 + 0.35 * sad
    factor *= np.exp(rng.normal(0, 0.06, len(seq)))
    wave, sr, times = speak_free(voice, seq, factor, noise_scale=tg["noise"], seed=seed, lead=0.0, tail=0.1)
    grid = np.array([0.0, wave.size / sr])
    shaped = apply_pitch(wave, sr, grid, np.full(2, tg["f0"]), np.full(2, tg["range"]))
    shaped = apply_energy(shaped, sr, grid, np.full(2, tg["energy"]), np.full(2, tg["tilt"]))
    n = int(np.ceil(natural.sum() * FPS))
    k, at = _frame_map(natural, times[:, 1] - times[:, 0], n)
    at = at + times[0, 0]
    dur_ratio = np.log(np.maximum(times[:, 1] - times[:, 0], 1e-3) / np.maximum(natural, 1e-3))
    x0 = np.stack(
        [dur_ratio[k], _f0_change(wave, shaped, sr, at), np.full(n, tg["energy"]), np.full(n, tg["tilt"])], axis=1
    )
    features, _ = phoneme_features(seq, natural, FPS, num_frames=n)
    return {
        "features": features.astype(np.float16),
        "x0": (x0 / X0_SCALE).astype(np.float32),
        "emotion": emotion.as_condition().numpy().astype(np.float32),
    }


def build_dataset(
    voice, num_examples: int, seed: int = 0, sentences: list[str] | None = None, log_every: int = 25
) -> list[dict]:
    rng = np.random.default_rng(seed)
    sentences = sentences or training_sentences()
    out, t0 = [], time.perf_counter()
    for i in range(num_examples):
        text = sentences[int(rng.integers(0, len(sentences)))]
        out.append(render_example(voice, text, random_emotion(rng), rng, seed=int(rng.integers(0, 2**31 - 1))))
        if log_every and (i + 1) % log_every == 0:
            print(f"[dubbing data] {i + 1}/{num_examples} examples, {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def save_examples(examples: list[dict], path: str | Path) -> None:
    arrays = {}
    for i, ex in enumerate(examples):
        for k, v in ex.items():
            arrays[f"{i}/{k}"] = v
    np.savez_compressed(path, **arrays)


def load_examples(path: str | Path) -> list[dict]:
    data = np.load(path)
    n = 1 + max(int(k.split("/")[0]) for k in data.files)
    return [{k: data[f"{i}/{k}"] for k in ("features", "x0", "emotion")} for i in range(n)]


@dataclass
class ProsodyData:
    """Windows of ``window`` frames from the examples for :func:`affectstudio.apps.training.flow.train_flow`."""

    examples: list[dict]
    window: int = 100

    def sample(self, batch_size: int, generator: torch.Generator) -> dict:
        idx = torch.randint(0, len(self.examples), (batch_size,), generator=generator).tolist()
        w = self.window
        x0 = torch.zeros(batch_size, w, 4)
        feats = torch.zeros(batch_size, w, 64)
        feats[:, :, 20] = 1.0  # padding reads as silence
        mask = torch.zeros(batch_size, w, dtype=torch.bool)
        emo = torch.zeros(batch_size, 12)
        for j, i in enumerate(idx):
            ex = self.examples[i]
            n = ex["x0"].shape[0]
            start = int(torch.randint(0, max(1, n - w + 1), (1,), generator=generator))
            m = min(w, n - start)
            x0[j, :m] = torch.from_numpy(ex["x0"][start : start + m])
            feats[j, :m] = torch.from_numpy(ex["features"][start : start + m].astype(np.float32))
            mask[j, :m] = True
            emo[j] = torch.from_numpy(ex["emotion"])
        return {"x0": x0, "content": {"phonemes": feats}, "emotion": emo, "mask": mask}


# ------------------------------------------------------------------------------------------- real data


def example_from_recording(
    voice, wave: np.ndarray, sr: int, text: str, emotion: EmotionEmbedding, language: str = "en"
) -> dict:
    """A training example from a real recording of ``text``: durations from a DTW between the base voice and
    the recording (MFCCs), F0 and energy changes per aligned frame."""
    import librosa
    from librosa.sequence import dtw

    from affectstudio.media import resample
    from affectstudio.models.dubbing.timeline import speak_free

    seq: PhonemeSequence = phonemize(text, language)
    natural = voice.natural_durations(seq)
    base, bsr, times = speak_free(voice, seq, np.ones(len(seq)), lead=0.0, tail=0.0)
    rec = resample(np.asarray(wave, np.float32), sr, bsr)
    hop = int(bsr / 100)
    mb = librosa.feature.mfcc(y=base, sr=bsr, n_mfcc=20, hop_length=hop)
    mr = librosa.feature.mfcc(y=rec, sr=bsr, n_mfcc=20, hop_length=hop)
    _, path = dtw(X=mb[1:], Y=mr[1:], metric="cosine")
    path = path[::-1]
    warp = lambda s: np.interp(s * 100, path[:, 0], path[:, 1]) / 100  # noqa: E731  base s → recording s
    ends = warp(times[:, 1])
    starts = warp(times[:, 0])
    rec_d = np.maximum(ends - starts, 1e-3)
    n = int(np.ceil(natural.sum() * FPS))
    k, at_base = _frame_map(natural, times[:, 1] - times[:, 0], n)
    at_base = at_base + times[0, 0]
    tb, fb = f0_track(base, bsr)
    tr, fr = f0_track(rec, bsr)
    fb_at = np.interp(at_base, tb, np.where(fb > 0, fb, np.nan))
    fr_at = np.interp(warp(at_base), tr, np.where(fr > 0, fr, np.nan))
    f0c = np.nan_to_num(np.clip(np.log2(fr_at / fb_at), -1, 1))
    rms = lambda x, t: np.sqrt(np.mean(x[max(0, int(t * bsr) - 480) : int(t * bsr) + 480] ** 2) + 1e-9)  # noqa: E731
    energy = np.array([20 * np.log10(rms(rec, warp(t)) / rms(base, t)) for t in at_base])
    energy = np.clip(energy - np.median(energy), -15, 15)
    x0 = np.stack([np.log(rec_d / np.maximum(times[:, 1] - times[:, 0], 1e-3))[k], f0c, energy, np.zeros(n)], axis=1)
    features, _ = phoneme_features(seq, natural, FPS, num_frames=n)
    return {
        "features": features.astype(np.float16),
        "x0": (x0 / X0_SCALE).astype(np.float32),
        "emotion": emotion.as_condition().numpy().astype(np.float32),
    }


def load_folder(voice, folder: str | Path, language: str = "en") -> list[dict]:
    """Examples from a folder of ``<name>.(wav|mp4)`` + ``<name>.txt`` (+ ``<name>.emotion``)."""
    from affectstudio.media import load_audio

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"training folder not found: {folder}")
    out = []
    for txt in sorted(folder.glob("*.txt")):
        media = next(
            (txt.with_suffix(s) for s in (".wav", ".flac", ".mp4", ".mkv") if txt.with_suffix(s).is_file()), None
        )
        if media is None:
            continue
        emo_file = txt.with_suffix(".emotion")
        emotion = parse_emotion_spec(emo_file.read_text().strip()) if emo_file.is_file() else EmotionEmbedding.neutral()
        if not isinstance(emotion, EmotionEmbedding):
            raise InputError(f"{emo_file}: one emotion per recording, not a curve")
        wave, sr = load_audio(media, sample_rate=22050)
        out.append(example_from_recording(voice, wave, sr, txt.read_text(encoding="utf-8").strip(), emotion, language))
    if not out:
        raise InputError(f"{folder} has no <name>.txt with a matching <name>.wav/.mp4: nothing to train on")
    return out
