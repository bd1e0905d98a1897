"""Train the talking-portrait motion DiT (``affectstudio train portrait``), with accelerate.

Synthetic mode (default) trains on the data engine (:mod:`affectstudio.apps.train.portrait_data`), cached as an
npz under ``--work-dir`` (default ``~/.cache/affectstudio``). Real-data mode (``--data DIR``) reads talking-face
videos in the MEAD layout (``<speaker>/video/front/<emotion>/level_<k>/<nnn>.mp4``) or the CREMA-D layout
(``<actor>_<sentence>_<EMO>_<level>.flv|mp4``): emotion (and intensity) from the path, face-mesh tracks
(:func:`track_faces`) fitted to motion by :meth:`MotionCodec.fit`, audio features from the video's own track.

Both modes run the same loop: random windows of ``window`` frames, :func:`flow_matching_loss` with condition
dropout (classifier-free guidance), AdamW, warm-up + cosine learning rate, EMA; the loss curve goes to
``loss_curve.json``/``.png`` in the output folder. The output is a full :class:`TalkingPortraitPipeline`
(``save_pretrained``) plus ``TRAINING.md``.

    affectstudio train portrait [--config configs/portrait_tiny.yaml] [--output DIR] [--steps N] [--data DIR]
    accelerate launch -m affectstudio.apps.train.portrait --data /data/MEAD --output runs/mead   # GPUs / DDP
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

import numpy as np
import torch

from affectstudio.errors import InputError

from .portrait_data import DIT_CHANNELS, FPS, load_or_build_dataset

__all__ = ["DIT_CHANNELS", "VideoItem", "build_parser", "load_config", "main", "parse_video_folder", "train"]

_CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgusted", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMA_LEVELS = {"LO": 0.33, "MD": 0.67, "HI": 1.0, "XX": 0.67}
_VIDEO_EXT = {".mp4", ".flv", ".avi", ".mov", ".mkv", ".webm"}


# -------------------------------------------------------------------------------------------------- config


def load_config(path: str | Path | None = None) -> dict:
    """The recipe (YAML): ``path`` or the bundled ``configs/portrait_tiny.yaml``."""
    import yaml

    text = (Path(path).read_text() if path is not None
            else resources.files("affectstudio.configs").joinpath("portrait_tiny.yaml").read_text())
    cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict):
        raise InputError(f"training config {path} is not a YAML mapping")
    return cfg


def default_output() -> Path:
    return Path(str(resources.files("affectstudio.assets"))) / "talking_portrait"


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
        raise InputError(f"no MEAD (<speaker>/video/front/<emotion>/level_<k>/*.mp4) or CREMA-D "
                         f"(<actor>_<sentence>_<EMO>_<level>.mp4) videos found under {root}")
    return items


def _resample_frames(x: np.ndarray, src_fps: float, n: int) -> np.ndarray:
    """Linear resampling of per-frame rows ``(t, ...)`` from ``src_fps`` to ``n`` frames at 25 fps."""
    ts = np.arange(x.shape[0]) / src_fps
    td = np.arange(n) / FPS
    flat = x.reshape(x.shape[0], -1)
    out = np.stack([np.interp(td, ts, flat[:, j]) for j in range(flat.shape[1])], 1)
    return out.reshape(n, *x.shape[1:]).astype(np.float32)


def extract_video(item: VideoItem, codec) -> dict:
    """One real video → ``content (t, F)``, ``motion (t, C)``, ``emotion (t, 12)`` at 25 fps."""
    from affectstudio.conditioning.emotion.embedding import EmotionEmbedding
    from affectstudio.conditioning.face import track_faces
    from affectstudio.conditioning.speech import SPEECH_SAMPLE_RATE, audio_features
    from affectstudio.media import load_audio, read_video
    from affectstudio.models.portrait import MOTION_CHANNELS

    frames, fps = read_video(item.path)
    lm = track_faces(frames)  # (t, 478, 3)
    neutral, _ = codec.estimate_neutral(lm[0])
    motion = codec.fit(torch.from_numpy(lm), neutral).numpy()  # (t, D)
    motion = motion[:, [MOTION_CHANNELS.index(c) for c in DIT_CHANNELS]]
    wave, sr = load_audio(item.path, sample_rate=SPEECH_SAMPLE_RATE)
    content = audio_features(wave, sr, fps=FPS)
    n = min(content.shape[0], int(math.floor(len(frames) / fps * FPS + 1e-6)) or 1)
    motion = _resample_frames(motion, fps, n) if abs(fps - FPS) > 1e-3 else motion[:n]
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
        return {"x0": x0, "content": content, "emotion": emotion, "mask": mask}


def motion_stats(motion: np.ndarray, std_floor: float) -> tuple[np.ndarray, np.ndarray]:
    mean = motion.mean(0).astype(np.float32)
    std = np.maximum(motion.std(0), std_floor).astype(np.float32)
    return mean, std


# --------------------------------------------------------------------------------------------------- train


def _lr_lambda(warmup: int, total: int, min_ratio: float):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return f


@torch.no_grad()
def heldout_loss(model, sampler: WindowSampler, batches: int, batch_size: int, seed: int, p_drop=(0.0, 0.0)) -> float:
    """Mean flow-matching loss on fixed random windows/noise of a held-out sampler (deterministic)."""
    from affectstudio.models.dit import flow_matching_loss

    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    losses = []
    for _ in range(batches):
        b = sampler.sample(batch_size, g)
        loss = flow_matching_loss(model, b["x0"].to(device), b["content"].to(device), b["emotion"].to(device),
                                  generator=g, p_drop_content=p_drop[0], p_drop_emotion=p_drop[1],
                                  frame_mask=b["mask"].to(device), content_mask=b["mask"].to(device))
        losses.append(float(loss))
    return float(np.mean(losses))


def train(cfg: dict, data: dict, heldout: dict | None = None, log=print) -> dict:
    """The training loop. Returns ``{"model": EMA AffectDiT, "mean", "std", "curve", "final_loss", ...}``."""
    from accelerate import Accelerator

    from affectstudio.conditioning.speech import FEATURE_DIM
    from affectstudio.models.dit import AffectDiT, flow_matching_loss

    accelerator = Accelerator()
    torch.manual_seed(int(cfg["seed"]))
    mean, std = motion_stats(data["motion"], float(cfg.get("std_floor", 0.02)))
    window = int(cfg["window"])
    sampler = WindowSampler(data, mean, std, window)
    model = AffectDiT.from_preset(cfg.get("preset", "tiny"), in_channels=len(DIT_CHANNELS), content_dim=FEATURE_DIM)
    ema = copy.deepcopy(model).requires_grad_(False)
    steps = int(cfg["steps"])
    opt = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg.get("weight_decay", 0.01)),
                            betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(int(cfg.get("warmup_steps", 100)), steps, float(cfg.get("min_lr_ratio", 0.05))))
    model, opt, sched = accelerator.prepare(model, opt, sched)
    if not hasattr(model, "config"):  # a DDP wrapper: flow_matching_loss reads model.config
        model.config = accelerator.unwrap_model(model).config
    ema.to(accelerator.device)
    # each process draws its own windows/noise: seed offset by the process index
    g = torch.Generator().manual_seed(int(cfg["seed"]) * 1000 + accelerator.process_index)
    gn = torch.Generator(device=accelerator.device).manual_seed(int(cfg["seed"]) * 1000 + 7 + accelerator.process_index)
    ho_sampler = WindowSampler(heldout, mean, std, window) if heldout is not None else None
    decay = float(cfg.get("ema_decay", 0.998))
    log_every = int(cfg.get("log_every", 50))
    curve: list[dict] = []
    running: list[float] = []
    t0 = time.time()
    model.train()
    for step in range(steps):
        b = sampler.sample(int(cfg["batch_size"]), g)
        dev = accelerator.device
        with accelerator.autocast():
            loss = flow_matching_loss(
                model, b["x0"].to(dev), b["content"].to(dev), b["emotion"].to(dev), generator=gn,
                p_drop_content=float(cfg.get("p_drop_content", 0.1)), p_drop_emotion=float(cfg.get("p_drop_emotion", 0.1)),
                frame_mask=b["mask"].to(dev), content_mask=b["mask"].to(dev),
            )  # fmt: skip
        accelerator.backward(loss)
        if cfg.get("grad_clip"):
            accelerator.clip_grad_norm_(model.parameters(), float(cfg["grad_clip"]))
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            d = min(decay, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), accelerator.unwrap_model(model).parameters()):
                pe.lerp_(pm.detach(), 1 - d)
        running.append(float(loss.detach()))
        if (step + 1) % log_every == 0 or step + 1 == steps:
            entry = {"step": step + 1, "loss": float(np.mean(running)), "lr": float(sched.get_last_lr()[0]),
                     "time_s": round(time.time() - t0, 1)}
            running = []
            if ho_sampler is not None and ((step + 1) % (log_every * 10) == 0 or step + 1 == steps):
                entry["heldout_loss"] = heldout_loss(ema, ho_sampler, 4, 32, seed=1234)
            curve.append(entry)
            if accelerator.is_main_process:
                extra = f"  heldout(EMA) {entry['heldout_loss']:.4f}" if "heldout_loss" in entry else ""
                log(f"step {entry['step']:5d}  loss {entry['loss']:.4f}  lr {entry['lr']:.2e}  {entry['time_s']:.0f} s{extra}")
    ema.eval()
    return {"model": ema, "mean": mean, "std": std, "curve": curve, "final_loss": curve[-1]["loss"] if curve else float("nan"),
            "wall_s": time.time() - t0, "accelerator": accelerator}


# -------------------------------------------------------------------------------------------------- output


def save_pipeline(out: Path, dit, mean, std, cfg: dict) -> bool:
    """Write the full :class:`TalkingPortraitPipeline` to ``out``; also ``dit/`` + ``motion_stats.json`` (the
    DiT and its normalisation alone). Returns False (after saving the DiT part) when the pipeline module
    cannot be imported in this installation — then :func:`export_pipeline` finishes the job later."""
    from affectstudio.models.dit import make_scheduler
    from affectstudio.models.portrait import MotionCodec, PortraitRenderer

    out.mkdir(parents=True, exist_ok=True)
    stats = {"motion_channels": list(DIT_CHANNELS), "motion_mean": [float(v) for v in mean],
             "motion_std": [float(v) for v in std], "fps": FPS,
             "window": int(cfg.get("pipeline_window", cfg["window"])), "overlap": int(cfg.get("pipeline_overlap", 20))}
    (out / "motion_stats.json").write_text(json.dumps(stats, indent=1))
    try:
        from affectstudio.pipelines.portrait import TalkingPortraitPipeline
    except ImportError as e:
        copy.deepcopy(dit).to(torch.float16).save_pretrained(str(out / "dit"))
        print(f"warning: TalkingPortraitPipeline is not importable ({e}); saved dit/ and motion_stats.json only — "
              f"run `affectstudio train portrait --export {out}` once it is", flush=True)
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
    (out / "loss_curve.json").write_text(json.dumps(result["curve"], indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=80)
    ax.plot([c["step"] for c in result["curve"]], [c["loss"] for c in result["curve"]], label="train")
    ho = [c for c in result["curve"] if "heldout_loss" in c]
    if ho:
        ax.plot([c["step"] for c in ho], [c["heldout_loss"] for c in ho], "o-", label="held-out (EMA)")
    ax.set_xlabel("step"), ax.set_ylabel("flow-matching loss"), ax.set_yscale("log"), ax.legend(), ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "loss_curve.png")
    plt.close(fig)
    ho_final = ho[-1]["heldout_loss"] if ho else None
    lines = [
        "# Talking-portrait motion DiT — training record",
        "",
        f"Command: `affectstudio train portrait {' '.join(argv)}`".rstrip(),
        "",
        f"- data: {data_desc}",
        f"- model: AffectDiT preset `{cfg.get('preset', 'tiny')}`, {sum(p.numel() for p in result['model'].parameters()):,} "
        f"parameters; in_channels {len(DIT_CHANNELS)} (motion_channels in model_index.json), content_dim = audio features",
        f"- DiT channels (order): {', '.join(DIT_CHANNELS)}; blink and gaze are added by the pipeline",
        f"- recipe: {json.dumps({k: v for k, v in cfg.items()})}",
        f"- steps {cfg['steps']}, batch {cfg['batch_size']} windows of {cfg['window']} frames, seed {cfg['seed']}",
        f"- final training loss (mean of the last {cfg.get('log_every', 50)} steps): {result['final_loss']:.4f}"
        + (f"; held-out loss (EMA weights, no dropout): {ho_final:.4f}" if ho_final is not None else ""),
        f"- wall time: {result['wall_s'] / 60:.1f} min training on {result['accelerator'].device} "
        f"({torch.get_num_threads()} threads)",
        "- loss curve: loss_curve.json, loss_curve.png",
        "",
    ]
    (out / "TRAINING.md").write_text("\n".join(lines))
    log(f"saved {'the pipeline' if full else 'dit/ + motion_stats.json'} to {out}")


# ------------------------------------------------------------------------------------------------ evaluate


def load_trained(folder: str | Path):
    """``(AffectDiT float32, mean (C,), std (C,), stats)`` from a training output folder."""
    from affectstudio.models.dit import AffectDiT

    folder = Path(folder)
    stats = json.loads((folder / "motion_stats.json").read_text())
    if list(stats["motion_channels"]) != list(DIT_CHANNELS):
        raise InputError(f"{folder} was trained on other channels: {stats['motion_channels']}")
    dit = AffectDiT.from_pretrained(str(folder / "dit"), torch_dtype=torch.float32).eval()
    return dit, np.asarray(stats["motion_mean"], np.float32), np.asarray(stats["motion_std"], np.float32), stats


@torch.no_grad()
def generate_motion(dit, mean, std, wave, sr, emotion="neutral", intensity=1.0, steps=10, seed=0,
                    audio_guidance=1.5, emotion_guidance=1.5, window=100, overlap=20) -> np.ndarray:
    """Sample DiT motion ``(t, C)`` (denormalised, DIT_CHANNELS order) for speech, as the pipeline does."""
    from affectstudio.conditioning.emotion.embedding import EmotionEmbedding
    from affectstudio.conditioning.speech import audio_features
    from affectstudio.models.dit import make_scheduler, sample_windowed

    content = torch.from_numpy(audio_features(wave, sr, fps=FPS))[None]  # (1, t, F)
    t = content.shape[1]
    emb = EmotionEmbedding.from_label(emotion, intensity)
    cond = emb.as_condition(t)[None]
    neg = emb.mirror().as_condition(t)[None] if emotion_guidance != 1.0 else None
    x = sample_windowed(dit, make_scheduler("flow_euler"), (1, t, len(DIT_CHANNELS)), content, cond, window=window,
                        overlap=overlap, negative_emotion=neg, content_guidance_scale=audio_guidance,
                        emotion_guidance_scale=emotion_guidance, num_inference_steps=steps,
                        generator=torch.Generator().manual_seed(seed))
    return x[0].numpy() * std + mean


def lip_gap(motion: np.ndarray, neutral_landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap ``(t,)`` in inter-ocular units of the mesh decoded from DiT motion on ``neutral_landmarks``."""
    from affectstudio.models.portrait import MOTION_CHANNELS, MotionCodec

    full = torch.zeros(motion.shape[0], len(MOTION_CHANNELS))
    full[:, [MOTION_CHANNELS.index(c) for c in DIT_CHANNELS]] = torch.from_numpy(motion).float()
    lm = MotionCodec().decode(full, neutral_landmarks).numpy()  # (t, 478, 3) pixels
    iod = np.linalg.norm(neutral_landmarks[[33, 133]].mean(0)[:2] - neutral_landmarks[[362, 263]].mean(0)[:2])
    return (lm[:, 14, 1] - lm[:, 13, 1]) / iod


def lipsync_report(dit, mean, std, wave, sr, neutral_landmarks=None, **kw) -> dict:
    """Correlation of generated jaw_open (and, given a face, the decoded inner-lip gap) with the speech envelope
    (25 fps), the same for a mouth driven by the time-reversed speech (control), and mean jaw_open in silent vs
    speech frames."""
    from affectstudio.conditioning.speech import envelope, speech_activity

    j = DIT_CHANNELS.index("jaw_open")
    env = envelope(wave, sr, FPS)
    m = generate_motion(dit, mean, std, wave, sr, **kw)
    m_rev = generate_motion(dit, mean, std, wave[::-1].copy(), sr, **kw)
    jaw, jaw_rev = m[:, j], m_rev[:, j]
    n = min(len(env), len(jaw), len(jaw_rev))
    active = speech_activity(wave, sr, FPS)[:n]
    corr = lambda a, b: float(np.corrcoef(a[:n], b[:n])[0, 1])  # noqa: E731
    extra = {}
    if neutral_landmarks is not None:
        gap, gap_rev = lip_gap(m, neutral_landmarks), lip_gap(m_rev, neutral_landmarks)
        extra = {"gap_corr_envelope": corr(gap, env), "gap_corr_reversed_control": corr(gap_rev, env),
                 "gap_speech_mean": float(gap[:n][active].mean()) if active.any() else float("nan"),
                 "gap_silence_mean": float(gap[:n][~active].mean()) if (~active).any() else float("nan")}
    return {"frames": n, "corr_envelope": corr(jaw, env), "corr_reversed_control": corr(jaw_rev, env), **extra,
            "jaw_speech_mean": float(jaw[:n][active].mean()) if active.any() else float("nan"),
            "jaw_silence_mean": float(jaw[:n][~active].mean()) if (~active).any() else float("nan"),
            "silent_frames": int((~active).sum())}


def emotion_report(dit, mean, std, wave, sr, emotions=("neutral", "happy", "sad", "angry", "surprised"), **kw) -> dict:
    """Mean of the expression channels over a clip for each emotion condition."""
    keys = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU12", "AU15", "AU23", "pitch")
    out = {}
    for e in emotions:
        m = generate_motion(dit, mean, std, wave, sr, emotion=e, **kw)
        out[e] = {k: round(float(m[:, DIT_CHANNELS.index(k)].mean()), 3) for k in keys}
    return out


def _append_eval(folder: Path, report: dict, argv: list[str]) -> None:
    """Replace the ``## Evaluation`` section of ``folder/TRAINING.md`` with ``report``."""
    md = folder / "TRAINING.md"
    text = md.read_text().split("\n## Evaluation")[0].rstrip() + "\n" if md.exists() else ""
    lines = ["", "## Evaluation", "", f"Command: `affectstudio train portrait {' '.join(argv)}` (full numbers: eval.json). "
             "Motion sampled with 10 flow-Euler steps, audio/emotion guidance 1.5, seed 0, neutral emotion.", "",
             "| speech | corr(jaw_open, envelope) | reversed-speech control | corr(lip gap, envelope) | control | "
             "jaw_open speech / silence |", "|---|---|---|---|---|---|"]
    rows = dict(report["real"])
    rows["synthetic held-out (mean)"] = report["synthetic"]
    for name, r in rows.items():
        gap = f"{r['gap_corr_envelope']:.2f} | {r['gap_corr_reversed_control']:.2f}" if "gap_corr_envelope" in r else "– | –"
        lines.append(f"| {name} | {r['corr_envelope']:.2f} | {r['corr_reversed_control']:.2f} | {gap} | "
                     f"{r['jaw_speech_mean']:.3f} / {r['jaw_silence_mean']:.3f} |")
    if "emotion" in report:
        keys = list(next(iter(report["emotion"].values())))
        lines += ["", "Mean expression channels on the first real recording per emotion condition (intensity 1):", "",
                  "| emotion | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for e, v in report["emotion"].items():
            lines.append(f"| {e} | " + " | ".join(f"{v[k]:.2f}" for k in keys) + " |")
    md.write_text(text + "\n".join(lines) + "\n")


def evaluate(folder: str | Path, wavs: list[str], heldout_clips: int = 8, heldout_seed: int = 1) -> dict:
    """Lip-sync on real recordings (``wavs``) and on held-out synthetic clips; emotion response."""
    from affectstudio.conditioning.speech import SPEECH_SAMPLE_RATE
    from affectstudio.media import load_audio

    from .portrait_data import make_clip

    from affectstudio.conditioning.face import analyze_face
    from affectstudio.models.portrait import MotionCodec

    dit, mean, std, stats = load_trained(folder)
    kw = {"window": stats["window"], "overlap": stats["overlap"]}
    report: dict = {"real": {}, "synthetic": {}}
    try:
        from skimage import data as skdata
    except ImportError:
        neutral = None
    else:  # a real photo's estimated neutral mesh, for the decoded lip gap
        neutral = MotionCodec().estimate_neutral(analyze_face(skdata.astronaut()))[0].numpy()
    for w in wavs:
        wave, sr = load_audio(w, sample_rate=SPEECH_SAMPLE_RATE)
        report["real"][Path(w).name] = lipsync_report(dit, mean, std, wave, sr, neutral_landmarks=neutral, **kw)
        print(Path(w).name, json.dumps(report["real"][Path(w).name]), flush=True)
    j = DIT_CHANNELS.index("jaw_open")
    rows = []
    for i in range(heldout_clips):
        c = make_clip(heldout_seed * 1_000_003 + i)
        r = lipsync_report(dit, mean, std, c["wave"], SPEECH_SAMPLE_RATE, **kw)
        jaw = generate_motion(dit, mean, std, c["wave"], SPEECH_SAMPLE_RATE, **kw)[:, j]
        n = min(len(jaw), len(c["motion"]))
        r["corr_target_jaw"] = float(np.corrcoef(jaw[:n], c["motion"][:n, j])[0, 1])
        rows.append(r)
    report["synthetic"] = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    print("synthetic held-out (mean of", heldout_clips, "clips)", json.dumps(report["synthetic"]), flush=True)
    if wavs:
        wave, sr = load_audio(wavs[0], sample_rate=SPEECH_SAMPLE_RATE)
        report["emotion"] = emotion_report(dit, mean, std, wave[: sr * 12], sr, **kw)
        for e, v in report["emotion"].items():
            print(f"{e:10s}", json.dumps(v), flush=True)
    return report


# ---------------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="affectstudio train portrait", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="recipe YAML (default: the bundled configs/portrait_tiny.yaml)")
    p.add_argument("--output", "-o", help="output folder (default: the bundled assets/talking_portrait)")
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
    p.add_argument("--evaluate", metavar="DIR", help="only evaluate a trained output folder (lip-sync, emotion)")
    p.add_argument("--eval-wav", nargs="*", default=[], help="real speech recordings for --evaluate")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; 1 is faster on a busy CPU)")
    return p


def main(argv: list[str] | None = None) -> dict:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.evaluate:
        report = evaluate(args.evaluate, args.eval_wav)
        (Path(args.evaluate) / "eval.json").write_text(json.dumps(report, indent=1))
        _append_eval(Path(args.evaluate), report, argv)
        return {"output": Path(args.evaluate), "report": report}
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
        desc = f"{len(data['meta'])} real videos from {args.data} ({data['content'].shape[0] / FPS / 60:.1f} min at 25 fps)"
    else:
        data = load_or_build_dataset(int(cfg["num_clips"]), int(cfg["data_seed"]), Path(args.work_dir), args.workers)
        if int(cfg.get("heldout_clips", 0)) > 0:
            heldout = load_or_build_dataset(int(cfg["heldout_clips"]), int(cfg["data_seed"]) + 1, Path(args.work_dir),
                                            args.workers)
        desc = (f"{cfg['num_clips']} synthetic clips (data seed {cfg['data_seed']}, "
                f"{data['content'].shape[0] / FPS / 60:.1f} min at 25 fps; apps/train/portrait_data.py), "
                f"held out: {cfg.get('heldout_clips', 0)} clips of data seed {int(cfg['data_seed']) + 1}")
    print(f"data ready in {time.time() - t0:.0f} s: {desc}", flush=True)
    log = lambda s: print(s, flush=True)  # noqa: E731
    result = train(cfg, data, heldout, log=log)
    if result["accelerator"].is_main_process:
        save_outputs(out, result, cfg, desc, argv, log=log)
    result["output"] = out
    return result


if __name__ == "__main__":
    main()
