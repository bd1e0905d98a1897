"""Which face to animate in a photo with several: ``face="auto" | "largest" | "center" | N`` (docs/cli.md,
``affectstudio portrait --face``), and the list of detected faces a face picker shows.

Faces are numbered **left to right from 0** by the centre of their face oval (a tie in x: top first), the order
a person reading the photo counts them in; :func:`list_faces` returns them in that order with their boxes and
thumbnails, :func:`face_at` maps a click on the photo to a number.

The rules:

* ``"auto"`` (the default): the largest face; faces within 10 % of its width count as tied and the one nearest
  the photo's centre wins among them (a group photo of equal heads animates the middle one, a portrait with a
  small face in the background animates the portrait). On a photo with one face every rule picks it.
* ``"largest"``: the largest face by box area (exact ties: the more central).
* ``"center"``: the face whose centre is nearest the photo's centre (ties: the larger).
* ``N`` (an int, or a string of digits as the CLI and job files give it): the N-th face from the left; a number
  past the last face is an :class:`InputError` that says how many faces were found.

When the photo holds several faces the pipeline logs :meth:`FaceChoice.describe` ("animating face 2 of 6
(numbered 0-5 left to right), 140 px wide") on the :data:`NOTES_LOGGER` logger, which the CLI prints as a
``note:`` line on stderr; the output's ``face`` attribute holds the :class:`FaceChoice`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from affectstudio.conditioning.face import FaceAnalysis, analyze_faces
from affectstudio.conditioning.photo import load_photo
from affectstudio.errors import InputError, NoFaceError
from affectstudio.media import ImageInput, _name

FACE_RULES = ("auto", "largest", "center")
FaceSpec = Union[str, int, None]
NOTES_LOGGER = "affectstudio.notes"  # user-facing notes; the CLI prints them as ``note: ...`` lines
MAX_FACES = 24  # faces analysed per photo (a large group photo); the detector finds the rest in score order
AUTO_TIE = 0.9  # "auto": faces at least this fraction of the largest face's width count as tied
THUMB_PAD = 1.6  # thumbnail side / face box side


def parse_face(face: FaceSpec) -> Union[str, int]:
    """``"auto"``, ``"largest"``, ``"center"`` or a face number ≥ 0; ``None`` is ``"auto"``. Anything else raises
    :class:`InputError`."""
    if face is None:
        return "auto"
    if isinstance(face, bool):  # bool is an int in Python; True is not a face number
        raise InputError(f"face must be auto, largest, center or a face number (0 = leftmost), got {face!r}")
    if isinstance(face, (int, np.integer)):
        n = int(face)
    else:
        text = str(face).strip().lower()
        if text in FACE_RULES:
            return text
        if text == "centre":
            return "center"
        try:
            n = int(text)
        except ValueError:
            raise InputError(
                f"face must be auto, largest, center or a face number (0 = leftmost), got {face!r}"
            ) from None
    if n < 0:
        raise InputError(f"face numbers count from 0 (the leftmost face), got {n}")
    return n


def left_to_right(faces: list[FaceAnalysis]) -> list[FaceAnalysis]:
    """``faces`` in reading order: by the x of the face-oval centre, then by y."""
    return sorted(faces, key=lambda f: (round(float(f.center[0]), 1), float(f.center[1])))


def face_width(face: FaceAnalysis) -> int:
    """Width of the face's box in photo pixels."""
    return int(face.bbox[2] - face.bbox[0])


def _off_centre(face: FaceAnalysis) -> float:
    """Distance of the face's centre from the photo's centre, as a fraction of the photo's diagonal."""
    h, w = face.image_size
    return float(np.hypot(face.center[0] - w / 2, face.center[1] - h / 2) / np.hypot(w, h))


def auto_index(faces: list[FaceAnalysis]) -> int:
    """The number (in ``faces``' order) of the face ``"auto"`` animates; see the module doc."""
    sides = [np.sqrt(f.area) for f in faces]
    tied = [i for i, s in enumerate(sides) if s >= AUTO_TIE * max(sides)]
    return min(tied, key=lambda i: (_off_centre(faces[i]), -sides[i]))


@dataclass(frozen=True)
class FaceChoice:
    """The face chosen to animate: ``face`` (its mesh), ``index`` (left to right from 0) of ``count`` faces found,
    and the ``rule`` that chose it (``auto``, ``largest``, ``center`` or ``number``)."""

    face: FaceAnalysis
    index: int
    count: int
    rule: str

    @property
    def width(self) -> int:
        return face_width(self.face)

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return self.face.bbox

    def describe(self) -> str:
        """``"animating face 2 of 6 (numbered 0-5 left to right), 140 px wide"``; one face: its width only."""
        if self.count == 1:
            return f"animating the one face found, {self.width} px wide"
        return (
            f"animating face {self.index} of {self.count} (numbered 0-{self.count - 1} left to right), "
            f"{self.width} px wide"
        )


def pick_face(faces: list[FaceAnalysis], face: FaceSpec = "auto", name: str = "the photo") -> FaceChoice:
    """Choose among already analysed ``faces`` (any order) by ``face`` (see the module doc). ``name`` names the
    photo in errors. No face: :class:`NoFaceError`; a number past the last face: :class:`InputError`."""
    spec = parse_face(face)
    if not faces:
        raise NoFaceError(f"no face found in {name}: use a photo with one clearly visible, front-facing face")
    ordered = left_to_right(faces)
    count = len(ordered)
    if isinstance(spec, int):
        if spec >= count:
            if count == 1:
                raise InputError(f"face {spec} asked for, but only one face was found in {name} (face 0)")
            raise InputError(
                f"face {spec} asked for, but {count} faces were found in {name} (numbered 0-{count - 1} left to right)"
            )
        return FaceChoice(ordered[spec], spec, count, "number")
    if spec == "auto":
        index = auto_index(ordered)
    elif spec == "largest":
        index = min(range(count), key=lambda i: (-ordered[i].area, _off_centre(ordered[i])))
    else:  # center
        index = min(range(count), key=lambda i: (_off_centre(ordered[i]), -ordered[i].area))
    return FaceChoice(ordered[index], index, count, spec)


def choose_face(image: ImageInput, face: FaceSpec = "auto") -> FaceChoice:
    """Detect every face in ``image`` (path, PIL image or array) and choose one by ``face``.

    Raises :class:`NoFaceError` when there is none, :class:`InputError` for a face number past the last face,
    and the media errors of :func:`affectstudio.media.load_image` for an unreadable photo."""
    parse_face(face)  # a bad spec fails before the detector runs
    return pick_face(analyze_faces(image, max_faces=MAX_FACES), face, _name(image))


# ----------------------------------------------------------------------------------- a face picker's data


@dataclass(frozen=True)
class DetectedFace:
    """One face for a picker: ``index`` (the ``face=N`` that animates it), ``bbox`` ``(x0, y0, x1, y1)`` and
    ``width`` in photo pixels, detector ``score``, a square ``thumbnail`` (uint8 RGB) around the face, and
    ``auto``: whether ``face="auto"`` animates this one."""

    index: int
    bbox: tuple[int, int, int, int]
    width: int
    score: float
    thumbnail: np.ndarray
    auto: bool

    @property
    def label(self) -> str:
        """A caption for a gallery: ``"face 2 · 140 px"`` (``" · auto"`` on the default choice)."""
        return f"face {self.index} · {self.width} px" + (" · auto" if self.auto else "")


def thumbnail(image: np.ndarray, bbox: tuple[int, int, int, int], size: int = 96) -> np.ndarray:
    """A ``size``-pixel square around ``bbox`` (:data:`THUMB_PAD` times its larger side, centred on it); what
    lies outside the photo is grey."""
    import cv2

    x0, y0, x1, y1 = bbox
    side = max(2.0, THUMB_PAD * max(x1 - x0, y1 - y0))
    s = size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], dtype=np.float64)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(
        image, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128)
    )


def list_faces(image: ImageInput, thumb_size: int = 96) -> list[DetectedFace]:
    """Every face in ``image``, left to right (``faces[n]`` is what ``face=n`` animates), with boxes and
    thumbnails for a gallery or a click picker. An empty list when there is none (no error: the picker shows
    that); unreadable media raise as :func:`affectstudio.media.load_image` does."""
    img = load_photo(image)  # as analyze_faces reads it (EXIF orientation applied): boxes and thumbnails agree
    faces = left_to_right(analyze_faces(img, max_faces=MAX_FACES))
    auto = auto_index(faces) if faces else -1
    return [
        DetectedFace(
            index=i,
            bbox=f.bbox,
            width=face_width(f),
            score=f.score,
            thumbnail=thumbnail(img, f.bbox, thumb_size),
            auto=i == auto,
        )
        for i, f in enumerate(faces)
    ]


def face_at(faces: list[DetectedFace], x: float, y: float) -> Optional[int]:
    """The number of the face under a click at ``(x, y)`` (photo pixels): the smallest box holding the point,
    else the nearest face centre within one face width; ``None`` when the click is on no face."""
    inside = [f for f in faces if f.bbox[0] <= x <= f.bbox[2] and f.bbox[1] <= y <= f.bbox[3]]
    if inside:
        return min(inside, key=lambda f: f.width * (f.bbox[3] - f.bbox[1])).index
    best: Optional[int] = None
    best_d = np.inf
    for f in faces:
        cx, cy = (f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2
        d = float(np.hypot(x - cx, y - cy))
        if d <= max(f.width, 1) and d < best_d:
            best, best_d = f.index, d
    return best
