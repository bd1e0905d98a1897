"""One flow-matching trainer for every AffectDiT generator (portrait, dubbing, music, yours).

A *data module* is anything with ``sample(batch_size, generator) -> batch`` where ``batch`` holds
``x0 (b, n, C)`` (the normalised target sequence), ``content {stream: (b, m, d)}``, ``emotion (b, 12)`` or
``(b, n, 12)``, and optionally ``speaker (b, S)``, ``mask (b, n)`` (true = real frame) and ``content_mask
{stream: (b, m)}``. :func:`train_flow` runs rectified-flow training on it with accelerate (CPU, one GPU, DDP):
AdamW, warm-up + cosine learning rate, gradient clipping, condition dropout per guidance axis, an EMA copy
(the weights you keep), a progress bar, a loss log (``loss_log.jsonl``, ``loss_curve.png``), and a resumable
training state (``train_state.pt``) in the output folder::

    model = AffectDiT.from_preset("tiny", in_channels=4, content_streams={"phonemes": 8, "lips": 2})
    result = train_flow(model, my_data, {"steps": 200, "batch_size": 8}, "runs/mine")
    result.model            # the EMA AffectDiT, ready for models.flow.sample / a pipeline

Recipe keys (all optional, defaults in :data:`DEFAULTS`): steps, batch_size, lr, weight_decay, warmup_steps,
min_lr_ratio, grad_clip, ema_decay, p_drop_content, p_drop_emotion, p_drop_speaker, seed, log_every,
checkpoint_every, heldout_every.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["DEFAULTS", "FlowDataModule", "FlowTrainResult", "heldout_loss", "plot_loss_curve", "train_flow"]

DEFAULTS: dict[str, Any] = dict(
    steps=1000,
    batch_size=16,
    lr=1e-3,
    weight_decay=0.01,
    warmup_steps=50,
    min_lr_ratio=0.05,
    grad_clip=1.0,
    ema_decay=0.99,
    p_drop_content=0.1,
    p_drop_emotion=0.1,
    p_drop_speaker=0.1,
    seed=0,
    log_every=50,
    checkpoint_every=500,
    heldout_every=500,
)
STATE_FILE = "train_state.pt"
LOG_FILE = "loss_log.jsonl"


class FlowDataModule(Protocol):
    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, Any]: ...


@dataclass
class FlowTrainResult:
    model: torch.nn.Module  # the EMA weights, eval mode
    curve: list[dict] = field(default_factory=list)
    final_loss: float = float("nan")
    wall_s: float = 0.0
    is_main_process: bool = True
    device: str = "cpu"


def _lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return f


def _to(batch: dict[str, Any], device) -> dict[str, Any]:
    return {
        k: ({n: t.to(device) for n, t in v.items()} if isinstance(v, dict) else v.to(device))
        for k, v in batch.items()
        if v is not None
    }


def _loss(model, batch: dict[str, Any], generator: torch.Generator, p_drop: dict[str, float]) -> torch.Tensor:
    from affectstudio.models.flow import flow_matching_loss

    return flow_matching_loss(
        model,
        batch["x0"],
        batch["content"],
        batch["emotion"],
        speaker=batch.get("speaker"),
        generator=generator,
        p_drop=p_drop,
        frame_mask=batch.get("mask"),
        content_mask=batch.get("content_mask"),
    )


@torch.no_grad()
def heldout_loss(model, data: FlowDataModule, batches: int = 4, batch_size: int = 32, seed: int = 1234) -> float:
    """Mean flow-matching loss on fixed windows and noise of a held-out data module, no condition dropout."""
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    no_drop = {"content": 0.0, "emotion": 0.0, "speaker": 0.0}
    return float(
        np.mean([float(_loss(model, _to(data.sample(batch_size, g), device), g, no_drop)) for _ in range(batches)])
    )


def plot_loss_curve(curve: list[dict], path: str | Path) -> None:
    """Training (and held-out) loss over steps, log scale, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=80)
    ax.plot([c["step"] for c in curve], [c["loss"] for c in curve], label="train")
    ho = [c for c in curve if "heldout_loss" in c]
    if ho:
        ax.plot([c["step"] for c in ho], [c["heldout_loss"] for c in ho], "o-", label="held-out (EMA)")
    ax.set_xlabel("step"), ax.set_ylabel("flow-matching loss"), ax.set_yscale("log"), ax.legend(), ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train_flow(
    model: torch.nn.Module,
    data: FlowDataModule,
    recipe: dict[str, Any] | None,
    output_dir: str | Path,
    heldout: FlowDataModule | None = None,
    resume: bool = True,
    log: Callable[[str], None] = print,
    progress: bool = True,
    until: int | None = None,
) -> FlowTrainResult:
    """Train ``model`` (an AffectDiT) by rectified flow on ``data``; see the module docstring.

    With ``resume`` and a ``train_state.pt`` in ``output_dir`` training continues from its step (same model
    shape required); the loss log is appended to. ``until`` stops (with the state saved) after that step, for
    time-boxed sessions on shared or preemptible machines. Returns the EMA model (training device, eval mode).
    """
    from accelerate import Accelerator

    cfg = {**DEFAULTS, **(recipe or {})}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # on a CPU-only machine every process must be told so, or a multi-process launch runs a single process
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    steps = int(cfg["steps"])
    torch.manual_seed(int(cfg["seed"]))
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]), betas=(0.9, 0.99)
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(int(cfg["warmup_steps"]), steps, float(cfg["min_lr_ratio"]))
    )
    # each process draws its own windows/noise: seed offset by the process index
    g = torch.Generator().manual_seed(int(cfg["seed"]) * 1000 + accelerator.process_index)
    gn = torch.Generator(device=accelerator.device).manual_seed(int(cfg["seed"]) * 1000 + 7 + accelerator.process_index)
    start, curve = 0, []
    state_path = out / STATE_FILE
    if resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        g.set_state(state["g"])
        gn.set_state(state["gn"].to(gn.device) if gn.device.type == "cpu" else state["gn"])
        start, curve = int(state["step"]), list(state["curve"])
        log(f"resuming from step {start} ({state_path})")
    model, opt, sched = accelerator.prepare(model, opt, sched)
    if not hasattr(model, "config"):  # a DDP wrapper: flow_matching_loss reads model.config
        model.config = accelerator.unwrap_model(model).config
    ema.to(accelerator.device)
    p_drop = {a: float(cfg[f"p_drop_{a}"]) for a in ("content", "emotion", "speaker")}
    decay, log_every = float(cfg["ema_decay"]), int(cfg["log_every"])
    running: list[float] = []
    t0 = time.time()
    model.train()
    bar = tqdm(total=steps, initial=start, desc="training", disable=not (progress and accelerator.is_main_process))
    last = steps if until is None else min(steps, int(until))
    for step in range(start, last):
        batch = _to(data.sample(int(cfg["batch_size"]), g), accelerator.device)
        with accelerator.autocast():
            loss = _loss(model, batch, gn, p_drop)
        accelerator.backward(loss)
        if cfg["grad_clip"]:
            accelerator.clip_grad_norm_(model.parameters(), float(cfg["grad_clip"]))
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            d = min(decay, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), accelerator.unwrap_model(model).parameters()):
                pe.lerp_(pm.detach(), 1 - d)
        running.append(float(loss.detach()))
        bar.update()
        done = step + 1
        if done % log_every == 0 or done == steps:
            entry = {
                "step": done,
                "loss": float(np.mean(running)),
                "lr": float(sched.get_last_lr()[0]),
                "time_s": round(time.time() - t0, 1),
            }
            running = []
            if heldout is not None and (done % int(cfg["heldout_every"]) == 0 or done == steps):
                entry["heldout_loss"] = heldout_loss(ema, heldout)
            curve.append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.4f}")
            if accelerator.is_main_process:
                with open(out / LOG_FILE, "a") as f:
                    f.write(json.dumps(entry) + "\n")
        if accelerator.is_main_process and (done % int(cfg["checkpoint_every"]) == 0 or done in (steps, last)):
            torch.save(
                {
                    "model": accelerator.unwrap_model(model).state_dict(),
                    "ema": ema.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "g": g.get_state(),
                    "gn": gn.get_state().cpu(),
                    "step": done,
                    "curve": curve,
                },
                state_path,
            )
    bar.close()
    if accelerator.is_main_process and curve and last == steps:
        plot_loss_curve(curve, out / "loss_curve.png")
    ema.eval()
    return FlowTrainResult(
        model=ema,
        curve=curve,
        final_loss=curve[-1]["loss"] if curve else float("nan"),
        wall_s=time.time() - t0,
        is_main_process=accelerator.is_main_process,
        device=str(accelerator.device),
    )
