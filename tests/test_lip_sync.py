"""Lip sync of the talking portrait (issue 15): the speech-loudness articulation target and the pipeline's blend of
``jaw_open`` toward it (``lip_sync_strength``); end to end, the rendered mouth measured as
``apps/evaluation/quality.py`` does (slow, needs dlib)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from affectstudio.conditioning.speech_features import speech_loudness
from affectstudio.errors import InputError

SR = 16000


def syllables(seconds=2.0, rate=4.0, gain=0.3, pause=(0.8, 1.2)):
    """A 180 Hz voice switched on and off at ``rate`` Hz with a silent ``pause`` (s)."""
    t = np.arange(int(seconds * SR)) / SR
    on = (np.sin(2 * np.pi * rate * t) > 0) & ~((t >= pause[0]) & (t < pause[1]))
    noise = 1e-4 * np.random.default_rng(0).standard_normal(t.size)
    return (gain * on * np.sin(2 * np.pi * 180 * t) + noise).astype(np.float32)


def test_loudness_follows_the_syllables_and_is_zero_in_pauses():
    wave = syllables()
    loud = speech_loudness(wave, SR)
    assert loud.shape == (50,) and loud.dtype == np.float32
    assert 0.0 <= loud.min() and loud.max() <= 1.0
    assert (loud[22:28] == 0).all()  # the pause 0.88-1.12 s (frames away from its edges)
    on = np.array([np.sin(2 * np.pi * 4 * (i + 0.5) / 25) > 0.5 for i in range(50)])
    assert loud[on & (loud > 0)].mean() > 0.8 > loud[~on].mean()


def test_loudness_ignores_the_recordings_gain_and_silence_is_zero():
    wave = syllables()
    np.testing.assert_allclose(speech_loudness(wave, SR), speech_loudness(0.1 * wave, SR), atol=0.02)
    assert not speech_loudness(np.zeros(SR, np.float32), SR).any()
    with pytest.raises(InputError):
        speech_loudness(wave, SR, range_db=0)


class _Config:
    fps = 25.0


class _Pipe:
    """Just what ``TalkingPortraitPipeline.lip_sync`` reads: ``config.fps``."""

    config = _Config()


def lip_sync(motion, wave, strength):
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    return TalkingPortraitPipeline.lip_sync(_Pipe(), motion, wave, SR, strength)  # type: ignore[arg-type]


def test_lip_sync_opens_the_jaw_and_releases_the_press_with_the_speech():
    from affectstudio.models.portrait import MOTION_CHANNELS

    jaw_i, press_i = MOTION_CHANNELS.index("jaw_open"), MOTION_CHANNELS.index("lip_press")
    wave = syllables()
    loud = torch.from_numpy(speech_loudness(wave, SR))
    g = torch.Generator().manual_seed(0)
    motion = torch.rand(2, 50, len(MOTION_CHANNELS), generator=g) * 0.5  # a batch of two clips
    assert lip_sync(motion, wave, 0.0) is motion
    full = lip_sync(motion, wave, 1.0)
    half = lip_sync(motion, wave, 0.5)
    others = [i for i in range(len(MOTION_CHANNELS)) if i not in (jaw_i, press_i)]
    assert torch.equal(full[..., others], motion[..., others])
    for b in range(2):
        amp = torch.quantile(motion[b, loud > 0, jaw_i], 0.95)
        torch.testing.assert_close(full[b, :, jaw_i], amp * loud)  # the clip's own amplitude, the speech's timing
    torch.testing.assert_close(half[..., jaw_i], 0.5 * (motion[..., jaw_i] + full[..., jaw_i]))
    assert (full[:, loud == 0, jaw_i] == 0).all()  # closed in the pause
    # the press: kept where the speech is quiet, released in proportion to the loudness
    torch.testing.assert_close(full[:, loud == 0, press_i], motion[:, loud == 0, press_i])
    torch.testing.assert_close(half[..., press_i], motion[..., press_i] * (1 - 0.5 * loud))
    one = lip_sync(motion[0], wave, 1.0)  # (t, D) in, (t, D) out
    torch.testing.assert_close(one, full[0])


def test_lip_sync_on_silence_only_closes_the_jaw():
    from affectstudio.models.portrait import MOTION_CHANNELS

    jaw_i = MOTION_CHANNELS.index("jaw_open")
    motion = torch.full((25, len(MOTION_CHANNELS)), 0.2)
    out = lip_sync(motion, np.zeros(SR, np.float32), 0.65)
    torch.testing.assert_close(out[:, jaw_i], torch.full((25,), 0.2 * 0.35))
    others = [i for i in range(len(MOTION_CHANNELS)) if i != jaw_i]
    assert torch.equal(out[:, others], motion[:, others])


# ------------------------------------------------------------------------------------------------ end to end


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["portrait", "closeup_16x9"])
def test_rendered_lip_sync_reaches_the_target_end_to_end(framing):
    """The bundled pipeline on real speech, the rendered frames measured as quality.py does: dlib's inner-lip
    gap against the speech's RMS envelope ≥ 0.7, and a closed mouth in the pauses no wider than without the
    blend."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    from skimage import data

    from affectstudio.apps.evaluation.metrics import core_silence, inner_lip_gap, pearson, rms_envelope, silence_mask
    from affectstudio.apps.evaluation.quality_models import DlibFace
    from affectstudio.assets import asset_path
    from affectstudio.media import load_audio
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    wave, sr = load_audio(asset_path("samples") / "speech.wav")
    photo = data.astronaut()
    if framing == "closeup_16x9":
        sys.path.insert(0, str(Path(__file__).parent))  # the close-up of the framing tests (import-mode=importlib)
        from test_portrait_closeup import closeup_16x9

        photo = closeup_16x9(photo)
    pipe = TalkingPortraitPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    face = DlibFace()
    gaps = {}
    for strength in (0.0, None):
        kw = {} if strength is None else {"lip_sync_strength": strength}
        out = pipe(image=photo, audio=(wave, sr), emotion="neutral", generator=torch.Generator().manual_seed(0), **kw)
        found = face.analyse(out.frames, 10**9)
        assert found["found"].mean() > 0.95
        gaps[strength] = inner_lip_gap(found["landmarks"])
    env = rms_envelope(wave, sr, num_frames=len(gaps[None]))
    assert pearson(gaps[None], env) >= 0.7, pearson(gaps[None], env)
    assert pearson(gaps[None], env) > pearson(gaps[0.0], env) + 0.05
    core = core_silence(silence_mask(env))
    if core.sum() >= 5:
        assert np.nanmean(gaps[None][core]) <= np.nanmean(gaps[0.0][core]) + 0.005
