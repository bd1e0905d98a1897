"""Face framing and crop/alignment: the one face square of the project (:func:`face_square`), upright crops
(:func:`crop_align`), feathered paste-back (:func:`paste_back`, :func:`paste_mask`). Landmark conventions as in
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
) -> FaceSquare:
    """The one face framing of the project: a square around the face oval.

    The side is ``scale`` × the oval's larger extent (measured along and across the eye line when ``upright``,
    else along the image axes); the face centre (the centre of the oval's bounding box) sits ``shift_y`` × side
    below the square's centre (negative: the face sits high). With ``image_size = (h, w)`` the square never
    leaves the image — it is shifted inside, and shrunk when the image is smaller than the wanted side — so
    a crop of it invents no pixels. ``whole_pixels`` snaps an axis-aligned square to a whole-pixel box.
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


def paste_mask(size: int, feather: float = 0.06) -> np.ndarray:
    """``(size, size)`` float32 blending mask of a square crop: 1 inside, falling smoothly to 0 over the outer
    ``feather`` × size, so a pasted-back crop shows no seam."""
    import cv2

    mask = np.zeros((size, size), np.float32)
    pad = max(1, int(feather * size))
    mask[pad:-pad, pad:-pad] = 1.0
    return cv2.GaussianBlur(mask, (0, 0), pad / 2)


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
