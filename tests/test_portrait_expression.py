"""Expression cues of the portrait renderer on a real photo (skimage astronaut): prototype actions coupled, the
shading layers placed where FACS puts them, a smile beyond the photo's parts the lips, sadness lowers lids and
gaze, identity-bearing points kept."""

import numpy as np
import pytest
import torch

from affectstudio.conditioning.face import KEYPOINTS
from affectstudio.models.portrait import PortraitRenderer, channel_index
from affectstudio.models.portrait.geometry import FaceFrame
from affectstudio.models.portrait.textures import FURROWS, SMILE

mp = pytest.importorskip("mediapipe")
skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def prepared():
    img = skdata.astronaut()[20:276, 96:352]
    fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)
    res = fm.process(np.ascontiguousarray(img))
    fm.close()
    h, w = img.shape[:2]
    lm = np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark], np.float32)
    renderer = PortraitRenderer()
    return renderer, renderer.prepare(img, lm, size=128)


def _named(codec, **kw):
    return codec.from_named(kw)[None]


def test_surprise_drops_the_jaw_only_with_brows_and_lids_together(prepared):
    renderer, state = prepared
    codec, jaw = renderer.codec, channel_index("jaw_open")
    zero = torch.zeros_like(state.reference_motion)  # a neutral reference: coupling measured from zero
    both = renderer.couple_actions(_named(codec, AU2=0.8, AU5=0.6), zero)
    lids = renderer.couple_actions(_named(codec, AU5=0.6), zero)
    assert float(both[0, jaw]) == pytest.approx(0.6 * renderer.config.surprise_jaw)
    assert float(lids[0, jaw]) == 0.0
    # the mouth of surprise is rounded and unspread (an "o", not a grin)
    spoken = renderer.couple_actions(_named(codec, AU2=0.8, AU5=0.6, lip_spread=0.5), zero)
    assert float(spoken[0, channel_index("lip_round")]) == pytest.approx(0.6 * renderer.config.surprise_round)
    assert float(spoken[0, channel_index("lip_spread")]) == pytest.approx(0.5 * 0.4)
    pressed = renderer.couple_actions(_named(codec, AU23=1.0), zero)
    assert float(pressed[0, channel_index("lip_press")]) == pytest.approx(renderer.config.anger_press)


def test_sadness_lowers_lids_and_gaze_only_with_brows_and_corners_together(prepared):
    renderer, state = prepared
    codec = renderer.codec
    zero = torch.zeros_like(state.reference_motion)
    sad = renderer.couple_actions(_named(codec, AU1=1.0, AU15=0.5), zero)
    brows = renderer.couple_actions(_named(codec, AU1=1.0), zero)  # a raised inner brow alone (speech emphasis)
    assert float(sad[0, channel_index("blink")]) == pytest.approx(0.5 * renderer.config.sad_lids)
    assert float(sad[0, channel_index("gaze_y")]) == pytest.approx(0.5 * renderer.config.sad_gaze)
    assert float(brows[0, channel_index("blink")]) == 0.0 and float(brows[0, channel_index("gaze_y")]) == 0.0
    # the oblique brow: AU4 with AU1 lowers less than a frown (AU4 alone)
    oblique = renderer.couple_actions(_named(codec, AU1=1.0, AU4=0.6), zero)[0, channel_index("AU4")]
    frown = renderer.couple_actions(_named(codec, AU4=0.6), zero)[0, channel_index("AU4")]
    assert float(oblique) == pytest.approx(0.6 * (1 - renderer.config.brow_relief))
    assert float(frown) == pytest.approx(0.6)


def test_a_smile_parts_the_lips_only_beyond_the_photos_own(prepared):
    renderer, _ = prepared
    codec, part = renderer.codec, channel_index("lips_part")
    smiling_photo = _named(codec, AU12=0.6)[0]
    frowning_photo = _named(codec, AU12=-0.3)[0]
    # speech without a smile on a photo whose corners sit low: no parting (lips close in pauses)
    assert float(renderer.couple_actions(_named(codec, AU12=0.0), frowning_photo)[0, part]) == 0.0
    assert float(renderer.couple_actions(_named(codec, AU12=0.6), smiling_photo)[0, part]) == 0.0
    wider = renderer.couple_actions(_named(codec, AU12=1.0), smiling_photo)[0, part]
    assert float(wider) == pytest.approx(0.4 * renderer.config.smile_part)


def test_the_reference_motion_still_renders_the_photo(prepared):
    renderer, state = prepared
    out = renderer.render(state, motion=state.reference_motion[None])[0].astype(np.int16)
    crop = (state.image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.int16)
    assert np.abs(out - crop).mean() < 1.5


def test_shading_layers_sit_where_facs_puts_them(prepared):
    _, state = prepared
    frame = FaceFrame.from_landmarks(state.reference_landmarks)
    s = state.size
    r = torch.arange(s, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    g = frame.to_norm(torch.stack([xx, yy, torch.zeros_like(xx)], -1).view(-1, 3))
    y = g[:, 1].view(s, s)
    frown, smile = state.stack[0, FURROWS][0], state.stack[0, SMILE][0]
    # AU4 shading above the eyes, none on the lower face; smile shading below the eyes (crease dark, cheeks lit)
    assert float(frown[y < 0].max()) > 0.5 and float(frown[y > 0.4].max()) < 0.05
    assert float(smile.min()) < -0.5 and float(smile[y < 0.2].abs().max()) < 0.05
    assert float(smile.max()) > 0.2


def test_smile_beyond_the_photo_parts_the_lips_and_keeps_the_eye_corners(prepared):
    renderer, state = prepared
    up, lo = KEYPOINTS["upper_lip_inner"], KEYPOINTS["lower_lip_inner"]
    ref = state.reference_motion.clone()
    smile = ref.clone()
    smile[channel_index("AU12")] = ref[channel_index("AU12")] + 0.8
    q = renderer.target_landmarks(state, torch.stack([ref, smile]))
    gap = q[:, lo, 1] - q[:, up, 1]
    assert float(gap[1] - gap[0]) > 0.03 * state.iod
    corners = [KEYPOINTS[k] for k in ("eye_outer_r", "eye_outer_l") if k in KEYPOINTS]
    if corners:
        assert float((q[1, corners, :2] - q[0, corners, :2]).norm(dim=-1).max()) < 0.02 * state.iod
