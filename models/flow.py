"""Flow matching for :class:`~affectstudio.models.dit.AffectDiT`: the training loss, classifier-free guidance
over named condition axes, diffusers schedulers, and (windowed) sampling.

Training is rectified flow in the convention of diffusers' ``FlowMatchEulerDiscreteScheduler``:
``x_t = (1 - σ) x0 + σ ε``, the model predicts the velocity ``v = ε - x0`` at ``timestep = σ · 1000``.
Sampling goes through diffusers schedulers only (:func:`make_scheduler`); :func:`sample` is the reference
loop, and :func:`sample_windowed` generates long inputs in overlapping windows with a RePaint-style prefix
constraint and a crossfade, so memory stays flat as duration grows.

Guidance axes, in order: ``content`` (every content stream), ``emotion`` (its "off" state is the negative
emotion when one is given: EmoDubber-style positive/negative guidance), ``speaker``. Branch ``k`` has the
first ``k`` axes on, and ``v = v_K + Σ_i (s_i − 1)(v_i − v_{i−1})`` — with every scale 1 only the fully
conditional branch runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from diffusers.schedulers import (
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.utils.torch_utils import randn_tensor

from affectstudio.conditioning.timeseries import resample_frames
from affectstudio.models.dit import AffectDiT

__all__ = [
    "GUIDANCE_AXES",
    "SCHEDULER_NAMES",
    "flow_matching_loss",
    "guided_velocity",
    "make_scheduler",
    "plan_windows",
    "sample",
    "sample_windowed",
]

GUIDANCE_AXES = ("content", "emotion", "speaker")
Content = Mapping[str, torch.Tensor]


def _rand(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) drawn on the generator's device (as ``randn_tensor`` does), then moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(tuple(shape), generator=generator, device=gen_device).to(device)


# ----------------------------------------------------------------------------------------------------------
# Training: rectified flow
# ----------------------------------------------------------------------------------------------------------


def flow_matching_loss(
    model: AffectDiT,
    x0: torch.Tensor,
    content: Content,
    emotion: torch.Tensor,
    speaker: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    p_drop: Mapping[str, float] | None = None,
    sigma_sampling: str = "logit_normal",
    content_mask: Content | None = None,
    frame_mask: torch.Tensor | None = None,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
) -> torch.Tensor:
    """Rectified-flow loss ``‖model(x_σ, σ·T) − (ε − x0)‖²`` with ``x_σ = (1 − σ) x0 + σ ε``.

    σ per sample is logit-normal (SD3's default, ``sigmoid(N(logit_mean, logit_std))``) or uniform. Condition
    dropout for classifier-free guidance drops each axis independently with ``p_drop = {"content": p,
    "emotion": p, "speaker": p}`` (default 0.1 each). All randomness comes from ``generator``.
    ``frame_mask (b, n)`` (true = real frame) excludes padding from the mean.
    """
    p = {axis: 0.1 for axis in GUIDANCE_AXES} | dict(p_drop or {})
    b = x0.shape[0]
    device = x0.device
    if sigma_sampling == "logit_normal":
        u = randn_tensor((b,), generator=generator, device=device, dtype=torch.float32)
        sigma = torch.sigmoid(u * logit_std + logit_mean)
    elif sigma_sampling == "uniform":
        sigma = _rand((b,), generator, device)
    else:
        raise ValueError(f"sigma_sampling must be 'logit_normal' or 'uniform', not {sigma_sampling!r}")
    noise = randn_tensor(x0.shape, generator=generator, device=device, dtype=x0.dtype)
    s = sigma.to(x0.dtype)[:, None, None]  # (b, 1, 1)
    x_t = (1 - s) * x0 + s * noise
    target = noise - x0
    drops = {axis: _rand((b,), generator, device) < p[axis] for axis in ("content", "emotion")}
    if speaker is not None:
        drops["speaker"] = _rand((b,), generator, device) < p["speaker"]
    pred = model(
        x_t,
        sigma * model.config.num_train_timesteps,
        dict(content),
        emotion,
        speaker=speaker,
        drop_content=drops["content"],
        drop_emotion=drops["emotion"],
        drop_speaker=drops.get("speaker"),
        content_mask=None if content_mask is None else dict(content_mask),
    ).sample
    err = (pred.float() - target.float()).pow(2).mean(dim=-1)  # (b, n)
    if frame_mask is None:
        return err.mean()
    w = frame_mask.to(err.dtype)
    return (err * w).sum() / w.sum().clamp_min(1.0)


# ----------------------------------------------------------------------------------------------------------
# Guidance
# ----------------------------------------------------------------------------------------------------------


def _match_emotion(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring a clip ``(b, 12)`` and a curve ``(b, t, 12)`` to one shape so they can be batched together."""
    if a.ndim == b.ndim and a.shape == b.shape:
        return a, b
    a3 = a[:, None] if a.ndim == 2 else a
    b3 = b[:, None] if b.ndim == 2 else b
    t = max(a3.shape[1], b3.shape[1])
    a3 = a3.expand(-1, t, -1) if a3.shape[1] == 1 else resample_frames(a3, t, dim=1)
    b3 = b3.expand(-1, t, -1) if b3.shape[1] == 1 else resample_frames(b3, t, dim=1)
    return a3, b3


def _needed_branches(scales: Sequence[float]) -> list[int]:
    """Branch ``k`` = the first ``k`` axes on. The full branch always; ``k-1`` and ``k`` where ``s_k != 1``."""
    need = {len(scales)}
    for k, s in enumerate(scales, start=1):
        if s != 1.0:
            need |= {k - 1, k}
    return sorted(need)


def guided_velocity(
    model: AffectDiT,
    x: torch.Tensor,
    t: torch.Tensor | float,
    content: Content,
    emotion: torch.Tensor,
    negative_emotion: torch.Tensor | None = None,
    speaker: torch.Tensor | None = None,
    guidance_scales: Mapping[str, float] | None = None,
    content_mask: Content | None = None,
) -> torch.Tensor:
    """Classifier-free guidance with one scale per axis (``content``, ``emotion``, ``speaker``), in ONE batched
    forward. Branch ``k`` has the first ``k`` axes on (the emotion "off" state is ``negative_emotion`` when given,
    else the null token), and ``v = v_K + Σ_k (s_k − 1)(v_k − v_{k−1})``: the classic nested form
    ``v_0 + s_c (v_1 − v_0) + s_e (v_2 − v_1) + …``, where a scale of 1 needs no extra branch."""
    scales_by_axis = {axis: 1.0 for axis in GUIDANCE_AXES} | {k: float(v) for k, v in (guidance_scales or {}).items()}
    unknown = set(scales_by_axis) - set(GUIDANCE_AXES)
    if unknown:
        raise ValueError(f"unknown guidance axes {sorted(unknown)}; use {list(GUIDANCE_AXES)}")
    axes = ["content", "emotion"] + (["speaker"] if speaker is not None else [])
    scales = [scales_by_axis[a] for a in axes]
    b = x.shape[0]
    t = torch.as_tensor(t, device=x.device)
    t = t.expand(b) if t.ndim == 0 else t
    branches = _needed_branches(scales)
    if branches == [len(axes)]:
        return model(x, t, dict(content), emotion, speaker=speaker, content_mask=content_mask).sample

    # Emotion in branch k: on for k >= 2; for k == 1 (content on, emotion off) the negative emotion when given,
    # else the null token; for k == 0 (everything off) the null token.
    off_emotion = emotion if negative_emotion is None else negative_emotion
    emotion, off_emotion = _match_emotion(emotion, off_emotion)
    use_negative = negative_emotion is not None
    k = len(branches)
    dev = x.device

    def per_branch(values: list) -> torch.Tensor:  # (k·b,)
        return torch.tensor(values, device=dev).repeat_interleave(b)

    v = model(
        torch.cat([x] * k),
        torch.cat([t] * k),
        {name: torch.cat([c] * k) for name, c in content.items()},
        torch.cat([off_emotion if (kk == 1 and use_negative) else emotion for kk in branches]),
        speaker=None if speaker is None else torch.cat([speaker] * k),
        drop_content=per_branch([kk < 1 for kk in branches]),
        drop_emotion=per_branch([kk == 0 or (kk == 1 and not use_negative) for kk in branches]),
        drop_speaker=None if speaker is None else per_branch([kk < 3 for kk in branches]),
        content_mask=None if content_mask is None else {n: torch.cat([m] * k) for n, m in content_mask.items()},
    ).sample.chunk(k)
    # v_first + Σ s_k (v_k − v_{k−1}) over consecutive branches; a gap spans only axes of scale 1
    out = v[0]
    for (lo, v_lo), (hi, v_hi) in zip(zip(branches, v), zip(branches[1:], v[1:])):
        s = scales[hi - 1] if hi == lo + 1 else 1.0
        out = out + s * (v_hi - v_lo)
    return out


# ----------------------------------------------------------------------------------------------------------
# Schedulers and sampling
# ----------------------------------------------------------------------------------------------------------

SCHEDULER_NAMES = ("flow_euler", "dpm", "unipc", "ddim")


def make_scheduler(name: str = "flow_euler", num_train_timesteps: int = 1000, shift: float = 1.0, **kwargs: Any):
    """A diffusers scheduler configured for this flow-matching model (velocity ``ε − x0``, σ from 1 to 0).

    * ``flow_euler`` (default): ``FlowMatchEulerDiscreteScheduler``.
    * ``dpm``: ``DPMSolverMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction")``,
      DPM-Solver++ 2nd order — good results in fewer steps.
    * ``unipc``: ``UniPCMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction")``.
    * ``ddim``: diffusers' ``DDIMScheduler`` only knows epsilon/sample/v-prediction on a variance-preserving
      schedule (no flow prediction in diffusers 0.42), so this name gives the deterministic flow Euler
      sampler, which *is* DDIM (η = 0) for the linear path: predicting ``x̂0 = x − σv`` and
      ``ε̂ = x + (1 − σ)v`` and re-noising to σ' gives ``x + (σ' − σ)v``, the Euler step.

    ``shift`` is the timestep shift (``shift`` / ``flow_shift``); extra keywords go to the scheduler.
    """
    if name in ("flow_euler", "ddim"):
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=num_train_timesteps, shift=shift, **kwargs)
    solvers = {  # multistep flow-prediction solvers: their class and defaults
        "dpm": (
            DPMSolverMultistepScheduler,
            dict(algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero"),
        ),
        "unipc": (UniPCMultistepScheduler, dict(solver_order=2, final_sigmas_type="zero")),
    }
    if name in solvers:
        cls, defaults = solvers[name]
        return cls(
            num_train_timesteps=num_train_timesteps,
            use_flow_sigmas=True,
            prediction_type="flow_prediction",
            flow_shift=shift,
            **{**defaults, **kwargs},
        )
    raise ValueError(f"unknown scheduler {name!r}; choose one of {list(SCHEDULER_NAMES)}")


@torch.no_grad()
def sample(
    model: AffectDiT,
    scheduler,
    shape: Sequence[int],
    content: Content,
    emotion: torch.Tensor,
    negative_emotion: torch.Tensor | None = None,
    speaker: torch.Tensor | None = None,
    guidance_scales: Mapping[str, float] | None = None,
    num_inference_steps: int = 10,
    generator: torch.Generator | list[torch.Generator] | None = None,
    latents: torch.Tensor | None = None,
    prefix: torch.Tensor | None = None,
    content_mask: Content | None = None,
    callback_on_step_end: Callable[..., dict] | None = None,
    callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
) -> torch.Tensor:
    """Reference sampling loop (pipelines' ``__call__`` loops mirror it). Returns frames ``shape = (b, n, c)``.

    1. ``scheduler.set_timesteps``; 2. initial noise from ``randn_tensor`` with ``generator``; 3. per step:
    the prefix constraint, guided velocity, ``scheduler.step``, ``callback_on_step_end(model, i, t,
    {"latents": ...})`` whose returned ``"latents"`` replaces the current ones.

    ``prefix (b, k, c)``: known first ``k`` frames (continuation of a previous window). Before every model
    call those frames are replaced by the known frames noised to the current σ with the window's own initial
    noise, ``x_σ = (1 − σ) prefix + σ ε`` (RePaint-style), so the rest of the window is generated to continue
    them. The returned head is the model's own reconstruction of the prefix (≈ prefix); callers crossfade it.
    """
    device = model.device
    dtype = model.dtype
    scheduler.set_timesteps(num_inference_steps, device=device)
    timesteps = scheduler.timesteps
    sigmas = scheduler.sigmas
    if len(sigmas) != len(timesteps) + 1:
        raise ValueError(f"{type(scheduler).__name__} is not a single-evaluation flow scheduler; use make_scheduler()")
    if latents is None:
        # flow schedulers start at σ ≈ 1, where x_σ is unit Gaussian noise
        latents = randn_tensor(tuple(shape), generator=generator, device=device, dtype=dtype)
    else:
        latents = latents.to(device=device, dtype=dtype).clone()
    if prefix is not None:
        k = prefix.shape[1]
        prefix = prefix.to(device=device, dtype=dtype)
        prefix_noise = latents[:, :k].clone()
    content = {name: c.to(device=device, dtype=dtype) for name, c in content.items()}
    emotion = emotion.to(device=device, dtype=dtype)
    if negative_emotion is not None:
        negative_emotion = negative_emotion.to(device=device, dtype=dtype)
    if speaker is not None:
        speaker = speaker.to(device=device, dtype=dtype)

    scale = model.config.num_train_timesteps
    for i, t in enumerate(timesteps):
        sigma = sigmas[i].to(device=device, dtype=torch.float32)
        if prefix is not None:
            latents[:, :k] = (1 - sigma) * prefix + sigma * prefix_noise
        v = guided_velocity(
            model,
            latents,
            (sigma * scale).expand(latents.shape[0]),
            content,
            emotion,
            negative_emotion=negative_emotion,
            speaker=speaker,
            guidance_scales=guidance_scales,
            content_mask=content_mask,
        )
        latents = scheduler.step(v, t, latents, return_dict=False)[0]
        if callback_on_step_end is not None:
            callback_kwargs = {}
            for name in callback_on_step_end_tensor_inputs:
                callback_kwargs[name] = locals()[name]
            callback_outputs = callback_on_step_end(model, i, t, callback_kwargs)
            latents = callback_outputs.pop("latents", latents)
    return latents


def plan_windows(num_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Overlapping windows ``[(start, end), ...]`` covering ``num_frames``.

    Consecutive windows overlap by ``overlap`` frames; every window has length ``window`` (the last one is
    moved back to end at ``num_frames``, overlapping its predecessor by at least ``overlap``), except when
    the whole input fits in one window.
    """
    if window <= 0 or overlap < 0 or overlap >= window:
        raise ValueError(f"need window > overlap >= 0, got window={window}, overlap={overlap}")
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if num_frames <= window:
        return [(0, num_frames)]
    hop = window - overlap
    windows = []
    start = 0
    while start + window < num_frames:
        windows.append((start, start + window))
        start += hop
    windows.append((num_frames - window, num_frames))
    return windows


def _slice_time(x: torch.Tensor | None, start: int, end: int, n: int) -> torch.Tensor | None:
    """Slice a per-frame tensor ``(b, t, ...)`` given at any rate to the frames ``[start, end)`` of ``n``."""
    if x is None:
        return None
    t = x.shape[1]
    if t == n:
        return x[:, start:end]
    lo = math.floor(start * t / n)
    hi = max(lo + 1, math.ceil(end * t / n))
    return x[:, lo : min(hi, t)]


@torch.no_grad()
def sample_windowed(
    model: AffectDiT,
    scheduler,
    shape: Sequence[int],
    content: Content,
    emotion: torch.Tensor,
    window: int = 250,
    overlap: int = 25,
    negative_emotion: torch.Tensor | None = None,
    speaker: torch.Tensor | None = None,
    guidance_scales: Mapping[str, float] | None = None,
    num_inference_steps: int = 10,
    generator: torch.Generator | list[torch.Generator] | None = None,
    content_mask: Content | None = None,
    callback_on_step_end: Callable[..., dict] | None = None,
) -> torch.Tensor:
    """Sample ``shape = (b, n, c)`` window by window (see :func:`plan_windows`); memory stays flat in ``n``.

    Every content stream ``(b, m_s, dim_s)`` (any rate), emotion curves and ``content_mask`` are sliced to
    each window. Each window after the first is sampled with its overlap constrained to the previous window's
    tail (the prefix constraint of :func:`sample`); the overlap is then crossfaded linearly from the previous
    frames to the new window's own head, so seams carry no jump. ``callback_on_step_end`` receives
    ``"window_index"`` in its kwargs as well.
    """
    b, n, ch = shape
    out = torch.empty((b, n, ch), device=model.device, dtype=model.dtype)
    prev_end = 0
    for wi, (start, end) in enumerate(plan_windows(n, window, overlap)):
        ov = prev_end - start
        em = emotion if emotion.ndim == 2 else _slice_time(resample_frames(emotion, n, dim=1), start, end, n)
        neg = negative_emotion
        if neg is not None and neg.ndim == 3:
            neg = _slice_time(resample_frames(neg, n, dim=1), start, end, n)
        cb = None
        if callback_on_step_end is not None:

            def cb(mdl, i, t, kwargs, _wi=wi):
                kwargs["window_index"] = _wi
                return callback_on_step_end(mdl, i, t, kwargs)

        x = sample(
            model,
            scheduler,
            (b, end - start, ch),
            {name: _slice_time(c, start, end, n) for name, c in content.items()},
            em,
            negative_emotion=neg,
            speaker=speaker,
            guidance_scales=guidance_scales,
            num_inference_steps=num_inference_steps,
            generator=generator,
            prefix=out[:, start:prev_end] if ov > 0 else None,
            content_mask=None
            if content_mask is None
            else {
                name: cast(torch.Tensor, _slice_time(m[..., None], start, end, n))[..., 0]
                for name, m in content_mask.items()
            },
            callback_on_step_end=cb,
        )
        if ov > 0:
            w = (torch.arange(ov, device=out.device, dtype=out.dtype) + 1) / (ov + 1)  # new-window weight
            w = w[None, :, None]
            out[:, start:prev_end] = (1 - w) * out[:, start:prev_end] + w * x[:, :ov]
        out[:, prev_end:end] = x[:, ov:]
        prev_end = end
    return out
