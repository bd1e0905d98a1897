"""Compositing a re-animated face back into the frames of a video (the visual re-dub,
:mod:`affectstudio.pipelines.redub`): landmark smoothing over time, similarity transforms, the blend mask, colour
and lighting matching, and the per-frame composite.

The face is rendered by :class:`~.renderer.PortraitRenderer` in crop mode from one reference frame per shot, at each
frame's own head pose; :func:`similarity` of its stable points onto the frame's carries the render into the frame.
:func:`blend_mask` covers the lower face and the brows (the union of the frame's face and the render's, so a chin
that moves is replaced either way) with holes over the eyes — the frame keeps its own eyes and blinks — feathered
over a fraction of the inter-ocular distance. :func:`match_colour` moves the render's low frequencies onto the
frame's around the mask's edge (an offset field filled in from the ring by normalised convolution: lighting that
changed since the reference frame, a colour cast, compression), so the edge leaves no seam. :func:`transfer_detail`
gives back the frame's own finest detail (skin, stubble, lashes), which the render loses to two resamplings,
wherever the new expression left the face where it was (:func:`stillness`).

Landmarks are ``(478, 2|3)`` pixel arrays in mediapipe's order (:mod:`.mesh`); frames are ``uint8 (h, w, 3)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mesh import FACE_OVAL, STABLE_POINTS

RIGHT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
LEFT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
BROWS = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
MOUTH_CORNERS = [61, 291]


# ------------------------------------------------------------------------------------------ tracks over time


def smooth_track(track: np.ndarray, shots: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Gaussian smoothing over time of per-frame values ``(t, ...)`` (NaN rows: no face), within each run of
    consecutive found frames of one shot (``shots``: ``(t,)`` shot number of each frame); a run's ends are
    normalised, not pulled toward zero. NaN rows stay NaN."""
    track = np.asarray(track, dtype=np.float64)
    out = track.copy()
    if sigma <= 0 or len(track) == 0:
        return out.astype(np.float32)
    found = np.isfinite(track.reshape(len(track), -1)).all(1)
    r = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    start = 0
    for i in range(1, len(track) + 1):
        if i < len(track) and found[i] == found[start] and shots[i] == shots[start]:
            continue
        if found[start]:
            run = track[start:i].reshape(i - start, -1)
            n = i - start  # full convolutions cut to the run (numpy's "same" is the longer input's length)
            w = np.convolve(np.ones(n), kernel)[r : r + n, None]
            smooth = np.stack([np.convolve(run[:, j], kernel)[r : r + n] for j in range(run.shape[1])], 1) / w
            out[start:i] = smooth.reshape(track[start:i].shape)
        start = i
    return out.astype(np.float32)


def fade_weights(found: np.ndarray, shots: np.ndarray, frames: int = 3) -> np.ndarray:
    """Per-frame blend weight ``(t,)``: 0 where the face is missing, ramping to 1 over ``frames`` frames away from
    a missing frame inside the same shot (a lost track fades instead of popping); shot boundaries need no ramp."""
    found = np.asarray(found, bool)
    t = len(found)
    dist = np.full(t, frames, dtype=np.float64)
    for direction in (1, -1):
        d = frames
        order = range(t) if direction == 1 else range(t - 1, -1, -1)
        prev = None
        for i in order:
            if prev is not None and shots[i] != shots[prev]:
                d = frames
            d = 0 if not found[i] else min(frames, d + 1)
            dist[i] = min(dist[i], d)
            prev = i
    return np.clip(dist / frames, 0.0, 1.0)


# ------------------------------------------------------------------------------------------ transforms


def similarity(src: np.ndarray, dst: np.ndarray, points=STABLE_POINTS) -> np.ndarray:
    """Least-squares similarity ``(..., 2, 3)`` (rotation, uniform scale, translation; Umeyama) taking the stable
    points of ``src (..., 478, ≥2)`` onto those of ``dst`` — batched over leading axes."""
    a = np.asarray(src, dtype=np.float64)[..., points, :2]
    b = np.asarray(dst, dtype=np.float64)[..., points, :2]
    ma, mb = a.mean(-2, keepdims=True), b.mean(-2, keepdims=True)
    a0, b0 = a - ma, b - mb
    # complex form: b0 ~ z a0 with z = s e^{i theta}
    za = a0[..., 0] + 1j * a0[..., 1]
    zb = b0[..., 0] + 1j * b0[..., 1]
    z = (np.conj(za) * zb).sum(-1) / np.maximum((np.abs(za) ** 2).sum(-1), 1e-12)
    lin = np.stack([np.stack([z.real, -z.imag], -1), np.stack([z.imag, z.real], -1)], -2)  # (..., 2, 2)
    t = mb[..., 0, :] - np.einsum("...ij,...j->...i", lin, ma[..., 0, :])
    return np.concatenate([lin, t[..., None]], -1)


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points ``(..., n, 2|3)`` through a similarity ``(..., 2, 3)``; a z column is scaled with the xy."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    xy = np.einsum("...ij,...nj->...ni", m[..., :2], pts[..., :2]) + m[..., None, :, 2]
    if pts.shape[-1] == 2:
        return xy
    scale = np.sqrt(np.abs(np.linalg.det(m[..., :2])))[..., None, None]
    return np.concatenate([xy, pts[..., 2:] * scale], -1)


def interocular(landmarks: np.ndarray) -> float:
    lm = np.asarray(landmarks, dtype=np.float64)
    right = lm[[33, 133], :2].mean(0)
    left = lm[[263, 362], :2].mean(0)
    return float(np.linalg.norm(left - right))


# ------------------------------------------------------------------------------------------ the blend mask


@dataclass
class CompositeSettings:
    """Mask shape and blending, in inter-ocular distances (iod) of the face in the frame."""

    side_inset: float = 0.92  # the oval's sides and top pulled toward the face's centre line (the seam on skin)
    jaw_margin: float = 0.12  # the jaw line pushed outward (a chin that moved is covered)
    brow_margin: float = 0.22  # the mask's top edge above the highest brow point
    eye_scale: float = 1.35  # eye holes: the eye outline scaled about its centre ...
    eye_margin: float = 0.1  # ... and grown by this much
    feather: float = 0.07  # Gaussian sigma of the mask's edge
    colour_sigma: float = 0.35  # reach of the colour/lighting offset field
    colour_clip: float = 40.0  # largest offset, uint8 levels
    colour_tolerance: float = 18.0  # ring pixels that differ by more (mean over RGB, levels) count less and less
    roi_margin: float = 0.3  # the working box around the mask
    detail_sigma: float = 0.04  # fine detail (skin, stubble, lashes) = the frame minus its blur at this sigma ...
    detail_reach: float = 0.05  # ... taken from the frame where the face moved less than this (iod); 0: off


def face_polygon(landmarks: np.ndarray, settings: CompositeSettings) -> np.ndarray:
    """The mask outline ``(36, 2)`` of one face: its oval, sides pulled in, top cut just above the brows, the jaw
    (below the mouth corners) pushed out."""
    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    iod = interocular(lm)
    right, left = lm[[33, 133]].mean(0), lm[[263, 362]].mean(0)
    ex = (left - right) / max(np.linalg.norm(left - right), 1e-9)  # face x axis
    ey = np.array([-ex[1], ex[0]])  # face y axis, down the face
    centre = (left + right) / 2
    oval = lm[FACE_OVAL] - centre
    u, v = oval @ ex, oval @ ey
    mouth_v = float(((lm[MOUTH_CORNERS] - centre) @ ey).mean())
    top = float(((lm[BROWS] - centre) @ ey).min()) - settings.brow_margin * iod
    jaw = v > mouth_v
    u = np.where(jaw, u, u * settings.side_inset)
    v = np.maximum(v, top)
    push = settings.jaw_margin * iod * jaw
    norm = np.maximum(np.hypot(u, v - mouth_v * 0.5), 1e-9)
    u = u + push * u / norm
    v = v + push * (v - mouth_v * 0.5) / norm
    return centre + u[:, None] * ex + v[:, None] * ey


def eye_holes(landmarks: np.ndarray, settings: CompositeSettings) -> list[np.ndarray]:
    """Outlines of the two eye holes (the frame's own eyes, lids and blinks show through)."""
    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    iod = interocular(lm)
    holes = []
    for idx in (RIGHT_EYE, LEFT_EYE):
        pts = lm[idx]
        c = pts.mean(0)
        d = (pts - c) * settings.eye_scale
        n = np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
        holes.append(c + d + d / n * settings.eye_margin * iod)
    return holes


def blend_mask(
    frame_landmarks: np.ndarray,
    render_landmarks: np.ndarray,
    size: tuple[int, int],
    settings: CompositeSettings,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """The feathered mask (float32 in [0, 1]), the colour-matching ring (bool: where the outer edge fades) and the
    working box ``(x0, y0, x1, y1)`` they cover in a frame of ``size`` ``(h, w)``. The mask is the union of the
    frame face's and the render's (already in frame pixels) :func:`face_polygon` minus the frame's
    :func:`eye_holes`, blurred by ``feather`` iod."""
    import cv2

    h, w = size
    iod = interocular(frame_landmarks)
    polys = [face_polygon(frame_landmarks, settings), face_polygon(render_landmarks, settings)]
    holes = eye_holes(frame_landmarks, settings)
    pts = np.concatenate(polys)
    pad = settings.roi_margin * iod
    x0, y0 = np.floor(pts.min(0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(0) + pad).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), bool), (0, 0, 0, 0)
    outline = np.zeros((y1 - y0, x1 - x0), np.uint8)
    off = np.array([x0, y0], dtype=np.float64)
    shift = 4  # sub-pixel outlines
    for p in polys:  # one call each: fillPoly leaves the overlap of polygons drawn together empty
        cv2.fillPoly(outline, [np.round((p - off) * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
    mask = outline.copy()
    for p in holes:
        cv2.fillPoly(mask, [np.round((p - off) * (1 << shift)).astype(np.int32)], 0, cv2.LINE_AA, shift)
    sigma = max(0.5, settings.feather * iod)
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
    outer = cv2.GaussianBlur(outline.astype(np.float32) / 255.0, (0, 0), sigma)
    ring = (outer > 0.02) & (outer < 0.95)  # the outer edge only: a blink in an eye hole is no lighting change
    return soft, ring, (x0, y0, x1, y1)


# ------------------------------------------------------------------------------------------ colour and blend


def match_colour(render: np.ndarray, frame: np.ndarray, ring: np.ndarray, iod: float, settings: CompositeSettings):
    """``render`` (float32 ``(h, w, 3)``) with the frame's low frequencies around the mask's edge: the offset
    ``frame - render`` measured on ``ring`` (where the mask's outer edge fades), clipped to ``colour_clip`` levels,
    filled in everywhere by normalised convolution (Gaussian ``colour_sigma`` iod)."""
    import cv2

    ring = np.asarray(ring, dtype=np.float32)
    if ring.sum() < 8:
        return render
    diff = np.clip(frame - render, -settings.colour_clip, settings.colour_clip)
    # structure that differs (a chin against a collar, a moved lip) is no lighting change: such pixels weigh little
    ring = ring * np.exp(-((np.abs(diff).mean(-1) / settings.colour_tolerance) ** 2))
    diff = diff * ring[..., None]
    # at quarter resolution: the field is smooth, the blur's cost falls 16x
    h, w = ring.shape
    sw, sh = max(2, w // 4), max(2, h // 4)
    small_d = cv2.resize(diff, (sw, sh), interpolation=cv2.INTER_AREA)
    small_r = cv2.resize(ring, (sw, sh), interpolation=cv2.INTER_AREA)
    sigma = max(1.0, settings.colour_sigma * iod / 4)
    num = cv2.GaussianBlur(small_d, (0, 0), sigma)
    den = cv2.GaussianBlur(small_r, (0, 0), sigma)[..., None]
    field = num / np.maximum(den, 1e-3)
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)
    return render + field


def stillness(
    frame_landmarks: np.ndarray, render_landmarks: np.ndarray, box: tuple[int, int, int, int], iod: float, reach: float
) -> np.ndarray:
    """Per pixel of ``box``, how still the face is there, in [0, 1]: 1 where the render's landmarks (in frame pixels)
    lie on the frame's, falling as ``exp(-(d / (reach iod))^2)`` with their distance ``d``, filled in between
    landmarks by normalised convolution at quarter resolution; 0 far from every landmark."""
    import cv2

    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    sh, sw = max(2, h // 4), max(2, w // 4)
    d = np.linalg.norm(np.asarray(render_landmarks)[:, :2] - np.asarray(frame_landmarks)[:, :2], axis=1)
    weight = np.exp(-((d / max(reach * iod, 1e-6)) ** 2)).astype(np.float32)
    pts = (np.asarray(frame_landmarks)[:, :2] - (x0, y0)) * (sw / max(w, 1), sh / max(h, 1))
    num, den = np.zeros((sh, sw), np.float32), np.zeros((sh, sw), np.float32)
    ij = np.round(pts).astype(int)
    ok = (ij[:, 0] >= 0) & (ij[:, 0] < sw) & (ij[:, 1] >= 0) & (ij[:, 1] < sh)
    np.add.at(num, (ij[ok, 1], ij[ok, 0]), weight[ok])
    np.add.at(den, (ij[ok, 1], ij[ok, 0]), 1.0)
    sigma = max(1.0, 0.12 * iod / 4)
    field = cv2.GaussianBlur(num, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(den, (0, 0), sigma), 1e-3)
    reach_mask = np.clip(cv2.GaussianBlur(den, (0, 0), sigma) * 40.0, 0, 1)  # fades away from the landmarks
    return cv2.resize(field * reach_mask, (w, h), interpolation=cv2.INTER_LINEAR)


def transfer_detail(face: np.ndarray, region: np.ndarray, still: np.ndarray, iod: float, sigma: float) -> np.ndarray:
    """``face`` (the render, float32) with its finest detail swapped for the frame's ``region`` where the face is
    ``still``: twice-resampled render pixels lose skin texture, stubble and lashes that the frame still has, in
    place, wherever the new expression did not move the face."""
    import cv2

    s = max(0.6, sigma * iod)
    fine_frame = region - cv2.GaussianBlur(region, (0, 0), s)
    fine_face = face - cv2.GaussianBlur(face, (0, 0), s)
    return face + still[..., None] * (fine_frame - fine_face)


def composite_frame(
    frame: np.ndarray,
    crop: np.ndarray,
    matrix: np.ndarray,
    frame_landmarks: np.ndarray,
    render_landmarks: np.ndarray,
    settings: CompositeSettings,
    weight: float = 1.0,
) -> np.ndarray:
    """One output frame: the rendered face ``crop`` (uint8 ``(s, s, 3)``) carried into ``frame`` by ``matrix``
    (crop → frame similarity ``(2, 3)``), colour-matched and blended through :func:`blend_mask` (times ``weight``).
    ``render_landmarks``: the render's landmarks in crop pixels. Returns a new uint8 frame."""
    import cv2

    if weight <= 0:
        return frame
    h, w = frame.shape[:2]
    in_frame = apply_transform(matrix, np.asarray(render_landmarks)[:, :2])
    mask, ring, (x0, y0, x1, y1) = blend_mask(frame_landmarks, in_frame, (h, w), settings)
    if mask.size == 0:
        return frame
    m = np.asarray(matrix, dtype=np.float64).copy()
    m[:, 2] -= (x0, y0)
    warped = cv2.warpAffine(crop, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    region = frame[y0:y1, x0:x1].astype(np.float32)
    iod = interocular(frame_landmarks)
    face = match_colour(warped.astype(np.float32), region, ring, iod, settings)
    if settings.detail_reach > 0:
        still = stillness(frame_landmarks, in_frame, (x0, y0, x1, y1), iod, settings.detail_reach)
        face = transfer_detail(face, region, still, iod, settings.detail_sigma)
    a = (mask * float(weight))[..., None]
    out = frame.copy()
    out[y0:y1, x0:x1] = np.clip(region + a * (face - region) + 0.5, 0, 255).astype(np.uint8)
    return out


def seam_ratio(output: np.ndarray, original: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Mean gradient magnitude of ``output`` over the mask's edge band (0.3 < m < 0.7, around the outline)
    divided by the original frame's there: about 1 when the composite leaves no seam; a pasted face with a colour
    step or a misplaced edge scores well above 1. (An evaluation helper; tests and the note use it.)"""
    x0, y0, x1, y1 = box
    band = (mask > 0.3) & (mask < 0.7)
    if not band.any():
        return float("nan")

    def grad(img: np.ndarray) -> np.ndarray:
        f = img[y0:y1, x0:x1].astype(np.float64).mean(-1)
        gy, gx = np.gradient(f)
        return np.hypot(gx, gy)

    return float(grad(output)[band].mean() / max(grad(original)[band].mean(), 1e-6))
