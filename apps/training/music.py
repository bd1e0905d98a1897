"""``affectstudio train music``: train the Music DiT (per-bar rolls) and save a ``VideoMusicPipeline``.

    affectstudio train music                          # the music21 corpus (Bach chorales + folk tunes)
    affectstudio train music --data midi/ [--labels labels.csv] --steps 20000 --output runs/music

The DiT is ``AffectDiT.from_preset("music")`` (48 roll channels per bar, a ``bars`` content stream of 16
plan features, a per-bar emotion curve) trained by the shared flow trainer (:func:`train_flow`: accelerate,
EMA, resumable, loss log). The output folder is a complete pipeline (``VideoMusicPipeline.from_pretrained(
out)``) plus ``eval.json`` (held-out loss and corpus statistics) and ``loss_curve.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from affectstudio.errors import InputError


def build_data(data: str | None, labels: str | None, window: int, log=print):
    from affectstudio.apps.training.music_data import MusicBarData, extract_corpus, extract_midi_folder, read_labels

    if data is None:
        if labels is not None:
            raise InputError("--labels goes with --data (a folder of MIDI files)")
        pieces = extract_corpus(log=log)
    else:
        if not Path(data).is_dir():
            raise InputError(f"--data must be a folder of MIDI files, got {data}")
        if labels is not None and not Path(labels).is_file():
            raise InputError(f"--labels file not found: {labels}")
        pieces = extract_midi_folder(data, read_labels(labels) if labels else None)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(pieces))
    n_held = max(1, len(pieces) // 20) if len(pieces) >= 10 else 0
    held = [pieces[i] for i in order[:n_held]]
    train = [pieces[i] for i in order[n_held:]]
    return pieces, MusicBarData(train, window), (MusicBarData(held, window, augment=False) if held else None)


def train_music(
    out: str | Path,
    data: str | None = None,
    labels: str | None = None,
    steps: int = 3000,
    batch_size: int = 32,
    window: int = 16,
    lr: float = 1e-3,
    preset: str = "music",
    log=print,
    progress: bool = True,
):
    import torch

    from affectstudio.apps.training.flow import train_flow
    from affectstudio.apps.training.music_data import corpus_statistics
    from affectstudio.models.dit import AffectDiT
    from affectstudio.models.flow import make_scheduler
    from affectstudio.models.music.codec import BAR_CHANNELS, PLAN_CHANNELS
    from affectstudio.pipelines.music import VideoMusicPipeline

    out = Path(out)
    pieces, train, held = build_data(data, labels, window, log)
    log(f"{len(pieces)} pieces, {sum(len(p.bars) for p in pieces)} bars ({len(train.pieces)} for training)")
    torch.manual_seed(0)
    model = AffectDiT.from_preset(preset, in_channels=BAR_CHANNELS, content_streams={"bars": PLAN_CHANNELS})
    recipe = {
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "warmup_steps": min(100, steps // 10),
        "log_every": max(1, min(50, steps // 10)),
        "checkpoint_every": max(1, steps // 4),
        "heldout_every": max(1, steps // 4),
        "ema_decay": 0.995 if steps >= 1000 else 0.9,
    }
    result = train_flow(model, train, recipe, out / "run", heldout=held, progress=progress, log=log)
    pipe = VideoMusicPipeline(dit=result.model.to("cpu"), scheduler=make_scheduler())
    pipe.save_pretrained(out)
    stats = {
        "pieces": len(pieces),
        "bars": int(sum(len(p.bars) for p in pieces)),
        "steps": steps,
        "batch_size": batch_size,
        "final_loss": result.final_loss,
        "wall_s": round(result.wall_s, 1),
        "heldout_loss": next((c["heldout_loss"] for c in reversed(result.curve) if "heldout_loss" in c), None),
        "corpus": corpus_statistics(pieces),
    }
    (out / "eval.json").write_text(json.dumps(stats, indent=2) + "\n")
    if (out / "run" / "loss_curve.png").exists():
        (out / "loss_curve.png").write_bytes((out / "run" / "loss_curve.png").read_bytes())
    log(f"saved the pipeline to {out} (final loss {result.final_loss:.4f})")
    return stats


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="affectstudio train music", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="folder of MIDI files (default: the music21 corpus)")
    ap.add_argument("--labels", help="CSV of 'file,emotion' rows for the MIDI files (optional)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--window", type=int, default=16, help="bars per training example")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--output", "-o", default="runs/video_music", help="output folder (a complete pipeline)")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.window < 4:
        raise InputError("--steps and --batch-size must be ≥ 1 and --window ≥ 4")
    train_music(args.output, args.data, args.labels, args.steps, args.batch_size, args.window, args.lr)
