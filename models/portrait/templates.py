"""FACS displacement templates: one per expression channel, built from FACS geometry on a face's own neutral
mesh in the face-normalised frame (see :mod:`.geometry`), so decoding is linear in the expression
coefficients. Coefficient 1 is a strong but natural action."""

from __future__ import annotations

import torch

from .channels import EXPRESSION_CHANNELS
from .geometry import gauss, gexp, interp, smoothstep
from .mesh import (
    CHIN,
    FACE_OVAL,
    LEFT_BROW,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    LEFT_IRIS,
    LIP_CORNERS,
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
    NOSE_TIP,
    RIGHT_BROW,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
    RIGHT_IRIS,
)


def expression_templates(neutral_norm: torch.Tensor) -> torch.Tensor:
    """Displacement templates on a neutral face in the normalised frame: (478, 3) -> (E, 478, 3)."""
    p = neutral_norm
    x, y = p[:, 0], p[:, 1]
    zeros = torch.zeros_like(p)
    out = {name: zeros.clone() for name in EXPRESSION_CHANNELS}

    ui, li = p[LIPS_UPPER_INNER], p[LIPS_LOWER_INNER]
    mid = (ui + li) / 2  # mouth line knots
    mouth_c = p[LIPS_UPPER_INNER + LIPS_LOWER_INNER].mean(0)
    mx, my = mouth_c[0], mouth_c[1]
    corner_r, corner_l = p[MOUTH_CORNER_R], p[MOUTH_CORNER_L]
    half_w = (corner_l[0] - corner_r[0]).abs() / 2
    y_line = interp(x, mid[:, 0], mid[:, 1])
    gap_half = ((interp(x, li[:, 0], li[:, 1]) - interp(x, ui[:, 0], ui[:, 1])) / 2).clamp_min(0)
    outside = (x - mx).abs() - half_w
    ramp = 0.1 + 0.4 * outside.clamp_min(0)
    below = smoothstep(-0.5, 1.0, (y - y_line) / ramp)  # 1 under the mouth line
    rows_up = (LIPS_UPPER_INNER, LIPS_UPPER_OUTER, LIPS_UPPER_SEMI_OUTER, LIPS_UPPER_SEMI_INNER)
    rows_lo = (LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_LOWER_SEMI_OUTER, LIPS_LOWER_SEMI_INNER)
    for row in rows_up:
        below[row[1:-1]] = 0.0
    for row in rows_lo:
        below[row[1:-1]] = 1.0
    below[LIP_CORNERS] = 0.5
    in_face_x = gexp((outside.clamp_min(0) / 0.55) ** 2)
    mouth_g = gauss(x, y, mx, my, half_w * 1.25, 0.28)
    lips = gauss(x, y, mx, my, half_w * 1.05, 0.16)
    upper = 1 - below

    # jaw_open: rotation about the hinge; lower face drops proportionally to its distance from it.
    y_h, y_chin = p[NOSE_TIP, 1] - 0.25, p[CHIN, 1]
    r = ((y - y_h) / (y_chin - y_h)).clamp(0, 1.2)
    t = out["jaw_open"]
    # the lower lip hangs from the commissures: it drops most at the centre and little near the corners,
    # so the opening is lens-shaped rather than a box from corner to corner
    lens = 1 - 0.5 * lips * ((x - mx) / half_w).clamp(-1, 1) ** 2
    t[:, 1] = 0.5 * below * r * in_face_x * lens
    t[:, 2] = 0.12 * below * r * in_face_x
    # the mandible swings the corners down and in: an opening mouth narrows (both lips)
    t[:, 0] = -0.05 * (x - mx) / half_w * mouth_g * below - 0.03 * (x - mx) / half_w * mouth_g * upper
    # the lips part beyond what the hinge gives them (the lower lip follows the jaw, the upper lifts a little):
    # the inner gap grows without the chin moving further
    t[:, 1] += 0.08 * below * lips - 0.035 * upper * lips

    t = out["lip_round"]
    t[:, 0] = -0.38 * (x - mx) * mouth_g
    t[:, 1] = 0.12 * (y - my) * mouth_g
    t[:, 2] = -0.12 * mouth_g

    t = out["lip_spread"]
    t[:, 0] = 0.22 * (x - mx) * mouth_g
    t[:, 1] = -0.10 * (y - my) * mouth_g

    # lip_press: close any neutral gap, then press lips (thinner red, lips slightly rolled in)
    press_w = gauss(x, y, mx, my, half_w * 1.1, 0.22)
    lip_off = (y - y_line).abs()
    t = out["lip_press"]
    t[:, 1] = (upper - below) * (gap_half + 0.03 + 0.10 * lip_off.clamp(max=0.3)) * press_w
    t[:, 0] = -0.04 * (x - mx) * press_w

    t = out["lips_part"]
    part_w = gauss(x, y, mx, my, half_w * 1.0, 0.13) * gexp((outside.clamp_min(0) / 0.05) ** 2)
    t[:, 1] = (0.06 * below - 0.035 * upper) * part_w
    t[:, 0] = -0.02 * (x - mx) * part_w

    t = out["upper_lip_raise"]
    t[:, 1] = -0.09 * upper * gauss(x, y, mx, my - 0.05, half_w * 0.9, 0.15)
    t[:, 1] -= 0.03 * gauss(x, y, mx, p[NOSE_TIP, 1] + 0.1, 0.3, 0.12)

    # brows: each brow moves as a whole, its hair never stretched into a doubled band (full weight from just under
    # the brow's lower edge over the brow); the skin takes up the motion, easing to nothing at the upper lid below
    # and at the top of the face oval above (the forehead bunches, the hairline stays)
    brow_pts = torch.cat([p[RIGHT_BROW], p[LEFT_BROW]])
    brow_y = brow_pts[:, 1].mean()
    above_eye = brow_weight(p, x, y)
    inner = gexp(((x.abs() - 0.18) / 0.16) ** 2)
    outer = gexp(((x.abs() - 0.62) / 0.18) ** 2)
    # AU1 lifts the inner brow heads (and draws them slightly together), AU2 the outer brow tails
    # (a larger or wider AU2 folds the skin between brow and lid on faces with a short brow-lid gap, e.g. takeo)
    out["AU1"][:, 1] = -0.25 * inner * above_eye
    out["AU1"][:, 0] = -0.021 * torch.sign(x) * inner * above_eye
    out["AU2"][:, 1] = -0.17 * outer * above_eye
    # AU4 (corrugator/procerus): brows down, most at the inner heads, and pulled together over the nose
    brows = above_eye  # the brow lowered as a whole: the skin under it bunches over the lid, the hairline stays
    glabella = gexp((x / 0.35) ** 2)
    out["AU4"][:, 1] = 0.20 * brows * (0.35 + 0.65 * glabella)
    out["AU4"][:, 0] = -0.04 * torch.sign(x) * brows * gexp(((x.abs() - 0.2) / 0.25) ** 2)

    # eyes: lid curves per eye
    blink = out["blink"]
    for up_idx, lo_idx, iris in (
        (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_IRIS),
        (LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_IRIS),
    ):
        up, lo = p[up_idx], p[lo_idx]
        ex0, ex1 = up[:, 0].min(), up[:, 0].max()
        ecx = (ex0 + ex1) / 2
        ehw = (ex1 - ex0) / 2
        x_fade = gexp((((x - ecx).abs() - ehw).clamp_min(0) / 0.06) ** 2)
        # knots sorted by x
        uo, lo_o = up[up[:, 0].argsort()], lo[lo[:, 0].argsort()]
        y_up = interp(x, uo[:, 0], uo[:, 1])
        y_lo = interp(x, lo_o[:, 0], lo_o[:, 1])
        y_c = y_lo - 0.25 * (y_lo - y_up)  # closed lid line
        h_above = (y_up - y).clamp_min(0)
        h_below = (y - y_lo).clamp_min(0)
        inside = ((y >= y_up) & (y <= y_lo)).float()
        near = x_fade * (1 - inside)
        dy = (
            torch.where(
                y < y_up, (y_c - y_up) * gexp((h_above / 0.09) ** 2), (y_c - y_lo) * gexp((h_below / 0.05) ** 2)
            )
            * near
        )
        dy = dy + inside * x_fade * (y_c - y)
        idx_up = torch.tensor(up_idx, device=p.device)
        idx_lo = torch.tensor(lo_idx, device=p.device)
        dy[idx_up] = (y_c - y)[idx_up]
        dy[idx_lo] = (y_c - y)[idx_lo]
        dy[iris] = (y_c - y)[iris]
        eye_region = gauss(x, y, ecx, (y_up + y_lo).mean() * 0 + up[:, 1].mean(), ehw * 1.6, 0.35)
        blink[:, 1] += dy * (eye_region > 0.02).float()
        # AU5: upper lid up; AU7: lower lid up, upper lid down a little; AU6 narrows from below
        # lids move most over the iris and not at all at the canthi (the eye corners stay put)
        arch = (1 - ((x - ecx) / ehw).clamp(-1, 1) ** 2).clamp_min(0).sqrt()
        lid_up = gexp((h_above / 0.07) ** 2) * x_fade * (1 - inside) * (y <= y_up).float()
        lid_up[idx_up] = 1.0
        lid_up = lid_up * arch
        lid_lo = gexp((h_below / 0.06) ** 2) * x_fade * (1 - inside) * (y >= y_lo).float()
        lid_lo[idx_lo] = 1.0
        lid_lo[idx_up] = 0.0
        lid_lo = lid_lo * arch
        lid_lo[[up_idx[0], up_idx[-1]]] = 0.0
        out["AU5"][:, 1] += -0.15 * lid_up
        out["AU4"][:, 1] += 0.0096 * lid_up  # the lowered brow pushes the lid fold down a little (eye shape kept)
        out["AU7"][:, 1] += -0.10 * lid_lo + 0.015 * lid_up
        out["AU6"][:, 1] += -0.03 * lid_lo
        out["gaze_x"][iris, 0] = 0.10
        out["gaze_y"][iris, 1] = 0.06

    # AU6: cheeks up (and crow's feet region)
    cheeks = gauss(x.abs(), y, 0.48, 0.62, 0.22, 0.2)
    out["AU6"][:, 1] += -0.10 * cheeks
    out["AU9"][:, 1] = -0.06 * gauss(x, y, 0.0, p[NOSE_TIP, 1] - 0.05, 0.3, 0.2)
    out["AU9"][:, 1] += 0.03 * gauss(x, y, 0.0, brow_y, 0.3, 0.15)
    out["AU9"][:, 1] += -0.03 * upper * lips

    # mouth corners
    corner_g_r = gauss(x, y, corner_r[0], corner_r[1], 0.17, 0.14)
    corner_g_l = gauss(x, y, corner_l[0], corner_l[1], 0.17, 0.14)
    side = torch.stack([-corner_g_r, corner_g_l]).sum(0)  # signed: -1 right corner, +1 left corner
    both = corner_g_r + corner_g_l
    t = out["AU12"]
    t[:, 0] = 0.13 * side
    t[:, 1] = -0.14 * both - 0.02 * lips - 0.05 * gauss(x.abs(), y, 0.42, 0.75, 0.2, 0.2)
    t[:, 1] += 0.02 * below * lips  # lower lip stretches down a little
    # (a real smile also parts the lips: a coupling in PortraitRenderer.couple_actions, not linear here)
    dimple_l = gauss(x, y, corner_l[0] + 0.04, corner_l[1], 0.09, 0.09)
    dimple_r = gauss(x, y, corner_r[0] - 0.04, corner_r[1], 0.09, 0.09)
    out["AU14L"][:, 0] = -0.045 * dimple_l
    out["AU14L"][:, 1] = -0.02 * dimple_l
    out["AU14L"][:, 2] = 0.04 * dimple_l
    out["AU14R"][:, 0] = 0.045 * dimple_r
    out["AU14R"][:, 1] = -0.02 * dimple_r
    out["AU14R"][:, 2] = 0.04 * dimple_r
    # AU15 (depressor anguli oris): corners pulled down and a little out, the lateral lower lip and the
    # skin below the corners follow, the lip centres stay: the mouth line bends into an inverted U
    t = out["AU15"]
    low_r = gauss(x, y, corner_r[0] - 0.03, corner_r[1] + 0.2, 0.14, 0.16)
    low_l = gauss(x, y, corner_l[0] + 0.03, corner_l[1] + 0.2, 0.14, 0.16)
    t[:, 0] = 0.045 * side
    # at 1 the corners drop about 4 % of the face's height (0.09 of the eye distance), not a cartoon frown
    t[:, 1] = 0.09 * both + 0.03 * below * lips * ((x - mx).abs() / half_w).clamp(max=1) + 0.03 * (low_r + low_l)
    # AU17 (mentalis): chin boss up, lower lip pushed up and out (pout), which bends the lip line further
    t = out["AU17"]
    chin_g = gauss(x, y, mx, p[CHIN, 1] - 0.15, 0.35, 0.25)
    t[:, 1] = -0.04 * chin_g - 0.05 * below * lips
    t[:, 2] = -0.04 * below * lips
    t = out["AU20"]
    t[:, 0] = 0.07 * side + 0.08 * (x - mx) * lips
    t[:, 1] = 0.02 * both + 0.015 * below * lips
    # AU23 (orbicularis oris): lips narrowed and thinned, the red margins drawn in toward the lip line
    t = out["AU23"]
    t[:, 0] = -0.06 * side - 0.03 * (x - mx) * lips
    t[:, 1] = (upper - below) * 0.045 * lips * (lip_off / 0.1).clamp(max=1)

    return torch.stack([out[n] for n in EXPRESSION_CHANNELS])  # (E, 478, 3)


def brow_weight(p: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """How much of a brow's motion each point ``(x, y)`` of the normalised face ``p`` follows: 1 over the brow
    (from a little under its lower edge to its upper edge), easing to 0 at the upper lid below it (never the lid
    itself) and, linearly, at the top of the face oval above it. Each side of the midline follows its own brow."""
    oval = p[FACE_OVAL]
    top = oval[oval[:, 1] < (p[RIGHT_BROW + LEFT_BROW, 1].min() - 0.1)]
    top = top[top[:, 0].argsort()]
    top_y = interp(x, top[:, 0], top[:, 1])
    w = torch.zeros_like(x)
    for brow, lid, side in ((RIGHT_BROW, RIGHT_EYE_UPPER, x < 0), (LEFT_BROW, LEFT_EYE_UPPER, x >= 0)):
        rows = []
        for pts in (p[brow[:5]], p[brow[5:]], p[lid]):  # upper edge, lower edge, upper lid
            pts = pts[pts[:, 0].argsort()]
            rows.append(interp(x, pts[:, 0], pts[:, 1]))
        b_up, b_lo, lid_y = rows
        # under the brow: 0 at the lid (at most 0.12 under the brow), 1 a little under the brow's lower edge
        gap = (lid_y - b_lo).clamp(0.06, 0.14)
        under = smoothstep(b_lo + gap - 0.015, b_lo + 0.5 * gap, y)
        # above it: linear to nothing at the oval's top (at least 0.2 above the brow)
        span = (b_up - top_y).clamp_min(0.2)
        over = ((y - (b_up - span)) / span).clamp(0, 1)
        w = torch.where(side, torch.where(y > b_up, under, over), w)
    return w
