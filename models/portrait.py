"""Talking-portrait motion space and renderer.

``MotionCodec`` defines the per-frame motion vector the portrait DiT generates: named articulation / FACS
action-unit coefficients, gaze and head pose (``MOTION_CHANNELS``). Every expression channel owns a
displacement template on the 478-point mediapipe face mesh, built from FACS geometry on the reference face's
own (normalised) neutral mesh, so ``decode`` is linear in the expression coefficients and ``fit`` inverts it
by least squares after removing the rigid head pose.

Face-normalised frame ("norm"): origin at the midpoint of the two eye centres (mean of each eye's corners),
x along the eye line towards image right, y down (image convention), z away from the camera (mediapipe),
unit = inter-ocular distance (eye centre to eye centre).

``PortraitRenderer`` warps the reference photo with a piecewise-affine field over a triangulation of the
mesh plus still anchors, samples it with one batched ``grid_sample``, and synthesises the mouth interior,
closes eyelids by the mesh warp (lid skin slides down) and smooths smile folds when a smile is taken off.

Channel units: expression channels are dimensionless (0 = neutral, 1 = a strong but natural action; the
fit may return small negatives); ``gaze_x``/``gaze_y`` in [-1, 1] (1 ~ looking fully right / down);
``yaw``/``pitch``/``roll`` in radians (yaw > 0 turns the nose to image right, pitch > 0 tips the nose down,
roll > 0 rotates the face clockwise on screen).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange

from affectstudio.errors import InputError, NoFaceError

# ----------------------------------------------------------------------------------------------------------
# Motion channels
# ----------------------------------------------------------------------------------------------------------

EXPRESSION_CHANNELS = [
    "jaw_open",  # AU26/AU27: mandible rotation about the hinge
    "lip_round",  # AU18/AU22: rounding / protrusion (o, u, w)
    "lip_spread",  # lips spread horizontally (i, e)
    "lip_press",  # AU24 / viseme lip closure (p, b, m); also closes a parted reference mouth
    "lips_part",  # AU25: lips apart without the jaw (smiles showing teeth, fast speech)
    "upper_lip_raise",  # AU10
    "AU1",  # inner brow raiser
    "AU2",  # outer brow raiser
    "AU4",  # brow lowerer
    "AU5",  # upper lid raiser
    "AU6",  # cheek raiser
    "AU7",  # lid tightener
    "AU9",  # nose wrinkler
    "AU12",  # lip corner puller
    "AU14L",  # dimpler, subject's left (image right)
    "AU14R",  # dimpler, subject's right (image left)
    "AU15",  # lip corner depressor
    "AU17",  # chin raiser
    "AU20",  # lip stretcher
    "AU23",  # lip tightener
    "blink",  # AU43/AU45: eyes closed
    "gaze_x",
    "gaze_y",
]
POSE_CHANNELS = ["yaw", "pitch", "roll"]
MOTION_CHANNELS = EXPRESSION_CHANNELS + POSE_CHANNELS
MOTION_DIM = len(MOTION_CHANNELS)

# Other names callers use (FACS numbers, viseme target keys) -> channel(s).
CHANNEL_ALIASES = {
    "AU26": ["jaw_open"],
    "AU27": ["jaw_open"],
    "mouth_open": ["jaw_open"],
    "AU24": ["lip_press"],
    "AU25": ["lips_part"],
    "lip_closed": ["lip_press"],
    "AU10": ["upper_lip_raise"],
    "AU18": ["lip_round"],
    "AU22": ["lip_round"],
    "AU43": ["blink"],
    "AU45": ["blink"],
    "AU14": ["AU14L", "AU14R"],
}

# ----------------------------------------------------------------------------------------------------------
# Mediapipe face-mesh index sets (478 points, refine_landmarks=True)
# ----------------------------------------------------------------------------------------------------------

LIPS_UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIPS_LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
LIPS_UPPER_SEMI_OUTER = [76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306]
LIPS_LOWER_SEMI_OUTER = [76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306]
LIPS_UPPER_SEMI_INNER = [62, 183, 42, 41, 38, 12, 268, 271, 272, 407, 292]
LIPS_LOWER_SEMI_INNER = [62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292]
LIPS_UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIPS_LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
RIGHT_EYE_UPPER = [33, 246, 161, 160, 159, 158, 157, 173, 133]  # subject's right = image left
RIGHT_EYE_LOWER = [33, 7, 163, 144, 145, 153, 154, 155, 133]
LEFT_EYE_UPPER = [263, 466, 388, 387, 386, 385, 384, 398, 362]
LEFT_EYE_LOWER = [263, 249, 390, 373, 374, 380, 381, 382, 362]
RIGHT_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
LEFT_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
RIGHT_IRIS = [468, 469, 470, 471, 472]
LEFT_IRIS = [473, 474, 475, 476, 477]
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
# Points that expressions barely move: used to remove rigid head motion in ``fit``.
STABLE_POINTS = [33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 234, 454, 127, 356, 93, 323, 98, 327]
NOSE_TIP, CHIN = 1, 152
NUM_LANDMARKS = 478


def _smoothstep(edge0: float, edge1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - edge0) / (edge1 - edge0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _interp(xq: torch.Tensor, xk: torch.Tensor, yk: torch.Tensor) -> torch.Tensor:
    """Batched piecewise-linear interpolation, clamped at the ends. xq (..., p), xk/yk (..., k)."""
    xk = torch.cummax(xk, dim=-1).values  # knots must be non-decreasing
    lead = torch.broadcast_shapes(xq.shape[:-1], xk.shape[:-1])
    xq = xq.expand(*lead, xq.shape[-1]).contiguous()
    xk = xk.expand(*lead, xk.shape[-1]).contiguous()
    yk = yk.expand(*lead, yk.shape[-1])
    k = xk.shape[-1]
    hi = (xq[..., :, None] > xk[..., None, :]).sum(-1).clamp(1, k - 1)  # few knots: cheaper than searchsorted
    lo = hi - 1
    x0, x1 = xk.gather(-1, lo), xk.gather(-1, hi)
    y0, y1 = yk.gather(-1, lo), yk.gather(-1, hi)
    t = ((xq - x0) / (x1 - x0).clamp_min(1e-6)).clamp(0, 1)
    return y0 + t * (y1 - y0)


def _gexp(sq: torch.Tensor) -> torch.Tensor:
    """exp(-sq / 2), clamped so far-away points give exact zeros instead of slow denormals."""
    return torch.exp(-0.5 * sq.clamp(max=60.0)).masked_fill(sq > 60.0, 0.0)


def _sig(x: torch.Tensor) -> torch.Tensor:
    """Sigmoid without denormal tails."""
    return torch.sigmoid(x.clamp(-25.0, 25.0)).masked_fill(x < -25.0, 0.0)


def _gauss(x: torch.Tensor, y: torch.Tensor, cx, cy, sx: float, sy: float) -> torch.Tensor:
    return _gexp(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2)


def _rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(…,) angles -> (…, 3, 3) rotation R = Rz(roll) @ Ry(yaw) @ Rx(pitch) in the y-down, z-away frame."""
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    # yaw > 0: nose (z < 0) moves to +x  ->  x' = x cos - z sin
    ry = torch.stack([cy, zero, -sy, zero, one, zero, sy, zero, cy], -1).unflatten(-1, (3, 3))
    # pitch > 0: nose moves down (+y)   ->  y' = y cos - z sin
    rx = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).unflatten(-1, (3, 3))
    # roll > 0: clockwise on screen with y down
    rz = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).unflatten(-1, (3, 3))
    return rz @ ry @ rx


def _angles_from_matrix(r: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_rotation_matrix`: (…, 3, 3) -> (…, 3) (yaw, pitch, roll)."""
    yaw = torch.asin(r[..., 2, 0].clamp(-1, 1))  # third row of Rz Ry Rx: (sy, cy sp, cy cp)
    pitch = torch.atan2(r[..., 2, 1], r[..., 2, 2])
    roll = torch.atan2(r[..., 1, 0], r[..., 0, 0])
    return torch.stack([yaw, pitch, roll], -1)


def landmarks_of(analysis) -> np.ndarray:
    """(478, 3) float32 pixel landmarks from a FaceAnalysis-like object or an array."""
    lm = getattr(analysis, "landmarks", analysis)
    if lm is None:
        raise NoFaceError("no face was found in the portrait; use a photo with one clearly visible face")
    lm = np.asarray(lm.detach().cpu() if isinstance(lm, torch.Tensor) else lm, dtype=np.float32)
    if lm.shape != (NUM_LANDMARKS, 3):
        raise InputError(f"expected (478, 3) face-mesh landmarks (refine_landmarks=True), got {lm.shape}")
    return lm


# ----------------------------------------------------------------------------------------------------------
# Motion codec
# ----------------------------------------------------------------------------------------------------------


@dataclass
class FaceFrame:
    """Similarity transform between pixel landmarks and the face-normalised frame."""

    origin: torch.Tensor  # (3,) pixel coords of the eye midpoint
    scale: torch.Tensor  # () inter-ocular distance in pixels
    roll: torch.Tensor  # () angle of the eye line in the image, radians

    def rot2(self) -> torch.Tensor:
        c, s = torch.cos(self.roll), torch.sin(self.roll)
        return torch.stack([torch.stack([c, -s]), torch.stack([s, c])])  # (2, 2) norm -> pixel

    def to_norm(self, pts: torch.Tensor) -> torch.Tensor:  # (..., 478, 3)
        d = pts - self.origin
        xy = d[..., :2] @ self.rot2() / self.scale  # rotate by -roll (row vectors)
        return torch.cat([xy, d[..., 2:] / self.scale], -1)

    def to_pixels(self, pts: torch.Tensor) -> torch.Tensor:
        xy = pts[..., :2] @ self.rot2().T * self.scale
        return torch.cat([xy, pts[..., 2:] * self.scale], -1) + self.origin

    @classmethod
    def from_landmarks(cls, lm: torch.Tensor) -> "FaceFrame":
        right = lm[[33, 133]].mean(0)
        left = lm[[362, 263]].mean(0)
        d = left - right
        return cls(origin=(left + right) / 2, scale=d[:2].norm(), roll=torch.atan2(d[1], d[0]))


class MotionCodec(ModelMixin, ConfigMixin):
    """Named per-frame face motion <-> 478-point landmarks (weightless; saved inside the pipeline).

    ``decode(motion (t, D), neutral (478, 3)) -> (t, 478, 3)`` pixel landmarks;
    ``fit(landmarks (t, 478, 3), neutral) -> motion (t, D)`` by least squares after removing rigid pose;
    ``estimate_neutral(analysis) -> (neutral (478, 3), reference_motion (D,))``.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        channels: list[str] | None = None,
        head_center: tuple[float, float, float] = (0.0, 0.7, 1.3),
        fit_ridge: float = 1e-6,
        neutral_corner_lift: float = -0.01,
        neutral_mouth_width: float = 0.82,
    ):
        super().__init__()
        self.channels = list(channels) if channels is not None else list(MOTION_CHANNELS)
        if self.channels != MOTION_CHANNELS:
            raise InputError(f"MotionCodec channels must be {MOTION_CHANNELS}")
        # no learned weights; one persistent scalar so save_pretrained writes a (tiny) weights file and
        # from_pretrained finds one
        self.register_buffer("format_version", torch.ones(1))

    # -------------------------------------------------------------------------------------------- channels
    @property
    def dim(self) -> int:
        return MOTION_DIM

    @staticmethod
    def index(name: str) -> int:
        return MOTION_CHANNELS.index(name)

    def from_named(self, values: dict | list[dict], device=None) -> torch.Tensor:
        """{"AU12": 0.8, "jaw_open": 0.3, ...} (or a list of them, one per frame) -> (D,) or (t, D).

        FACS numbers and viseme keys are accepted through ``CHANNEL_ALIASES`` (AU26 -> jaw_open, AU43 ->
        blink, AU14 -> both sides, lip_closed -> lip_press, ...). Unknown names are an error.
        """
        single = isinstance(values, dict)
        rows = [values] if single else list(values)
        out = torch.zeros(len(rows), MOTION_DIM, device=device)
        for i, row in enumerate(rows):
            for name, v in row.items():
                targets = [name] if name in MOTION_CHANNELS else CHANNEL_ALIASES.get(name)
                if targets is None:
                    raise InputError(f"unknown motion channel {name!r}; known: {MOTION_CHANNELS}")
                for t in targets:
                    out[i, self.index(t)] += float(v)
        return out[0] if single else out

    # ------------------------------------------------------------------------------------------- templates
    def templates(self, neutral_norm: torch.Tensor) -> torch.Tensor:
        """Displacement templates on a neutral face in the normalised frame: (478, 3) -> (E, 478, 3)."""
        p = neutral_norm
        x, y = p[:, 0], p[:, 1]
        zeros = torch.zeros_like(p)
        out = {name: zeros.clone() for name in EXPRESSION_CHANNELS}

        ui, li = p[LIPS_UPPER_INNER], p[LIPS_LOWER_INNER]
        mid = (ui + li) / 2  # mouth line knots
        mouth_c = p[LIPS_UPPER_INNER + LIPS_LOWER_INNER].mean(0)
        mx, my = mouth_c[0], mouth_c[1]
        corner_r, corner_l = p[61], p[291]
        half_w = (corner_l[0] - corner_r[0]).abs() / 2
        y_line = _interp(x, mid[:, 0], mid[:, 1])
        gap_half = ((_interp(x, li[:, 0], li[:, 1]) - _interp(x, ui[:, 0], ui[:, 1])) / 2).clamp_min(0)
        outside = (x - mx).abs() - half_w
        ramp = 0.1 + 0.4 * outside.clamp_min(0)
        below = _smoothstep(-0.5, 1.0, (y - y_line) / ramp)  # 1 under the mouth line
        rows_up = (LIPS_UPPER_INNER, LIPS_UPPER_OUTER, LIPS_UPPER_SEMI_OUTER, LIPS_UPPER_SEMI_INNER)
        rows_lo = (LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_LOWER_SEMI_OUTER, LIPS_LOWER_SEMI_INNER)
        for row in rows_up:
            below[row[1:-1]] = 0.0
        for row in rows_lo:
            below[row[1:-1]] = 1.0
        below[[61, 291, 78, 308, 76, 306, 62, 292]] = 0.5
        in_face_x = _gexp((outside.clamp_min(0) / 0.55) ** 2)
        mouth_g = _gauss(x, y, mx, my, half_w * 1.25, 0.28)
        lips = _gauss(x, y, mx, my, half_w * 1.05, 0.16)
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
        t[:, 1] -= 0.015 * upper * lips

        t = out["lip_round"]
        t[:, 0] = -0.38 * (x - mx) * mouth_g
        t[:, 1] = 0.12 * (y - my) * mouth_g
        t[:, 2] = -0.12 * mouth_g

        t = out["lip_spread"]
        t[:, 0] = 0.22 * (x - mx) * mouth_g
        t[:, 1] = -0.10 * (y - my) * mouth_g

        # lip_press: close any neutral gap, then press lips (thinner red, lips slightly rolled in)
        press_w = _gauss(x, y, mx, my, half_w * 1.1, 0.22)
        lip_off = (y - y_line).abs()
        t = out["lip_press"]
        t[:, 1] = (upper - below) * (gap_half + 0.03 + 0.10 * lip_off.clamp(max=0.3)) * press_w
        t[:, 0] = -0.04 * (x - mx) * press_w

        t = out["lips_part"]
        part_w = _gauss(x, y, mx, my, half_w * 1.0, 0.13) * _gexp((outside.clamp_min(0) / 0.05) ** 2)
        t[:, 1] = (0.06 * below - 0.035 * upper) * part_w
        t[:, 0] = -0.02 * (x - mx) * part_w

        t = out["upper_lip_raise"]
        t[:, 1] = -0.09 * upper * _gauss(x, y, mx, my - 0.05, half_w * 0.9, 0.15)
        t[:, 1] -= 0.03 * _gauss(x, y, mx, p[NOSE_TIP, 1] + 0.1, 0.3, 0.12)

        # brows: region around each brow and the forehead above, falling off towards the eyes
        brow_pts = torch.cat([p[RIGHT_BROW], p[LEFT_BROW]])
        brow_y = brow_pts[:, 1].mean()
        above_eye = _smoothstep(-0.08, -0.25, y) * _gexp(((y - brow_y).clamp_min(-10) / 0.45) ** 2)
        inner = _gexp(((x.abs() - 0.18) / 0.16) ** 2)
        outer = _gexp(((x.abs() - 0.62) / 0.18) ** 2)
        # AU1 lifts the inner brow heads (and draws them slightly together), AU2 the outer brow tails
        out["AU1"][:, 1] = -0.15 * inner * above_eye
        out["AU1"][:, 0] = -0.015 * torch.sign(x) * inner * above_eye
        out["AU2"][:, 1] = -0.12 * outer * above_eye
        # AU4 (corrugator/procerus): brows down, most at the inner heads, and pulled together over the nose
        brows = _smoothstep(-0.06, -0.2, y) * _gexp(((y - brow_y) / 0.25) ** 2)
        glabella = _gexp((x / 0.35) ** 2)
        out["AU4"][:, 1] = 0.14 * brows * (0.35 + 0.65 * glabella)
        out["AU4"][:, 0] = -0.09 * torch.sign(x) * brows * _gexp(((x.abs() - 0.2) / 0.25) ** 2)

        # eyes: lid curves per eye
        blink = out["blink"]
        for up_idx, lo_idx, iris in ((RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_IRIS),
                                     (LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_IRIS)):
            up, lo = p[up_idx], p[lo_idx]
            ex0, ex1 = up[:, 0].min(), up[:, 0].max()
            ecx = (ex0 + ex1) / 2
            ehw = (ex1 - ex0) / 2
            x_fade = _gexp((((x - ecx).abs() - ehw).clamp_min(0) / 0.06) ** 2)
            # knots sorted by x
            uo, lo_o = up[up[:, 0].argsort()], lo[lo[:, 0].argsort()]
            y_up = _interp(x, uo[:, 0], uo[:, 1])
            y_lo = _interp(x, lo_o[:, 0], lo_o[:, 1])
            y_c = y_lo - 0.25 * (y_lo - y_up)  # closed lid line
            h_above = (y_up - y).clamp_min(0)
            h_below = (y - y_lo).clamp_min(0)
            inside = ((y >= y_up) & (y <= y_lo)).float()
            near = x_fade * (1 - inside)
            dy = torch.where(y < y_up, (y_c - y_up) * _gexp((h_above / 0.09) ** 2),
                             (y_c - y_lo) * _gexp((h_below / 0.05) ** 2)) * near
            dy = dy + inside * x_fade * (y_c - y)
            idx_up = torch.tensor(up_idx, device=p.device)
            idx_lo = torch.tensor(lo_idx, device=p.device)
            dy[idx_up] = (y_c - y)[idx_up]
            dy[idx_lo] = (y_c - y)[idx_lo]
            dy[iris] = (y_c - y)[iris]
            eye_region = _gauss(x, y, ecx, (y_up + y_lo).mean() * 0 + up[:, 1].mean(), ehw * 1.6, 0.35)
            blink[:, 1] += dy * (eye_region > 0.02).float()
            # AU5: upper lid up; AU7: lower lid up, upper lid down a little; AU6 narrows from below
            # lids move most over the iris and not at all at the canthi (the eye corners stay put)
            arch = (1 - ((x - ecx) / ehw).clamp(-1, 1) ** 2).clamp_min(0).sqrt()
            lid_up = _gexp((h_above / 0.07) ** 2) * x_fade * (1 - inside) * (y <= y_up).float()
            lid_up[idx_up] = 1.0
            lid_up = lid_up * arch
            lid_lo = _gexp((h_below / 0.06) ** 2) * x_fade * (1 - inside) * (y >= y_lo).float()
            lid_lo[idx_lo] = 1.0
            lid_lo[idx_up] = 0.0
            lid_lo = lid_lo * arch
            lid_lo[[up_idx[0], up_idx[-1]]] = 0.0
            out["AU5"][:, 1] += -0.085 * lid_up
            out["AU4"][:, 1] += 0.025 * lid_up  # the lowered brow pushes the lid fold down over the lid
            out["AU7"][:, 1] += -0.045 * lid_lo + 0.015 * lid_up
            out["AU6"][:, 1] += -0.03 * lid_lo
            out["gaze_x"][iris, 0] = 0.10
            out["gaze_y"][iris, 1] = 0.06

        # AU6: cheeks up (and crow's feet region)
        cheeks = _gauss(x.abs(), y, 0.48, 0.62, 0.22, 0.2)
        out["AU6"][:, 1] += -0.07 * cheeks
        out["AU9"][:, 1] = -0.06 * _gauss(x, y, 0.0, p[NOSE_TIP, 1] - 0.05, 0.3, 0.2)
        out["AU9"][:, 1] += 0.03 * _gauss(x, y, 0.0, brow_y, 0.3, 0.15)
        out["AU9"][:, 1] += -0.03 * upper * lips

        # mouth corners
        corner_g_r = _gauss(x, y, corner_r[0], corner_r[1], 0.17, 0.14)
        corner_g_l = _gauss(x, y, corner_l[0], corner_l[1], 0.17, 0.14)
        side = torch.stack([-corner_g_r, corner_g_l]).sum(0)  # signed: -1 right corner, +1 left corner
        both = corner_g_r + corner_g_l
        t = out["AU12"]
        t[:, 0] = 0.10 * side
        t[:, 1] = -0.11 * both - 0.02 * lips - 0.035 * _gauss(x.abs(), y, 0.42, 0.75, 0.2, 0.2)
        t[:, 1] += 0.02 * below * lips  # lower lip stretches down a little
        dimple_l = _gauss(x, y, corner_l[0] + 0.04, corner_l[1], 0.09, 0.09)
        dimple_r = _gauss(x, y, corner_r[0] - 0.04, corner_r[1], 0.09, 0.09)
        out["AU14L"][:, 0] = -0.045 * dimple_l
        out["AU14L"][:, 1] = -0.02 * dimple_l
        out["AU14L"][:, 2] = 0.04 * dimple_l
        out["AU14R"][:, 0] = 0.045 * dimple_r
        out["AU14R"][:, 1] = -0.02 * dimple_r
        out["AU14R"][:, 2] = 0.04 * dimple_r
        # AU15 (depressor anguli oris): corners pulled down and a little out, the lateral lower lip and the
        # skin below the corners follow, the lip centres stay: the mouth line bends into an inverted U
        t = out["AU15"]
        low_r = _gauss(x, y, corner_r[0] - 0.03, corner_r[1] + 0.2, 0.14, 0.16)
        low_l = _gauss(x, y, corner_l[0] + 0.03, corner_l[1] + 0.2, 0.14, 0.16)
        t[:, 0] = 0.03 * side
        t[:, 1] = 0.13 * both + 0.05 * below * lips * ((x - mx).abs() / half_w).clamp(max=1) \
            + 0.04 * (low_r + low_l)
        # AU17 (mentalis): chin boss up, lower lip pushed up and out (pout), which bends the lip line further
        t = out["AU17"]
        chin_g = _gauss(x, y, mx, p[CHIN, 1] - 0.15, 0.35, 0.25)
        t[:, 1] = -0.07 * chin_g - 0.05 * below * lips
        t[:, 2] = -0.04 * below * lips
        t = out["AU20"]
        t[:, 0] = 0.07 * side + 0.08 * (x - mx) * lips
        t[:, 1] = 0.02 * both + 0.015 * below * lips
        # AU23 (orbicularis oris): lips narrowed and thinned, the red margins drawn in toward the lip line
        t = out["AU23"]
        t[:, 0] = -0.06 * side - 0.03 * (x - mx) * lips
        t[:, 1] = (upper - below) * 0.045 * lips * (lip_off / 0.1).clamp(max=1)

        return torch.stack([out[n] for n in EXPRESSION_CHANNELS])  # (E, 478, 3)

    # -------------------------------------------------------------------------------------------- decoding
    def _pose_apply(self, pts: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """Rigid rotation about the head centre in the normalised frame. pts (t, n, 3), pose (t, 3)."""
        c = torch.tensor(self.config.head_center, dtype=pts.dtype, device=pts.device)
        rot = _rotation_matrix(pose[:, 0], pose[:, 1], pose[:, 2])  # (t, 3, 3)
        return torch.einsum("tij,tnj->tni", rot, pts - c) + c

    def decode_norm(self, motion: torch.Tensor, neutral_norm: torch.Tensor,
                    templates: torch.Tensor | None = None) -> torch.Tensor:
        """motion (t, D), neutral_norm (478, 3) -> (t, 478, 3) in the normalised frame."""
        tmpl = self.templates(neutral_norm) if templates is None else templates
        e = len(EXPRESSION_CHANNELS)
        pts = neutral_norm + torch.einsum("te,enk->tnk", motion[:, :e], tmpl)
        return self._pose_apply(pts, motion[:, e:])

    def decode(self, motion: torch.Tensor, neutral_landmarks) -> torch.Tensor:
        """motion (t, D) or (D,), neutral landmarks (478, 3) pixels -> (t, 478, 3) pixels (same device)."""
        motion = torch.as_tensor(motion, dtype=torch.float32)
        single = motion.ndim == 1
        motion = motion.reshape(-1, MOTION_DIM)
        neutral = torch.as_tensor(neutral_landmarks, dtype=torch.float32, device=motion.device)
        frame = FaceFrame.from_landmarks(neutral)
        out = frame.to_pixels(self.decode_norm(motion, frame.to_norm(neutral)))
        return out[0] if single else out

    # ---------------------------------------------------------------------------------------------- fitting
    @staticmethod
    def _kabsch(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        """Rotation R (t, 3, 3) (translation free) best mapping src (t, n, 3) onto dst (t, n, 3)."""
        a = src - src.mean(1, keepdim=True)
        b = dst - dst.mean(1, keepdim=True)
        h = torch.einsum("tni,tnj->tij", a, b)
        u, _, vt = torch.linalg.svd(h)
        d = torch.sign(torch.linalg.det(vt.transpose(1, 2) @ u.transpose(1, 2)))
        diag = torch.ones(dst.shape[0], 3, device=dst.device, dtype=dst.dtype)
        diag[:, 2] = d
        return vt.transpose(1, 2) @ torch.diag_embed(diag) @ u.transpose(1, 2)

    @torch.no_grad()
    def fit(self, landmarks, neutral_landmarks, iterations: int = 6) -> torch.Tensor:
        """Least-squares motion from landmarks (t, 478, 3) (pixels) given the neutral (478, 3) -> (t, D).

        Alternates: rigid pose (Kabsch on the residual after the current expression) and linear least
        squares of the expression templates on the un-rotated landmarks (x, y weighted 1, z 0.3). Head
        translation is not a motion channel and is absorbed.
        """
        lm = torch.as_tensor(landmarks, dtype=torch.float32)
        single = lm.ndim == 2
        lm = lm.reshape(-1, NUM_LANDMARKS, 3)
        neutral = torch.as_tensor(neutral_landmarks, dtype=torch.float32, device=lm.device)
        frame = FaceFrame.from_landmarks(neutral)
        n0 = frame.to_norm(neutral)
        obs = frame.to_norm(lm)  # (t, n, 3)
        tmpl = self.templates(n0)  # (E, n, 3)
        e = tmpl.shape[0]
        w = torch.tensor([1.0, 1.0, 0.3], device=lm.device)
        a = rearrange(tmpl * w, "e n k -> (n k) e")
        ata = a.T @ a + self.config.fit_ridge * torch.eye(e, device=lm.device)
        solve = torch.linalg.solve(ata, a.T)  # (E, n*3)
        c = torch.tensor(self.config.head_center, device=lm.device)
        t_n = lm.shape[0]
        # Gauss-Newton on (expression, small rotation, translation), starting from Kabsch on the neutral
        rot = self._kabsch(n0.expand_as(obs), obs)
        trans = (obs - (torch.einsum("tij,nj->tni", rot, n0 - c) + c)).mean(1, keepdim=True)
        q = n0 - c
        gens = torch.stack([torch.cross(torch.eye(3, device=lm.device)[i].expand_as(q), q, dim=-1)
                            for i in range(3)])  # (3, n, 3): d/domega of omega x q
        shifts = torch.eye(3, device=lm.device)[:, None, :].expand(3, NUM_LANDMARKS, 3)
        full = torch.cat([tmpl, gens, shifts]) * w  # (E+6, n, 3)
        a = rearrange(full, "e n k -> (n k) e")
        ata = a.T @ a + self.config.fit_ridge * torch.eye(e + 6, device=lm.device)
        solve = torch.linalg.solve(ata, a.T)  # (E+6, n*3)
        coef = torch.zeros(t_n, e, device=lm.device)
        for _ in range(iterations):
            unrot = torch.einsum("tji,tnj->tni", rot, obs - trans - c) + c  # R^T (x - t - c) + c
            x = torch.einsum("em,tm->te", solve, rearrange((unrot - n0) * w, "t n k -> t (n k)"))
            coef = x[:, :e]
            omega, dt = x[:, e:e + 3], x[:, e + 3:]
            ang = omega.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            kx = torch.zeros(t_n, 3, 3, device=lm.device)
            k = omega / ang
            kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
            kx = kx - kx.transpose(1, 2)
            s_, c_ = torch.sin(ang)[..., None], torch.cos(ang)[..., None]
            d_rot = torch.eye(3, device=lm.device) + s_ * kx + (1 - c_) * kx @ kx  # Rodrigues
            rot = rot @ d_rot
            trans = trans + torch.einsum("tij,tj->ti", rot, dt)[:, None]
        pose = _angles_from_matrix(rot)
        motion = torch.cat([coef, pose], -1)
        return motion[0] if single else motion

    # --------------------------------------------------------------------------------------- neutral pose
    def measure(self, landmarks) -> dict[str, float]:
        """Geometric estimates (in channel units) of the expression a single face shows, from population norms.

        Covers what matters for removing a photo's own expression: jaw/lip opening, smile (AU12 from corner
        lift and mouth width, AU6 from cheek/lower-lid lift taken as half of AU12), blink.
        """
        lm = torch.as_tensor(landmarks_of(landmarks))
        frame = FaceFrame.from_landmarks(lm)
        p = frame.to_norm(lm)
        tm = self.templates(p)
        gi = EXPRESSION_CHANNELS.index
        gap = float(p[14, 1] - p[13, 1])
        d_gap = float(tm[gi("jaw_open"), 14, 1] - tm[gi("jaw_open"), 13, 1])
        centre_y = float(p[[13, 14], 1].mean())
        lift = centre_y - float(p[[61, 291], 1].mean())
        d_lift = -float(tm[gi("AU12"), [61, 291], 1].mean() - tm[gi("AU12"), [13, 14], 1].mean())
        width = float(p[291, 0] - p[61, 0])
        d_width = float(tm[gi("AU12"), 291, 0] - tm[gi("AU12"), 61, 0])
        au12 = 0.5 * (lift - self.config.neutral_corner_lift) / d_lift
        au12 += 0.5 * (width - self.config.neutral_mouth_width) / d_width
        au12 = float(np.clip(au12, 0.0, 1.5))
        opening = []
        for up, lo in ((159, 145), (386, 374)):
            opening.append(float(p[lo, 1] - p[up, 1]))
        eye_open = sum(opening) / 2
        blink = float(np.clip(1 - eye_open / 0.11, 0.0, 1.0)) if eye_open < 0.11 else 0.0
        d_part = float(tm[gi("lips_part"), 14, 1] - tm[gi("lips_part"), 13, 1])
        excess = max(gap - 0.01, 0.0)
        part = min(excess * 0.5 / d_part, 1.5)  # a parted photo mouth: half lips, half jaw
        return {
            "lips_part": part,
            "jaw_open": float(np.clip((excess - part * d_part) / d_gap, 0.0, 1.5)),
            "AU12": au12,
            "AU6": 0.5 * au12,
            "blink": blink,
        }

    @torch.no_grad()
    def estimate_neutral(self, analysis, action_units: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference landmarks -> (neutral (478, 3) pixels, reference_motion (D,)).

        The photo's own expression (``action_units`` if given, in channel units or FACS names, else
        :meth:`measure`) is subtracted through the templates and the lips are closed, so emotion offsets
        start from an estimated neutral; ``reference_motion`` is then fitted so that
        ``decode(reference_motion, neutral)`` reproduces the photo.
        """
        lm = torch.as_tensor(landmarks_of(analysis))
        units = self.measure(lm) if action_units is None else dict(action_units)
        coef = self.from_named(units)[: len(EXPRESSION_CHANNELS)]
        frame = FaceFrame.from_landmarks(lm)
        ref_n = frame.to_norm(lm)
        neutral_n = ref_n.clone()
        for _ in range(20):  # damped fixed point: neutral = ref - sum_k c_k T_k(neutral)
            tm = self.templates(neutral_n)
            neutral_n = 0.65 * neutral_n + 0.35 * (ref_n - torch.einsum("e,enk->nk", coef, tm))
        # close whatever gap remains between the inner lips (and lips that opened without the jaw)
        ui, li = torch.tensor(LIPS_UPPER_INNER[1:-1]), torch.tensor(LIPS_LOWER_INNER[1:-1])
        half = ((neutral_n[li, 1] - neutral_n[ui, 1]) / 2).clamp_min(0)
        neutral_n[ui, 1] += half
        neutral_n[li, 1] -= half
        neutral = frame.to_pixels(neutral_n)
        # by construction decode(reference_motion, neutral) ~ reference (renderers add the small residual);
        # the neutral's own eye frame can differ slightly from the photo's, so the pose is fitted.
        ref_motion = torch.zeros(MOTION_DIM)
        ref_motion[: len(EXPRESSION_CHANNELS)] = coef
        pose = self.fit(lm, neutral)[len(EXPRESSION_CHANNELS):]
        ref_motion[len(EXPRESSION_CHANNELS):] = pose
        return neutral, ref_motion


# ----------------------------------------------------------------------------------------------------------
# Renderer
# ----------------------------------------------------------------------------------------------------------


@dataclass
class PortraitState:
    """Everything ``render`` needs about one prepared portrait (tensors on one device)."""

    size: int  # output side in pixels
    image: torch.Tensor  # (3, s, s) float [0, 1] aligned crop
    stack: torch.Tensor  # (1, 14, s, s) closed-mouth image, its blur, fold mask, photo, cheek delta, furrows
    crop_box: torch.Tensor  # (4,) x0, y0, side (source pixels), scale (output px / source px)
    reference_landmarks: torch.Tensor  # (478, 3) in output pixels
    neutral_landmarks: torch.Tensor  # (478, 3) in output pixels
    reference_motion: torch.Tensor  # (D,)
    residual: torch.Tensor  # (478, 3) the codec's fit residual of the photo, output pixels (see _fit_residual)
    templates: torch.Tensor  # (E, 478, 3) of the neutral (normalised frame)
    anchors: torch.Tensor  # (A, 2) anchor positions, output pixels
    anchor_pose_weight: torch.Tensor  # (A,) how much of the head's rigid motion each anchor follows
    interp: torch.Tensor  # sparse (s*s, N) piecewise-linear vertex -> pixel matrix (CSR)
    triangles: torch.Tensor  # (T, 3) long, vertex indices (mesh points then anchors)
    mouth_roi: tuple[int, int, int, int]  # y0, y1, x0, x1 in output pixels
    ref_mouth: torch.Tensor  # (3, 11) reference inner-lip s, v_up, v_lo in its mouth frame
    ref_mouth_frame: torch.Tensor  # (2, 3) origin xy + axis xy + half-width
    teeth_color: torch.Tensor  # (3,)
    lip_color: torch.Tensor  # (3,)
    iod: float  # inter-ocular distance in output pixels

    def to(self, device) -> "PortraitState":
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v.to(device) if isinstance(v, torch.Tensor) else v
        return PortraitState(**kw)

    @property
    def device(self) -> torch.device:
        return self.image.device


def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (b, c, h, w) with reflect padding."""
    r = max(1, int(math.ceil(3 * sigma)))
    k = _gexp((torch.arange(-r, r + 1, dtype=img.dtype, device=img.device) / sigma) ** 2)
    k = k / k.sum()
    c = img.shape[1]
    img = F.pad(img, (r, r, 0, 0), mode="reflect")
    img = F.conv2d(img, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    img = F.pad(img, (0, 0, r, r), mode="reflect")
    return F.conv2d(img, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _rasterize(verts: np.ndarray, tris: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (centre) containing triangle vertex ids (s*s, 3) and barycentric weights (s*s, 3)."""
    n = size * size
    tri_of = np.full(n, -1, np.int64)
    bary = np.zeros((n, 3), np.float32)
    best = np.full(n, -np.inf, np.float32)
    for t, (i, j, k) in enumerate(tris):  # once per portrait, at prepare time
        a, b, c = verts[i], verts[j], verts[k]
        det = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
        if abs(det) < 1e-9:
            continue
        x0 = max(int(np.floor(min(a[0], b[0], c[0]) - 0.5)), 0)
        x1 = min(int(np.ceil(max(a[0], b[0], c[0]) + 0.5)), size - 1)
        y0 = max(int(np.floor(min(a[1], b[1], c[1]) - 0.5)), 0)
        y1 = min(int(np.ceil(max(a[1], b[1], c[1]) + 0.5)), size - 1)
        if x1 < x0 or y1 < y0:
            continue
        gx, gy = np.meshgrid(np.arange(x0, x1 + 1) + 0.5, np.arange(y0, y1 + 1) + 0.5)
        l1 = ((b[1] - c[1]) * (gx - c[0]) + (c[0] - b[0]) * (gy - c[1])) / det
        l2 = ((c[1] - a[1]) * (gx - c[0]) + (a[0] - c[0]) * (gy - c[1])) / det
        l3 = 1 - l1 - l2
        m = np.minimum(np.minimum(l1, l2), l3)
        pix = (gy.astype(np.int64) * size + gx.astype(np.int64)).ravel()
        m = m.ravel()
        take = m > best[pix]
        pix, m = pix[take], m[take]
        best[pix] = m
        tri_of[pix] = t
        bary[pix] = np.stack([l1.ravel()[take], l2.ravel()[take], l3.ravel()[take]], -1)
    # pixels slightly outside every triangle (best < 0) keep their nearest triangle, weights clipped
    bary = np.clip(bary, 0, None)
    bary /= np.maximum(bary.sum(-1, keepdims=True), 1e-8)
    if (tri_of < 0).any():
        raise InputError("portrait triangulation does not cover the crop")
    return tris[tri_of], bary


class PortraitRenderer(ModelMixin, ConfigMixin):
    """Dense piecewise-affine warp of a reference portrait driven by face-mesh motion (weightless).

    ``prepare(image, analysis, size)`` once per portrait, then ``render(state, landmarks_or_motion)`` for
    batches of frames; the device follows the state (``state.to("cuda")``).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        crop_margin: float = 2.1,
        ring_scales: tuple[float, float] = (1.6, 2.3),
        ring_pose_weights: tuple[float, float] = (0.55, 0.0),
        border_anchors: int = 8,
        inverse_iterations: int = 2,
        fold_blur: float = 0.09,
        fold_strength: float = 0.9,
        cheek_strength: float = 0.8,
        furrow_strength: float = 0.15,
    ):
        super().__init__()
        self.codec = MotionCodec()

    # ----------------------------------------------------------------------------------------------- prepare
    @torch.no_grad()
    def prepare(self, image: np.ndarray, analysis, size: int = 256, action_units: dict | None = None,
                device: torch.device | str | None = None) -> PortraitState:
        """Crop around the face, estimate the neutral, triangulate and precompute the warp."""
        from scipy.spatial import Delaunay

        if size not in (0, 256, 512) and size < 64:
            raise InputError(f"size must be 256, 512, or 0 (source crop), got {size}")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError("image must be an RGB uint8 array (h, w, 3)")
        lm = landmarks_of(analysis)
        oval = lm[FACE_OVAL, :2]
        lo, hi = oval.min(0), oval.max(0)
        cx, cy = (lo + hi) / 2
        side = int(round(self.config.crop_margin * max(hi - lo)))
        cy = cy - 0.04 * side
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        h, w = image.shape[:2]
        pad = [(max(0, -y0), max(0, y0 + side - h)), (max(0, -x0), max(0, x0 + side - w)), (0, 0)]
        padded = np.pad(image, pad, mode="edge")
        crop = padded[y0 + pad[0][0]: y0 + pad[0][0] + side, x0 + pad[1][0]: x0 + pad[1][0] + side]
        out_size = side if size == 0 else int(size)
        scale = out_size / side
        img = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255
        if out_size != side:
            img = F.interpolate(img, size=(out_size, out_size), mode="bilinear", antialias=True,
                                align_corners=False)
        img = img.clamp(0, 1)
        ref = torch.from_numpy(lm.copy())
        ref[:, 0] -= x0
        ref[:, 1] -= y0
        ref = ref * scale

        codec = self.codec
        neutral, ref_motion = codec.estimate_neutral(ref.numpy(), action_units)
        frame = FaceFrame.from_landmarks(neutral)
        templates = codec.templates(frame.to_norm(neutral))
        iod = float(frame.scale)

        # anchors: rings outside the face oval and the crop border
        s = out_size
        oc = ref[FACE_OVAL, :2].mean(0)
        anchors, weights = [], []
        for k, wgt in zip(self.config.ring_scales, self.config.ring_pose_weights):
            ring = oc + k * (ref[FACE_OVAL, :2] - oc)
            keep = ((ring > 2).all(1) & (ring < s - 2).all(1))
            anchors.append(ring[keep])
            weights.append(torch.full((int(keep.sum()),), float(wgt)))
        nb = self.config.border_anchors
        t = torch.linspace(0, s, nb + 1)[:-1]
        border = torch.cat([torch.stack([t, torch.zeros_like(t)], 1), torch.stack([torch.full_like(t, s), t], 1),
                            torch.stack([s - t, torch.full_like(t, s)], 1), torch.stack([torch.zeros_like(t), s - t], 1)])
        anchors.append(border)
        weights.append(torch.zeros(len(border)))
        anchors = torch.cat(anchors)
        weights = torch.cat(weights)
        # drop anchors too close to mesh points or each other
        verts_all = torch.cat([ref[:, :2], anchors])
        dmin = torch.cdist(anchors, ref[:, :2]).min(1).values
        keep = (dmin > 0.15 * iod) | (weights == 0) & (dmin > 0.05 * iod)
        anchors, weights = anchors[keep], weights[keep]
        verts = torch.cat([ref[:, :2], anchors]).numpy().astype(np.float64)

        # triangulate on an opened-mouth version so triangles respect the lips when the jaw drops
        opened = ref_motion.clone()
        opened[codec.index("jaw_open")] += 0.8
        open_lm = codec.decode(opened, neutral)
        topo = verts.copy()
        topo[:NUM_LANDMARKS] += (open_lm - codec.decode(ref_motion, neutral))[:, :2].numpy()
        tris = Delaunay(topo).simplices.astype(np.int64)
        tri_ids, bary = _rasterize(verts, tris, s)
        rows = np.repeat(np.arange(s * s), 3)
        with warnings.catch_warnings():  # torch's notes that sparse tensors are beta; the indices are ours and valid
            warnings.simplefilter("ignore", UserWarning)
            interp = torch.sparse_coo_tensor(
                torch.from_numpy(np.stack([rows, tri_ids.ravel()])), torch.from_numpy(bary.ravel()),
                (s * s, len(verts)), check_invariants=False,
            ).coalesce().to_sparse_csr()

        # fold mask (nasolabial folds, around the mouth corners) in reference pixels
        yy, xx = torch.meshgrid(torch.arange(s) + 0.5, torch.arange(s) + 0.5, indexing="ij")
        fold = torch.zeros(s, s)
        mouth_c = ref[LIPS_UPPER_INNER + LIPS_LOWER_INNER, :2].mean(0)
        for ala, corner in ((98, 61), (327, 291)):
            a, b = ref[ala, :2], ref[corner, :2]
            outward = torch.sign(b[0] - mouth_c[0])
            for u in torch.linspace(0, 1.25, 12):
                c = a + u * (b - a) + torch.tensor([outward * 0.09 * iod, 0.0])
                fold = torch.maximum(fold, _gexp(((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (0.08 * iod) ** 2))
        closed = self._closed_mouth_texture(img, ref, iod)
        # folds smoothed toward the skin around them: the fold-scale shading replaced by a smoother one, the
        # finest texture (freckles, pores) kept so a smoothed fold does not show as a pale, flat patch
        fine = closed - _gaussian_blur(closed, 0.012 * iod)
        blurred = (_gaussian_blur(closed, self.config.fold_blur * iod) + fine).clamp(0, 1)
        cheek_delta, furrows = self._expression_textures(closed, ref, iod)
        stack = torch.cat([closed, blurred, fold[None, None], img, cheek_delta, furrows], 1)

        # mouth: ROI and reference inner-lip profile in its mouth frame
        mo, ax, hw = self._mouth_frame(ref[None, :, :2])
        ref_prof = self._lip_profile(ref[None, :, :2], mo, ax, hw)[0]  # (3, 11)
        lipc = self._sample_colors(img, ref[LIPS_LOWER_OUTER[2:-2] + LIPS_UPPER_OUTER[3:-3], :2] * 0.5
                                   + ref[LIPS_LOWER_INNER[2:-2] + LIPS_UPPER_INNER[3:-3], :2] * 0.5)
        teeth = self._teeth_color(img, ref, ref_prof, mo[0], ax[0], hw[0])
        pts = ref[LIPS_UPPER_OUTER + LIPS_LOWER_OUTER, :2]
        rx0 = int(max(0, math.floor(float(pts[:, 0].min()) - 0.35 * iod)))
        rx1 = int(min(s, math.ceil(float(pts[:, 0].max()) + 0.35 * iod)))
        ry0 = int(max(0, math.floor(float(pts[:, 1].min()) - 0.3 * iod)))
        ry1 = int(min(s, math.ceil(float(pts[:, 1].max()) + 0.9 * iod)))

        state = PortraitState(
            size=s, image=img[0], stack=stack, crop_box=torch.tensor([x0, y0, side, scale], dtype=torch.float32),
            reference_landmarks=ref, neutral_landmarks=neutral, reference_motion=ref_motion,
            residual=self._fit_residual(ref, neutral, templates, ref_motion), templates=templates, anchors=anchors, anchor_pose_weight=weights, interp=interp,
            triangles=torch.from_numpy(tris), mouth_roi=(ry0, ry1, rx0, rx1), ref_mouth=ref_prof,
            ref_mouth_frame=torch.cat([mo[0], ax[0], hw[0].view(1)]), teeth_color=teeth, lip_color=lipc,
            iod=iod,
        )
        return state if device is None else state.to(device)

    @staticmethod
    def _expression_textures(img: torch.Tensor, ref: torch.Tensor, iod: float) -> tuple[torch.Tensor, torch.Tensor]:
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
        cheek = _gauss(x.abs(), y, 0.55, 0.6, 0.17, 0.18)
        lo = _gaussian_blur(img, 0.12 * iod)
        flat = _gaussian_blur(img, 0.35 * iod)
        d = (flat - lo).mean(1, keepdim=True)  # shading only (luminance), the skin's colour stays
        d = d.clamp(max=0) + 0.5 * d.clamp(min=0)  # mostly take the bulge's highlight down
        cheek_delta = (d * cheek).expand(-1, 3, -1, -1) * (img / img.mean(1, keepdim=True).clamp_min(1e-3))
        # furrows: from the inner brow heads up, a little inside them
        head_r, head_l = n[[55, 107], :2].mean(0), n[[285, 336], :2].mean(0)
        furrows = torch.zeros(s, s)
        for head in (head_r, head_l):
            fx = head[0] + 0.35 * (0.0 - head[0])  # between the brow head and the midline
            y_lo, y_hi = head[1] + 0.04, head[1] - 0.14
            along = _smoothstep(y_lo + 0.05, y_lo - 0.05, y) * _smoothstep(y_hi - 0.08, y_hi + 0.08, y)
            furrows = torch.maximum(furrows, _gexp(((x - fx) / 0.03) ** 2) * along)
        return cheek_delta[None] if cheek_delta.ndim == 3 else cheek_delta, furrows[None, None]

    @staticmethod
    def _closed_mouth_texture(img: torch.Tensor, ref: torch.Tensor, iod: float) -> torch.Tensor:
        """The reference with its mouth interior (teeth, dark commissures) inpainted from the surrounding lips.

        The main warp samples this texture, so a mouth that closes over an open/smiling reference shows lip
        where the teeth and the dark corner shadows were (no white or dark seam, no dark ticks past the
        corners); the open mouth is still drawn from the photo's own pixels inside the mouth (``_mouth_coords``).
        """
        import cv2

        s = img.shape[-1]
        q = ref[:, :2].numpy().astype(np.float64)
        # inner-lip polygon, its ends pushed most of the way to the outer corners (the commissure shadows)
        a_r = q[78] + 0.7 * (q[61] - q[78])
        a_l = q[308] + 0.7 * (q[291] - q[308])
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

    @staticmethod
    def _sample_colors(img: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
        s = img.shape[-1]
        g = (pts / s * 2 - 1).view(1, 1, -1, 2)
        return F.grid_sample(img, g, align_corners=False).view(3, -1).median(1).values

    def _teeth_color(self, img, ref, prof, mo, ax, hw) -> torch.Tensor:
        """Mean colour of bright, low-saturation pixels inside the reference mouth, else a natural default."""
        default = torch.tensor([0.86, 0.82, 0.74])
        gap = prof[2] - prof[1]
        if float(gap.max()) < 2.0:
            return default
        k = int(gap.argmax())
        sv = torch.linspace(0.25, 0.75, 9) * 2 * hw - hw
        pts = []
        for s_ in sv:
            vu = _interp(s_.view(1), prof[0], prof[1])
            vl = _interp(s_.view(1), prof[0], prof[2])
            for f in torch.linspace(0.15, 0.85, 5):
                v = vu + f * (vl - vu)
                pts.append(mo + s_ * ax + v * torch.stack([-ax[1], ax[0]]))
        cols = F.grid_sample(img, (torch.stack(pts) / img.shape[-1] * 2 - 1).view(1, 1, -1, 2),
                             align_corners=False).view(3, -1)
        lum = cols.mean(0)
        sat = cols.max(0).values - cols.min(0).values
        good = (lum > 0.45) & (sat < 0.25)
        del k
        return cols[:, good].mean(1) if int(good.sum()) >= 3 else default

    # ------------------------------------------------------------------------------------------- mouth maths
    @staticmethod
    def _mouth_frame(q: torch.Tensor):
        """q (b, 478, 2) -> origin (b, 2), axis (b, 2), half width (b,) of the inner mouth corners."""
        a, b = q[:, 78], q[:, 308]
        d = b - a
        hw = d.norm(dim=-1) / 2
        return (a + b) / 2, d / hw.clamp_min(1e-6)[:, None] / 2, hw

    @staticmethod
    def _lip_profile(q, origin, axis, hw) -> torch.Tensor:
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
        vl = _interp(s, torch.cummax(sl, -1).values, vl)
        vu = _interp(s, torch.cummax(su, -1).values, vu)
        vl = torch.maximum(vl, vu)  # lips never cross
        return torch.stack([s, vu, vl], 1)

    # ------------------------------------------------------------------------------------------------ render
    def _decode_px(self, neutral: torch.Tensor, templates: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """motion (b, D) -> landmarks (b, 478, 3) in output pixels, decoded on the neutral (no residual)."""
        frame = FaceFrame.from_landmarks(neutral)
        return frame.to_pixels(self.codec.decode_norm(motion, frame.to_norm(neutral), templates))

    def _fit_residual(self, ref: torch.Tensor, neutral: torch.Tensor, templates: torch.Tensor,
                      ref_motion: torch.Tensor) -> torch.Tensor:
        """What the codec misses of the photo, ``ref - decode(ref_motion)`` (478, 3) pixels, added to every frame
        so the reference motion renders the photo itself. Where it would push the inner lips into each other at
        zero motion (the codec over-fitting an open smile), the overlap is taken out of it: closed lips at rest
        part as soon as the jaw moves, instead of a dead zone that swallows small openings."""
        residual = ref - self._decode_px(neutral, templates, ref_motion[None])[0]
        rest = neutral + residual  # zero motion
        up, lo = torch.tensor(LIPS_UPPER_INNER[1:-1]), torch.tensor(LIPS_LOWER_INNER[1:-1])
        half = ((rest[up, 1] - rest[lo, 1]) / 2).clamp_min(0)  # (9,) overlap / 2, pixels
        for rows, sign in (((LIPS_UPPER_INNER, LIPS_UPPER_SEMI_INNER), -1.0),
                           ((LIPS_LOWER_INNER, LIPS_LOWER_SEMI_INNER), 1.0)):
            for row in rows:
                residual[torch.tensor(row[1:-1]), 1] += sign * half
        return residual

    def target_landmarks(self, state: PortraitState, motion: torch.Tensor) -> torch.Tensor:
        """motion (b, D) -> target landmarks (b, 478, 3) in output pixels, with the reference's fit residual."""
        return self._decode_px(state.neutral_landmarks, state.templates, motion) + state.residual

    @torch.no_grad()
    def render(self, state: PortraitState, landmarks=None, motion=None) -> np.ndarray:
        """Render frames: target landmarks (b, 478, 3) in output pixels, or motion (b, D) -> uint8 (b, s, s, 3)."""
        return (self.render_tensor(state, landmarks, motion) * 255 + 0.5).clamp(0, 255).to(torch.uint8) \
            .permute(0, 2, 3, 1).cpu().numpy()

    @torch.no_grad()
    def render_tensor(self, state: PortraitState, landmarks=None, motion=None) -> torch.Tensor:
        """As :meth:`render`, returning float (b, 3, s, s) in [0, 1] on the state's device."""
        dev = state.device
        if (landmarks is None) == (motion is None):
            raise InputError("render needs exactly one of landmarks or motion")
        if motion is not None:
            motion = torch.as_tensor(motion, dtype=torch.float32, device=dev).reshape(-1, MOTION_DIM)
            q = self.target_landmarks(state, motion)
        else:
            q = torch.as_tensor(landmarks, dtype=torch.float32, device=dev).reshape(-1, NUM_LANDMARKS, 3)
            motion = self.codec.fit(q, state.neutral_landmarks)
        au12, au6, au4, au1 = (motion[:, MotionCodec.index(c)] for c in ("AU12", "AU6", "AU4", "AU1"))
        b, s = q.shape[0], state.size
        ref = state.reference_landmarks

        # 1. vertex displacements: mesh points, then anchors following part of the head's rigid motion
        disp_mesh = q[..., :2] - ref[:, :2]  # (b, 478, 2)
        # the head's rigid motion alone (pose channels on the reference expression) drives the anchors
        e = len(EXPRESSION_CHANNELS)
        still = state.reference_motion.clone()
        still[e:] = 0
        posed = still.repeat(b, 1)
        posed[:, e:] = motion[:, e:]
        head = self.target_landmarks(state, torch.cat([still[None], posed]))
        rigid = self._rigid_2d(head[0, :, :2], head[1:, :, :2])  # (b, 2, 3) similarity
        anc = state.anchors
        anc_h = torch.cat([anc, torch.ones_like(anc[:, :1])], -1)  # (A, 3)
        anc_disp = (torch.einsum("bij,aj->bai", rigid, anc_h) - anc) * state.anchor_pose_weight[:, None]
        disp = torch.cat([disp_mesh, anc_disp], 1)  # (b, N, 2)

        # 2. dense forward displacement on the reference grid (one sparse matmul for all triangles/frames)
        field = torch.sparse.mm(state.interp, rearrange(disp, "b n k -> n (b k)"))  # (s*s, b*2)
        field = rearrange(field, "(h w) (b k) -> b k h w", h=s, b=b)  # pixels

        # 3. backward map by fixed-point inversion: u = x - d(u)
        base = self._base_grid(s, dev)  # (s, s, 2) pixel centres
        u = base - rearrange(field, "b k h w -> b h w k")
        for _ in range(self.config.inverse_iterations - 1):
            d = F.grid_sample(field, self._to_grid(u, s), mode="bilinear", padding_mode="border",
                              align_corners=False)
            u = base - rearrange(d, "b k h w -> b h w k")

        # 4. mouth ROI sampling coordinates (rigid teeth from the reference) — sampled in the same call
        ry0, ry1, rx0, rx1 = state.mouth_roi
        roi_px = base[ry0:ry1, rx0:rx1]  # (rh, rw, 2)
        ref_au12 = state.reference_motion[MotionCodec.index("AU12")]
        mouth = self._mouth_coords(state, q[..., :2], roi_px)
        rh, rw = ry1 - ry0, rx1 - rx0
        grids = torch.cat([
            rearrange(u, "b h w k -> (b h w) k"),
            rearrange(mouth["src_up"], "b h w k -> (b h w) k"),
            rearrange(mouth["src_lo"], "b h w k -> (b h w) k"),
            rearrange(mouth["src_lip"], "b h w k -> (b h w) k"),
        ])
        sampled = F.grid_sample(state.stack, self._to_grid(grids, s).view(1, 1, -1, 2), mode="bilinear",
                                padding_mode="border", align_corners=False)[0, :, 0]  # (C, M)
        n_main, n_roi = b * s * s, b * rh * rw
        main = rearrange(sampled[:, :n_main], "c (b h w) -> b c h w", b=b, h=s)  # see PortraitState.stack
        own = slice(7, 10)  # the photo's own pixels (teeth) for the mouth interior; lips from the closed texture
        own_up = rearrange(sampled[own, n_main:n_main + n_roi], "c (b h w) -> b c h w", b=b, h=rh)
        own_lo = rearrange(sampled[own, n_main + n_roi:n_main + 2 * n_roi], "c (b h w) -> b c h w", b=b, h=rh)
        lip_tex = rearrange(sampled[:3, n_main + 2 * n_roi:], "c (b h w) -> b c h w", b=b, h=rh)

        # 5. taking a smile off: smooth the cheek folds toward the surrounding skin
        drop = ((ref_au12 - au12) / ref_au12.clamp_min(0.3)).clamp(0, 1) * self.config.fold_strength
        a = main[:, 6:7] * drop.view(b, 1, 1, 1)
        frame = main[:, :3] * (1 - a) + main[:, 3:6] * a
        # ... and the raised cheeks' bulge flattened as AU6 drops; AU4 furrows between the brows
        ref_au6 = state.reference_motion[MotionCodec.index("AU6")]
        drop6 = ((ref_au6 - au6) / ref_au6.clamp_min(0.3)).clamp(0, 1) * self.config.cheek_strength
        frame = frame + main[:, 10:13] * drop6.view(b, 1, 1, 1)
        # AU1 lifting the brow heads stretches the glabella vertically: fewer vertical furrows in AU1+4
        frown = (au4.clamp(0, 1.2) * (1 - 0.7 * au1.clamp(0, 1))).view(b, 1, 1, 1) * self.config.furrow_strength
        frame = frame * (1 - frown * main[:, 13:14])

        # 6. mouth interior
        synth = self._synth_mouth(state, mouth)
        w_up, w_lo = mouth["w_up"], mouth["w_lo"]
        inside = w_up * own_up + w_lo * own_lo + (1 - w_up - w_lo) * synth
        alpha = mouth["alpha"]
        roi = frame[:, :, ry0:ry1, rx0:rx1]
        w_band = mouth["w_band"]
        roi = roi * (1 - w_band) + lip_tex * w_band
        seam = mouth["seam"]
        roi = roi * (1 - seam) + (roi * state.lip_color.to(dev).view(1, 3, 1, 1) * 0.75) * seam
        frame = frame.clone()
        frame[:, :, ry0:ry1, rx0:rx1] = roi * (1 - alpha) + inside * alpha
        return frame.clamp(0, 1)

    # ------------------------------------------------------------------------------------------ render parts
    @staticmethod
    def _base_grid(s: int, device) -> torch.Tensor:
        r = torch.arange(s, device=device, dtype=torch.float32) + 0.5
        yy, xx = torch.meshgrid(r, r, indexing="ij")
        return torch.stack([xx, yy], -1)

    @staticmethod
    def _to_grid(px: torch.Tensor, s: int) -> torch.Tensor:
        return px * (2.0 / s) - 1.0

    @staticmethod
    def _rigid_2d(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        """Least-squares similarity (b, 2, 3) from src (n, 2) to dst (b, n, 2) over the stable points."""
        a = src[STABLE_POINTS]
        d = dst[:, STABLE_POINTS]
        ma, md = a.mean(0), d.mean(1)
        a0, d0 = a - ma, d - md[:, None]
        h = torch.einsum("ni,bnj->bij", a0, d0)
        u, sv, vt = torch.linalg.svd(h)
        rot = vt.transpose(1, 2) @ u.transpose(1, 2)
        det = torch.linalg.det(rot)
        fix = torch.ones(dst.shape[0], 2, device=dst.device)
        fix[:, 1] = det.sign()
        rot = vt.transpose(1, 2) @ torch.diag_embed(fix) @ u.transpose(1, 2)
        sc = (sv * fix).sum(-1) / (a0 ** 2).sum()
        lin = rot * sc[:, None, None]
        t = md - torch.einsum("bij,j->bi", lin, ma)
        return torch.cat([lin, t[..., None]], -1)

    def _mouth_coords(self, state: PortraitState, q: torch.Tensor, roi_px: torch.Tensor) -> dict:
        """Per ROI pixel: inside-mouth alpha, rigid upper/lower source coordinates, coverage weights."""
        b = q.shape[0]
        origin, axis, hw = self._mouth_frame(q)
        normal = torch.stack([-axis[:, 1], axis[:, 0]], -1)
        prof = self._lip_profile(q, origin, axis, hw)  # (b, 3, 11)
        rel = roi_px[None] - origin[:, None, None]  # (b, rh, rw, 2)
        sp = (rel * axis[:, None, None]).sum(-1)
        vp = (rel * normal[:, None, None]).sum(-1)
        rh, rw = sp.shape[1:]
        flat_s = sp.reshape(b, -1)
        vu = _interp(flat_s, prof[:, 0], prof[:, 1]).view(b, rh, rw)
        vl = _interp(flat_s, prof[:, 0], prof[:, 2]).view(b, rh, rw)
        gap = vl - vu
        tau = max(0.5, 0.012 * state.iod)  # soft, slightly blurred inner-lip edge
        sig = (sp / hw[:, None, None]).clamp(-1, 1)  # position along the mouth, -1..1
        alpha = _sig((vp - vu) / tau) * _sig((vl - vp) / tau)
        alpha = alpha * (gap / (2.5 * tau)).clamp(0, 1) * (1 - sig.abs() ** 8)
        # reference correspondences at the same relative position along the mouth
        ref = state.ref_mouth  # (3, 11)
        rmf = state.ref_mouth_frame
        r_o, r_a, r_hw = rmf[:2], rmf[2:4], rmf[4]
        r_n = torch.stack([-r_a[1], r_a[0]])
        s_ref = sig * r_hw
        flat = s_ref.reshape(1, -1)
        r_vu = _interp(flat, ref[0][None], ref[1][None]).view(b, rh, rw)
        r_vl = _interp(flat, ref[0][None], ref[2][None]).view(b, rh, rw)
        r_gap = (r_vl - r_vu).clamp_min(0)
        k = r_hw / hw[:, None, None]  # reference px per target px
        du = (vp - vu) * k
        dl = (vl - vp) * k
        src_up = r_o + s_ref[..., None] * r_a + (r_vu + du)[..., None] * r_n
        src_lo = r_o + s_ref[..., None] * r_a + (r_vl - dl)[..., None] * r_n
        # lips: texture rigidly attached to each inner-lip edge (never the reference's teeth), so a closing
        # mouth shows lip over the old teeth region instead of a compressed white line
        off = 0.02 * state.iod
        upper_half = (vp < (vu + vl) / 2)
        v_lip = torch.where(upper_half, r_vu + torch.minimum(du, torch.zeros_like(du)) - off,
                            r_vl - torch.minimum(dl, torch.zeros_like(dl)) + off)
        src_lip = r_o + s_ref[..., None] * r_a + v_lip[..., None] * r_n
        band = 0.07 * state.iod
        dist = torch.maximum(vu - vp, vp - vl).clamp_min(0)  # distance outside the gap
        w_band = _sig((band - dist) / max(0.7, 0.02 * state.iod)) * (1 - sig.abs() ** 6)
        soft = max(1.0, 0.02 * state.iod)
        w_up = _sig((0.58 * r_gap - du) / soft) * (r_gap > 1.0).float()
        w_lo = _sig((0.42 * r_gap - dl) / soft) * (r_gap > 1.0).float() * (1 - w_up)
        # closed lips: a soft, shaded line where they meet (not a dark pencil line), fading toward the corners
        vm = (vu + vl) / 2
        sw = max(0.6, 0.014 * state.iod)
        seam = _gexp(((vp - vm) / (sw + 0.5 * gap.clamp_min(0))) ** 2) * (1 - sig.abs() ** 4)
        seam = seam * (0.4 + 0.6 * (gap / (2.5 * tau)).clamp(0, 1))  # darkens as the lips part
        return dict(alpha=alpha[:, None], src_up=src_up, src_lo=src_lo, src_lip=src_lip, w_band=w_band[:, None],
                    seam=seam[:, None],
                    w_up=w_up[:, None], w_lo=w_lo[:, None],
                    du=vp - vu, dl=vl - vp, gap=gap, sig=sig)

    def _synth_mouth(self, state: PortraitState, m: dict) -> torch.Tensor:
        """Shaded cavity (darker toward the back), tongue hint, upper teeth band scaled with the opening."""
        gap = m["gap"].clamp_min(1e-3)
        du, dl, sig = m["du"], m["dl"], m["sig"]
        iod = state.iod
        dev = gap.device
        depth = (torch.sin(math.pi * (du / gap).clamp(0, 1)) * (1 - sig.abs() ** 2).clamp_min(0)).clamp(0, 1)
        lip = state.lip_color.to(dev).view(1, 3, 1, 1)
        edge = lip * 0.45
        back = torch.tensor([0.05, 0.015, 0.015], device=dev).view(1, 3, 1, 1)
        d = depth[:, None] ** 0.7
        cavity = edge * (1 - d) + back * d
        # tongue: a dim, reddish bulge in the lower part of a wide opening
        tongue_h = (0.35 * gap).clamp(max=0.22 * iod)
        tongue = _sig((tongue_h - dl) / max(1.0, 0.02 * iod)) * (1 - sig.abs() ** 2).clamp_min(0)
        tongue = tongue * ((gap - 0.15 * iod) / (0.2 * iod)).clamp(0, 1)
        t_col = lip * 0.55 + 0.03
        cavity = cavity * (1 - 0.7 * tongue[:, None]) + t_col * (0.7 * tongue[:, None])
        # upper teeth: band under the upper lip, height grows with the opening, shaded toward the corners
        band = (0.32 * gap).clamp(max=0.15 * iod)
        teeth_a = _sig((band - du) / max(0.7, 0.015 * iod))
        teeth_a = teeth_a * (1 - sig.abs() ** 2.5).clamp_min(0) * ((gap - 0.03 * iod) / (0.08 * iod)).clamp(0, 1)
        shade = (0.55 + 0.45 * (1 - sig.abs() ** 2)) * (1 - 0.25 * (du / band.clamp_min(1e-3)).clamp(0, 1))
        teeth = state.teeth_color.to(dev).view(1, 3, 1, 1) * shade[:, None]
        # lower teeth: thin band just above the lower lip when the mouth is wide open
        lband = (0.12 * gap).clamp(max=0.06 * iod)
        lower_a = _sig((lband - dl) / max(0.7, 0.015 * iod)) * (1 - sig.abs() ** 2).clamp_min(0)
        lower_a = lower_a * ((gap - 0.2 * iod) / (0.2 * iod)).clamp(0, 1) * 0.8
        teeth_a = teeth_a[:, None]
        lower_a = lower_a[:, None]
        out = cavity * (1 - teeth_a) + teeth * teeth_a
        return out * (1 - lower_a) + teeth * 0.8 * lower_a
