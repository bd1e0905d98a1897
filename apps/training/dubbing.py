"""``affectstudio train dubbing``: train the Prosody DiT with the shared flow trainer and save a DubbingPipeline.

    affectstudio train dubbing --synthetic 360 --steps 2000 --output runs/dubbing
    affectstudio train dubbing --data my_folder/ --synthetic 0 --init bundled --steps 500

``--data`` folders hold ``<name>.wav|.mp4`` + ``<name>.txt`` (+ ``<name>.emotion``: a label or spec); see
:mod:`affectstudio.apps.training.dubbing_data`. Synthetic examples are cached in ``<output>/synthetic.npz`` (reused
when it holds enough). The pipeline (voices + DiT + scheduler) is written to ``<output>/pipeline``; copy it to
``assets/dubbing`` to make it the bundled default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from affectstudio.errors import InputError

__all__ = ["main", "make_prosody_dit", "train_dubbing"]


def make_prosody_dit():
    from affectstudio.models.dit import AffectDiT

    return AffectDiT.from_preset("dubbing", content_streams={"phonemes": 64}, speaker_dim=0)


def train_dubbing(
    out: str | Path,
    synthetic: int = 360,
    data: list[str] | None = None,
    steps: int = 2000,
    batch_size: int = 16,
    init: str = "scratch",
    seed: int = 0,
    until: int | None = None,
    language: str = "en",
    window: int = 100,
    threads: int = 0,
) -> Path:
    """Build/load the data, train, save the pipeline; returns the pipeline folder."""
    import torch

    from affectstudio.apps.training.dubbing_data import (
        ProsodyData,
        build_dataset,
        load_examples,
        load_folder,
        save_examples,
    )
    from affectstudio.apps.training.flow import train_flow
    from affectstudio.models.dubbing.espeak import EspeakVoice
    from affectstudio.models.dubbing.piper import PiperVoice
    from affectstudio.models.flow import make_scheduler
    from affectstudio.pipelines.dubbing import DubbingPipeline

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)  # on a crowded CPU one thread per process beats contended OpenMP pools
    voice = PiperVoice()
    examples: list[dict] = []
    cache = out / "synthetic.npz"
    if synthetic > 0:
        cached = load_examples(cache) if cache.is_file() else []
        if len(cached) >= synthetic:
            examples += cached[:synthetic]
        else:
            fresh = build_dataset(voice, synthetic, seed=seed)
            save_examples(fresh, cache)
            examples += fresh
    for folder in data or []:
        examples += load_folder(voice, folder, language)
    if len(examples) < 2:
        raise InputError("need at least two training examples (--synthetic N and/or --data FOLDER)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(examples))
    n_held = max(1, len(examples) // 12)
    held = [examples[i] for i in order[:n_held]]
    train = [examples[i] for i in order[n_held:]]
    if init == "bundled":
        model = DubbingPipeline.from_pretrained().prosody_dit
        if model is None:
            raise InputError("the bundled dubbing pipeline has no Prosody DiT to start from: use --init scratch")
    else:
        model = make_prosody_dit()
    recipe = {
        "steps": steps,
        "batch_size": batch_size,
        "lr": 2e-3,
        "warmup_steps": 50,
        "seed": seed,
        "log_every": 50,
        "checkpoint_every": 250,
        "heldout_every": 250,
        "p_drop_content": 0.1,
        "p_drop_emotion": 0.15,
    }
    result = train_flow(model, ProsodyData(train, window), recipe, out, heldout=ProsodyData(held, window), until=until)
    dit = result.model.to("cpu").eval()
    pipe = DubbingPipeline(
        voice=voice, fallback_voice=EspeakVoice(), prosody_dit=dit, scheduler=make_scheduler("flow_euler")
    )
    pipe.save_pretrained(out / "pipeline")
    (out / "pipeline" / "TRAINING.json").write_text(
        json.dumps(
            {
                "examples": len(examples),
                "train": len(train),
                "heldout": len(held),
                "steps": steps,
                "batch_size": batch_size,
                "final_loss": result.final_loss,
                "wall_s": result.wall_s,
                "synthetic": synthetic,
                "data": data or [],
                "torch": torch.__version__,
            },
            indent=1,
        )
    )
    return out / "pipeline"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="affectstudio train dubbing", description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", "-o", default="runs/dubbing", help="output folder (resumable)")
    ap.add_argument("--synthetic", type=int, default=360, help="synthetic emotional renders of the base voice")
    ap.add_argument("--data", action="append", default=[], help="folder of <name>.wav|.mp4 + <name>.txt (+ .emotion)")
    ap.add_argument("--language", default="en")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--init", choices=("scratch", "bundled"), default="scratch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--until", type=int, default=None, help="stop after this step (resume later)")
    ap.add_argument("--window", type=int, default=100, help="training window in frames (25 fps)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args(argv)
    path = train_dubbing(
        args.output,
        args.synthetic,
        args.data,
        args.steps,
        args.batch_size,
        args.init,
        args.seed,
        args.until,
        args.language,
        args.window,
        args.threads,
    )
    print(f"wrote {path}")
