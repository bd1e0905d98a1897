"""AffectDiT: the one sequence diffusion transformer every AffectStudio generator uses.

A DiT (Peebles & Xie, facebookresearch/DiT ``models.py``) over a *time axis* instead of image patches:

* tokens ``sample`` ``(b, n, in_channels)`` (motion coefficients, prosody features, bar rolls …) are embedded
  linearly to ``(b, n, d)``; self-attention uses rotary position embeddings (RoPE) over time, so the model
  works for any ``n`` — also longer than anything seen in training;
* content tokens ``content`` ``(b, m, content_dim)`` (audio frames, phonemes, video features) go through a
  small MLP projector to ``(b, m, d)`` and are read by cross-attention in every block. Their RoPE positions
  are mapped onto the frame axis (``j * n / m``), so cross-attention sees *relative time* between a frame
  and a content token even when ``m != n``;
* **aligned content addition** (``aligned_content=True``, the default): the projected content is also
  resampled to ``n`` frames (identity when ``m == n``, linear interpolation otherwise) and *added* to the
  frame tokens. For lip-sync this direct frame-to-frame path learns far faster than cross-attention alone;
  cross-attention still gives each frame a window of context (coarticulation, look-ahead);
* conditioning ``c = timestep_embedding(t) + emotion_projector(emotion)``; emotion is a per-clip affect
  vector ``(b, 12)`` or a per-frame curve ``(b, n, 12)``, so ``c`` is ``(b, 1, d)`` or ``(b, n, d)`` and
  adaLN-Zero modulates every token with its own emotion — curves need no special path;
* adaLN-Zero: each block's shift/scale/gate (self-attention, cross-attention, MLP) come from a linear layer
  initialised to zero, and the final layer's output linear is zero too, so the model outputs exactly zero at
  initialisation;
* classifier-free guidance by learned null tokens (DiT's ``token_drop``): ``null_emotion`` replaces the
  projected emotion and ``null_content`` the projected content tokens wherever ``drop_emotion`` /
  ``drop_content`` (``(b,)`` bool) is true.

Training is rectified flow in the convention of diffusers' ``FlowMatchEulerDiscreteScheduler``:
``x_t = (1 - σ) x0 + σ ε``, the model predicts the velocity ``v = ε - x0`` at ``timestep = σ · 1000``.
Sampling goes through diffusers schedulers only (:func:`make_scheduler`); :func:`sample` is the reference
loop that pipelines mirror, and :func:`sample_windowed` generates long inputs in overlapping windows with
a RePaint-style prefix constraint and a crossfade, so memory stays flat as duration grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.schedulers import (
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from einops import rearrange
from torch import nn

__all__ = [
    "AFFECT_DIT_PRESETS",
    "SCHEDULER_NAMES",
    "AffectDiT",
    "AffectDiTOutput",
    "flow_matching_loss",
    "guided_velocity",
    "make_scheduler",
    "plan_windows",
    "sample",
    "sample_windowed",
]

AFFECT_DIT_PRESETS: dict[str, dict[str, Any]] = {
    # CPU default: a 250-frame clip, 10 steps, runs in well under a second on 2 cores.
    "tiny": dict(hidden_size=128, depth=4, num_heads=4, mlp_ratio=4.0),
    # GPU-sized models for training on real data.
    "base": dict(hidden_size=384, depth=8, num_heads=6, mlp_ratio=4.0),
    "large": dict(hidden_size=768, depth=16, num_heads=12, mlp_ratio=4.0),
}


@dataclass
class AffectDiTOutput(BaseOutput):
    """Output of :class:`AffectDiT`.

    Args:
        sample (`torch.Tensor` of shape `(b, n, out_channels)`): the predicted flow velocity ``ε - x0``.
    """

    sample: torch.Tensor


# ----------------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------------


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x (b, n, d)`` with per-token ``shift, scale (b, n|1, d)``."""
    return x * (1 + scale) + shift


def rotary_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE tables for float ``positions (n,)`` → ``cos, sin (n, head_dim)`` (rotate-half layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = positions.float()[:, None] * inv_freq[None, :]  # (n, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (n, head_dim)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x (b, h, n, hd)`` by the angles of ``cos, sin (n, hd)``."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Multi-head attention with RoPE on q/k and optional RMS qk-norm, through ``scaled_dot_product_attention``.

    Self-attention when ``context`` is None, cross-attention otherwise.
    """

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden_size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        if self.head_dim % 2:
            raise ValueError(f"head dimension {self.head_dim} must be even for rotary embeddings")
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.to_out = nn.Linear(dim, dim)
        self.norm_q = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.norm_k = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,  # (b, n, d)
        rope_q: tuple[torch.Tensor, torch.Tensor],  # cos, sin (n, hd)
        context: torch.Tensor | None = None,  # (b, m, d)
        rope_k: tuple[torch.Tensor, torch.Tensor] | None = None,  # cos, sin (m, hd)
        key_mask: torch.Tensor | None = None,  # (b, m) bool, True = attend
    ) -> torch.Tensor:
        if context is None:
            context, rope_k = x, rope_q
        q = rearrange(self.to_q(x), "b n (h e) -> b h n e", h=self.num_heads)  # (b, h, n, hd)
        k, v = rearrange(self.to_kv(context), "b m (two h e) -> two b h m e", two=2, h=self.num_heads)
        q, k = self.norm_q(q), self.norm_k(k)
        q = apply_rotary(q, *rope_q)
        k = apply_rotary(k, *rope_k)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]  # (b, 1, 1, m)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (b, h, n, hd)
        return self.to_out(rearrange(out, "b h n e -> b n (h e)"))


class FeedForward(nn.Module):
    """DiT's MLP: Linear → GELU(tanh) → Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, n, d)
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Projector(nn.Module):
    """Small MLP mapping a conditioning vector to the model width: Linear → SiLU → Linear."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, dim)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in_dim) -> (..., d)
        return self.fc2(F.silu(self.fc1(x)))


class AffectDiTBlock(nn.Module):
    """adaLN-Zero block: self-attention (RoPE) → cross-attention to content (RoPE) → MLP, each gated."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, cross_attention: bool, qk_norm: bool):
        super().__init__()
        self.cross_attention = cross_attention
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, num_heads, qk_norm)
        if cross_attention:
            self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
            self.cross_attn = Attention(dim, num_heads, qk_norm)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))
        self.num_mod = 9 if cross_attention else 6
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, self.num_mod * dim))

    def forward(
        self,
        x: torch.Tensor,  # (b, n, d)
        c: torch.Tensor,  # (b, n|1, d)
        rope_x: tuple[torch.Tensor, torch.Tensor],
        context: torch.Tensor,  # (b, m, d)
        rope_ctx: tuple[torch.Tensor, torch.Tensor],
        context_mask: torch.Tensor | None = None,  # (b, m)
    ) -> torch.Tensor:
        mods = self.adaLN_modulation(c).chunk(self.num_mod, dim=-1)  # num_mod × (b, n|1, d)
        shift_msa, scale_msa, gate_msa = mods[0:3]
        x = x + gate_msa * self.attn(modulate(self.norm1(x), shift_msa, scale_msa), rope_x)
        if self.cross_attention:
            shift_mca, scale_mca, gate_mca = mods[3:6]
            h = modulate(self.norm2(x), shift_mca, scale_mca)
            x = x + gate_mca * self.cross_attn(h, rope_x, context, rope_ctx, context_mask)
        shift_mlp, scale_mlp, gate_mlp = mods[-3:]
        x = x + gate_mlp * self.mlp(modulate(self.norm3(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    """adaLN final layer; its modulation and output linear are zero-initialised."""

    def __init__(self, dim: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # (b, n, d), (b, n|1, d)
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))  # (b, n, out)


def _resample_time(x: torch.Tensor, n: int) -> torch.Tensor:
    """Linearly resample ``x (b, m, c)`` along time to ``(b, n, c)`` (identity when ``m == n``)."""
    if x.shape[1] == n:
        return x
    y = F.interpolate(rearrange(x, "b m c -> b c m").float(), size=n, mode="linear", align_corners=False)
    return rearrange(y, "b c n -> b n c").to(x.dtype)


# ----------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------


class AffectDiT(ModelMixin, ConfigMixin):
    """Sequence DiT predicting the flow velocity of ``(b, n, in_channels)`` frames.

    Args:
        in_channels: features per frame of the generated sequence.
        content_dim: features per content token (audio frame, phoneme, video feature).
        out_channels: defaults to ``in_channels``.
        emotion_dim: size of the affect vector (12: 8 probs, valence/arousal/dominance, intensity).
        hidden_size, depth, num_heads, mlp_ratio: transformer size (see :data:`AFFECT_DIT_PRESETS`).
        cross_attention: cross-attend from frames to content tokens in every block.
        aligned_content: also add the projected content, resampled to the frame rate, to the frame tokens.
        qk_norm: RMS-normalise queries and keys per head (stabilises bf16 training).
        rope_theta: RoPE base.
        num_train_timesteps: the timestep scale, ``timestep = σ · num_train_timesteps`` (diffusers' convention).
        frequency_embedding_size: width of the sinusoidal timestep features.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 24,
        content_dim: int = 90,
        out_channels: int | None = None,
        emotion_dim: int = 12,
        hidden_size: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        cross_attention: bool = True,
        aligned_content: bool = True,
        qk_norm: bool = True,
        rope_theta: float = 10000.0,
        num_train_timesteps: int = 1000,
        frequency_embedding_size: int = 256,
    ):
        super().__init__()
        if not (cross_attention or aligned_content):
            raise ValueError("AffectDiT needs cross_attention or aligned_content to see its content")
        out_channels = in_channels if out_channels is None else out_channels
        self.out_channels = out_channels
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.gradient_checkpointing = False

        self.proj_in = nn.Linear(in_channels, hidden_size)
        self.time_proj = Timesteps(frequency_embedding_size, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedder = TimestepEmbedding(frequency_embedding_size, hidden_size)
        self.emotion_projector = Projector(emotion_dim, hidden_size)
        self.content_projector = Projector(content_dim, hidden_size)
        # learned classifier-free-guidance tokens (DiT's token_drop)
        self.null_emotion = nn.Parameter(torch.randn(hidden_size) * 0.02)
        self.null_content = nn.Parameter(torch.randn(hidden_size) * 0.02)
        self.blocks = nn.ModuleList(
            [AffectDiTBlock(hidden_size, num_heads, mlp_ratio, cross_attention, qk_norm) for _ in range(depth)]
        )
        self.final_layer = FinalLayer(hidden_size, out_channels)
        self.initialize_weights()

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "AffectDiT":
        """``AffectDiT.from_preset("tiny", in_channels=24, content_dim=90)``; overrides win over the preset."""
        if name not in AFFECT_DIT_PRESETS:
            raise ValueError(f"unknown AffectDiT preset {name!r}; choose one of {sorted(AFFECT_DIT_PRESETS)}")
        return cls(**{**AFFECT_DIT_PRESETS[name], **overrides})

    def initialize_weights(self) -> None:
        """DiT's initialisation: xavier linears, N(0, 0.02) timestep MLP, zero adaLN and output layers."""

        def _basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(_basic_init)
        nn.init.normal_(self.time_embedder.linear_1.weight, std=0.02)
        nn.init.normal_(self.time_embedder.linear_2.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def embed_condition(
        self,
        timestep: torch.Tensor,  # (b,)
        emotion: torch.Tensor,  # (b, 12) or (b, t, 12)
        n: int,
        drop_emotion: torch.Tensor | None = None,  # (b,) bool
    ) -> torch.Tensor:
        """``c = time_embedding(t) + emotion_projector(emotion)`` → ``(b, 1, d)`` (clip) or ``(b, n, d)`` (curve)."""
        dtype = self.proj_in.weight.dtype
        t_emb = self.time_embedder(self.time_proj(timestep).to(dtype))  # (b, d)
        if emotion.ndim == 2:
            emotion = emotion[:, None]  # (b, 1, 12)
        elif emotion.ndim == 3:
            emotion = _resample_time(emotion, n) if emotion.shape[1] != 1 else emotion  # (b, n, 12)
        else:
            raise ValueError(f"emotion must be (b, {self.config.emotion_dim}) or (b, n, {self.config.emotion_dim})")
        e = self.emotion_projector(emotion.to(dtype))  # (b, n|1, d)
        if drop_emotion is not None:
            e = torch.where(drop_emotion.to(e.device)[:, None, None], self.null_emotion.to(e.dtype), e)
        return t_emb[:, None] + e  # (b, n|1, d)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        content: torch.Tensor,
        emotion: torch.Tensor,
        drop_content: torch.Tensor | None = None,
        drop_emotion: torch.Tensor | None = None,
        content_mask: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> AffectDiTOutput | tuple[torch.Tensor]:
        """Predict the flow velocity.

        Args:
            sample: noisy frames ``(b, n, in_channels)``.
            timestep: ``σ · num_train_timesteps``, a scalar or ``(b,)``.
            content: content tokens ``(b, m, content_dim)``; ``m`` may differ from ``n``.
            emotion: affect vector per clip ``(b, emotion_dim)`` or per frame ``(b, n, emotion_dim)`` (a curve
                of another length is linearly resampled to ``n``).
            drop_content, drop_emotion: ``(b,)`` bool; where true the learned null token replaces the
                condition (classifier-free guidance).
            content_mask: optional ``(b, m)`` bool, true for valid content tokens (key padding).
            return_dict: return :class:`AffectDiTOutput` (default) or a tuple.
        """
        b, n, _ = sample.shape
        m = content.shape[1]
        dtype = self.proj_in.weight.dtype
        device = sample.device
        timestep = torch.as_tensor(timestep, device=device)
        if timestep.ndim == 0:
            timestep = timestep.expand(b)
        if content.shape[0] != b or (emotion.shape[0] != b):
            raise ValueError(f"batch sizes differ: sample {b}, content {content.shape[0]}, emotion {emotion.shape[0]}")
        if content_mask is not None and not bool(content_mask.any(dim=-1).all()):
            raise ValueError("content_mask hides every content token of a sample; drop its content instead")

        x = self.proj_in(sample.to(dtype))  # (b, n, d)
        c = self.embed_condition(timestep, emotion, n, drop_emotion)  # (b, n|1, d)

        ctx = self.content_projector(content.to(dtype))  # (b, m, d)
        if drop_content is not None:
            ctx = torch.where(drop_content.to(device)[:, None, None], self.null_content.to(dtype), ctx)
        if self.config.aligned_content:
            aligned = ctx if content_mask is None else ctx * content_mask[..., None].to(dtype)
            x = x + _resample_time(aligned, n)  # (b, n, d)

        # RoPE: frames at 0..n-1, content tokens mapped onto the frame axis
        pos_x = torch.arange(n, device=device, dtype=torch.float32)
        pos_c = torch.arange(m, device=device, dtype=torch.float32) * (n / m)
        rope_x = rotary_cos_sin(pos_x, self.head_dim, self.config.rope_theta, dtype)
        rope_c = rotary_cos_sin(pos_c, self.head_dim, self.config.rope_theta, dtype)

        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, x, c, rope_x, ctx, rope_c, content_mask)
            else:
                x = block(x, c, rope_x, ctx, rope_c, content_mask)
        out = self.final_layer(x, c)  # (b, n, out_channels)
        if not return_dict:
            return (out,)
        return AffectDiTOutput(sample=out)


# ----------------------------------------------------------------------------------------------------------
# Training: rectified flow
# ----------------------------------------------------------------------------------------------------------


def _rand(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) drawn on the generator's device (as ``randn_tensor`` does), then moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(tuple(shape), generator=generator, device=gen_device).to(device)


def flow_matching_loss(
    model: AffectDiT,
    x0: torch.Tensor,
    content: torch.Tensor,
    emotion: torch.Tensor,
    generator: torch.Generator | None = None,
    p_drop_content: float = 0.1,
    p_drop_emotion: float = 0.1,
    sigma_sampling: str = "logit_normal",
    content_mask: torch.Tensor | None = None,
    frame_mask: torch.Tensor | None = None,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
) -> torch.Tensor:
    """Rectified-flow loss ``‖model(x_σ, σ·T) − (ε − x0)‖²`` with ``x_σ = (1 − σ) x0 + σ ε``.

    σ per sample is logit-normal (SD3's default, ``sigmoid(N(logit_mean, logit_std))``) or uniform; condition
    dropout for classifier-free guidance drops content and emotion independently with the given
    probabilities. All randomness comes from ``generator``. ``frame_mask (b, n)`` (true = real frame)
    excludes padding from the mean.
    """
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
    drop_content = _rand((b,), generator, device) < p_drop_content
    drop_emotion = _rand((b,), generator, device) < p_drop_emotion
    pred = model(
        x_t,
        sigma * model.config.num_train_timesteps,
        content,
        emotion,
        drop_content=drop_content,
        drop_emotion=drop_emotion,
        content_mask=content_mask,
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
    a3 = a3.expand(-1, t, -1) if a3.shape[1] == 1 else _resample_time(a3, t)
    b3 = b3.expand(-1, t, -1) if b3.shape[1] == 1 else _resample_time(b3, t)
    return a3, b3


def guided_velocity(
    model: AffectDiT,
    x: torch.Tensor,
    t: torch.Tensor | float,
    content: torch.Tensor,
    emotion: torch.Tensor,
    negative_emotion: torch.Tensor | None = None,
    content_guidance_scale: float = 1.0,
    emotion_guidance_scale: float = 1.0,
    content_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Classifier-free guidance with separate content and emotion scales, in ONE batched forward.

    Branches: ``v_u`` (content and emotion dropped), ``v_c`` (content, emotion dropped — or, when
    ``negative_emotion`` is given, content with the negative emotion: EmoDubber-style positive/negative
    guidance), ``v_f`` (content and emotion)::

        v = v_u + s_c · (v_c − v_u) + s_e · (v_f − v_c)

    With ``s_c = s_e = 1`` this is exactly ``v_f`` and only the conditional branch is run; with ``s_c = 1``
    it is ``v_c + s_e (v_f − v_c)`` and the unconditional branch is skipped.
    """
    s_c, s_e = float(content_guidance_scale), float(emotion_guidance_scale)
    b = x.shape[0]
    t = torch.as_tensor(t, device=x.device)
    t = t.expand(b) if t.ndim == 0 else t
    if s_c == 1.0 and s_e == 1.0:
        return model(x, t, content, emotion, content_mask=content_mask).sample

    need_uncond = s_c != 1.0
    second = emotion if negative_emotion is None else negative_emotion
    emotion, second = _match_emotion(emotion, second)
    flags = [(True, True)] if need_uncond else []  # (drop_content, drop_emotion) per branch
    flags += [(False, negative_emotion is None), (False, False)]
    emotions = [emotion] * (1 if need_uncond else 0) + [second, emotion]
    k = len(flags)
    dev = x.device
    drop_c = torch.tensor([f[0] for f in flags], device=dev).repeat_interleave(b)  # (k·b,)
    drop_e = torch.tensor([f[1] for f in flags], device=dev).repeat_interleave(b)
    v = model(
        torch.cat([x] * k),
        torch.cat([t] * k),
        torch.cat([content] * k),
        torch.cat(emotions),
        drop_content=drop_c,
        drop_emotion=drop_e,
        content_mask=None if content_mask is None else torch.cat([content_mask] * k),
    ).sample.chunk(k)
    if need_uncond:
        v_u, v_c, v_f = v
        return v_u + s_c * (v_c - v_u) + s_e * (v_f - v_c)
    v_c, v_f = v
    return v_c + s_e * (v_f - v_c)


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
    if name == "dpm":
        kw = dict(algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero")
        kw.update(kwargs)
        return DPMSolverMultistepScheduler(
            num_train_timesteps=num_train_timesteps,
            use_flow_sigmas=True,
            prediction_type="flow_prediction",
            flow_shift=shift,
            **kw,
        )
    if name == "unipc":
        kw = dict(solver_order=2, final_sigmas_type="zero")
        kw.update(kwargs)
        return UniPCMultistepScheduler(
            num_train_timesteps=num_train_timesteps,
            use_flow_sigmas=True,
            prediction_type="flow_prediction",
            flow_shift=shift,
            **kw,
        )
    raise ValueError(f"unknown scheduler {name!r}; choose one of {list(SCHEDULER_NAMES)}")


@torch.no_grad()
def sample(
    model: AffectDiT,
    scheduler,
    shape: Sequence[int],
    content: torch.Tensor,
    emotion: torch.Tensor,
    negative_emotion: torch.Tensor | None = None,
    content_guidance_scale: float = 1.0,
    emotion_guidance_scale: float = 1.0,
    num_inference_steps: int = 10,
    generator: torch.Generator | list[torch.Generator] | None = None,
    latents: torch.Tensor | None = None,
    prefix: torch.Tensor | None = None,
    content_mask: torch.Tensor | None = None,
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
    content = content.to(device=device, dtype=dtype)
    emotion = emotion.to(device=device, dtype=dtype)
    if negative_emotion is not None:
        negative_emotion = negative_emotion.to(device=device, dtype=dtype)

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
            content_guidance_scale=content_guidance_scale,
            emotion_guidance_scale=emotion_guidance_scale,
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
    content: torch.Tensor,
    emotion: torch.Tensor,
    window: int = 250,
    overlap: int = 25,
    negative_emotion: torch.Tensor | None = None,
    content_guidance_scale: float = 1.0,
    emotion_guidance_scale: float = 1.0,
    num_inference_steps: int = 10,
    generator: torch.Generator | list[torch.Generator] | None = None,
    content_mask: torch.Tensor | None = None,
    callback_on_step_end: Callable[..., dict] | None = None,
) -> torch.Tensor:
    """Sample ``shape = (b, n, c)`` window by window (see :func:`plan_windows`); memory stays flat in ``n``.

    Content ``(b, m, content_dim)`` (any rate), emotion curves and ``content_mask`` are sliced to each
    window. Each window after the first is sampled with its overlap constrained to the previous window's
    tail (the prefix constraint of :func:`sample`); the overlap is then crossfaded linearly from the previous
    frames to the new window's own head, so seams carry no jump. ``callback_on_step_end`` receives
    ``"window_index"`` in its kwargs as well.
    """
    b, n, ch = shape
    out = torch.empty((b, n, ch), device=model.device, dtype=model.dtype)
    prev_end = 0
    for wi, (start, end) in enumerate(plan_windows(n, window, overlap)):
        ov = prev_end - start
        em = emotion if emotion.ndim == 2 else _slice_time(_resample_time(emotion, n), start, end, n)
        neg = negative_emotion
        if neg is not None and neg.ndim == 3:
            neg = _slice_time(_resample_time(neg, n), start, end, n)
        cb = None
        if callback_on_step_end is not None:

            def cb(mdl, i, t, kwargs, _wi=wi):
                kwargs["window_index"] = _wi
                return callback_on_step_end(mdl, i, t, kwargs)

        x = sample(
            model,
            scheduler,
            (b, end - start, ch),
            _slice_time(content, start, end, n),
            em,
            negative_emotion=neg,
            content_guidance_scale=content_guidance_scale,
            emotion_guidance_scale=emotion_guidance_scale,
            num_inference_steps=num_inference_steps,
            generator=generator,
            prefix=out[:, start:prev_end] if ov > 0 else None,
            content_mask=_slice_time(content_mask[..., None], start, end, n)[..., 0] if content_mask is not None else None,
            callback_on_step_end=cb,
        )
        if ov > 0:
            w = (torch.arange(ov, device=out.device, dtype=out.dtype) + 1) / (ov + 1)  # new-window weight
            w = w[None, :, None]
            out[:, start:prev_end] = (1 - w) * out[:, start:prev_end] + w * x[:, :ov]
        out[:, prev_end:end] = x[:, ov:]
        prev_end = end
    return out
