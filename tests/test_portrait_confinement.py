"""Expressions stay on the face (issue 15, item 3): the warp-confinement figure per emotion, and the jaw and brow
limits that keep a strong surprise from dragging the chin over the collar.

Figure (``models/portrait/confinement.py``): the 99th percentile, over the pixels outside the face oval widened
by a hair band and a neck band under the jaw, of the largest change (grey levels) from the rest frame, for the
EMFACS prototype of each emotion at intensity 0.5 and 1.0 on the bundled portrait. Bounds measured on
2026-12-04 after the jaw/brow limits (surprised was 32 before them, now 27; the rest unchanged): a regression
guard, not a finished job — the brow raise still pushes the hair above the forehead (most of surprised's 27).
"""

import numpy as np
import pytest
import torch

pytest.importorskip("mediapipe")
skdata = pytest.importorskip("skimage.data")

from affectstudio.conditioning.emotion.facs import EMFACS_PROTOTYPES  # noqa: E402
from affectstudio.models.portrait import MOTION_CHANNELS, PortraitRenderer  # noqa: E402
from affectstudio.models.portrait.confinement import face_region, warp_confinement  # noqa: E402

BOUNDS = {"neutral": 3.0, "happy": 4.0, "sad": 18.0, "angry": 11.0, "surprised": 29.0}


@pytest.fixture(scope="module")
def prepared():
    from affectstudio.conditioning.face import analyze_face

    img = skdata.astronaut()
    renderer = PortraitRenderer()
    state = renderer.prepare(img, analyze_face(img), size=256)
    rest = renderer.render(state, motion=state.reference_motion[None])[0]
    return renderer, state, rest, face_region(state.reference_landmarks.numpy(), 256)


def prototype(renderer, emotion, k):
    return renderer.codec.from_named({au: k * v for au, v in EMFACS_PROTOTYPES[emotion].items()})


@pytest.mark.parametrize("emotion", sorted(BOUNDS))
def test_expressions_stay_on_the_face(prepared, emotion):
    renderer, state, rest, region = prepared
    frames = renderer.render(state, motion=torch.stack([prototype(renderer, emotion, k) for k in (0.5, 1.0)]))
    figure = warp_confinement(frames, rest, region)
    assert figure["p99"] <= BOUNDS[emotion], (emotion, figure)


def test_the_figure_sees_a_moved_background(prepared):
    _, _, rest, region = prepared
    moved = np.roll(rest, 3, axis=1)[None]  # the whole square shifted: background and collar move
    assert warp_confinement(moved, rest, region)["p99"] > 30
    assert warp_confinement(rest[None], rest, region)["p99"] == 0


def test_a_strong_surprise_opens_the_jaw_no_wider_than_its_limit(prepared):
    renderer, state, _, _ = prepared
    jaw = MOTION_CHANNELS.index("jaw_open")
    motion = renderer.codec.from_named({"AU1": 1.2, "AU2": 1.2, "AU5": 1.0, "jaw_open": 1.0})[None]
    coupled = renderer.couple_actions(motion, state.reference_motion)
    assert float(coupled[0, jaw]) <= renderer.config.jaw_limit + 1e-6
    speech = renderer.codec.from_named({"jaw_open": 0.5})[None]  # speech openings are left alone
    assert float(renderer.couple_actions(speech, state.reference_motion)[0, jaw]) == pytest.approx(0.5)
