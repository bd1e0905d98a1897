"""The mouth: inner-lip geometry in a mouth-aligned frame, per-pixel sampling of the photo's own teeth and lips
for the target lip shape, and a synthesised cavity (shaded toward the back, tongue, teeth scaled with the
opening) where the photo has nothing to show. ``state`` is the renderer's :class:`PortraitState`."""

from __future__ import annotations

import math

import torch

from .geometry import gexp, interp, sigmoid
from .mesh import INNER_CORNER_L, INNER_CORNER_R, LIPS_LOWER_INNER, LIPS_UPPER_INNER


def mouth_frame(q: torch.Tensor):
    """q (b, 478, 2) -> origin (b, 2), axis (b, 2), half width (b,) of the inner mouth corners."""
    a, b = q[:, INNER_CORNER_R], q[:, INNER_CORNER_L]
    d = b - a
    hw = d.norm(dim=-1) / 2
    return (a + b) / 2, d / hw.clamp_min(1e-6)[:, None] / 2, hw


def lip_profile(q, origin, axis, hw) -> torch.Tensor:
    """Inner-lip curves in the mouth frame: (b, 3, 11) = (s, v_upper, v_lower) ordered corner to corner."""
    normal = torch.stack([-axis[:, 1], axis[:, 0]], -1)
    ui = q[:, LIPS_UPPER_INNER] - origin[:, None]
    li = q[:, LIPS_LOWER_INNER] - origin[:, None]
    su = (ui * axis[:, None]).sum(-1)
    vu = (ui * normal[:, None]).sum(-1)
    sl = (li * axis[:, None]).sum(-1)
    vl = (li * normal[:, None]).sum(-1)
    s = (su + sl) / 2
    s = torch.cummax(s, -1).values
    # lower lip shares the knots: resample it at the upper knots' s
    vl = interp(s, torch.cummax(sl, -1).values, vl)
    vu = interp(s, torch.cummax(su, -1).values, vu)
    vl = torch.maximum(vl, vu)  # lips never cross
    return torch.stack([s, vu, vl], 1)


def mouth_coords(state, q: torch.Tensor, roi_px: torch.Tensor) -> dict:
    """Per ROI pixel: inside-mouth alpha, rigid upper/lower source coordinates, coverage weights."""
    b = q.shape[0]
    origin, axis, hw = mouth_frame(q)
    normal = torch.stack([-axis[:, 1], axis[:, 0]], -1)
    prof = lip_profile(q, origin, axis, hw)  # (b, 3, 11)
    rel = roi_px[None] - origin[:, None, None]  # (b, rh, rw, 2)
    sp = (rel * axis[:, None, None]).sum(-1)
    vp = (rel * normal[:, None, None]).sum(-1)
    rh, rw = sp.shape[1:]
    flat_s = sp.reshape(b, -1)
    vu = interp(flat_s, prof[:, 0], prof[:, 1]).view(b, rh, rw)
    vl = interp(flat_s, prof[:, 0], prof[:, 2]).view(b, rh, rw)
    gap = vl - vu
    tau = max(0.5, 0.012 * state.iod)  # soft, slightly blurred inner-lip edge
    sig = (sp / hw[:, None, None]).clamp(-1, 1)  # position along the mouth, -1..1
    alpha = sigmoid((vp - vu) / tau) * sigmoid((vl - vp) / tau)
    alpha = alpha * (gap / (2.5 * tau)).clamp(0, 1) * (1 - sig.abs() ** 8)
    # reference correspondences at the same relative position along the mouth
    ref = state.ref_mouth  # (3, 11)
    rmf = state.ref_mouth_frame
    r_o, r_a, r_hw = rmf[:2], rmf[2:4], rmf[4]
    r_n = torch.stack([-r_a[1], r_a[0]])
    s_ref = sig * r_hw
    flat = s_ref.reshape(1, -1)
    r_vu = interp(flat, ref[0][None], ref[1][None]).view(b, rh, rw)
    r_vl = interp(flat, ref[0][None], ref[2][None]).view(b, rh, rw)
    r_gap = (r_vl - r_vu).clamp_min(0)
    k = r_hw / hw[:, None, None]  # reference px per target px
    du = (vp - vu) * k
    dl = (vl - vp) * k
    src_up = r_o + s_ref[..., None] * r_a + (r_vu + du)[..., None] * r_n
    src_lo = r_o + s_ref[..., None] * r_a + (r_vl - dl)[..., None] * r_n
    # lips: texture rigidly attached to each inner-lip edge (never the reference's teeth), so a closing
    # mouth shows lip over the old teeth region instead of a compressed white line
    off = 0.02 * state.iod
    upper_half = vp < (vu + vl) / 2
    v_lip = torch.where(
        upper_half,
        r_vu + torch.minimum(du, torch.zeros_like(du)) - off,
        r_vl - torch.minimum(dl, torch.zeros_like(dl)) + off,
    )
    src_lip = r_o + s_ref[..., None] * r_a + v_lip[..., None] * r_n
    band = 0.07 * state.iod
    dist = torch.maximum(vu - vp, vp - vl).clamp_min(0)  # distance outside the gap
    w_band = sigmoid((band - dist) / max(0.7, 0.02 * state.iod)) * (1 - sig.abs() ** 6)
    soft = max(1.0, 0.02 * state.iod)
    # the photo's own interior only where it shows one (a barely parted photo mouth has only a dark slit to
    # stretch: the synthesised cavity and teeth take over)
    shown = ((r_gap - 0.03 * state.iod) / (0.03 * state.iod)).clamp(0, 1)
    w_up = sigmoid((0.58 * r_gap - du) / soft) * shown
    w_lo = sigmoid((0.42 * r_gap - dl) / soft) * shown * (1 - w_up)
    # closed lips: a soft, shaded line where they meet (not a dark pencil line), fading toward the corners
    vm = (vu + vl) / 2
    sw = max(0.6, 0.014 * state.iod)
    seam = gexp(((vp - vm) / (sw + 0.5 * gap.clamp_min(0))) ** 2) * (1 - sig.abs() ** 4)
    seam = seam * (0.4 + 0.6 * (gap / (2.5 * tau)).clamp(0, 1))  # darkens as the lips part
    return dict(
        alpha=alpha[:, None],
        src_up=src_up,
        src_lo=src_lo,
        src_lip=src_lip,
        w_band=w_band[:, None],
        seam=seam[:, None],
        w_up=w_up[:, None],
        w_lo=w_lo[:, None],
        du=vp - vu,
        dl=vl - vp,
        gap=gap,
        sig=sig,
    )


def synth_mouth(state, m: dict, smile=None) -> torch.Tensor:
    """The mouth interior where the photo has none to show, scaled with the opening: a cavity lit near the lips
    (lip colour in shadow) and darkest at its back (a dark, reddish throat, never a flat black), an upper-teeth
    band under the upper lip (the photo's own teeth colour, else a soft off-white, shaded toward the corners and
    under the lip), and on a wide opening a reddish tongue at the bottom with a hint of the lower teeth. A smile
    ``(b,)`` (AU12 beyond the photo's) shows more of the upper teeth, as a real smile does."""
    gap = m["gap"].clamp_min(1e-3)
    du, dl, sig = m["du"], m["dl"], m["sig"]
    iod = state.iod
    dev = gap.device
    soft = max(0.7, 0.015 * iod)
    across = (1 - sig.abs() ** 2).clamp_min(0)  # 1 mid-mouth, 0 at the corners
    lip = state.lip_color.to(dev).view(1, 3, 1, 1)
    # cavity: lip colour in shadow at the lips, darker toward the back; a wide opening shows a deeper, darker back
    wide = (gap / (0.3 * iod)).clamp(0, 1)[:, None]
    depth = (torch.sin(math.pi * (du / gap).clamp(0, 1)) * across).clamp(0, 1)[:, None] ** 0.7
    cavity = torch.lerp(lip * 0.55, lip * (0.3 - 0.1 * wide), depth * (0.7 + 0.3 * wide))
    # tongue: reddish, filling the bottom of a wide opening, lit at its front edge
    tongue_h = (0.4 * gap).clamp(max=0.2 * iod)
    tongue = sigmoid((tongue_h - dl) / soft) * across.sqrt() * ((gap - 0.08 * iod) / (0.12 * iod)).clamp(0, 1)
    lit = (1 - dl / tongue_h.clamp_min(1e-3)).clamp(0, 1)  # 1 at the lower lip, 0 at the tongue's back
    red = torch.tensor([0.85, 0.5, 0.5], device=dev).view(1, 3, 1, 1)  # the tongue is redder than the lips
    t_col = lip * red * (0.6 + 0.35 * lit[:, None])
    cavity = cavity.lerp(t_col, 0.9 * tongue[:, None])
    # upper teeth: a band under the upper lip, growing with the opening, shaded toward the corners and in the
    # upper lip's shadow, a little darker at its lower edge; drawn at low contrast (never a white bar)
    show = 0.4 if smile is None else 0.4 + 0.35 * smile.view(-1, 1, 1).to(gap)
    band = torch.minimum(show * gap, 0.15 * iod + 0.1 * iod * (show - 0.4) / 0.35).clamp_min(1e-3)
    teeth_a = sigmoid((band - du) / soft) * across.clamp_min(0) ** 0.6
    teeth_a = teeth_a * ((gap - 0.03 * iod) / (0.08 * iod)).clamp(0, 1)
    along = (du / band).clamp(0, 1)
    shade = (0.7 + 0.3 * across) * (0.85 + 0.15 * (du / (0.25 * band)).clamp(0, 1)) * (1 - 0.15 * along)
    teeth = state.teeth_color.to(dev).view(1, 3, 1, 1) * shade[:, None]
    # lower teeth: a faint, thin band just above the lower lip of a wide opening, in front of the tongue
    lband = (0.12 * gap).clamp(max=0.05 * iod)
    lower_a = sigmoid((lband - dl) / soft) * across * ((gap - 0.2 * iod) / (0.2 * iod)).clamp(0, 1) * 0.5
    return cavity.lerp(teeth, teeth_a[:, None]).lerp(teeth * 0.75, lower_a[:, None])
