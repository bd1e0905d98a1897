"""The piecewise-affine warp: still anchors around the face, a triangulation of mesh points + anchors
rasterised once per portrait into a sparse vertex → pixel interpolation matrix, and the per-frame backward map
(:func:`invert_field`) with its pixel/grid helpers."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from affectstudio.errors import InputError

from .mesh import FACE_OVAL


def anchor_points(
    ref: torch.Tensor, s: int, iod: float, ring_scales, ring_pose_weights, border_anchors: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors ``(A, 2)`` (output pixels) and how much of the head's rigid motion each follows ``(A,)``: rings
    around the face oval (scaled about its centre) and points along the crop border (still)."""
    oc = ref[FACE_OVAL, :2].mean(0)
    anchors, weights = [], []
    for k, wgt in zip(ring_scales, ring_pose_weights):
        ring = oc + k * (ref[FACE_OVAL, :2] - oc)
        keep = (ring > 2).all(1) & (ring < s - 2).all(1)
        anchors.append(ring[keep])
        weights.append(torch.full((int(keep.sum()),), float(wgt)))
    t = torch.linspace(0, s, border_anchors + 1)[:-1]
    border = torch.cat(
        [
            torch.stack([t, torch.zeros_like(t)], 1),
            torch.stack([torch.full_like(t, s), t], 1),
            torch.stack([s - t, torch.full_like(t, s)], 1),
            torch.stack([torch.zeros_like(t), s - t], 1),
        ]
    )
    anchors.append(border)
    weights.append(torch.zeros(len(border)))
    anchors = torch.cat(anchors)
    weights = torch.cat(weights)
    # drop anchors too close to mesh points (still border anchors may come closer; the crop's corners stay, so
    # the triangulation's hull always covers the crop)
    dmin = torch.cdist(anchors, ref[:, :2]).min(1).values
    corner = ((anchors == 0) | (anchors == s)).all(1)
    keep = (dmin > 0.15 * iod) | (weights == 0) & (dmin > 0.05 * iod) | corner
    return anchors[keep], weights[keep]


def lip_aware_triangles(verts: np.ndarray, opening: np.ndarray, s: int) -> np.ndarray:
    """Delaunay triangles ``(T, 3)`` of ``verts`` (mesh points first, then anchors), built on a version whose mesh
    points are moved by ``opening`` (an opened mouth) so triangles respect the lips when the jaw drops. Points
    inside the ``s``-pixel crop stay inside it, and the opening is halved until no triangle folds over at the
    reference positions (a chin at the crop's edge, mesh points past it)."""
    from scipy.spatial import Delaunay

    n = len(opening)
    shift = opening_inside(verts[:n], opening, s)
    for k in (1.0, 0.5, 0.25, 0.0):
        topo = verts.copy()
        topo[:n] += k * shift
        tris = Delaunay(topo).simplices.astype(np.int64)
        if k == 0.0 or not folds(verts, topo, tris):
            return tris
    raise AssertionError("unreachable")


def signed_areas(pts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    a, b, c = pts[tris[:, 0]], pts[tris[:, 1]], pts[tris[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def folds(verts: np.ndarray, topo: np.ndarray, tris: np.ndarray) -> bool:
    """Whether a triangle of ``topo`` turns over (or collapses) at the ``verts`` positions."""
    return bool((signed_areas(verts, tris) * np.sign(signed_areas(topo, tris)) <= 1e-9).any())


def opening_inside(points: np.ndarray, shift: np.ndarray, s: int) -> np.ndarray:
    """``shift`` (n, 2) shortened so points inside the square stay inside it (a jaw opened past the crop's edge
    would cross the still border anchors)."""
    inside = ((points > 0) & (points < s)).all(1)
    room = np.where(shift > 0, (s - 1 - points) / np.maximum(shift, 1e-9), points / np.maximum(-shift, 1e-9))
    k = np.clip(np.where(np.abs(shift) > 1e-9, room, 1.0).min(1), 0, 1)
    return shift * np.where(inside, k, 1.0)[:, None]


def rasterize(verts: np.ndarray, tris: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
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
    # pixels slightly outside every triangle (best < 0) keep their nearest triangle, weights clipped; pixels no
    # triangle reaches (a fold of the triangulation) take the triangle of the nearest pixel that has one
    missing = tri_of < 0
    if missing.all():
        raise InputError("portrait triangulation is empty: the face mesh is degenerate")
    if missing.any():
        tri_of, bary = _fill_missing(verts, tris, tri_of, bary, size)
    bary = np.clip(bary, 0, None)
    bary /= np.maximum(bary.sum(-1, keepdims=True), 1e-8)
    return tris[tri_of], bary


def _fill_missing(
    verts: np.ndarray, tris: np.ndarray, tri_of: np.ndarray, bary: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Give each pixel without a triangle the triangle of its nearest covered pixel, with its own (clipped
    below) barycentric weights in it: a short, smooth extrapolation, never a hole."""
    from scipy.ndimage import distance_transform_edt

    missing = (tri_of < 0).reshape(size, size)
    _, (iy, ix) = distance_transform_edt(missing, return_indices=True)
    src = (iy * size + ix).ravel()
    tri_of = tri_of[src]
    pix = np.flatnonzero(missing.ravel())
    t = tris[tri_of[pix]]
    a, b, c = verts[t[:, 0]], verts[t[:, 1]], verts[t[:, 2]]
    gx, gy = pix % size + 0.5, pix // size + 0.5
    det = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    det = np.where(np.abs(det) < 1e-9, 1e-9, det)
    l1 = ((b[:, 1] - c[:, 1]) * (gx - c[:, 0]) + (c[:, 0] - b[:, 0]) * (gy - c[:, 1])) / det
    l2 = ((c[:, 1] - a[:, 1]) * (gx - c[:, 0]) + (a[:, 0] - c[:, 0]) * (gy - c[:, 1])) / det
    bary = bary.copy()
    bary[pix] = np.stack([l1, l2, 1 - l1 - l2], -1)
    return tri_of, bary


def interpolation_matrix(verts: np.ndarray, tris: np.ndarray, s: int) -> torch.Tensor:
    """Sparse CSR ``(s*s, N)``: each pixel's barycentric weights on the vertices of its triangle."""
    tri_ids, bary = rasterize(verts, tris, s)
    rows = np.repeat(np.arange(s * s), 3)
    with warnings.catch_warnings():  # torch's notes that sparse tensors are beta; the indices are ours and valid
        warnings.simplefilter("ignore", UserWarning)
        return (
            torch.sparse_coo_tensor(
                torch.from_numpy(np.stack([rows, tri_ids.ravel()])),
                torch.from_numpy(bary.ravel()),
                (s * s, len(verts)),
                check_invariants=False,
            )
            .coalesce()
            .to_sparse_csr()
        )


def base_grid(s: int, device) -> torch.Tensor:
    """(s, s, 2) pixel centres (x, y)."""
    r = torch.arange(s, device=device, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([xx, yy], -1)


def to_grid(px: torch.Tensor, s: int) -> torch.Tensor:
    """Pixel coordinates → ``grid_sample`` coordinates (align_corners=False)."""
    return px * (2.0 / s) - 1.0


def grid_of(coords: torch.Tensor) -> torch.Tensor:
    """Channels-first coordinates ``(b, 2, h, w)`` as the ``(b, h, w, 2)`` grid ``grid_sample`` takes (a view)."""
    return rearrange(coords, "b k h w -> b h w k")


def invert_field(field: torch.Tensor, base: torch.Tensor, steps: int, coarse: bool = True) -> torch.Tensor:
    """The backward map ``u`` with ``u + d(u) = x`` of a forward displacement field ``d`` ``(b, 2, s, s)`` at the
    pixel centres ``x`` ``(2, s, s)`` (grid_sample units): the guess ``x - d(x)``, then ``steps`` Newton steps with
    the field's own Jacobian. A fixed-point step (``u = x - d(u)``) diverges where the skin stretches more than
    twofold (under a raised brow, between parted lips) and would leave the old brow or lid showing as a ghost; a
    Newton step is exact on each affine piece of the warp (where the skin compresses or folds, the fixed-point
    step, which converges there, is kept). The field is smooth on the pixel scale: ``coarse``
    solves at half resolution (even ``s`` of 128 and up) and upsamples the map."""
    s = field.shape[-1]
    if coarse and s >= 128 and s % 2 == 0:
        u = newton_inverse(F.avg_pool2d(field, 2), F.avg_pool2d(base[None], 2)[0], steps)
        return F.interpolate(u, size=(s, s), mode="bilinear", align_corners=False)
    return newton_inverse(field, base, steps)


def newton_inverse(field: torch.Tensor, base: torch.Tensor, steps: int) -> torch.Tensor:
    """:func:`invert_field` at the field's own resolution."""
    s = field.shape[-1]
    u = base - field
    if steps <= 0:
        return u
    gy, gx = torch.gradient(field, spacing=2.0 / s, dim=(-2, -1))  # per grid unit along y (rows) and x
    both = torch.cat([field, gx, gy], 1)  # dx, dy, d(dx)/dx, d(dy)/dx, d(dx)/dy, d(dy)/dy
    cap = 16 * 2.0 / s  # at most 16 pixels per step: a fold of the mesh cannot throw a pixel across the face
    for _ in range(steps):
        smp = F.grid_sample(both, grid_of(u), mode="bilinear", padding_mode="border", align_corners=False)
        r = u + smp[:, :2] - base
        a, c, b, d = 1 + smp[:, 2], smp[:, 3], smp[:, 4], 1 + smp[:, 5]  # J = [[a, b], [c, d]]
        det = a * d - b * c
        newton = torch.stack([d * r[:, 0] - b * r[:, 1], a * r[:, 1] - c * r[:, 0]], 1) / det.clamp_min(0.3)[:, None]
        # where the skin compresses or the mesh folds (a smile taken off at the corners) the fixed-point step
        # converges and Newton's would not: it takes over there
        u = u - torch.where((det > 0.3)[:, None], newton.clamp(-cap, cap), r)
    return u
