import math

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from affectstudio.conditioning.espeak import (  # noqa: E402
    SPEECH_SAMPLE_RATE,
    list_variants,
    list_voices,
    prosody_for,
    synthesize,
)
from affectstudio.conditioning.speech_features import (  # noqa: E402
    FEATURE_DIM,
    audio_features,
    augment,
    envelope,
    speech_activity,
)
from affectstudio.conditioning.visemes import PHONEME_VISEMES, VISEME_TARGETS, VISEMES, phoneme_to_viseme  # noqa: E402
from affectstudio.errors import EmptyTextError, InputError, UnknownEmotionError  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog. She measured the beige garage, didn't she?"


@pytest.fixture(scope="module")
def speech():
    return synthesize(TEXT)


def test_synthesize_wave_and_timings(speech):
    assert speech.sample_rate == SPEECH_SAMPLE_RATE
    assert speech.wave.dtype == np.float32 and speech.wave.ndim == 1
    assert 2.0 < speech.duration < 10.0
    assert np.abs(speech.wave).max() <= 1.0 and np.abs(speech.wave).max() > 0.05
    ph = speech.phonemes
    assert ph[0].start == 0.0 and math.isclose(ph[-1].end, speech.duration, abs_tol=1e-6)
    for a, b in zip(ph[:-1], ph[1:]):
        assert a.end == b.start and a.start < a.end  # contiguous, monotone, non-empty
    # the phoneme sequence of the first word "The" begins with D (espeak's voiced th)
    sounding = [p.symbol for p in ph if not p.symbol.startswith("_")]
    assert sounding[0] == "D"


def test_words(speech):
    words = [w for w, _, _ in speech.words]
    assert words == TEXT.replace(".", "").replace(",", "").replace("?", "").split()
    starts = [s for _, s, _ in speech.words]
    assert starts == sorted(starts)
    for _, s, e in speech.words:
        assert 0 <= s < e <= speech.duration


def test_phoneme_audio_alignment(speech):
    """Pauses are quiet and sounding phonemes are loud: the timings really refer to this audio."""
    env = envelope(speech.wave, speech.sample_rate, fps=100.0)
    loud, quiet = [], []
    for p in speech.phonemes:
        seg = env[int(p.start * 100) : max(int(p.start * 100) + 1, int(p.end * 100))]
        (quiet if p.symbol.startswith("_") else loud).append(seg.mean())
    assert np.median(loud) > 5 * np.median(quiet)


def test_rate_changes_duration():
    slow = synthesize("one two three four five six", rate_wpm=120)
    fast = synthesize("one two three four five six", rate_wpm=300)
    assert slow.duration > 1.5 * fast.duration


def test_errors_and_voices():
    with pytest.raises(EmptyTextError):
        synthesize("   ")
    with pytest.raises(InputError):
        synthesize("hello", voice="xx-nowhere")
    with pytest.raises(InputError):
        synthesize("hello", voice="en-us+nosuchvariant")
    voices, variants = list_voices(), list_variants()
    assert "en-us" in voices and "en-gb" in voices and "f3" in variants
    assert synthesize("hello", voice="en-gb+f3").duration > 0.2


def test_viseme_map_covers_every_phoneme_seen():
    text = (
        "Thank you, mother and father, for the bathing clothes. Fear, here, there, pure, cure, fire, hour. "
        "The pleasure of vision: azure, treasure, rouge. Button, bottle, little, writer, rider. Oh, joy!"
    )
    seen = set()
    for voice in ("en-us", "en-gb", "en-gb-scotland", "en-029"):
        seen |= {p.symbol for p in synthesize(text, voice=voice).phonemes}
    missing = sorted(s for s in seen if s not in PHONEME_VISEMES)
    assert not missing, missing
    assert set(VISEME_TARGETS) == set(VISEMES)
    for v, t in VISEME_TARGETS.items():
        assert len(t) == 4 and all(0.0 <= x <= 1.0 for x in t), v
    assert phoneme_to_viseme("p") == "PP" and phoneme_to_viseme("'aI") == "aa" and phoneme_to_viseme("_:") == "sil"
    assert VISEME_TARGETS["aa"][0] > VISEME_TARGETS["I"][0] > VISEME_TARGETS["PP"][0]


def test_audio_features_shape_and_alignment(speech):
    for fps in (25.0, 30.0):
        f = audio_features(speech.wave, speech.sample_rate, fps=fps)
        assert f.shape == (math.ceil(speech.duration * fps), FEATURE_DIM) and f.dtype == np.float32
        assert np.isfinite(f).all()
    f = audio_features(speech.wave, speech.sample_rate, fps=25.0)
    # energy column follows the envelope frame by frame (same frame grid)
    env = envelope(speech.wave, speech.sample_rate, fps=25.0)
    assert np.corrcoef(f[:, 80], 20 * np.log10(env + 1e-5))[0, 1] > 0.8
    # log-F0 is 0 exactly where unvoiced and espeak's default male voice sits near 100 Hz
    voiced = f[:, 82] > 0.5
    assert np.all(f[~voiced, 81] == 0) and voiced.mean() > 0.3
    f0 = 55 * 2 ** (4 * np.median(f[voiced, 81]))
    assert 70 < f0 < 160
    # a 220 Hz tone is tracked
    t = np.arange(24000) / 24000
    tone = audio_features((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 24000)
    assert tone[:, 82].mean() > 0.9 and abs(55 * 2 ** (4 * np.median(tone[:, 81])) - 220) < 5


def test_speech_activity():
    assert not speech_activity(np.zeros(48000, np.float32), 24000).any()
    g = np.random.default_rng(0)
    assert not speech_activity((1e-3 * g.standard_normal(48000)).astype(np.float32), 24000).any()
    s = synthesize("Hello there. How are you today?")
    pad = np.zeros(SPEECH_SAMPLE_RATE, np.float32)
    wave = np.concatenate([pad, s.wave, pad])
    act = speech_activity(wave, SPEECH_SAMPLE_RATE, fps=25.0)
    assert act.shape == (math.ceil(wave.size / SPEECH_SAMPLE_RATE * 25),)
    assert not act[:20].any() and not act[-20:].any() and act[25:-25].mean() > 0.5


def test_prosody_presets_order():
    sad, angry, neutral = prosody_for("sad", 1.0), prosody_for("angry", 1.0), prosody_for("neutral")
    assert sad.rate_wpm < neutral.rate_wpm < angry.rate_wpm
    assert sad.pitch_range < neutral.pitch_range < angry.pitch_range
    assert sad.volume < neutral.volume < angry.volume
    assert prosody_for("angry", 0.0) == neutral
    with pytest.raises(UnknownEmotionError):
        prosody_for("zorblax")


def test_augment_seeded(speech):
    a = augment(speech.wave, speech.sample_rate, np.random.default_rng(3))
    b = augment(speech.wave, speech.sample_rate, np.random.default_rng(3))
    c = augment(speech.wave, speech.sample_rate, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == speech.wave.shape and np.abs(a).max() <= 1.0


def test_audio_features_in_blocks_equal_one_block(monkeypatch):
    from affectstudio.conditioning import speech_features

    rng = np.random.default_rng(1)
    wave = (rng.standard_normal(16000 * 3) * 0.1).astype(np.float32)
    whole = speech_features.audio_features(wave, 16000)
    monkeypatch.setattr(speech_features, "_BLOCK_FRAMES", 7)  # 75 frames in 11 blocks
    np.testing.assert_allclose(speech_features.audio_features(wave, 16000), whole, atol=1e-5)  # BLAS blocking only


def test_one_emotion_prosody_table():
    """Issue 19: espeak-ng's presets and the dubbing voice's targets come from one table."""
    from affectstudio.conditioning.espeak import PROSODY_PRESETS, PROSODY_TARGETS
    from affectstudio.models.dubbing import prosody

    assert prosody.PROSODY_TARGETS is PROSODY_TARGETS
    for label, t in PROSODY_TARGETS.items():
        p = PROSODY_PRESETS[label]
        assert p["rate"] == t["rate"]
        assert np.sign(p["pitch"]) == np.sign(round(np.log(t["f0"]), 6))
        assert np.sign(p["range"]) == np.sign(round(np.log(t["range"]), 6))
        assert np.sign(p["volume"] - 1) == np.sign(t["energy"])
