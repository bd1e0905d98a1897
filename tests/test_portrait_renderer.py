"""MotionCodec + PortraitRenderer on a small real portrait (skimage astronaut, landmarks from mediapipe)."""

import json

import numpy as np
import pytest
import torch

from affectstudio.conditioning.face import KEYPOINTS
from affectstudio.models.portrait import (
    EXPRESSION_CHANNELS,
    LIPS_LOWER_INNER,
    LIPS_UPPER_INNER,
    MOTION_CHANNELS,
    MOTION_DIM,
    MotionCodec,
    PortraitRenderer,
)

K = KEYPOINTS
LIP_MID = [K["upper_lip_inner"], K["lower_lip_inner"]]
CORNERS = [K["mouth_corner_r"], K["mouth_corner_l"]]

mp = pytest.importorskip("mediapipe")
skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def portrait():
    img = skdata.astronaut()[20:276, 96:352]  # 256 x 256 around the face
    fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)
    res = fm.process(np.ascontiguousarray(img))
    fm.close()
    assert res.multi_face_landmarks, "mediapipe found no face in the test portrait"
    h, w = img.shape[:2]
    lm = np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark], np.float32)
    return img, lm


@pytest.fixture(scope="module")
def prepared(portrait):
    img, lm = portrait
    renderer = PortraitRenderer()
    return renderer, renderer.prepare(img, lm, size=128)


def _motion(codec, **named):
    return codec.from_named(named)


def test_channels_are_named_and_aliased():
    codec = MotionCodec()
    assert codec.dim == MOTION_DIM == len(MOTION_CHANNELS)
    m = codec.from_named({"AU26": 0.5, "AU14": 0.2, "AU43": 1.0})
    assert m[codec.index("jaw_open")] == 0.5 and m[codec.index("blink")] == 1.0
    assert m[codec.index("AU14L")] == pytest.approx(0.2) and m[codec.index("AU14R")] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        codec.from_named({"AU99": 1.0})


def test_decode_fit_round_trip(portrait):
    _, lm = portrait
    codec = MotionCodec()
    neutral, _ = codec.estimate_neutral(lm)
    g = torch.Generator().manual_seed(0)
    m = torch.rand(6, MOTION_DIM, generator=g) * 0.8
    e = len(EXPRESSION_CHANNELS)
    m[:, e - 2 : e] = torch.rand(6, 2, generator=g) * 2 - 1  # gaze
    m[:, e:] = (torch.rand(6, 3, generator=g) - 0.5) * 0.4  # pose, radians
    lms = codec.decode(m, neutral)
    assert lms.shape == (6, 478, 3)
    fitted = codec.fit(lms, neutral)
    assert torch.allclose(fitted, m, atol=5e-3), (fitted - m).abs().max()


def test_estimate_neutral_removes_the_smile(portrait):
    _, lm = portrait
    codec = MotionCodec()
    neutral, ref_motion = codec.estimate_neutral(lm)
    assert ref_motion[codec.index("AU12")] > 0.5  # the astronaut smiles
    # decode(reference_motion, neutral) reproduces the photo
    rec = codec.decode(ref_motion, neutral)
    assert (rec - torch.from_numpy(lm))[:, :2].norm(dim=-1).mean() < 0.5
    lift = lambda p: float(p[LIP_MID, 1].mean() - p[CORNERS, 1].mean())  # noqa: E731
    assert lift(neutral) < lift(torch.from_numpy(lm)) - 2.0
    gap = lambda p: float(p[K["lower_lip_inner"], 1] - p[K["upper_lip_inner"], 1])  # noqa: E731
    assert gap(neutral) < 0.5 < gap(torch.from_numpy(lm))


def test_jaw_open_increases_mouth_gap_and_darkens_mouth(prepared):
    renderer, state = prepared
    codec = renderer.codec
    motion = torch.stack([_motion(codec, jaw_open=v) for v in (0.0, 0.5, 1.0)])
    q = renderer.target_landmarks(state, motion)
    gaps = q[:, LIPS_LOWER_INNER[3:-3], 1].mean(1) - q[:, LIPS_UPPER_INNER[3:-3], 1].mean(1)
    assert gaps[0] < gaps[1] < gaps[2]
    frames = renderer.render(state, motion=motion).astype(np.float32)
    # region between the lips of the widest opening
    y0 = int(q[2, LIPS_UPPER_INNER[3:-3], 1].max()) + 1
    y1 = int(q[2, LIPS_LOWER_INNER[3:-3], 1].min()) - 1
    x0, x1 = int(q[2, LIPS_UPPER_INNER[4], 0]), int(q[2, LIPS_UPPER_INNER[-5], 0])
    assert y1 > y0 and x1 > x0
    lum = frames[:, y0:y1, x0:x1].mean(axis=(1, 2, 3))
    assert lum[2] < lum[0] - 20, lum


def test_zero_motion_reproduces_the_crop(prepared):
    renderer, state = prepared
    out = renderer.render(state, landmarks=state.reference_landmarks[None])
    crop = (state.image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    err = np.abs(out[0].astype(np.int16) - crop.astype(np.int16))
    assert err.mean() < 1.5, err.mean()
    # the reference motion through the codec is the same picture
    out2 = renderer.render(state, motion=state.reference_motion[None])
    assert np.abs(out2[0].astype(np.int16) - crop.astype(np.int16)).mean() < 1.5


def test_background_still_under_jaw_motion(prepared):
    renderer, state = prepared
    codec = renderer.codec
    motion = torch.stack([state.reference_motion, _motion(codec, jaw_open=1.0, AU12=0.5)])
    frames = renderer.render(state, motion=motion).astype(np.int16)
    s = state.size
    far = np.zeros((s, s), bool)
    far[: s // 8] = True  # top rows and side columns are hair/background far from the jaw
    far[:, : s // 10] = True
    far[:, -s // 10 :] = True
    assert np.abs(frames[1] - frames[0])[far].max() <= 2
    # ... while the mouth region changes
    assert np.abs(frames[1] - frames[0]).max() > 40


@pytest.mark.parametrize("size", [256, 512, 0])
def test_output_shapes(portrait, size):
    img, lm = portrait
    renderer = PortraitRenderer()
    state = renderer.prepare(img, lm, size=size)
    out = renderer.render(state, motion=torch.zeros(2, MOTION_DIM))
    side = state.size if size == 0 else size
    assert out.dtype == np.uint8 and out.shape == (2, side, side, 3)
    if size == 0:
        assert side == int(state.crop_box[2])


def test_batch_matches_single(prepared):
    renderer, state = prepared
    codec = renderer.codec
    motion = torch.stack(
        [_motion(codec, jaw_open=0.6), _motion(codec, blink=1.0, yaw=0.15), _motion(codec, AU4=1.0, AU15=1.0)]
    )
    batch = renderer.render(state, motion=motion)
    for i in range(3):
        single = renderer.render(state, motion=motion[i : i + 1])
        assert np.abs(batch[i].astype(np.int16) - single[0].astype(np.int16)).max() <= 1


def test_blink_closes_the_eyes(prepared):
    renderer, state = prepared
    q = renderer.target_landmarks(state, torch.stack([_motion(renderer.codec), _motion(renderer.codec, blink=1.0)]))
    opening = q[:, K["lower_lid_r"], 1] - q[:, K["upper_lid_r"], 1]
    assert opening[1] < 0.3 * opening[0]


def test_save_load_round_trip(prepared, tmp_path):
    renderer, state = prepared
    renderer.save_pretrained(tmp_path / "renderer")
    loaded = PortraitRenderer.from_pretrained(tmp_path / "renderer")
    public = lambda cfg: json.loads(json.dumps({k: v for k, v in cfg.items() if not k.startswith("_")}))  # noqa: E731
    assert public(loaded.config) == public(renderer.config)
    motion = _motion(renderer.codec, jaw_open=0.4)[None]
    assert np.array_equal(loaded.render(state, motion=motion), renderer.render(state, motion=motion))
    codec = MotionCodec(head_center=(0.0, 0.6, 1.2))
    codec.save_pretrained(tmp_path / "codec")
    assert list(MotionCodec.from_pretrained(tmp_path / "codec").config.head_center) == [0.0, 0.6, 1.2]


def test_prepare_uses_the_codec_it_is_given(portrait):
    """The pipeline's saved codec (its config) is the one that decodes motion, not a default built inside."""
    img, lm = portrait
    renderer = PortraitRenderer()
    custom = MotionCodec(head_center=(0.0, 0.2, 0.4))
    state = renderer.prepare(img, lm, size=128, codec=custom)
    assert state.codec is custom and renderer.prepare(img, lm, size=128).codec is renderer.codec
    yaw = _motion(custom, yaw=0.3)[None]
    default = renderer.prepare(img, lm, size=128)
    moved = renderer.target_landmarks(state, yaw) - renderer.target_landmarks(default, yaw)
    assert moved[:, :, :2].abs().max() > 1.0  # another head centre: another head rotation


def test_pipeline_hands_its_codec_to_the_renderer(portrait, monkeypatch):
    from affectstudio.conditioning.speech_features import FEATURE_DIM
    from affectstudio.models.dit import AffectDiT
    from affectstudio.models.flow import make_scheduler
    from affectstudio.models.portrait import GENERATED_CHANNELS
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    img, _ = portrait
    dit = AffectDiT(
        in_channels=len(GENERATED_CHANNELS),
        content_streams={"audio": FEATURE_DIM},
        hidden_size=32,
        depth=1,
        num_heads=2,
    )
    codec = MotionCodec(head_center=(0.0, 0.6, 1.2))
    pipe = TalkingPortraitPipeline(dit, make_scheduler(), codec, PortraitRenderer())
    seen = {}
    prepare = pipe.renderer.prepare

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(pipe.renderer, "prepare", spy)
    pipe.set_progress_bar_config(disable=True)
    silence = (np.zeros(8000, np.float32), 16000)
    out = pipe(
        image=img,
        audio=silence,
        emotion="neutral",
        num_inference_steps=1,
        size=256,
        paste_back=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert seen["codec"] is codec and seen["mode"] == "paste_back"
    assert out.frames.shape[1:] == img.shape  # the whole photo at its own size


def test_paste_back_keeps_the_photo_and_its_size(portrait):
    img, lm = portrait
    renderer = PortraitRenderer()
    state = renderer.prepare(img, lm, size=0, mode="paste_back")
    assert state.frame_size == img.shape[:2]
    rest = renderer.render(state, motion=state.reference_motion[None])[0]
    assert rest.shape == img.shape and np.abs(rest.astype(float) - img).mean() < 1.5
    with pytest.raises(ValueError):
        renderer.prepare(img, lm, mode="full")


def test_saved_module_path_is_stable():
    """model_index.json names ``affectstudio.models.portrait`` (saved checkpoints keep loading)."""
    from diffusers.pipelines.pipeline_loading_utils import _fetch_class_library_tuple

    assert _fetch_class_library_tuple(MotionCodec()) == ("affectstudio.models.portrait", "MotionCodec")
    assert _fetch_class_library_tuple(PortraitRenderer()) == ("affectstudio.models.portrait", "PortraitRenderer")
