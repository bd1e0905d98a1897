"""Time resampling of per-frame signals: the one function every layer uses to bring a sequence to another
frame count or frame rate (audio features, motion, emotion curves, content streams).

Convention: frames are intervals and their centres are aligned, as ``torch.nn.functional.interpolate(...,
mode="linear", align_corners=False)`` does, so a sequence keeps its duration and a frame never shifts by half
a frame when the rate changes; values are clamped at the ends.
"""

from __future__ import annotations

import numpy as np


def resample_frames(x, n: int, dim: int = 0, scale: float | None = None):
    """Linearly resample ``x`` along ``dim`` from its ``m`` frames to ``n``.

    Output frame ``k`` reads the input at position ``(k + 0.5) * scale - 0.5`` (clamped to ``[0, m - 1]``),
    with ``scale = m / n`` by default (same duration) or, for two sequences at known rates that need not end
    together, ``scale = source_rate / target_rate``. A numpy array gives a numpy array (float32 stays
    float32), a torch tensor a tensor on its device with its dtype; ``m == n`` without ``scale`` is the
    identity.
    """
    m = x.shape[dim]
    if n < 1 or m < 1:
        raise ValueError(f"cannot resample {m} frames to {n}")
    if m == n and scale is None:
        return x
    s = m / n if scale is None else float(scale)
    pos = np.clip((np.arange(n) + 0.5) * s - 0.5, 0.0, m - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, m - 1)
    w = (pos - i0).reshape((-1,) + (1,) * (x.ndim - 1 - dim % x.ndim))
    if hasattr(x, "index_select"):  # torch
        import torch

        a = x.index_select(dim, torch.from_numpy(i0).to(x.device))
        b = x.index_select(dim, torch.from_numpy(i1).to(x.device))
        w = torch.from_numpy(w).to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)
        return a + (b - a) * w
    x = np.asarray(x)
    a, b = np.take(x, i0, axis=dim), np.take(x, i1, axis=dim)
    out = a + (b - a) * w
    return out.astype(x.dtype) if np.issubdtype(x.dtype, np.floating) else out
