"""One face followed through a video, frame by frame (streaming): the visual re-dub's tracker
(:mod:`affectstudio.pipelines.redub`).

:class:`FaceTracker` runs mediapipe's face mesh in its tracking (video) mode on every frame and returns the 478-point
mesh of *the chosen face* — or ``None`` on a frame where that face is not visible, which the caller passes through
unchanged. At the start of a shot (:meth:`FaceTracker.cut`) the face is chosen among every face of the frame by the
portrait's rule (``face="auto" | "largest" | "center" | N``, :mod:`.face_choice`: the same numbering, left to right
from 0, as ``affectstudio portrait --face``); within the shot the tracker follows the face nearest to where it was
(a second person entering does not take over), and a face that left is taken back only near where it was last seen.

Landmarks are in frame pixels as in :mod:`.face` (``float32 (478, 3)``).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from affectstudio.conditioning.face import (
    MEDIAPIPE_LOCK,
    MESH_REGIONS,
    NUM_LANDMARKS,
    FaceAnalysis,
    analyze_faces,
    mediapipe_solutions,
    quiet_native_logs,
)
from affectstudio.conditioning.face_choice import MAX_FACES, FaceChoice, FaceSpec, parse_face, pick_face

FOLLOW = 0.5  # a face moves at most this × its width between frames and stays the same face
RETAKE = 1.0  # a face that was lost is taken back within this × its width of where it was last seen
OVAL = list(MESH_REGIONS["face_oval"])


def _centre_width(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    oval = landmarks[OVAL, :2]
    return oval.mean(0), float(np.ptp(oval[:, 0]))


class FaceTracker:
    """Streaming tracker of one face (see the module doc). Call it on consecutive frames; call :meth:`cut` at the
    first frame of each new shot. ``choice`` holds the :class:`~.face_choice.FaceChoice` of the current shot."""

    def __init__(self, face: FaceSpec = "auto", max_faces: int = 2):
        self.spec = parse_face(face)
        self.max_faces = int(max_faces)
        self._mesh: Any = None
        self.choice: Optional[FaceChoice] = None
        self._last: Optional[tuple[np.ndarray, float]] = None  # centre, width where the face was last seen
        self._lost = True  # no face held: the next frame with faces chooses (after a cut) or retakes

    @quiet_native_logs
    def _open(self):
        sol = mediapipe_solutions()
        return sol.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=self.max_faces,
            refine_landmarks=True,
            min_detection_confidence=0.4,
            min_tracking_confidence=0.5,
        )

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def cut(self) -> None:
        """A new shot starts with the next frame: the face is chosen again by the rule."""
        self.choice = None
        self._last = None
        self._lost = True

    @quiet_native_logs
    def _meshes(self, frame: np.ndarray) -> list[np.ndarray]:
        if self._mesh is None:
            self._mesh = self._open()
        h, w = frame.shape[:2]
        with MEDIAPIPE_LOCK:
            res = self._mesh.process(np.ascontiguousarray(frame))
        scale = np.array([w, h, w], dtype=np.float64)
        return [
            (np.array([(p.x, p.y, p.z) for p in f.landmark], dtype=np.float64) * scale).astype(np.float32)
            for f in res.multi_face_landmarks or []
        ]

    def __call__(self, frame: np.ndarray) -> Optional[np.ndarray]:
        """The chosen face's landmarks ``(478, 3)`` on this frame, or ``None`` where it is not visible."""
        meshes = self._meshes(frame)
        found: Optional[np.ndarray]
        if self._last is None:  # a shot's first face: chosen by the rule among every face the detector finds
            if not meshes:
                return None
            faces = analyze_faces(frame, max_faces=MAX_FACES)
            if not faces:
                return None
            if isinstance(self.spec, int) and self.spec >= len(faces):
                return None  # a face number this frame does not have: passed through (the caller counts them)
            choice = pick_face(faces, self.spec, "the video frame")
            self.choice = choice
            chosen = choice.face.landmarks
            c, wd = _centre_width(chosen)
            near = self._nearest(meshes, c, wd, FOLLOW)
            found = near if near is not None else chosen
        else:
            c, wd = self._last
            found = self._nearest(meshes, c, wd, RETAKE if self._lost else FOLLOW)
        if found is None:
            self._lost = True
            return None
        self._lost = False
        self._last = _centre_width(found)
        return found

    @staticmethod
    def _nearest(meshes: list[np.ndarray], centre: np.ndarray, width: float, reach: float) -> Optional[np.ndarray]:
        best, best_d = None, np.inf
        for m in meshes:
            c, _ = _centre_width(m)
            d = float(np.linalg.norm(c - centre))
            if d <= reach * max(width, 1.0) and d < best_d:
                best, best_d = m, d
        return best


def as_analysis(landmarks: np.ndarray, image_size: tuple[int, int]) -> FaceAnalysis:
    """A :class:`~.face.FaceAnalysis` of tracked landmarks (what the portrait renderer's ``prepare`` takes)."""
    lm = np.asarray(landmarks, dtype=np.float32).reshape(NUM_LANDMARKS, 3)
    h, w = image_size
    x0, y0 = np.floor(lm[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(lm[:, :2].max(0)).astype(int)
    bbox = (int(np.clip(x0, 0, w)), int(np.clip(y0, 0, h)), int(np.clip(x1, 0, w)), int(np.clip(y1, 0, h)))
    return FaceAnalysis(landmarks=lm, bbox=bbox, image_size=(h, w), score=1.0)
