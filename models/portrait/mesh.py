"""Named groups and points of the 478-point mediapipe face mesh (``refine_landmarks=True``) used by the
portrait codec and renderer — the one place their indices are written down.

Regions shared with face analysis (brows, irises, the face oval, named key points) come from
:mod:`affectstudio.conditioning.face`; the lip rows and eyelid curves the warp needs (ordered corner to
corner, upper and lower separately) are defined here. "Right"/"left" are the subject's: the right eye is on
the image's left in a frontal photo.
"""

from __future__ import annotations

import numpy as np
import torch

from affectstudio.conditioning.face import KEYPOINTS, MESH_REGIONS, NUM_LANDMARKS
from affectstudio.errors import InputError, NoFaceError

# Lip rows, each from the subject's right mouth corner to the left one (outer edge → inner edge of the red).
LIPS_UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIPS_LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
LIPS_UPPER_SEMI_OUTER = [76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306]
LIPS_LOWER_SEMI_OUTER = [76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306]
LIPS_UPPER_SEMI_INNER = [62, 183, 42, 41, 38, 12, 268, 271, 272, 407, 292]
LIPS_LOWER_SEMI_INNER = [62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292]
LIPS_UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIPS_LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
# Eyelid curves, outer corner → inner corner.
RIGHT_EYE_UPPER = [33, 246, 161, 160, 159, 158, 157, 173, 133]
RIGHT_EYE_LOWER = [33, 7, 163, 144, 145, 153, 154, 155, 133]
LEFT_EYE_UPPER = [263, 466, 388, 387, 386, 385, 384, 398, 362]
LEFT_EYE_LOWER = [263, 249, 390, 373, 374, 380, 381, 382, 362]
RIGHT_BROW = list(MESH_REGIONS["right_brow"])
LEFT_BROW = list(MESH_REGIONS["left_brow"])
RIGHT_IRIS = list(MESH_REGIONS["right_iris"])
LEFT_IRIS = list(MESH_REGIONS["left_iris"])
FACE_OVAL = list(MESH_REGIONS["face_oval"])
# Points that expressions barely move (eye corners, nose bridge and ridge, cheekbones, nose wings): the rigid
# head motion is measured on these.
STABLE_POINTS = [33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 234, 454, 127, 356, 93, 323, 98, 327]

MESH_GROUPS: dict[str, list[int]] = {
    "lips_upper_outer": LIPS_UPPER_OUTER,
    "lips_lower_outer": LIPS_LOWER_OUTER,
    "lips_upper_semi_outer": LIPS_UPPER_SEMI_OUTER,
    "lips_lower_semi_outer": LIPS_LOWER_SEMI_OUTER,
    "lips_upper_semi_inner": LIPS_UPPER_SEMI_INNER,
    "lips_lower_semi_inner": LIPS_LOWER_SEMI_INNER,
    "lips_upper_inner": LIPS_UPPER_INNER,
    "lips_lower_inner": LIPS_LOWER_INNER,
    "right_eye_upper": RIGHT_EYE_UPPER,
    "right_eye_lower": RIGHT_EYE_LOWER,
    "left_eye_upper": LEFT_EYE_UPPER,
    "left_eye_lower": LEFT_EYE_LOWER,
    "right_brow": RIGHT_BROW,
    "left_brow": LEFT_BROW,
    "right_iris": RIGHT_IRIS,
    "left_iris": LEFT_IRIS,
    "face_oval": FACE_OVAL,
    "stable": STABLE_POINTS,
}

# Single points.
NOSE_TIP = KEYPOINTS["nose_tip"]
CHIN = KEYPOINTS["chin"]
MOUTH_CORNER_R, MOUTH_CORNER_L = KEYPOINTS["mouth_corner_r"], KEYPOINTS["mouth_corner_l"]
INNER_CORNER_R, INNER_CORNER_L = LIPS_UPPER_INNER[0], LIPS_UPPER_INNER[-1]  # inner-lip corners (78, 308)
UPPER_LIP_INNER, LOWER_LIP_INNER = KEYPOINTS["upper_lip_inner"], KEYPOINTS["lower_lip_inner"]  # 13, 14
UPPER_LID_R, LOWER_LID_R = KEYPOINTS["upper_lid_r"], KEYPOINTS["lower_lid_r"]
UPPER_LID_L, LOWER_LID_L = KEYPOINTS["upper_lid_l"], KEYPOINTS["lower_lid_l"]
NOSE_ALA_R, NOSE_ALA_L = 98, 327  # outer edge of each nostril wing, where the nasolabial fold starts
BROW_HEAD_R = [KEYPOINTS["brow_inner_lower_r"], KEYPOINTS["brow_inner_r"]]  # 55, 107
BROW_HEAD_L = [KEYPOINTS["brow_inner_lower_l"], KEYPOINTS["brow_inner_l"]]  # 285, 336
# Corner-adjacent points of the lip rows (outer and the two semi rows): set to the lip line itself.
LIP_CORNERS = [
    MOUTH_CORNER_R,
    MOUTH_CORNER_L,
    INNER_CORNER_R,
    INNER_CORNER_L,
    LIPS_UPPER_SEMI_OUTER[0],
    LIPS_UPPER_SEMI_OUTER[-1],
    LIPS_UPPER_SEMI_INNER[0],
    LIPS_UPPER_SEMI_INNER[-1],
]


def landmarks_of(analysis) -> np.ndarray:
    """(478, 3) float32 pixel landmarks from a FaceAnalysis-like object or an array."""
    lm = getattr(analysis, "landmarks", analysis)
    if lm is None:
        raise NoFaceError("no face was found in the portrait; use a photo with one clearly visible face")
    lm = np.asarray(lm.detach().cpu() if isinstance(lm, torch.Tensor) else lm, dtype=np.float32)
    if lm.shape != (NUM_LANDMARKS, 3):
        raise InputError(f"expected (478, 3) face-mesh landmarks (refine_landmarks=True), got {lm.shape}")
    return lm


def check_face_size(landmarks: np.ndarray, min_px: float) -> float:
    """The face's width in photo pixels (its oval along the eye line); an :class:`InputError` naming it when it is
    under ``min_px`` (too few pixels to animate: upscaled, the mouth and eyes would be a blur)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    d = lm[263, :2] + lm[362, :2] - lm[33, :2] - lm[133, :2]  # right eye → left eye
    axis = d / max(float(np.linalg.norm(d)), 1e-9)
    along = lm[list(FACE_OVAL), :2] @ axis
    width = float(along.max() - along.min())
    if width < min_px:
        raise InputError(
            f"the face is {width:.0f} px across; at least {min_px:.0f} px is needed to animate it: "
            "use a larger or closer photo of the face"
        )
    return width
