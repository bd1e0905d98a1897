"""AffectDiT: the one sequence diffusion transformer every AffectStudio generator uses.

A DiT (Peebles & Xie, facebookresearch/DiT ``models.py``) over a *time axis* instead of image patches:

* tokens ``sample`` ``(b, n, in_channels)`` (motion coefficients, prosody features, bar rolls …) are embedded
  linearly to ``(b, n, d)``; self-attention uses rotary position embeddings (RoPE) over time, so the model
  works for any ``n`` — also longer than anything seen in training;
* **named content streams** ``content = {name: (b, m_s, dim_s)}`` (the portrait's ``audio`` frames, dubbing's
  ``phonemes`` and ``lips``, music's ``bars`` …), declared in the config as ``content_streams = {name: dim}``.
  Each stream has its own small MLP projector to ``(b, m_s, d)`` and its own learned null token; all streams'
  tokens are read together by cross-attention in every block, with RoPE positions mapped onto the frame axis
  (``j * n / m_s``) so cross-attention sees *relative time* whatever each stream's rate;
* **aligned streams** (``aligned_streams``, default: all) are also resampled to ``n`` frames (identity when
  ``m_s == n``, linear interpolation otherwise) and *added* to the frame tokens. For lip-sync this direct
  frame-to-frame path learns far faster than cross-attention alone; cross-attention still gives each frame a
  window of context (coarticulation, look-ahead);
* conditioning ``c = timestep_embedding(t) + emotion_projector(emotion) [+ speaker_projector(speaker)]``;
  emotion is a per-clip affect vector ``(b, 12)`` or a per-frame curve ``(b, n, 12)``, so ``c`` is ``(b, 1, d)``
  or ``(b, n, d)`` and adaLN-Zero modulates every token with its own emotion — curves need no special path.
  An optional speaker/style vector ``(b, speaker_dim)`` is added the same way when ``speaker_dim > 0``;
* adaLN-Zero: each block's shift/scale/gate (self-attention, cross-attention, MLP) come from a linear layer
  initialised to zero, and the final layer's output linear is zero too, so the model outputs exactly zero at
  initialisation;
* classifier-free guidance by learned null tokens (DiT's ``token_drop``), one guidance axis per condition:
  ``drop_content`` (every stream's tokens → its null token), ``drop_emotion``, ``drop_speaker`` (``(b,)`` bool).

Presets: sizes (``tiny`` CPU default, ``base``, ``large``) here, and one preset per generator (``portrait``,
``dubbing``, ``music``) read from ``configs/presets/<name>.yaml`` — the shipped configs *are* the presets.
Training, guidance and sampling live in :mod:`affectstudio.models.flow`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from einops import rearrange
from torch import nn

from affectstudio.conditioning.timeseries import resample_frames

__all__ = ["AFFECT_DIT_PRESETS", "AffectDiT", "AffectDiTOutput", "generator_presets"]

AFFECT_DIT_PRESETS: dict[str, dict[str, Any]] = {
    # CPU default: a 250-frame clip, 10 steps, runs in well under a second on 2 cores.
    "tiny": dict(hidden_size=128, depth=4, num_heads=4, mlp_ratio=4.0),
    # GPU-sized models for training on real data.
    "base": dict(hidden_size=384, depth=8, num_heads=6, mlp_ratio=4.0),
    "large": dict(hidden_size=768, depth=16, num_heads=12, mlp_ratio=4.0),
}


def generator_presets() -> list[str]:
    """Names of the generator presets: one ``configs/presets/<name>.yaml`` each (a new generator adds its file)."""
    from importlib import resources

    folder = resources.files("affectstudio.configs").joinpath("presets")
    return sorted(f.name[: -len(".yaml")] for f in folder.iterdir() if f.name.endswith(".yaml"))


@cache
def _generator_preset(name: str) -> dict[str, Any]:
    """A generator preset: ``configs/presets/<name>.yaml`` (``size`` names a size preset; the rest are overrides)."""
    from importlib import resources

    import yaml

    text = resources.files("affectstudio.configs").joinpath("presets", f"{name}.yaml").read_text()
    cfg = dict(yaml.safe_load(text))
    size = cfg.pop("size", "tiny")
    return {**AFFECT_DIT_PRESETS[size], **cfg}


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
        assert rope_k is not None  # set with the context above
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


# ----------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------


class AffectDiT(ModelMixin, ConfigMixin):
    """Sequence DiT predicting the flow velocity of ``(b, n, in_channels)`` frames.

    Args:
        in_channels: features per frame of the generated sequence.
        content_streams: ``{name: features per token}`` of the named content streams (e.g. ``{"audio": 83}``).
        aligned_streams: the streams also resampled to the frame rate and added to the frame tokens
            (``None``: all of them; ``[]``: none — cross-attention only).
        speaker_dim: size of an optional speaker/style vector (0: none).
        out_channels: defaults to ``in_channels``.
        emotion_dim: size of the affect vector (12: 8 probs, valence/arousal/dominance, intensity).
        hidden_size, depth, num_heads, mlp_ratio: transformer size (see :data:`AFFECT_DIT_PRESETS`).
        cross_attention: cross-attend from frames to all content tokens in every block.
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
        content_streams: dict[str, int] | None = None,
        aligned_streams: list[str] | None = None,
        speaker_dim: int = 0,
        out_channels: int | None = None,
        emotion_dim: int = 12,
        hidden_size: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        cross_attention: bool = True,
        qk_norm: bool = True,
        rope_theta: float = 10000.0,
        num_train_timesteps: int = 1000,
        frequency_embedding_size: int = 256,
    ):
        super().__init__()
        streams = dict(content_streams or {"content": 1})
        aligned = list(streams) if aligned_streams is None else list(aligned_streams)
        unknown = [s for s in aligned if s not in streams]
        if unknown:
            raise ValueError(f"aligned_streams {unknown} are not content streams {sorted(streams)}")
        if not (cross_attention or aligned):
            raise ValueError("AffectDiT needs cross_attention or an aligned stream to see its content")
        if not cross_attention and set(aligned) != set(streams):
            raise ValueError("without cross_attention every content stream must be aligned")
        self.streams = list(streams)
        self.aligned = aligned
        out_channels = in_channels if out_channels is None else out_channels
        self.out_channels = out_channels
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.gradient_checkpointing = False

        self.proj_in = nn.Linear(in_channels, hidden_size)
        self.time_proj = Timesteps(frequency_embedding_size, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedder = TimestepEmbedding(frequency_embedding_size, hidden_size)
        self.emotion_projector = Projector(emotion_dim, hidden_size)
        self.content_projectors = nn.ModuleDict({s: Projector(dim, hidden_size) for s, dim in streams.items()})
        # learned classifier-free-guidance tokens (DiT's token_drop), one per condition / stream
        self.null_emotion = nn.Parameter(torch.randn(hidden_size) * 0.02)
        self.null_contents = nn.ParameterDict({s: nn.Parameter(torch.randn(hidden_size) * 0.02) for s in streams})
        if speaker_dim > 0:
            self.speaker_projector = Projector(speaker_dim, hidden_size)
            self.null_speaker = nn.Parameter(torch.randn(hidden_size) * 0.02)
        self.blocks = nn.ModuleList(
            [AffectDiTBlock(hidden_size, num_heads, mlp_ratio, cross_attention, qk_norm) for _ in range(depth)]
        )
        self.final_layer = FinalLayer(hidden_size, out_channels)
        self.initialize_weights()

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "AffectDiT":
        """``AffectDiT.from_preset("portrait")`` (a generator preset, ``configs/presets/portrait.yaml``) or a size
        preset with the shapes given, ``from_preset("tiny", in_channels=24, content_streams={"audio": 90})``;
        overrides win over the preset."""
        if name in generator_presets():
            return cls(**{**_generator_preset(name), **overrides})
        if name not in AFFECT_DIT_PRESETS:
            choices = sorted(AFFECT_DIT_PRESETS) + generator_presets()
            raise ValueError(f"unknown AffectDiT preset {name!r}; choose one of {choices}")
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

    @staticmethod
    def _drop(x: torch.Tensor, drop: torch.Tensor | None, null: torch.Tensor) -> torch.Tensor:
        """Replace ``x (b, k, d)`` by the learned ``null`` token wherever ``drop (b,)`` is true."""
        if drop is None:
            return x
        return torch.where(drop.to(x.device)[:, None, None], null.to(x.dtype), x)

    def embed_condition(
        self,
        timestep: torch.Tensor,  # (b,)
        emotion: torch.Tensor,  # (b, 12) or (b, t, 12)
        n: int,
        drop_emotion: torch.Tensor | None = None,  # (b,) bool
        speaker: torch.Tensor | None = None,  # (b, speaker_dim)
        drop_speaker: torch.Tensor | None = None,  # (b,) bool
    ) -> torch.Tensor:
        """``c = time(t) + emotion(e) [+ speaker(s)]`` → ``(b, 1, d)`` (clip) or ``(b, n, d)`` (curve)."""
        dtype = self.proj_in.weight.dtype
        t_emb = self.time_embedder(self.time_proj(timestep).to(dtype))  # (b, d)
        if emotion.ndim == 2:
            emotion = emotion[:, None]  # (b, 1, 12)
        elif emotion.ndim == 3:
            emotion = resample_frames(emotion, n, dim=1) if emotion.shape[1] != 1 else emotion  # (b, n, 12)
        else:
            raise ValueError(f"emotion must be (b, {self.config.emotion_dim}) or (b, n, {self.config.emotion_dim})")
        e = self._drop(self.emotion_projector(emotion.to(dtype)), drop_emotion, self.null_emotion)  # (b, n|1, d)
        c = t_emb[:, None] + e
        if self.config.speaker_dim > 0:
            if speaker is None:  # no speaker given: the unconditional speaker token
                spk = self.null_speaker.to(dtype).expand(c.shape[0], 1, -1)
            else:
                spk = self._drop(self.speaker_projector(speaker.to(dtype))[:, None], drop_speaker, self.null_speaker)
            c = c + spk
        elif speaker is not None:
            raise ValueError("this AffectDiT has no speaker input (speaker_dim = 0)")
        return c  # (b, n|1, d)

    def embed_content(
        self,
        content: dict[str, torch.Tensor],
        n: int,
        drop_content: torch.Tensor | None = None,
        content_mask: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Project every stream → ``(ctx (b, Σm, d), positions (Σm,), key_mask (b, Σm) | None, aligned (b, n, d))``."""
        if not isinstance(content, dict) or set(content) != set(self.streams):
            got = sorted(content) if isinstance(content, dict) else type(content).__name__
            raise ValueError(f"content must be a dict with the streams {sorted(self.streams)}, got {got}")
        dtype = self.proj_in.weight.dtype
        content_mask = content_mask or {}
        tokens, positions, masks = [], [], []
        aligned = 0
        for name in self.streams:
            x = content[name]  # (b, m, dim)
            b, m = x.shape[:2]
            ctx = self._drop(self.content_projectors[name](x.to(dtype)), drop_content, self.null_contents[name])
            mask = content_mask.get(name)
            if mask is not None and not bool(mask.any(dim=-1).all()):
                raise ValueError(f"content_mask hides every {name!r} token of a sample; drop its content instead")
            if name in self.aligned:
                aligned = aligned + resample_frames(ctx if mask is None else ctx * mask[..., None].to(dtype), n, dim=1)
            tokens.append(ctx)
            positions.append(torch.arange(m, device=x.device, dtype=torch.float32) * (n / m))
            masks.append(torch.ones(b, m, dtype=torch.bool, device=x.device) if mask is None else mask.bool())
        key_mask = torch.cat(masks, dim=1) if content_mask else None
        return torch.cat(tokens, dim=1), torch.cat(positions), key_mask, aligned

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        content: dict[str, torch.Tensor],
        emotion: torch.Tensor,
        speaker: torch.Tensor | None = None,
        drop_content: torch.Tensor | None = None,
        drop_emotion: torch.Tensor | None = None,
        drop_speaker: torch.Tensor | None = None,
        content_mask: dict[str, torch.Tensor] | None = None,
        return_dict: bool = True,
    ) -> AffectDiTOutput | tuple[torch.Tensor]:
        """Predict the flow velocity.

        Args:
            sample: noisy frames ``(b, n, in_channels)``.
            timestep: ``σ · num_train_timesteps``, a scalar or ``(b,)``.
            content: ``{stream: (b, m_s, dim_s)}`` for every configured stream; ``m_s`` may differ from ``n``.
            emotion: affect vector per clip ``(b, emotion_dim)`` or per frame ``(b, n, emotion_dim)`` (a curve
                of another length is linearly resampled to ``n``).
            speaker: optional ``(b, speaker_dim)`` speaker/style vector (``None``: the null speaker token).
            drop_content, drop_emotion, drop_speaker: ``(b,)`` bool; where true the learned null token replaces
                the condition (classifier-free guidance); ``drop_content`` drops every stream.
            content_mask: optional ``{stream: (b, m_s)}`` bool, true for valid tokens (key padding).
            return_dict: return :class:`AffectDiTOutput` (default) or a tuple.
        """
        b, n, _ = sample.shape
        dtype = self.proj_in.weight.dtype
        device = sample.device
        timestep = torch.as_tensor(timestep, device=device)
        if timestep.ndim == 0:
            timestep = timestep.expand(b)
        batches = {v.shape[0] for v in content.values()} | {emotion.shape[0]}
        if batches != {b}:
            raise ValueError(f"batch sizes differ: sample {b}, content/emotion {sorted(batches)}")

        x = self.proj_in(sample.to(dtype))  # (b, n, d)
        c = self.embed_condition(timestep, emotion, n, drop_emotion, speaker, drop_speaker)  # (b, n|1, d)
        ctx, pos_c, key_mask, aligned = self.embed_content(content, n, drop_content, content_mask)
        x = x + aligned  # (b, n, d)

        # RoPE: frames at 0..n-1, content tokens mapped onto the frame axis
        pos_x = torch.arange(n, device=device, dtype=torch.float32)
        rope_x = rotary_cos_sin(pos_x, self.head_dim, self.config.rope_theta, dtype)
        rope_c = rotary_cos_sin(pos_c.to(device), self.head_dim, self.config.rope_theta, dtype)

        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, x, c, rope_x, ctx, rope_c, key_mask)
            else:
                x = block(x, c, rope_x, ctx, rope_c, key_mask)
        out = self.final_layer(x, c)  # (b, n, out_channels)
        if not return_dict:
            return (out,)
        return AffectDiTOutput(sample=out)
