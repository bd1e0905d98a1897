"""Train the bundled speech emotion head (``assets/emotion_speech``), CPU, seeded, a few minutes.

Data engine:
* espeak-ng speech (conditioning.speech.synthesize) over 6 English accents × 12 speaker variants, random
  base rate / pitch / range / volume per clip (the "speaker"), rendered with each emotion's prosody preset
  at a random intensity, 60 % of clips augmented (reverb, noise at 10–35 dB SNR, gain);
* real human speech (optional, ``--real-dir``): calm reading chunks labelled neutral, plus pyworld (WORLD)
  resyntheses of them with each preset's prosody change (F0 level/range, tempo, level and vocal-effort
  spectral tilt), labelled with that emotion and intensity.

Targets: soft category probs (intensity × label + (1 - intensity) × neutral), VAD = intensity × the label's
anchor, intensity. The head is trained on 96 eGeMAPS + prosody features (see conditioning.emotion.speech).

    python -m affectstudio.apps.training.emotion_speech [--output DIR] [--real-dir DIR] [--eval-wav WAV]

``--real-dir`` holds wavs of calm read speech (the moonshine-voice wheel's beckett.wav and clone-test.wav
were used for the bundled head); ``--eval-wav`` is a held-out real recording for the arousal check.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...conditioning.emotion.embedding import EMOTIONS, VAD_ANCHORS
from ...conditioning.emotion.speech import (
    FEATURE_SAMPLE_RATE,
    SpeechEmotionEncoder,
    speech_emotion_features,
)
from ...conditioning.espeak import PROSODY_PRESETS, Prosody, prosody_for, synthesize
from ...conditioning.speech_features import augment, speech_activity
from ...media import load_audio, resample

TEXTS = (
    "I can't believe you did that to me after everything we went through.",
    "The train leaves at seven, so we should pack our bags tonight.",
    "Please put the books back on the shelf when you are finished.",
    "We won the game! Everyone was cheering in the streets.",
    "Nobody came to the party, and the cake is still on the table.",
    "Get out of my house right now and never come back.",
    "There is something moving in the dark behind the door.",
    "That smell from the fridge is absolutely disgusting.",
    "Wait, you bought a horse? When did this happen?",
    "Oh, so that is your idea of a good plan. How clever.",
    "The meeting has been moved to Thursday afternoon.",
    "My grandmother planted these roses forty years ago.",
    "Turn left at the bridge and follow the river to the mill.",
    "I waited for your call all night, but the phone never rang.",
    "How dare you speak to her like that in front of everyone!",
    "Did you hear that noise? I think someone is inside.",
    "The results came back and the numbers look very good.",
    "He sold the old car and bought a small boat instead.",
    "Stop touching my things, I have told you a hundred times.",
    "It's snowing! Look at the garden, it's completely white.",
    "The kitchen window faces the hills to the north.",
    "I suppose you think you're better than the rest of us.",
    "Maybe tomorrow will be a little easier for all of us.",
    "Quick, hide the letters before they open the gate.",
)
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "klatt")
# held out from training to measure generalisation to unseen speakers
VAL_VARIANTS = ("m3", "f4")


def _targets(label: str, intensity: float) -> tuple[np.ndarray, np.ndarray, float]:
    probs = np.zeros(len(EMOTIONS), dtype=np.float32)
    probs[EMOTIONS.index(label)] += intensity
    probs[0] += 1.0 - intensity
    vad = intensity * np.asarray(VAD_ANCHORS[label], dtype=np.float32)
    return probs, vad, float(intensity if label != "neutral" else 0.0)


def espeak_clip(rng: np.random.Generator, label: str, intensity: float, variant: str) -> np.ndarray:
    """One espeak-ng rendering at 16 kHz with a random speaker (accent, variant, base prosody)."""
    base = Prosody(
        rate_wpm=float(rng.uniform(140, 205)),
        pitch=float(rng.uniform(30, 70)),
        pitch_range=float(rng.uniform(35, 65)),
        volume=float(rng.uniform(75, 120)),
    )
    p = prosody_for(label, intensity, base)
    text = TEXTS[int(rng.integers(len(TEXTS)))]
    voice = f"{ACCENTS[int(rng.integers(len(ACCENTS)))]}+{variant}"
    s = synthesize(text, voice=voice, **p.as_kwargs())
    return resample(s.wave, s.sample_rate, FEATURE_SAMPLE_RATE)


def world_restyle(
    wave: np.ndarray, sr: int, semitones: float = 0.0, range_scale: float = 1.0, tempo: float = 1.0,
    gain_db: float = 0.0, tilt_db: float = 0.0,
) -> np.ndarray:  # fmt: skip
    """WORLD (pyworld) resynthesis with a new F0 level (``semitones``) and range (``range_scale`` around the
    utterance's median log-F0), ``tempo`` (>1 faster), level (``gain_db``) and vocal-effort spectral tilt
    (``tilt_db`` more energy at 4 kHz relative to 0 Hz)."""
    import pyworld

    x = np.asarray(wave, dtype=np.float64)
    f0, t = pyworld.dio(x, sr, f0_floor=60.0, f0_ceil=500.0, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, t, sr)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    voiced = f0 > 0
    if voiced.any():
        lf = np.log(f0[voiced])
        med = np.median(lf)
        f0[voiced] = np.exp(med + range_scale * (lf - med) + semitones * np.log(2) / 12)
    n_out = max(2, int(round(len(f0) / tempo)))
    src = np.linspace(0, len(f0) - 1, n_out)
    idx = np.clip(np.rint(src).astype(int), 0, len(f0) - 1)
    f0, sp, ap = f0[idx], sp[idx], ap[idx]
    freqs = np.linspace(0, sr / 2, sp.shape[1])
    sp = sp * (10 ** (tilt_db * np.minimum(freqs / 4000.0, 1.5) / 10))[None, :]
    y = pyworld.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr, 5.0)
    y = y * 10 ** (gain_db / 20)
    peak = np.abs(y).max()
    if peak > 0.99:
        y = y * (0.99 / peak)
    return y.astype(np.float32)


def preset_restyle(wave: np.ndarray, sr: int, label: str, intensity: float) -> np.ndarray:
    """The prosody preset of ``label`` applied to a real recording through WORLD."""
    p = PROSODY_PRESETS[label]
    vol = 1 + intensity * (p["volume"] - 1)
    return world_restyle(
        wave,
        sr,
        semitones=intensity * p["pitch"] * 0.15,  # espeak pitch units → semitones (25 units ≈ 4 st)
        range_scale=float(np.clip(1 + intensity * p["range"] / 50.0, 0.3, 2.5)),
        tempo=1 + intensity * (p["rate"] - 1),
        gain_db=20 * np.log10(vol),
        tilt_db=12 * np.log2(vol),  # louder voices are brighter (vocal effort)
    )


def real_chunks(wave: np.ndarray, sr: int, seconds: float = 3.5) -> list[np.ndarray]:
    n = int(seconds * sr)
    out = []
    for a in range(0, max(1, wave.size - n // 2), n):
        seg = wave[a : a + n]
        if seg.size >= n // 2 and speech_activity(seg, sr, 50.0).mean() > 0.3:
            out.append(seg)
    return out


def build_dataset(seed: int, n_espeak: int, real_dir: Path | None, log=print):
    rng = np.random.default_rng(seed)
    X, P, V, I, L, is_val = [], [], [], [], [], []

    def add(wave, label, intensity, val):
        probs, vad, inten = _targets(label, intensity)
        X.append(speech_emotion_features(wave, check=False))
        P.append(probs), V.append(vad), I.append(inten), L.append(EMOTIONS.index(label)), is_val.append(val)

    t0 = time.perf_counter()
    for k in range(n_espeak):
        label = EMOTIONS[k % len(EMOTIONS)]
        intensity = 0.0 if label == "neutral" else float(rng.uniform(0.4, 1.0))
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        wave = espeak_clip(rng, label, intensity, variant)
        if rng.random() < 0.6:
            wave = augment(wave, FEATURE_SAMPLE_RATE, rng)
        add(wave, label, intensity, variant in VAL_VARIANTS)
    log(f"espeak clips: {n_espeak} in {time.perf_counter() - t0:.1f}s")
    if real_dir is not None:
        t0 = time.perf_counter()
        files = sorted(real_dir.glob("*.wav"))
        n_real = 0
        for f in files:
            wave, _ = load_audio(f, sample_rate=FEATURE_SAMPLE_RATE)
            for seg in real_chunks(wave, FEATURE_SAMPLE_RATE):
                add(seg, "neutral", 0.0, False)
                n_real += 1
                for label in EMOTIONS[1:]:
                    intensity = float(rng.uniform(0.5, 1.0))
                    w = preset_restyle(seg, FEATURE_SAMPLE_RATE, label, intensity)
                    if rng.random() < 0.5:
                        w = augment(w, FEATURE_SAMPLE_RATE, rng)
                    add(w, label, intensity, False)
                    n_real += 1
        log(f"real clips (incl. WORLD restyles): {n_real} from {len(files)} files in {time.perf_counter() - t0:.1f}s")

    def as_t(a: list, dt: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.stack(a) if isinstance(a[0], np.ndarray) else np.array(a), dtype=dt)

    return as_t(X), as_t(P), as_t(V), as_t(I), as_t(L, torch.long), torch.as_tensor(is_val)


def train(
    seed: int = 0,
    n_espeak: int = 480,
    real_dir: Path | None = None,
    epochs: int = 150,
    cache: Path | None = None,
    hidden_dim: int = 32,
    weight_decay: float = 0.05,
    input_noise: float = 0.3,
    log=print,
) -> tuple[SpeechEmotionEncoder, dict]:
    """Build the data (or load it from ``cache``, an .npz written by a previous run with the same settings)
    and fit the head; returns the model and train / unseen-speaker validation metrics."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a tiny MLP: threads only add contention
    if cache is not None and cache.is_file():
        d = np.load(cache)
        X, P, V, I = (torch.as_tensor(d[k]) for k in ("X", "P", "V", "I"))
        L, is_val = torch.as_tensor(d["L"]), torch.as_tensor(d["is_val"])
        log(f"loaded {len(X)} cached feature rows from {cache}")
    else:
        X, P, V, I, L, is_val = build_dataset(seed, n_espeak, real_dir, log)
        if cache is not None:
            np.savez(cache, X=X.numpy(), P=P.numpy(), V=V.numpy(), I=I.numpy(), L=L.numpy(), is_val=is_val.numpy())
    tr = ~is_val
    model = SpeechEmotionEncoder(hidden_dim=hidden_dim, dropout=0.3)
    mean, std = X[tr].mean(0), X[tr].std(0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    model.feature_mean.copy_(mean)
    model.feature_std.copy_(std)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    idx = torch.nonzero(tr).squeeze(1)
    for _epoch in range(epochs):
        model.train()
        perm = idx[torch.randperm(idx.numel(), generator=g)]
        for b in perm.split(128):
            x = X[b] + input_noise * std * torch.randn(X[b].shape, generator=g)  # feature jitter
            out = model(x)
            loss = (
                -(P[b] * F.log_softmax(out["logits"], -1)).sum(-1).mean()
                + 2.0 * F.mse_loss(out["vad"], V[b])
                + F.mse_loss(out["intensity"], I[b])
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    metrics = {}
    with torch.no_grad():
        for name, m in (("train", tr), ("val_unseen_speakers", is_val)):
            if m.sum() == 0:
                continue
            out = model(X[m])
            acc = (out["logits"].argmax(-1) == L[m]).float().mean().item()
            corr = [float(np.corrcoef(out["vad"][:, j].numpy(), V[m][:, j].numpy())[0, 1]) for j in range(3)]
            metrics[name] = {
                "n": int(m.sum()),
                "accuracy_8way": round(acc, 3),
                "corr_valence": round(corr[0], 3),
                "corr_arousal": round(corr[1], 3),
                "corr_dominance": round(corr[2], 3),
                "corr_intensity": round(float(np.corrcoef(out["intensity"].numpy(), I[m].numpy())[0, 1]), 3),
            }
    return model, metrics


def arousal_check(model: SpeechEmotionEncoder, eval_wav: Path | None, seed: int = 0) -> dict:
    """Arousal of calm vs excited renderings: espeak sad/calm vs neutral vs angry/excited, and (with
    ``eval_wav``) a held-out real recording vs WORLD restyles of it (calm: narrower/lower/slower/quieter;
    excited: wider range, higher, faster, louder and brighter)."""
    text = "I told you already, the keys are on the kitchen table next to the window."
    res = {}
    for label, inten in (("sad", 1.0), ("neutral", 0.0), ("happy", 1.0), ("angry", 1.0)):
        s = synthesize(text, voice="en-us+m3", **prosody_for(label, inten).as_kwargs())
        res[f"espeak_{label}"] = round(float(model.encode((s.wave, s.sample_rate)).arousal), 3)
    if eval_wav is not None:
        wave, _ = load_audio(eval_wav, sample_rate=FEATURE_SAMPLE_RATE)
        wave = wave[: 10 * FEATURE_SAMPLE_RATE]
        res["real"] = round(float(model.encode((wave, FEATURE_SAMPLE_RATE)).arousal), 3)
        calm = world_restyle(
            wave, FEATURE_SAMPLE_RATE, semitones=-2, range_scale=0.5, tempo=0.85, gain_db=-6, tilt_db=-4
        )
        excited = world_restyle(
            wave, FEATURE_SAMPLE_RATE, semitones=3, range_scale=1.8, tempo=1.15, gain_db=4, tilt_db=6
        )
        res["real_world_calm"] = round(float(model.encode((calm, FEATURE_SAMPLE_RATE)).arousal), 3)
        res["real_world_resynth_unchanged"] = round(
            float(model.encode((world_restyle(wave, FEATURE_SAMPLE_RATE), FEATURE_SAMPLE_RATE)).arousal), 3
        )
        res["real_world_excited"] = round(float(model.encode((excited, FEATURE_SAMPLE_RATE)).arousal), 3)
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path("runs/emotion_speech"),
        help="output folder (default: runs/emotion_speech under the current directory)",
    )
    ap.add_argument("--real-dir", type=Path, default=None, help="folder of calm read-speech wavs (optional)")
    ap.add_argument("--eval-wav", type=Path, default=None, help="held-out real recording for the arousal check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-espeak", type=int, default=480)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (.npz): written once, then reused")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model, metrics = train(args.seed, args.n_espeak, args.real_dir, args.epochs, args.cache)
    print(json.dumps(metrics, indent=1))
    print("arousal check:", json.dumps(arousal_check(model, args.eval_wav, args.seed)))
    out = args.output
    model.save_pretrained(str(out))
    print(f"saved to {out} in {time.perf_counter() - t0:.1f}s total")


if __name__ == "__main__":
    main()
