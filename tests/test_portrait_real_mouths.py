"""Photos whose mouth is not a neutral, visible one: a hand-like occluder over the lips (skimage astronaut with a
skin-coloured patch pasted over its mouth). Built from installed data only; no downloads."""

import logging

import numpy as np
import pytest
import torch

from affectstudio.models.portrait import PortraitRenderer
from affectstudio.models.portrait.channels import MOUTH_CHANNELS, channel_index

mp = pytest.importorskip("mediapipe")
skdata = pytest.importorskip("skimage.data")


def _landmarks(img):
    fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)
    res = fm.process(np.ascontiguousarray(img))
    fm.close()
    assert res.multi_face_landmarks, "mediapipe found no face"
    h, w = img.shape[:2]
    return np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark], np.float32)


@pytest.fixture(scope="module")
def astronaut():
    img = skdata.astronaut()[20:276, 96:352].copy()
    return img, _landmarks(img)


def _covered(img, lm):
    """The photo with a skin-coloured 'hand' over the mouth: the cheek's colour with a little shading and texture,
    running from past one corner to past the other (landmarks kept: mediapipe guesses a mouth under a hand)."""
    out = img.astype(np.float32)
    lips = lm[[61, 291, 0, 17], :2]
    x0, x1 = int(lips[:, 0].min() - 12), int(lips[:, 0].max() + 12)
    y0, y1 = int(lips[:, 1].min() - 6), int(lips[:, 1].max() + 6)
    cheek = out[int(lm[50, 1]) - 3 : int(lm[50, 1]) + 3, int(lm[50, 0]) - 3 : int(lm[50, 0]) + 3].reshape(-1, 3)
    rng = np.random.default_rng(0)
    yy = np.linspace(0, 1, y1 - y0)[:, None, None]
    patch = cheek.mean(0) * (1.05 - 0.1 * yy) + rng.normal(0, 3, (y1 - y0, x1 - x0, 3))
    out[y0:y1, x0:x1] = patch
    return np.clip(out, 0, 255).astype(np.uint8), (y0, y1, x0, x1)


def test_a_covered_mouth_is_held_and_noted(astronaut, caplog):
    img, lm = astronaut
    hidden, _ = _covered(img, lm)
    renderer = PortraitRenderer()
    visible = renderer.prepare(img, lm, size=256)
    assert not visible.mouth_covered  # the astronaut's own lips show
    with caplog.at_level(logging.INFO, logger="affectstudio.notes"):
        state = renderer.prepare(hidden, lm, size=256)
    assert state.mouth_covered
    assert any("mouth is covered" in r.getMessage() for r in caplog.records)
    codec = state.codec
    ref = state.reference_motion
    speech = ref.clone()[None].repeat(2, 1)
    speech[:, codec.index("jaw_open")] = 0.6
    speech[:, codec.index("lips_part")] = 0.2
    speech[1, codec.index("AU12")] = 1.0
    speech[1, codec.index("AU1")] = speech[1, codec.index("AU2")] = 0.8  # brows still move
    q = state.reference_landmarks[:, :2].numpy()  # output pixels
    lips = q[[61, 291, 0, 17]]
    y0, y1 = int(lips[:, 1].min()), int(lips[:, 1].max())
    x0, x1 = int(lips[:, 0].min()), int(lips[:, 0].max())
    frames = renderer.render(state, motion=speech).astype(np.float32)
    rest = renderer.render(state, motion=ref[None]).astype(np.float32)[0]
    # the occluder stays as the photo shows it: no dark mouth interior, no lips drawn on it
    occ = (slice(y0, y1), slice(x0, x1))
    assert np.abs(frames[:, occ[0], occ[1]] - rest[occ]).mean() < 3.0
    assert frames[:, occ[0], occ[1]].mean(-1).min() > 0.6 * rest[occ].mean(-1).min()
    # the brows moved (the rest of the face is animated)
    brow = q[[105, 334]].mean(0).astype(int)
    band = (slice(brow[1] - 15, brow[1] + 10), slice(brow[0] - 40, brow[0] + 40))
    assert np.abs(frames[1][band] - rest[band]).mean() > 3.0
    # the same motion on the visible mouth opens it (the hold is the covered photo's alone)
    shown = renderer.render(visible, motion=speech[:1]).astype(np.float32)[0]
    still = renderer.render(visible, motion=visible.reference_motion[None]).astype(np.float32)[0]
    assert np.abs(shown[occ] - still[occ]).mean() > 10.0
    # the lips' landmarks stay where the photo has them (only the brows differ between the two frames)
    held = renderer.target_landmarks(state, speech).numpy()
    lip_points = [61, 291, 0, 17, 13, 14]
    assert np.abs(held[:, lip_points, :2] - q[lip_points]).max() < 1.0


def test_hold_mouth_keeps_the_photos_lip_channels():
    from affectstudio.models.portrait.channels import MOTION_DIM, hold_mouth

    ref = torch.linspace(0, 1, MOTION_DIM)
    motion = torch.zeros(3, MOTION_DIM) - 1
    held = hold_mouth(motion, ref)
    for name in MOUTH_CHANNELS:
        assert torch.all(held[:, channel_index(name)] == ref[channel_index(name)])
    assert torch.all(held[:, channel_index("AU1")] == -1) and torch.all(held[:, channel_index("yaw")] == -1)


def _thickness(lm):
    """Upper (0 -> 13) and lower (14 -> 17) lip heights in pixels, (..., 2)."""
    return np.stack([lm[..., 13, 1] - lm[..., 0, 1], lm[..., 17, 1] - lm[..., 14, 1]], -1)


def test_the_reference_motion_keeps_the_photos_lips_and_openings_do_not_inflate_them(astronaut):
    # the astronaut's open smile makes the codec's rest lips overlap: the overlap correction must not thin or
    # thicken the photo's own lips at the reference motion, and openings must not swell them
    img, lm = astronaut
    renderer = PortraitRenderer()
    state = renderer.prepare(img, lm, size=256)
    photo = _thickness(state.reference_landmarks.numpy())
    ref = state.reference_motion
    at_ref = _thickness(renderer.target_landmarks(state, ref[None]).numpy()[0])
    assert np.allclose(at_ref, photo, rtol=0.1), (at_ref, photo)
    sweep = ref[None].repeat(6, 1)
    sweep[:, :-3] = 0  # the pose kept, expression from neutral ...
    sweep[:, state.codec.index("jaw_open")] = torch.linspace(0, 0.6, 6)  # ... to a wide opening
    sweep[:, state.codec.index("lips_part")] = torch.linspace(0, 0.15, 6)
    opened = _thickness(renderer.target_landmarks(state, sweep).numpy())
    assert (opened <= 1.25 * photo + 0.5).all(), (opened, photo)
