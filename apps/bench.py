"""``affectstudio bench``: speed figures as JSON. Model load is always reported apart from the work itself.

Numbers are medians over a few repeats of the same work in one process, so ratios within one run compare
fairly on a noisy shared machine; absolute numbers depend on the machine (reported under "machine").
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from typing import Callable

import torch

from affectstudio.assets import asset_path
from affectstudio.errors import InputError


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"unknown device {device!r}: use cpu, cuda or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but this machine has no CUDA GPU (use --device cpu)")
    return torch.device(device)


def timed(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_emotion(device: torch.device) -> dict:
    from affectstudio.conditioning import emotion as E
    from affectstudio.media import load_audio

    sentences = [s for s in asset_path("samples", "sentences.txt").read_text().splitlines() if s.strip()]
    batch = (sentences * 8)[:64]
    t0 = time.perf_counter()
    text_enc = E.TextEmotionEncoder.from_pretrained()
    text_load = time.perf_counter() - t0
    text_s = timed(lambda: text_enc.encode(batch))

    speech_file = asset_path("samples", "speech.wav")
    wave, sr = load_audio(speech_file)
    t0 = time.perf_counter()
    speech_enc = E.SpeechEmotionEncoder.from_pretrained()
    speech_load = time.perf_counter() - t0
    speech_s = timed(lambda: speech_enc.encode((wave, sr)))

    face_file = asset_path("samples", "portrait.jpg")
    t0 = time.perf_counter()
    face_enc = E.FaceEmotionEncoder.from_pretrained()
    face_load = time.perf_counter() - t0
    face_s = timed(lambda: face_enc.encode(face_file))
    return {
        "device": "cpu",  # the encoders are CPU models by design
        "text": {"batch": len(batch), "ms_per_sentence": 1000 * text_s / len(batch), "load_s": text_load},
        "speech": {"clip_s": len(wave) / sr, "ms_per_clip": 1000 * speech_s, "real_time_factor": speech_s / (len(wave) / sr),
                   "load_s": speech_load},
        "face": {"image": face_file.name, "ms_per_image": 1000 * face_s, "load_s": face_load},
        "peak_rss_mb": peak_rss_mb(),
    }


BENCHMARKS: dict[str, Callable[[torch.device], dict]] = {"emotion": bench_emotion}


def run_bench(device: str = "auto", names: list[str] | None = None) -> dict:
    dev = resolve_device(device)
    names = list(BENCHMARKS) if not names or names == ["all"] else names
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise InputError(f"unknown benchmark {', '.join(unknown)}; choose from: {', '.join(BENCHMARKS)}")
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "device": str(dev), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None},
    }
    for name in names:
        result[name] = BENCHMARKS[name](dev)
    return result
