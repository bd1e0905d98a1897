"""Geometry shared by the portrait codec and renderer: smooth weights, piecewise-linear interpolation,
rotations, rigid fits, the face-normalised frame and a separable blur.

Face-normalised frame ("norm"): origin at the midpoint of the two eye centres (mean of each eye's corners,
:func:`affectstudio.conditioning.face.eye_centers`), x along the eye line towards image right, y down (image
convention), z away from the camera (mediapipe), unit = inter-ocular distance (eye centre to eye centre, in
the image plane: :func:`affectstudio.conditioning.face.interocular`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from affectstudio.conditioning.face import eye_centers, interocular

from .mesh import STABLE_POINTS


def smoothstep(edge0: float, edge1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - edge0) / (edge1 - edge0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def interp(xq: torch.Tensor, xk: torch.Tensor, yk: torch.Tensor) -> torch.Tensor:
    """Batched piecewise-linear interpolation, clamped at the ends. xq (..., p), xk/yk (..., k)."""
    xk = torch.cummax(xk, dim=-1).values  # knots must be non-decreasing
    lead = torch.broadcast_shapes(xq.shape[:-1], xk.shape[:-1])
    xq = xq.expand(*lead, xq.shape[-1]).contiguous()
    xk = xk.expand(*lead, xk.shape[-1]).contiguous()
    yk = yk.expand(*lead, yk.shape[-1])
    k = xk.shape[-1]
    hi = torch.searchsorted(xk, xq).clamp(1, k - 1)  # the knots below each query
    lo = hi - 1
    x0, x1 = xk.gather(-1, lo), xk.gather(-1, hi)
    y0, y1 = yk.gather(-1, lo), yk.gather(-1, hi)
    t = ((xq - x0) / (x1 - x0).clamp_min(1e-6)).clamp(0, 1)
    return y0 + t * (y1 - y0)


def gexp(sq: torch.Tensor) -> torch.Tensor:
    """exp(-sq / 2), clamped so far-away points give exact zeros instead of slow denormals."""
    return torch.exp(-0.5 * sq.clamp(max=60.0)).masked_fill(sq > 60.0, 0.0)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Sigmoid without denormal tails."""
    return torch.sigmoid(x.clamp(-25.0, 25.0)).masked_fill(x < -25.0, 0.0)


def gauss(x: torch.Tensor, y: torch.Tensor, cx, cy, sx: float, sy: float) -> torch.Tensor:
    return gexp(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2)


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
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


def angles_from_matrix(r: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rotation_matrix`: (…, 3, 3) -> (…, 3) (yaw, pitch, roll)."""
    yaw = torch.asin(r[..., 2, 0].clamp(-1, 1))  # third row of Rz Ry Rx: (sy, cy sp, cy cp)
    pitch = torch.atan2(r[..., 2, 1], r[..., 2, 2])
    roll = torch.atan2(r[..., 1, 0], r[..., 0, 0])
    return torch.stack([yaw, pitch, roll], -1)


def kabsch(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Rotation R (t, 3, 3) (translation free) best mapping src (t, n, 3) onto dst (t, n, 3)."""
    a = src - src.mean(1, keepdim=True)
    b = dst - dst.mean(1, keepdim=True)
    h = torch.einsum("tni,tnj->tij", a, b)
    u, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(vt.transpose(1, 2) @ u.transpose(1, 2)))
    diag = torch.ones(dst.shape[0], 3, device=dst.device, dtype=dst.dtype)
    diag[:, 2] = d
    return vt.transpose(1, 2) @ torch.diag_embed(diag) @ u.transpose(1, 2)


def rigid_2d(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
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
    sc = (sv * fix).sum(-1) / (a0**2).sum()
    lin = rot * sc[:, None, None]
    t = md - torch.einsum("bij,j->bi", lin, ma)
    return torch.cat([lin, t[..., None]], -1)


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
        right, left = eye_centers(lm)
        d = left - right
        return cls(origin=(left + right) / 2, scale=interocular(lm), roll=torch.atan2(d[1], d[0]))


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (b, c, h, w) with reflect padding."""
    r = max(1, int(math.ceil(3 * sigma)))
    k = gexp((torch.arange(-r, r + 1, dtype=img.dtype, device=img.device) / sigma) ** 2)
    k = k / k.sum()
    c = img.shape[1]
    img = F.pad(img, (r, r, 0, 0), mode="reflect")
    img = F.conv2d(img, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    img = F.pad(img, (0, 0, r, r), mode="reflect")
    return F.conv2d(img, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
