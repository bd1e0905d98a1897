"""Face framing and crop/alignment: the one face square of the project (:func:`face_square`; with ``min_scale``
it may run past the photo, :func:`padded_crop` covers the outside), upright crops (:func:`crop_align`),
feathered paste-back (:func:`paste_back`, :func:`paste_mask`). Landmark conventions as in
:mod:`affectstudio.conditioning.face`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectstudio.conditioning.face import MESH_REGIONS, FaceAnalysis, eye_centers
from affectstudio.media import ImageInput, load_image

# ------------------------------------------------------------------------------------------ crop / align


@dataclass(frozen=True)
class FaceSquare:
    """A square around a face in image pixels: centre ``(cx, cy)``, ``side``, and ``angle`` (radians, the eye
    line's angle on screen) that an upright crop rotates away; ``angle == 0`` is an axis-aligned crop."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def matrix(self, size: int) -> np.ndarray:
        """The ``(2, 3)`` affine mapping image pixels onto a ``size``-pixel crop of this square."""
        cos, sin = np.cos(-self.angle), np.sin(-self.angle)
        a = (size / self.side) * np.array([[cos, -sin], [sin, cos]])
        return np.concatenate([a, (np.array([size / 2, size / 2]) - a @ np.array([self.cx, self.cy]))[:, None]], 1)

    def box(self) -> tuple[int, int, int]:
        """``(x0, y0, side)`` in whole pixels of an axis-aligned square (see ``face_square(whole_pixels=True)``)."""
        side = int(round(self.side))
        return int(round(self.cx - side / 2)), int(round(self.cy - side / 2)), side


def face_square(
    landmarks,
    scale: float,
    shift_y: float = 0.0,
    upright: bool = True,
    image_size: tuple[int, int] | None = None,
    whole_pixels: bool = False,
    min_scale: float | None = None,
) -> FaceSquare:
    """The one face framing of the project: a square around the face oval.

    The side is ``scale`` × the oval's larger extent (measured along and across the eye line when ``upright``,
    else along the image axes); the face centre (the centre of the oval's bounding box) sits ``shift_y`` × side
    below the square's centre (negative: the face sits high). With ``image_size = (h, w)`` the square never
    leaves the image — it is shifted inside, and shrunk when the image is smaller than the wanted side — so
    a crop of it invents no pixels. ``whole_pixels`` snaps an axis-aligned square to a whole-pixel box.

    ``min_scale`` (axis-aligned squares with ``image_size`` only) lets the square run past the photo's edges
    instead: it is never shrunk below ``min_scale`` × the extent of the face's visible part, and it is shifted
    inward only as far as that part (with a margin of :data:`FACE_MARGIN` × its extent, except where the photo's
    edge cuts the face) stays inside it. A
    close-up whose face fills the frame, or touches an edge, gets room around it; the caller covers what lies
    outside the photo (:func:`padded_crop`).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    oval = lm[list(MESH_REGIONS["face_oval"]), :2]
    angle = 0.0
    if upright:
        right, left = eye_centers(lm)
        angle = float(np.arctan2(left[1] - right[1], left[0] - right[0]))
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])  # upright frame → image
    local = oval @ rot  # image → upright frame (row vectors)
    lo, hi = local.min(0), local.max(0)
    side = scale * float(np.max(hi - lo))
    if whole_pixels:
        side = float(round(side))
    centre = rot @ ((lo + hi) / 2 - np.array([0.0, shift_y * side]))
    if image_size is not None and min_scale is not None and not upright:
        return _overflowing_square(oval, centre, side, image_size, min_scale, whole_pixels)
    if image_size is not None:
        h, w = image_size
        reach = abs(cos) + abs(sin)  # the bounding box of the (rotated) square is reach × side wide
        side = min(side, min(h, w) / reach)
        if whole_pixels:
            side = float(int(side))
        half = reach * side / 2
        centre = np.array([np.clip(centre[0], half, w - half), np.clip(centre[1], half, h - half)])
    if whole_pixels:
        x0, y0 = round(centre[0] - side / 2), round(centre[1] - side / 2)
        if image_size is not None:
            x0, y0 = min(max(x0, 0), image_size[1] - int(side)), min(max(y0, 0), image_size[0] - int(side))
        centre = np.array([x0 + side / 2, y0 + side / 2])
    return FaceSquare(float(centre[0]), float(centre[1]), float(side), angle)


FACE_MARGIN = 0.1  # room kept around the visible face inside a square that runs past the photo (× its extent)


def _overflowing_square(
    oval: np.ndarray,
    centre: np.ndarray,
    side: float,
    image_size: tuple[int, int],
    min_scale: float,
    whole_pixels: bool,
) -> FaceSquare:
    """The axis-aligned square of :func:`face_square` with ``min_scale``: as much of it inside the photo as the
    face allows (see there)."""
    h, w = image_size
    limit = np.array([w, h], dtype=np.float64)
    vis = np.clip(oval, 0, limit)  # the face's visible part
    v_lo, v_hi = vis.min(0), vis.max(0)
    extent = float(np.max(v_hi - v_lo))
    side = min(side, max(float(min(h, w)), min_scale * extent))
    if whole_pixels:
        side = float(round(side))
    half, margin = side / 2, FACE_MARGIN * extent
    # no margin where the photo's edge cuts the face: it goes on past the edge, a mirror of it would not
    cut_lo, cut_hi = oval.min(0) <= 1, oval.max(0) >= limit - 1
    out = np.empty(2)
    for k in range(2):
        # inside the photo when it is larger than the square, else covering it; then the face wins
        lo_c, hi_c = sorted((half, limit[k] - half))
        c = float(np.clip(centre[k], lo_c, hi_c))
        f_lo = v_hi[k] + (0.0 if cut_hi[k] else margin) - half
        f_hi = v_lo[k] - (0.0 if cut_lo[k] else margin) + half
        out[k] = (v_lo[k] + v_hi[k]) / 2 if f_lo > f_hi else float(np.clip(c, f_lo, f_hi))
    if whole_pixels:
        out = np.round(out - half) + half
    return FaceSquare(float(out[0]), float(out[1]), float(side), 0.0)


def padded_crop(image: np.ndarray, x0: int, y0: int, side: int, soften: float = 0.03) -> np.ndarray:
    """The ``side``-pixel square at ``(x0, y0)`` of a uint8 image, which may run past its edges: what lies
    outside is the photo mirrored at its edge (no smeared rows or streaks: texture keeps its grain), blended
    within ``soften`` × side of the edge into a blur of that mirror image with its fine grain kept, so mirrored
    features (a second chin, an eye) fade into soft colour instead of showing, and the fill keeps the photo's
    texture (a plain blur would read as smeared)."""
    import cv2

    h, w = image.shape[:2]
    pads = (max(0, -y0), max(0, y0 + side - h), max(0, -x0), max(0, x0 + side - w))
    if not any(pads):
        return np.array(image[y0 : y0 + side, x0 : x0 + side])
    top, bottom, left, right = pads
    big = np.pad(image, ((top, bottom), (left, right), (0, 0)), mode="symmetric")
    crop = big[y0 + top : y0 + top + side, x0 + left : x0 + left + side].astype(np.float32)
    yy, xx = np.mgrid[0:side, 0:side]
    dy = np.maximum(np.maximum(-(y0 + yy), y0 + yy - (h - 1)), 0)
    dx = np.maximum(np.maximum(-(x0 + xx), x0 + xx - (w - 1)), 0)
    reach = max(2.0, soften * side)
    wgt = np.sqrt(np.clip(np.hypot(dx, dy) / reach, 0, 1)).astype(np.float32)[..., None]
    fine = crop - cv2.GaussianBlur(crop, (0, 0), 1.5)  # the grain, kept: a soft fill that is not a smear
    soft = cv2.GaussianBlur(crop, (0, 0), reach) + fine
    return np.clip(np.rint(crop * (1 - wgt) + soft * wgt), 0, 255).astype(np.uint8)


def paste_mask(size: int, feather: float = 0.06, open_sides: tuple[bool, bool, bool, bool] | None = None) -> np.ndarray:
    """``(size, size)`` float32 blending mask of a square crop: 1 inside, falling smoothly to 0 over the outer
    ``feather`` × size, so a pasted-back crop shows no seam. ``open_sides`` (top, bottom, left, right): sides
    with no feather (the mask stays 1 up to them) — where the square reaches past the photo's edge there is no
    photo to blend with."""
    import cv2

    pad = max(1, int(feather * size))
    ext = 3 * pad  # room so the blur of an open side stays 1 up to the square's edge
    top, bottom, left, right = open_sides or (False,) * 4
    mask = np.zeros((size + 2 * ext, size + 2 * ext), np.float32)
    y0, y1 = (0 if top else ext + pad), (size + 2 * ext if bottom else ext + size - pad)
    x0, x1 = (0 if left else ext + pad), (size + 2 * ext if right else ext + size - pad)
    mask[y0:y1, x0:x1] = 1.0
    return cv2.GaussianBlur(mask, (0, 0), pad / 2)[ext:-ext, ext:-ext].copy()


def crop_align(
    image: ImageInput,
    analysis: FaceAnalysis,
    size: int = 512,
    scale: float = 1.9,
    shift_y: float = -0.08,
    inside: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Square, upright crop of the face: ``(crop uint8 (size, size, 3), matrix (2, 3) image → crop)``.

    The eye line is made horizontal (roll removed); the framing is :func:`face_square` (side ``scale`` × the
    face oval's extent; 1.9 leaves room for hair and chin; ``shift_y`` negative leaves more room for the neck).
    With ``inside`` (default) the square is kept inside the photo, so no pixel is invented; otherwise pixels
    outside the photo replicate its border.
    """
    import cv2

    img = load_image(image)
    square = face_square(analysis.landmarks, scale, shift_y, upright=True, image_size=img.shape[:2] if inside else None)
    m = square.matrix(size)
    crop = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return crop, m.astype(np.float32)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to ``(..., 2+)`` points (x, y; extra columns scaled by the affine's scale)."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    out = pts.copy()
    out[..., :2] = pts[..., :2] @ m[:, :2].T + m[:, 2]
    if pts.shape[-1] > 2:
        out[..., 2:] = pts[..., 2:] * np.sqrt(abs(np.linalg.det(m[:, :2])))
    return out.astype(np.float32)


def paste_back(crop: np.ndarray, matrix: np.ndarray, image: ImageInput, feather: float = 0.06) -> np.ndarray:
    """Warp an (edited) crop back into ``image`` with ``matrix`` from :func:`crop_align`, blending with a
    feathered square mask (``feather`` × crop side) so no seam shows. Returns a new uint8 image."""
    import cv2

    img = load_image(image)
    crop = load_image(crop)
    h, w = img.shape[:2]
    size = crop.shape[0]
    inv = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    warped = cv2.warpAffine(crop, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(paste_mask(size, feather), inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    out = warped.astype(np.float32) * mask + img.astype(np.float32) * (1 - mask)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
