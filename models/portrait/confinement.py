"""Warp confinement: how much an expression moves what is not the face.

Expressions move the face, the hair at its edge and the neck under the jaw; the background, collar, shoulders
and the rest of the hair must stay. :func:`face_region` is that allowed region on a rendered square (the face
oval widened by a hair band, plus a neck band under the jaw); :func:`warp_confinement` measures the change of
the pixels outside it between expression frames and the rest frame (the photo's own motion, the same pose).
"""

from __future__ import annotations

import numpy as np

from affectstudio.conditioning.face import interocular

from .mesh import FACE_OVAL

HAIR_BAND = 1.2  # the oval scaled about its centre: the hairline, ears and jaw edge
NECK_DROP = 0.9  # the neck band reaches this many inter-ocular distances under the jaw
CHANGED = 10  # a pixel "changed" by more than this many grey levels (of 255)


def face_region(landmarks: np.ndarray, size: int) -> np.ndarray:
    """``(size, size)`` bool: the face oval widened by the hair band, and the neck band under the jaw, of
    ``(478, 2+)`` landmarks in the square's pixels."""
    import cv2

    lm = np.asarray(landmarks, dtype=np.float64)
    oval = lm[list(FACE_OVAL), :2]
    centre = oval.mean(0)
    iod = float(interocular(lm))
    wide = centre + HAIR_BAND * (oval - centre)
    # the neck: the lower half of the oval (jaw line) pushed down, joined to the jaw line itself
    jaw = oval[oval[:, 1] > centre[1]]
    jaw = jaw[np.argsort(jaw[:, 0])]
    neck = np.concatenate([jaw, (jaw + [0.0, NECK_DROP * iod])[::-1]])
    mask = np.zeros((size, size), np.uint8)
    for poly in (cv2.convexHull(wide.astype(np.float32)), neck):
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32).reshape(-1, 2)], 1)
    return mask.astype(bool)


def warp_confinement(frames: np.ndarray, rest: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """Change outside ``region`` of uint8 frames ``(b, s, s, 3)`` against the rest frame ``(s, s, 3)``: the 99th
    percentile and the maximum over outside pixels of the largest per-channel change in any frame (grey levels),
    and the fraction of outside pixels changed by more than :data:`CHANGED` levels."""
    diff = np.abs(frames.astype(np.int16) - rest.astype(np.int16)[None]).max(-1).max(0)  # (s, s)
    outside = diff[~region]
    if outside.size == 0:
        return {"p99": 0.0, "max": 0.0, "changed_fraction": 0.0}
    return {
        "p99": float(np.percentile(outside, 99)),
        "max": float(outside.max()),
        "changed_fraction": float((outside > CHANGED).mean()),
    }
