"""Texture layers prepared once per portrait, in reference (crop) pixels; the warp carries them with the face.

One stack holds them (see :func:`texture_stack`): the reference with its mouth interior inpainted
(lips closing over open teeth show lip), the same with the nasolabial folds smoothed (taking a smile off),
the fold mask, the photo itself (teeth of an open reference mouth), a cheek-flattening delta (AU6 dropping),
AU4 shading (glabella furrows and the shadow of lowered brows over the upper lids) and smile shading (the
nasolabial crease deepening and the raised cheeks catching light, AU12/AU6). Expression shading is what
people and expression classifiers read as much as the geometry (FACS appearance changes).
The renderer mixes each frame's texture from them in reference space (:func:`expression_layers`, weighted
per frame by :func:`layer_weights`) and warps only that.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .geometry import FaceFrame, gauss, gaussian_blur, gexp, interp, smoothstep
from .mesh import (
    BROW_HEAD_L,
    BROW_HEAD_R,
    INNER_CORNER_L,
    INNER_CORNER_R,
    LIPS_LOWER_INNER,
    LIPS_LOWER_OUTER,
    LIPS_LOWER_SEMI_INNER,
    LIPS_LOWER_SEMI_OUTER,
    LIPS_UPPER_INNER,
    LIPS_UPPER_OUTER,
    LIPS_UPPER_SEMI_INNER,
    LIPS_UPPER_SEMI_OUTER,
    MOUTH_CORNER_L,
    MOUTH_CORNER_R,
    NOSE_ALA_L,
    NOSE_ALA_R,
)

# channels of the stack
CLOSED, SMOOTHED, FOLD, PHOTO, CHEEK, FURROWS, SMILE = (
    slice(0, 3),
    slice(3, 6),
    slice(6, 7),
    slice(7, 10),
    slice(10, 13),
    slice(13, 14),
    slice(14, 15),
)


def texture_stack(
    img: torch.Tensor,
    ref: torch.Tensor,
    iod: float,
    fold_blur: float,
    brow_shadow: float = 0.0,
    cheek_glow: float = 0.0,
) -> torch.Tensor:
    """(1, 15, s, s): closed-mouth image, its fold-smoothed version, fold mask, photo, cheek delta, AU4 shading
    (furrows 1, brow shadow ``brow_shadow``), smile shading (crease -1, cheek light ``cheek_glow``)."""
    s = img.shape[-1]
    fold = fold_mask(ref, s, iod)
    closed = closed_mouth_texture(img, ref, iod)
    # folds smoothed toward the skin around them: the fold-scale shading replaced by a smoother one, the
    # finest texture (freckles, pores) kept so a smoothed fold does not show as a pale, flat patch
    fine = closed - gaussian_blur(closed, 0.012 * iod)
    blurred = (gaussian_blur(closed, fold_blur * iod) + fine).clamp(0, 1)
    cheek_delta, furrows = expression_textures(closed, ref, iod)
    shadow, crease, glow = shading_masks(ref, s)
    frown = torch.maximum(furrows, brow_shadow * shadow[None, None])
    smile = (cheek_glow * glow - crease)[None, None]
    return torch.cat([closed, blurred, fold[None, None], img, cheek_delta, frown, smile], 1)


def expression_layers(stack: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """The stack's colour layers with the renderer's blends expanded, for per-frame mixing in reference space.

    A frame's texture is ``(closed + drop * fold * (smoothed - closed) + drop6 * cheek) * (1 - frown * furrows)
    * (1 + smile * shading)`` with scalar weights per frame; multiplied out it is a weighted sum of the twelve
    layers returned here, in the order of :func:`layer_weights`. Returns ``(12, 3, h, w)`` over the box
    ``(y0, y1, x0, x1)`` outside which every expression layer is zero (the texture there is ``closed``)."""
    closed = stack[0, CLOSED]
    colour = [closed, stack[0, FOLD] * (stack[0, SMOOTHED] - closed), stack[0, CHEEK]]
    furrows, smile = stack[0, FURROWS], stack[0, SMILE]
    shading = [torch.ones_like(furrows), furrows, smile, furrows * smile]
    active = (torch.cat(colour[1:] + shading[1:3]) != 0).any(0)
    ys, xs = active.any(1).nonzero(), active.any(0).nonzero()
    if len(ys) == 0:  # no expression layers: an empty box
        box = (0, 0, 0, 0)
    else:
        box = (int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1)
    y0, y1, x0, x1 = box
    layers = torch.stack([c * m for c in colour for m in shading])
    return layers[:, :, y0:y1, x0:x1].contiguous(), box


def layer_weights(drop: torch.Tensor, drop6: torch.Tensor, frown: torch.Tensor, smile: torch.Tensor) -> torch.Tensor:
    """Per-frame weights ``(b, 12)`` of :func:`expression_layers` from the blends' scalars ``(b,)``: fold smoothing
    ``drop``, cheek flattening ``drop6``, AU4 shading ``frown`` and smile shading ``smile``."""
    one = torch.ones_like(drop)
    colour = torch.stack([one, drop, drop6], 1)
    shading = torch.stack([one, -frown, smile, -frown * smile], 1)
    return (colour[:, :, None] * shading[:, None, :]).flatten(1)


def shading_masks(ref: torch.Tensor, s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(s, s) masks in reference pixels, in [0, 1]: the shadow lowered brows cast over the upper lids (AU4),
    the nasolabial crease (nose wing to past the mouth corner, AU12) and the raised cheeks' light (AU6)."""
    frame = FaceFrame.from_landmarks(ref)
    r = torch.arange(s, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    g = frame.to_norm(torch.stack([xx, yy, torch.zeros_like(xx)], -1).view(-1, 3))
    x, y = g[:, 0].view(s, s), g[:, 1].view(s, s)
    n = frame.to_norm(ref)
    # between the brows and the upper lid crease, darkest over the inner half of each eye
    brow_y = float(n[[BROW_HEAD_L, BROW_HEAD_R], 1].mean())
    lid_y = brow_y * 0.35
    shadow = gauss(x.abs(), y, 0.42, (brow_y + lid_y) / 2, 0.2, abs(brow_y - lid_y) * 0.45)
    mouth_c = n[LIPS_UPPER_INNER + LIPS_LOWER_INNER, :2].mean(0)
    crease = torch.zeros(s, s)
    for ala, corner in ((NOSE_ALA_R, MOUTH_CORNER_R), (NOSE_ALA_L, MOUTH_CORNER_L)):
        a, b = n[ala, :2], n[corner, :2]
        out = torch.sign(b[0] - mouth_c[0])
        a = a + torch.stack([out * 0.05, torch.tensor(0.02)])
        b = b + torch.stack([out * 0.07, torch.tensor(0.0)])
        d = b - a
        u = (((x - a[0]) * d[0] + (y - a[1]) * d[1]) / (d * d).sum()).clamp(-0.2, 1.3)
        dist2 = (x - a[0] - u * d[0]) ** 2 + (y - a[1] - u * d[1]) ** 2
        along = smoothstep(-0.1, 0.25, u) * smoothstep(1.3, 0.9, u)
        crease = torch.maximum(crease, gexp(dist2 / 0.028**2) * along)
    glow = gauss(x.abs(), y, 0.47, 0.52, 0.13, 0.09)
    return shadow, crease, glow


def fold_mask(ref: torch.Tensor, s: int, iod: float) -> torch.Tensor:
    """(s, s) mask of the nasolabial folds (nose wing to just past each mouth corner), reference pixels."""
    yy, xx = torch.meshgrid(torch.arange(s) + 0.5, torch.arange(s) + 0.5, indexing="ij")
    fold = torch.zeros(s, s)
    mouth_c = ref[LIPS_UPPER_INNER + LIPS_LOWER_INNER, :2].mean(0)
    for ala, corner in ((NOSE_ALA_R, MOUTH_CORNER_R), (NOSE_ALA_L, MOUTH_CORNER_L)):
        a, b = ref[ala, :2], ref[corner, :2]
        outward = torch.sign(b[0] - mouth_c[0])
        for u in torch.linspace(0, 1.25, 12):
            c = a + u * (b - a) + torch.tensor([outward * 0.09 * iod, 0.0])
            fold = torch.maximum(fold, gexp(((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (0.08 * iod) ** 2))
    return fold


def expression_textures(img: torch.Tensor, ref: torch.Tensor, iod: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference-space texture layers that move with the warp: (1, 3, s, s) cheek flattening and (1, 1, s, s)
    glabella furrows.

    Cheeks: raised cheeks (AU6) show as a broad bright bulge with a shadow under it; replacing the cheeks'
    mid-scale shading by a much smoother one (fine skin texture kept) flattens them when AU6 drops.
    Furrows: AU4 bunches the skin between the brows into vertical furrows (FACS appearance changes),
    drawn as soft shading on two short vertical lines above the inner brow heads.
    """
    s = img.shape[-1]
    frame = FaceFrame.from_landmarks(ref)
    r = torch.arange(s, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    grid = torch.stack([xx, yy, torch.zeros_like(xx)], -1).view(-1, 3)
    g = frame.to_norm(grid)
    x, y = g[:, 0].view(s, s), g[:, 1].view(s, s)
    n = frame.to_norm(ref)
    # cheeks: below the lower lids, outside the nose, above the mouth corners' level
    # the apple of the cheek (lateral to the nose-side shading, which is not part of the smile)
    cheek = gauss(x.abs(), y, 0.55, 0.6, 0.17, 0.18)
    lo = gaussian_blur(img, 0.12 * iod)
    flat = gaussian_blur(img, 0.35 * iod)
    d = (flat - lo).mean(1, keepdim=True)  # shading only (luminance), the skin's colour stays
    d = d.clamp(max=0) + 0.5 * d.clamp(min=0)  # mostly take the bulge's highlight down
    cheek_delta = (d * cheek).expand(-1, 3, -1, -1) * (img / img.mean(1, keepdim=True).clamp_min(1e-3))
    # furrows: from the inner brow heads up, a little inside them
    head_r, head_l = n[BROW_HEAD_R, :2].mean(0), n[BROW_HEAD_L, :2].mean(0)
    furrows = torch.zeros(s, s)
    for head in (head_r, head_l):
        fx = head[0] + 0.35 * (0.0 - head[0])  # between the brow head and the midline
        y_lo, y_hi = head[1] + 0.04, head[1] - 0.14
        along = smoothstep(y_lo + 0.05, y_lo - 0.05, y) * smoothstep(y_hi - 0.08, y_hi + 0.08, y)
        furrows = torch.maximum(furrows, gexp(((x - fx) / 0.03) ** 2) * along)
    return cheek_delta[None] if cheek_delta.ndim == 3 else cheek_delta, furrows[None, None]


def closed_mouth_texture(img: torch.Tensor, ref: torch.Tensor, iod: float) -> torch.Tensor:
    """The reference with its mouth interior (teeth, dark commissures) inpainted from the surrounding lips.

    The main warp samples this texture, so a mouth that closes over an open/smiling reference shows lip
    where the teeth and the dark corner shadows were (no white or dark seam, no dark ticks past the
    corners); the open mouth is still drawn from the photo's own pixels inside the mouth (``mouth_coords``).
    """
    import cv2

    s = img.shape[-1]
    q = ref[:, :2].numpy().astype(np.float64)
    # inner-lip polygon, its ends pushed most of the way to the outer corners (the commissure shadows)
    a_r = q[INNER_CORNER_R] + 0.7 * (q[MOUTH_CORNER_R] - q[INNER_CORNER_R])
    a_l = q[INNER_CORNER_L] + 0.7 * (q[MOUTH_CORNER_L] - q[INNER_CORNER_L])
    poly = np.concatenate([a_r[None], q[LIPS_UPPER_INNER[1:-1]], a_l[None], q[LIPS_LOWER_INNER[-2:0:-1]]])
    mask = np.zeros((s, s), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 4).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=2)
    if int(mask.sum()) == 0:
        return img
    grow = max(1, int(round(0.02 * iod)))
    mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    u8 = (img[0].permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    filled = cv2.inpaint(u8, mask, max(2.0, 0.06 * iod), cv2.INPAINT_TELEA)
    # soften the fill a little so it carries no streaks across the mouth
    soft = cv2.GaussianBlur(filled, (0, 0), max(0.8, 0.02 * iod))
    m = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), max(0.6, 0.012 * iod))[..., None]
    out = u8.astype(np.float32) * (1 - m) + soft.astype(np.float32) * m
    return torch.from_numpy(out / 255).permute(2, 0, 1)[None].float().clamp(0, 1)


def sample_colors(img: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Median colour (3,) of ``img (1, 3, s, s)`` at pixel points ``(k, 2)``."""
    s = img.shape[-1]
    g = (pts / s * 2 - 1).view(1, 1, -1, 2)
    return F.grid_sample(img, g, align_corners=False).view(3, -1).median(1).values


def teeth_color(img: torch.Tensor, prof: torch.Tensor, mo, ax, hw) -> torch.Tensor:
    """Mean colour of bright, low-saturation pixels inside the reference mouth (inner-lip profile ``prof``
    in the mouth frame ``mo, ax, hw``), else a soft off-white as bright as the skin's light parts around the
    mouth (teeth in a dim photo are dim too: no white bar in a dark face)."""
    normal = torch.stack([-ax[1], ax[0]])
    ring = [mo + s_ * ax + v * normal for s_ in torch.linspace(-1.6, 1.6, 9) * hw for v in (-1.4 * hw, 1.6 * hw)]
    skin = F.grid_sample(img, (torch.stack(ring) / img.shape[-1] * 2 - 1).view(1, 1, -1, 2), align_corners=False)
    light = float(torch.quantile(skin.view(3, -1).mean(0), 0.8))
    default = torch.tensor([1.04, 1.0, 0.9]) * min(max(1.1 * light, 0.45), 0.8)
    gap = prof[2] - prof[1]
    if float(gap.max()) < 2.0:
        return default
    sv = torch.linspace(0.25, 0.75, 9) * 2 * hw - hw
    pts = []
    for s_ in sv:
        vu = interp(s_.view(1), prof[0], prof[1])
        vl = interp(s_.view(1), prof[0], prof[2])
        for f in torch.linspace(0.15, 0.85, 5):
            v = vu + f * (vl - vu)
            pts.append(mo + s_ * ax + v * normal)
    cols = F.grid_sample(img, (torch.stack(pts) / img.shape[-1] * 2 - 1).view(1, 1, -1, 2), align_corners=False).view(
        3, -1
    )
    lum = cols.mean(0)
    sat = cols.max(0).values - cols.min(0).values
    good = (lum > 0.45) & (sat < 0.25)
    return cols[:, good].mean(1) if int(good.sum()) >= 3 else default


def lip_visibility(img: torch.Tensor, ref: torch.Tensor) -> float:
    """How much of the photo's lips shows (0-1): the fraction of points on the lip body (between the outer and
    inner lip contours) whose colour tells them from the skin around the mouth, on the worse half of the mouth.

    Lips differ from the skin beside them in chromaticity (redder, less green) or are darker; a hand, a
    microphone or a mask over the mouth does neither (a hand is skin: same chromaticity and light), so a covered
    half reads near 0 while a visible one reads near 1 (a pale-lipped big smile ~0.6). A photo without colour
    (greyscale skin) reads 1: the cue needs colour."""
    s = img.shape[-1]
    q = ref[:, :2]
    body = LIPS_UPPER_SEMI_OUTER[1:-1] + LIPS_UPPER_SEMI_INNER[1:-1] + LIPS_LOWER_SEMI_OUTER[1:-1]
    body = body + LIPS_LOWER_SEMI_INNER[1:-1]
    outer = q[LIPS_UPPER_OUTER + LIPS_LOWER_OUTER[1:-1]]
    c = outer.mean(0)
    skin = torch.cat([c + (outer - c) * k for k in (1.5, 1.8)])  # a ring of skin around the lips

    def feats(pts: torch.Tensor) -> torch.Tensor:  # r, g chromaticity and log luminance
        col = F.grid_sample(img[:1], (pts / s * 2 - 1).view(1, 1, -1, 2), align_corners=False).view(3, -1).t()
        total = col.sum(1, keepdim=True).clamp_min(1e-3)
        return torch.cat([col[:, :2] / total, torch.log(total / 3)], 1)

    skin_f = feats(skin).median(0).values
    if float((skin_f[:2] - 1 / 3).abs().max()) < 0.01:  # a greyscale photo: colour cannot tell lips from skin
        return 1.0
    d = feats(q[body]) - skin_f
    lipish = ((d[:, :2].norm(dim=1) > 0.02) | (d[:, 2] < -0.15)).float()
    left = (q[body, 0] - c[0]) < 0
    if bool(left.all()) or not bool(left.any()):
        return float(lipish.mean())
    return min(float(lipish[left].mean()), float(lipish[~left].mean()))
