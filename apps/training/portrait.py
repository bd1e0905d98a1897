"""Train the talking-portrait motion DiT (``affectstudio train portrait``), with accelerate.

Synthetic mode (default) trains on the data engine (:mod:`affectstudio.apps.training.portrait_data`), cached as an
npz under ``--work-dir`` (default ``~/.cache/affectstudio``). Real-data mode (``--data DIR``) reads talking-face
videos in the MEAD layout (``<speaker>/video/front/<emotion>/level_<k>/<nnn>.mp4``) or the CREMA-D layout
(``<actor>_<sentence>_<EMO>_<level>.flv|mp4``): emotion (and intensity) from the path, face-mesh tracks
(:func:`track_faces`) fitted to motion by :meth:`MotionCodec.fit`, audio features from the video's own track.

This module is the portrait's *data module* (random windows of ``window`` frames: :class:`WindowSampler`) on the
shared flow-matching trainer (:func:`affectstudio.apps.training.flow.train_flow`: accelerate, EMA, resumable,
progress bar, loss log). The output folder (default ``runs/portrait`` under the current directory) gets a full
:class:`TalkingPortraitPipeline` (``save_pretrained``), the loss curve and ``TRAINING.md``.

    affectstudio train portrait [--config configs/portrait_tiny.yaml] [--output DIR] [--steps N] [--data DIR]
    accelerate launch -m affectstudio.apps.training.portrait --data /data/MEAD --output runs/mead   # GPUs / DDP
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectstudio.errors import InputError

from .flow import plot_loss_curve
from .portrait_data import DIT_CHANNELS, FPS, load_or_build_dataset

__all__ = ["DIT_CHANNELS", "VideoItem", "build_parser", "load_config", "main", "parse_video_folder", "train"]

_CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgusted", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMA_LEVELS = {"LO": 0.33, "MD": 0.67, "HI": 1.0, "XX": 0.67}
_VIDEO_EXT = {".mp4", ".flv", ".avi", ".mov", ".mkv", ".webm"}


# -------------------------------------------------------------------------------------------------- config


def load_config(path: str | Path | None = None) -> dict:
    """The recipe (YAML): ``path`` or the bundled ``configs/portrait_tiny.yaml``."""
    import yaml

    text = (
        Path(path).read_text()
        if path is not None
        else resources.files("affectstudio.configs").joinpath("portrait_tiny.yaml").read_text()
    )
    cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict):
        raise InputError(f"training config {path} is not a YAML mapping")
    return cfg


def default_output() -> Path:
    """Training writes under the current directory, never into the installed package."""
    return Path("runs") / "portrait"


# ----------------------------------------------------------------------------------------------- real data


@dataclass
class VideoItem:
    path: Path
    emotion: str  # canonical label
    intensity: float
    speaker: str


def parse_video_folder(root: str | Path) -> list[VideoItem]:
    """Talking-face videos under ``root`` with their emotion from the MEAD or CREMA-D naming.

    MEAD: ``<speaker>/video/front/<emotion>/level_<k>/<nnn>.mp4`` (k = 1..3 → intensity k/3; only the frontal
    view is used). CREMA-D: ``<actor>_<sentence>_<EMO>_<level>.<ext>`` with EMO in ANG DIS FEA HAP NEU SAD and
    level LO/MD/HI/XX (→ 0.33/0.67/1.0/0.67). Other files are ignored; no video at all is an error.
    """
    from affectstudio.conditioning.emotion.embedding import canonical_label

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--data {root} is not a folder of talking-face videos")
    items = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in _VIDEO_EXT or not p.is_file():
            continue
        parts = p.relative_to(root).parts
        m = re.fullmatch(r"([^_]+)_([^_]+)_([A-Z]{3})_([A-Z]{2})", p.stem)
        if m and m.group(3) in _CREMA_EMOTIONS:
            items.append(VideoItem(p, _CREMA_EMOTIONS[m.group(3)], _CREMA_LEVELS.get(m.group(4), 0.67), m.group(1)))
            continue
        if len(parts) >= 6 and parts[-5] == "video" and parts[-4] == "front" and parts[-2].startswith("level_"):
            try:
                label = canonical_label(parts[-3])
                level = int(parts[-2].split("_", 1)[1])
            except (InputError, ValueError):
                continue
            items.append(VideoItem(p, label, float(np.clip(level / 3.0, 0.0, 1.0)), parts[-6]))
    if not items:
        raise InputError(
            f"no MEAD (<speaker>/video/front/<emotion>/level_<k>/*.mp4) or CREMA-D "
            f"(<actor>_<sentence>_<EMO>_<level>.mp4) videos found under {root}"
        )
    return items


def extract_video(item: VideoItem, codec) -> dict:
    """One real video → ``content (t, F)``, ``motion (t, C)``, ``emotion (t, 12)`` at 25 fps."""
    from affectstudio.conditioning.emotion.embedding import EmotionEmbedding
    from affectstudio.conditioning.espeak import SPEECH_SAMPLE_RATE
    from affectstudio.conditioning.face import track_faces
    from affectstudio.conditioning.speech_features import audio_features
    from affectstudio.conditioning.timeseries import resample_frames
    from affectstudio.media import load_audio
    from affectstudio.models.portrait import MOTION_CHANNELS
    from affectstudio.video_io import read_video

    frames, fps = read_video(item.path)
    lm = track_faces(frames)  # (t, 478, 3)
    neutral, _ = codec.estimate_neutral(lm[0])
    motion = codec.fit(torch.from_numpy(lm), neutral).numpy()  # (t, D)
    motion = motion[:, [MOTION_CHANNELS.index(c) for c in DIT_CHANNELS]]
    wave, sr = load_audio(item.path, sample_rate=SPEECH_SAMPLE_RATE)
    content = audio_features(wave, sr, fps=FPS)
    n = min(content.shape[0], int(math.floor(len(frames) / fps * FPS + 1e-6)) or 1)
    motion = resample_frames(motion, n, scale=fps / FPS) if abs(fps - FPS) > 1e-3 else motion[:n]
    emotion = EmotionEmbedding.from_label(item.emotion, item.intensity).as_condition(n).numpy()
    return {"content": content[:n], "motion": motion, "emotion": emotion}


def build_real_dataset(root: str | Path, log=print) -> dict:
    """All videos of ``root`` (see :func:`parse_video_folder`) concatenated like the synthetic dataset."""
    from affectstudio.errors import NoFaceError
    from affectstudio.models.portrait import MotionCodec

    codec = MotionCodec()
    clips, meta = [], []
    for item in parse_video_folder(root):
        try:
            c = extract_video(item, codec)
        except NoFaceError as e:
            log(f"skipping {item.path}: {e}")
            continue
        clips.append(c)
        meta.append({"path": str(item.path), "emotion": item.emotion, "intensity": item.intensity})
    if not clips:
        raise InputError(f"no usable video (with a face) under {root}")
    lengths = [c["content"].shape[0] for c in clips]
    return {
        "content": np.concatenate([c["content"] for c in clips]),
        "motion": np.concatenate([c["motion"] for c in clips]),
        "emotion": np.concatenate([c["emotion"] for c in clips]),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "meta": meta,
    }


# ------------------------------------------------------------------------------------------------ batches


class WindowSampler:
    """Random training windows ``(b, window, ·)`` from concatenated clips; short clips are padded and masked."""

    def __init__(self, data: dict, mean: np.ndarray, std: np.ndarray, window: int):
        self.content = torch.from_numpy(np.ascontiguousarray(data["content"], dtype=np.float32))
        self.x0 = torch.from_numpy(((data["motion"] - mean) / std).astype(np.float32))
        self.emotion = torch.from_numpy(np.ascontiguousarray(data["emotion"], dtype=np.float32))
        self.offsets = data["offsets"]
        self.lengths = np.diff(self.offsets)
        self.window = window
        # clips are drawn in proportion to how many windows they hold (at least one)
        w = np.maximum(self.lengths - window + 1, 1).astype(np.float64)
        self.prob = torch.from_numpy(w / w.sum())

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        n = self.window
        clips = torch.multinomial(self.prob, batch, replacement=True, generator=generator).numpy()
        u = torch.rand(batch, generator=generator).numpy()
        x0 = torch.zeros(batch, n, self.x0.shape[1])
        content = torch.zeros(batch, n, self.content.shape[1])
        emotion = torch.zeros(batch, n, self.emotion.shape[1])
        mask = torch.zeros(batch, n, dtype=torch.bool)
        for i, (c, ui) in enumerate(zip(clips, u)):
            length = int(self.lengths[c])
            start = int(self.offsets[c]) + int(ui * max(length - n + 1, 1))
            k = min(n, length)
            x0[i, :k] = self.x0[start : start + k]
            content[i, :k] = self.content[start : start + k]
            emotion[i, :k] = self.emotion[start : start + k]
            emotion[i, k:] = self.emotion[start + k - 1]
            mask[i, :k] = True
        return {
            "x0": x0,
            "content": {"audio": content},
            "emotion": emotion,
            "mask": mask,
            "content_mask": {"audio": mask},
        }


def motion_stats(motion: np.ndarray, std_floor: float) -> tuple[np.ndarray, np.ndarray]:
    mean = motion.mean(0).astype(np.float32)
    std = np.maximum(motion.std(0), std_floor).astype(np.float32)
    return mean, std


# --------------------------------------------------------------------------------------------------- train


def train(cfg: dict, data: dict, heldout: dict | None = None, output_dir: str | Path | None = None, log=print) -> dict:
    """The portrait data module on the shared trainer. Returns ``{"model": EMA AffectDiT, "mean", "std",
    "result": FlowTrainResult}``; the resumable training state and loss log go to ``output_dir``."""
    from affectstudio.conditioning.speech_features import FEATURE_DIM
    from affectstudio.models.dit import AffectDiT

    from .flow import train_flow

    torch.manual_seed(int(cfg["seed"]))
    mean, std = motion_stats(data["motion"], float(cfg.get("std_floor", 0.02)))
    window = int(cfg["window"])
    model = AffectDiT.from_preset(
        cfg.get("preset", "tiny"), in_channels=len(DIT_CHANNELS), content_streams={"audio": FEATURE_DIM}
    )
    result = train_flow(
        model,
        WindowSampler(data, mean, std, window),
        cfg,
        output_dir or default_output(),
        heldout=WindowSampler(heldout, mean, std, window) if heldout is not None else None,
        log=log,
    )
    return {"model": result.model, "mean": mean, "std": std, "result": result}


# -------------------------------------------------------------------------------------------------- output


def save_pipeline(out: Path, dit, mean, std, cfg: dict) -> bool:
    """Write the full :class:`TalkingPortraitPipeline` to ``out``; also ``dit/`` + ``motion_stats.json`` (the
    DiT and its normalisation alone). Returns False (after saving the DiT part) when the pipeline module
    cannot be imported in this installation — then :func:`export_pipeline` finishes the job later."""
    from affectstudio.models.flow import make_scheduler
    from affectstudio.models.portrait import MotionCodec, PortraitRenderer

    out.mkdir(parents=True, exist_ok=True)
    stats: dict[str, Any] = {
        "motion_channels": list(DIT_CHANNELS),
        "motion_mean": [float(v) for v in mean],
        "motion_std": [float(v) for v in std],
        "fps": FPS,
        "window": int(cfg.get("pipeline_window", cfg["window"])),
        "overlap": int(cfg.get("pipeline_overlap", 20)),
    }
    (out / "motion_stats.json").write_text(json.dumps(stats, indent=1))
    try:
        from affectstudio.pipelines.portrait import TalkingPortraitPipeline
    except ImportError as e:
        copy.deepcopy(dit).to(torch.float16).save_pretrained(str(out / "dit"))
        print(
            f"warning: TalkingPortraitPipeline is not importable ({e}); saved dit/ and motion_stats.json only — "
            f"run `affectstudio train portrait --export {out}` once it is",
            flush=True,
        )
        return False
    dit = copy.deepcopy(dit).to(torch.float16)  # half-precision weights keep the bundled checkpoint small
    pipe = TalkingPortraitPipeline(
        dit=dit, scheduler=make_scheduler("flow_euler"), codec=MotionCodec(), renderer=PortraitRenderer(),
        motion_channels=stats["motion_channels"], motion_mean=stats["motion_mean"], motion_std=stats["motion_std"],
        fps=FPS, window=stats["window"], overlap=stats["overlap"],
    )  # fmt: skip
    pipe.save_pretrained(str(out))
    return True


def export_pipeline(folder: str | Path) -> None:
    """Turn ``folder/dit`` + ``folder/motion_stats.json`` (a run saved before the pipeline existed) into the
    full pipeline in ``folder``."""
    from affectstudio.models.dit import AffectDiT

    folder = Path(folder)
    stats = json.loads((folder / "motion_stats.json").read_text())
    dit = AffectDiT.from_pretrained(str(folder / "dit"), torch_dtype=torch.float32)
    cfg = {"window": stats["window"], "pipeline_window": stats["window"], "pipeline_overlap": stats["overlap"]}
    if not save_pipeline(folder, dit, stats["motion_mean"], stats["motion_std"], cfg):
        raise InputError("TalkingPortraitPipeline still cannot be imported; nothing exported")


def save_outputs(out: Path, result: dict, cfg: dict, data_desc: str, argv: list[str], log=print) -> None:
    """The pipeline (:func:`save_pipeline`), the loss curve (JSON + PNG) and ``TRAINING.md``."""
    full = save_pipeline(out, result["model"], result["mean"], result["std"], cfg)
    n_params = sum(p.numel() for p in result["model"].parameters())
    run = result["result"]
    (out / "loss_curve.json").write_text(json.dumps(run.curve, indent=1))
    plot_loss_curve(run.curve, out / "loss_curve.png")
    ho = [c for c in run.curve if "heldout_loss" in c]
    ho_final = ho[-1]["heldout_loss"] if ho else None
    lines = [
        "# Talking-portrait motion DiT — training record",
        "",
        f"Command: `affectstudio train portrait {' '.join(argv)}`".rstrip(),
        "",
        f"- data: {data_desc}",
        f"- model: AffectDiT preset `{cfg.get('preset', 'tiny')}`, {n_params:,} "
        f"parameters; in_channels {len(DIT_CHANNELS)} (motion_channels in model_index.json), content stream `audio`",
        f"- DiT channels (order): {', '.join(DIT_CHANNELS)}; blink and gaze are added by the pipeline",
        f"- recipe: {json.dumps({k: v for k, v in cfg.items()})}",
        f"- steps {cfg['steps']}, batch {cfg['batch_size']} windows of {cfg['window']} frames, seed {cfg['seed']}",
        f"- final training loss (mean of the last {cfg.get('log_every', 50)} steps): {run.final_loss:.4f}"
        + (f"; held-out loss (EMA weights, no dropout): {ho_final:.4f}" if ho_final is not None else ""),
        f"- wall time: {run.wall_s / 60:.1f} min training on {run.device} ({torch.get_num_threads()} threads)",
        "- loss curve: loss_curve.json, loss_curve.png",
        "",
    ]
    (out / "TRAINING.md").write_text("\n".join(lines))
    log(f"saved {'the pipeline' if full else 'dit/ + motion_stats.json'} to {out}")


# ---------------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="affectstudio train portrait", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="recipe YAML (default: the bundled configs/portrait_tiny.yaml)")
    p.add_argument("--output", "-o", help="output folder (default: runs/portrait under the current directory)")
    p.add_argument("--data", help="folder of talking-face videos (MEAD or CREMA-D layout); default: synthetic data")
    p.add_argument("--work-dir", default=str(Path.home() / ".cache" / "affectstudio"), help="dataset cache folder")
    p.add_argument("--num-clips", type=int, help="synthetic clips (overrides the recipe)")
    p.add_argument("--heldout-clips", type=int, help="held-out synthetic clips (overrides the recipe)")
    p.add_argument("--steps", type=int, help="training steps (overrides the recipe)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--window", type=int, help="training window in frames")
    p.add_argument("--log-every", type=int)
    p.add_argument("--workers", type=int, default=2, help="processes for the synthetic data engine")
    p.add_argument("--export", metavar="DIR", help="only turn DIR/dit + DIR/motion_stats.json into the full pipeline")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; 1 is faster on a busy CPU)")
    return p


def main(argv: list[str] | None = None) -> dict:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export:
        export_pipeline(args.export)
        print(f"exported the pipeline into {args.export}")
        return {"output": Path(args.export)}
    cfg = load_config(args.config)
    for key in ("num_clips", "heldout_clips", "steps", "batch_size", "lr", "seed", "window", "log_every"):
        v = getattr(args, key)
        if v is not None:
            cfg[key] = v
    out = Path(args.output) if args.output else default_output()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    heldout = None
    if args.data:
        data = build_real_dataset(args.data)
        minutes = data["content"].shape[0] / FPS / 60
        desc = f"{len(data['meta'])} real videos from {args.data} ({minutes:.1f} min at 25 fps)"
    else:
        data = load_or_build_dataset(int(cfg["num_clips"]), int(cfg["data_seed"]), Path(args.work_dir), args.workers)
        if int(cfg.get("heldout_clips", 0)) > 0:
            heldout = load_or_build_dataset(
                int(cfg["heldout_clips"]), int(cfg["data_seed"]) + 1, Path(args.work_dir), args.workers
            )
        desc = (
            f"{cfg['num_clips']} synthetic clips (data seed {cfg['data_seed']}, "
            f"{data['content'].shape[0] / FPS / 60:.1f} min at 25 fps; apps/training/portrait_data.py), "
            f"held out: {cfg.get('heldout_clips', 0)} clips of data seed {int(cfg['data_seed']) + 1}"
        )
    print(f"data ready in {time.time() - t0:.0f} s: {desc}", flush=True)
    log = lambda s: print(s, flush=True)  # noqa: E731
    result = train(cfg, data, heldout, output_dir=out, log=log)
    if result["result"].is_main_process:
        save_outputs(out, result, cfg, desc, argv, log=log)
    result["output"] = out
    return result


if __name__ == "__main__":
    main()
