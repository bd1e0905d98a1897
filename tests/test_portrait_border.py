"""Faces near the borders of wide and tall photos: no border of a rendered frame is ever smeared.

The photos are crops of ``skimage.data.astronaut()`` (real content up to every border) with the face against
one side. A smeared border (edge replication: rows or columns repeated) has almost no gradient across the
border band while it keeps the gradient along it, so the across/along ratio drops to ~0 (natural bands score
about 0.5–2); every band of every rendered frame must stay natural, in crop and in paste-back mode. Where the
face leaves too little room, the face square runs past the photo and what lies outside is mirrored (issue 15;
tests/test_portrait_closeup.py covers close-ups and cut faces).
"""

import numpy as np
import pytest
import torch

from affectstudio.conditioning.face_align import face_square
from affectstudio.models.portrait import FACE_OVAL, MotionCodec, PortraitRenderer

pytest.importorskip("mediapipe")
skdata = pytest.importorskip("skimage.data")

# (rows, cols) of the astronaut (512², face oval at x 179–271, y 70–177): the face against each side
PHOTOS = {
    "wide_left": (slice(40, 200), slice(165, 449)),  # 160 × 284: face against the left, top and bottom
    "wide_right": (slice(40, 200), slice(0, 284)),  # against the right, top and bottom
    "tall_top": (slice(55, 339), slice(150, 310)),  # 284 × 160: against the top
    "tall_bottom": (slice(0, 195), slice(165, 285)),  # 195 × 120: against the bottom, left and right
}
BAND = 6


def border_ratios(frame: np.ndarray, band: int = BAND) -> dict[str, float]:
    """Mean |gradient| across / along each border band of a uint8 (h, w, 3) frame."""
    f = frame.astype(np.float64).mean(-1)
    gy, gx = np.abs(np.diff(f, axis=0)), np.abs(np.diff(f, axis=1))
    eps = 1e-6
    return {
        "top": gy[:band].mean() / (gx[:band].mean() + eps),
        "bottom": gy[-band:].mean() / (gx[-band:].mean() + eps),
        "left": gx[:, :band].mean() / (gy[:, :band].mean() + eps),
        "right": gx[:, -band:].mean() / (gy[:, -band:].mean() + eps),
    }


def smeared(image: np.ndarray, pad: int = 24) -> np.ndarray:
    """The same photo with edge-replicated margins: what the test must reject."""
    return np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


@pytest.fixture(scope="module")
def motions():
    codec = MotionCodec()
    return torch.stack(
        [
            codec.from_named(m)
            for m in (
                {},
                {"jaw_open": 0.8, "AU12": 0.6},
                {"AU15": 0.8, "AU4": 0.7, "pitch": 0.1},
                {"yaw": 0.2, "roll": -0.1, "jaw_open": 0.4},
            )
        ]
    )


def test_the_measure_separates_natural_and_smeared_borders(astronaut):
    natural = border_ratios(astronaut[40:200, 165:449])
    assert all(r > 0.3 for r in natural.values()), natural
    assert all(r < 0.1 for r in border_ratios(smeared(astronaut[40:200, 165:449])).values())


def test_face_square_stays_inside_and_shrinks():
    lm = np.zeros((478, 3), np.float32)
    lm[:, :2] = np.random.default_rng(0).uniform([10, 150], [120, 260], size=(478, 2))  # near the bottom-left
    lm[FACE_OVAL[:2], :2] = [[10, 150], [120, 260]]  # the oval's box: 110 × 110
    x0, y0, side = face_square(lm, 2.1, 0.04, upright=False, image_size=(270, 640), whole_pixels=True).box()
    assert x0 == 0 and 0 <= y0 and y0 + side <= 270 and side == int(round(2.1 * 110))
    x0, y0, side = face_square(lm, 2.1, 0.04, upright=False, image_size=(200, 640), whole_pixels=True).box()
    assert side == 200 and y0 == 0 and x0 >= 0  # the photo is smaller than the wanted side: shrunk to fit
    sq = face_square(lm, 2.1, 0.0, upright=True, image_size=(270, 640))
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * sq.side / 2
    c, s = np.cos(sq.angle), np.sin(sq.angle)
    pts = corners @ np.array([[c, s], [-s, c]]) + [sq.cx, sq.cy]
    assert pts.min() >= -1e-6 and (pts[:, 0] <= 640 + 1e-6).all() and (pts[:, 1] <= 270 + 1e-6).all()


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_rendered_borders_are_never_smeared(astronaut, motions, name):
    from affectstudio.conditioning.face import analyze_face

    rows, cols = PHOTOS[name]
    photo = np.ascontiguousarray(astronaut[rows, cols])
    analysis = analyze_face(photo)
    renderer = PortraitRenderer()

    crop_state = renderer.prepare(photo, analysis, size=128)
    x0, y0, side = (int(v) for v in crop_state.crop_box[:3])
    assert x0 < photo.shape[1] and y0 < photo.shape[0] and x0 + side > 0 and y0 + side > 0
    for frame in renderer.render(crop_state, motion=motions):
        ratios = border_ratios(frame)
        assert min(ratios.values()) > 0.25, (name, ratios)

    paste_state = renderer.prepare(photo, analysis, size=128, mode="paste_back")
    frames = renderer.render(paste_state, motion=motions)
    assert frames.shape == (len(motions), *photo.shape)
    outside = np.ones(photo.shape[:2], bool)
    outside[max(y0, 0) : y0 + side, max(x0, 0) : x0 + side] = False
    assert (frames[:, outside] == photo[outside]).all()  # the photo is untouched outside the face square
    rest = renderer.render(paste_state, motion=paste_state.reference_motion[None])[0]
    assert np.abs(rest.astype(float) - photo).mean() < 3.0  # the reference motion gives back the photo
    assert np.abs(frames[1].astype(float) - rest).max() > 40  # ... and the face moves
    for frame in frames:
        ratios = border_ratios(frame)
        assert min(ratios.values()) > 0.25, (name, ratios)
