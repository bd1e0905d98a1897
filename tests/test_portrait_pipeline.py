"""TalkingPortraitPipeline in the spirit of diffusers' PipelineTesterMixin: tiny seeded components, CPU."""

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("mediapipe")

from affectstudio.conditioning.emotion import EmotionEmbedding  # noqa: E402
from affectstudio.conditioning.espeak import SPEECH_SAMPLE_RATE  # noqa: E402
from affectstudio.conditioning.speech_features import FEATURE_DIM  # noqa: E402
from affectstudio.errors import InputError, InputTooLongError, MediaDecodeError, NoFaceError  # noqa: E402
from affectstudio.models.dit import AffectDiT  # noqa: E402
from affectstudio.models.flow import make_scheduler  # noqa: E402
from affectstudio.models.portrait import MOTION_CHANNELS, MotionCodec, PortraitRenderer  # noqa: E402
from affectstudio.pipelines.portrait import TalkingPortraitPipeline  # noqa: E402
from affectstudio.video_io import probe_video  # noqa: E402

CHANNELS = [c for c in MOTION_CHANNELS if c not in ("blink", "gaze_x", "gaze_y")]


@pytest.fixture(scope="module")
def face_image():
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((224, 224)))  # face 41 px across (40 needed)


@pytest.fixture(scope="module")
def speech():
    t = np.arange(int(1.2 * SPEECH_SAMPLE_RATE)) / SPEECH_SAMPLE_RATE
    syllables = (np.sin(2 * np.pi * 4 * t) > 0).astype(np.float32)  # 4 Hz on/off "syllables"
    return (0.3 * syllables * np.sin(2 * np.pi * 180 * t)).astype(np.float32), SPEECH_SAMPLE_RATE


def tiny_pipeline(seed=0, **config):
    torch.manual_seed(seed)
    dit = AffectDiT(
        in_channels=len(CHANNELS), content_streams={"audio": FEATURE_DIM}, hidden_size=32, depth=1, num_heads=2
    )
    for p in dit.parameters():  # leave adaLN-Zero's zero init so the output depends on the inputs
        torch.nn.init.normal_(p, std=0.05)
    std = [0.3] * len(CHANNELS)
    return TalkingPortraitPipeline(
        dit,
        make_scheduler(),
        MotionCodec(),
        PortraitRenderer(),
        motion_channels=CHANNELS,
        motion_mean=[0.0] * len(CHANNELS),
        motion_std=std,
        **config,
    )


def call(pipe, image, audio, seed=0, **kw):
    pipe.set_progress_bar_config(disable=True)
    kw.setdefault("emotion", "happy")
    kw.setdefault("size", 0)
    kw.setdefault("num_inference_steps", 2)
    return pipe(image=image, audio=audio, generator=torch.Generator("cpu").manual_seed(seed), **kw)


def test_output_shapes_and_determinism(face_image, speech):
    pipe = tiny_pipeline()
    a = call(pipe, face_image, speech)
    b = call(pipe, face_image, speech)
    n = int(np.ceil(1.2 * 25))
    assert a.frames.dtype == np.uint8 and a.frames.shape[0] == n and a.frames.shape[-1] == 3
    assert a.motion.shape == (n, len(MOTION_CHANNELS)) and a.fps == 25.0
    assert np.array_equal(a.motion, b.motion) and np.array_equal(a.frames, b.frames)
    c = call(pipe, face_image, speech, seed=1)
    assert not np.allclose(a.motion, c.motion)


def test_save_load_equality(tmp_path, face_image, speech):
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = TalkingPortraitPipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.config.motion_channels == CHANNELS
    a, b = call(pipe, face_image, speech), call(loaded, face_image, speech)
    assert np.allclose(a.motion, b.motion, atol=1e-5)


def test_dict_and_tuple_outputs(face_image, speech):
    pipe = tiny_pipeline()
    out = call(pipe, face_image, speech)
    frames, audio = call(pipe, face_image, speech, return_dict=False)
    assert np.array_equal(out.frames, frames) and np.array_equal(out.audio, audio)


def test_batch_of_emotions_matches_single_runs(face_image, speech):
    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    gens = [torch.Generator("cpu").manual_seed(s) for s in (3, 4)]
    batch = pipe(
        image=face_image, audio=speech, emotion=["happy", "sad"], size=0, num_inference_steps=2, generator=gens
    )
    assert batch.frames.shape[0] == 2
    for i, (emo, seed) in enumerate([("happy", 3), ("sad", 4)]):
        single = call(pipe, face_image, speech, seed=seed, emotion=emo)
        assert np.allclose(batch.motion[i], single.motion, atol=1e-5)


def test_callback_sees_every_step_and_can_edit_latents(face_image, speech):
    pipe = tiny_pipeline()
    seen = []

    def cb(p, i, t, kwargs):
        assert p is pipe
        seen.append(i)
        return {"latents": torch.zeros_like(kwargs["latents"])}

    out = call(
        pipe,
        face_image,
        speech,
        num_inference_steps=3,
        callback_on_step_end=cb,
        emotion_guidance_scale=1.0,
        audio_guidance_scale=1.0,
        pose_scale=1.0,
    )
    assert seen == [0, 1, 2]
    idx = [MOTION_CHANNELS.index(c) for c in CHANNELS]
    assert np.allclose(out.motion[:, idx], 0.0, atol=1e-6)  # zero latents → the mean motion (0 here)


def test_windows_cover_long_audio(face_image, speech):
    pipe = tiny_pipeline(window=12, overlap=4)
    out = call(pipe, face_image, speech)
    assert out.motion.shape[0] == 30 and np.isfinite(out.motion).all()


def test_streams_to_mp4_with_audio(tmp_path, face_image, speech):
    pipe = tiny_pipeline()
    path = tmp_path / "clip.mp4"
    out = call(pipe, face_image, speech, output_path=path, output_type="none")
    assert out.frames is None and out.output_path == path
    info = probe_video(path)
    assert info.num_frames == 30 and info.has_audio and abs(info.duration - 1.2) < 0.05


def test_idle_motion_controls(face_image, speech):
    pipe = tiny_pipeline()
    still = call(pipe, face_image, speech, pose_scale=0.0, blink_rate=0.0)
    pose = [MOTION_CHANNELS.index(c) for c in ("yaw", "pitch", "roll")]
    assert np.allclose(still.motion[:, pose], 0) and np.allclose(still.motion[:, MOTION_CHANNELS.index("blink")], 0)
    blinks = pipe.idle_motion(25 * 60, blink_rate=20.0, generator=torch.Generator().manual_seed(0))[:, 0]
    onsets = int(((blinks[1:] > 0.5) & (blinks[:-1] <= 0.5)).sum())
    assert 10 <= onsets <= 32  # ~20 per minute


def test_emotion_curve_and_embedding_inputs(face_image, speech):
    pipe = tiny_pipeline()
    curve = EmotionEmbedding.curve([EmotionEmbedding.from_label("sad"), EmotionEmbedding.from_label("happy")], 10)
    out = call(pipe, face_image, speech, emotion=curve)
    assert out.emotion.is_curve


def test_bad_inputs(tmp_path, face_image, speech):
    pipe = tiny_pipeline(max_audio_seconds=1.0)
    with pytest.raises(NoFaceError):
        call(pipe, np.full((128, 128, 3), 127, np.uint8), speech)
    with pytest.raises(InputTooLongError):
        call(pipe, face_image, speech)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEnot really")
    with pytest.raises(MediaDecodeError):
        call(tiny_pipeline(), face_image, bad)
    with pytest.raises(InputError):
        call(pipe, face_image, speech, size=300)
    with pytest.raises(InputError):
        pipe(image=face_image)  # neither audio nor text
    for strength in (-0.1, 1.5):
        with pytest.raises(InputError, match="lip_sync_strength"):
            call(pipe, face_image, speech, lip_sync_strength=strength)
    assert not list(tmp_path.glob("*.mp4"))


def test_silent_audio_is_valid(face_image):
    pipe = tiny_pipeline()
    out = call(pipe, face_image, (np.zeros(SPEECH_SAMPLE_RATE, np.float32), SPEECH_SAMPLE_RATE), emotion=None)
    assert out.emotion.label == "neutral" and out.frames.shape[0] == 25


def test_jaw_follows_the_speech_loudness(face_image, speech):
    """``lip_sync_strength`` draws the sampled jaw toward the speech's loudness (0: the DiT's jaw untouched)."""
    from affectstudio.conditioning.speech_features import speech_loudness

    jaw = MOTION_CHANNELS.index("jaw_open")
    pipe = tiny_pipeline()
    free = call(pipe, face_image, speech, lip_sync_strength=0.0).motion
    synced = call(pipe, face_image, speech).motion
    loud = speech_loudness(*speech, fps=25.0)
    assert np.corrcoef(synced[:, jaw], loud)[0, 1] > max(0.6, np.corrcoef(free[:, jaw], loud)[0, 1] + 0.2)
    others = [i for i in range(len(MOTION_CHANNELS)) if MOTION_CHANNELS[i] not in ("jaw_open", "lip_press")]
    np.testing.assert_array_equal(synced[:, others], free[:, others])


def test_built_with_default_arguments(face_image, speech):
    """motion_channels / mean / std omitted: the DiT's channels in MOTION_CHANNELS order (idle ones excluded)."""
    torch.manual_seed(0)
    dit = AffectDiT(in_channels=5, content_streams={"audio": FEATURE_DIM}, hidden_size=32, depth=1, num_heads=2)
    pipe = TalkingPortraitPipeline(dit, make_scheduler(), MotionCodec(), PortraitRenderer())
    assert pipe.config.motion_channels == CHANNELS[:5] and pipe.config.motion_std == [1.0] * 5
    out = call(pipe, face_image, speech)
    assert out.motion.shape == (30, len(MOTION_CHANNELS))


def test_keyframe_curve_spec_turns_the_emotion_over_the_clip(face_image, speech):
    out = call(tiny_pipeline(), face_image, speech, emotion="neutral@0; angry@1.0")
    labels = out.emotion.label
    assert out.emotion.is_curve and len(labels) == 30
    assert labels[0] == "neutral" and labels[-1] == "angry"


def test_text_input_speaks_the_script(face_image):
    out = call(tiny_pipeline(), face_image, None, text="Hello there.", emotion="sad")
    assert out.audio.size / out.sample_rate > 0.4 and out.frames.shape[0] == out.motion.shape[0]
    assert abs(out.frames.shape[0] / 25.0 - out.audio.size / out.sample_rate) < 0.1


def test_callback_counts_steps_across_windows(face_image, speech):
    pipe = tiny_pipeline(window=12, overlap=4)
    seen = []

    def cb(p, i, t, kwargs):
        seen.append((i, kwargs["window_index"]))
        return {}

    call(pipe, face_image, speech, num_inference_steps=2, callback_on_step_end=cb)
    windows = max(w for _, w in seen) + 1
    assert windows > 1 and [i for i, _ in seen] == list(range(2 * windows))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_on_cpu(face_image, speech, dtype):
    pipe = tiny_pipeline().to(dtype=dtype)
    assert pipe.dit.dtype == dtype
    out = call(pipe, face_image, speech)
    ref = call(tiny_pipeline(), face_image, speech)
    assert np.isfinite(out.motion).all() and np.abs(out.motion - ref.motion).mean() < 0.1


@pytest.mark.slow
def test_bundled_pipeline_loads_offline_with_default_arguments(face_image, speech):
    pipe = TalkingPortraitPipeline.from_pretrained()
    assert pipe.dit.config.content_streams == {"audio": FEATURE_DIM}
    out = call(pipe, face_image, speech, size=256)
    assert out.frames.shape[1:] == (256, 256, 3)


def test_gaze_held_on_camera(face_image, speech):
    pipe = tiny_pipeline()
    gaze = [MOTION_CHANNELS.index(c) for c in ("gaze_x", "gaze_y")]
    natural = call(pipe, face_image, speech, gaze="natural")
    camera = call(pipe, face_image, speech, gaze="camera")
    assert np.abs(natural.motion[:, gaze]).max() > 0 and np.allclose(camera.motion[:, gaze], 0)
    with pytest.raises(InputError, match="gaze"):
        call(pipe, face_image, speech, gaze="left")


def test_wide_photo_is_pasted_back_by_default(face_image, speech):
    wide = np.concatenate([np.full((224, 96, 3), 90, np.uint8), face_image, np.full((224, 96, 3), 160, np.uint8)], 1)
    pipe = tiny_pipeline()
    out = call(pipe, wide, speech, size=256)
    assert out.frames.shape[1:] == wide.shape  # the whole photo, its own size and aspect
    cropped = call(pipe, wide, speech, size=256, paste_back=False)
    assert cropped.frames.shape[1:] == (256, 256, 3)
    assert call(pipe, face_image, speech, size=256).frames.shape[1:] == (256, 256, 3)  # square: the crop


def test_enable_compile_wraps_the_dit(face_image, speech):
    """The torch.compile flag (backend "eager" here: the wiring, not inductor's minutes of compiling on a CPU)."""
    pipe = tiny_pipeline()
    ref = call(pipe, face_image, speech)
    pipe.enable_compile(backend="eager")
    assert pipe.dit._compiled_call_impl is not None
    np.testing.assert_allclose(call(pipe, face_image, speech).motion, ref.motion, atol=1e-5)
