import numpy as np
import pytest
import torch

pytest.importorskip("opensmile")
pytest.importorskip("espeakng_loader")

from affectstudio.conditioning.emotion.embedding import EmotionEmbedding  # noqa: E402
from affectstudio.conditioning.emotion.speech import (  # noqa: E402
    NUM_FEATURES,
    SpeechEmotionEncoder,
    speech_emotion_features,
)
from affectstudio.conditioning.espeak import prosody_for, synthesize  # noqa: E402
from affectstudio.errors import MediaDecodeError, NoSpeechError  # noqa: E402
from affectstudio.media import resample, write_wav  # noqa: E402

TEXT = "I told you already, the keys are on the kitchen table next to the window."


@pytest.fixture(scope="module")
def encoder():
    return SpeechEmotionEncoder.from_pretrained()


def _speak(label, voice="en-us+m3"):
    s = synthesize(TEXT, voice=voice, **prosody_for(label, 1.0).as_kwargs())
    return s.wave, s.sample_rate


def test_features_finite():
    wave, sr = _speak("neutral")
    f = speech_emotion_features(resample(wave, sr, 16000))
    assert f.shape == (NUM_FEATURES,) and np.isfinite(f).all()


def test_encode_returns_embedding(encoder):
    emb = encoder.encode(_speak("neutral"))
    assert isinstance(emb, EmotionEmbedding) and not emb.is_curve
    assert emb.probs.shape == (8,) and abs(emb.probs.sum() - 1) < 1e-4
    assert np.all(np.abs(emb.vad) <= 1) and 0 <= emb.intensity <= 1


def test_arousal_excited_above_calm(encoder):
    for voice in ("en-us+m3", "en-gb+f4"):  # m3 and f4 are held out of training
        calm = encoder.encode(_speak("sad", voice)).arousal
        excited = encoder.encode(_speak("angry", voice)).arousal
        assert excited > calm + 0.2, (voice, calm, excited)


def test_no_speech(encoder, tmp_path):
    with pytest.raises(NoSpeechError, match="no speech found"):
        encoder.encode((np.zeros(32000, np.float32), 16000))
    quiet = (1e-4 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32)
    with pytest.raises(NoSpeechError):
        encoder.encode((quiet, 16000))
    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros(16000, np.float32), 16000)
    with pytest.raises(NoSpeechError, match="silence.wav"):
        encoder.encode(str(path))


def test_corrupt_file(encoder, tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 4)
    with pytest.raises(MediaDecodeError):
        encoder.encode(str(path))


def test_save_load_equality(tmp_path):
    torch.manual_seed(0)
    model = SpeechEmotionEncoder(hidden_dim=16).eval()
    model.feature_mean.normal_()
    model.feature_std.uniform_(0.5, 2.0)
    model.save_pretrained(str(tmp_path))
    loaded = SpeechEmotionEncoder.from_pretrained(str(tmp_path)).eval()
    x = torch.randn(3, NUM_FEATURES)
    a, b = model(x), loaded(x)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert loaded.config.hidden_dim == 16


def test_encode_curve(encoder):
    wave, sr = _speak("neutral")
    wave = np.concatenate([wave, np.zeros(2 * sr, np.float32)])
    curve = encoder.encode_curve((wave, sr))
    n = int(np.ceil(wave.size / sr))
    assert curve.is_curve and curve.probs.shape == (n, 8)
    assert curve.intensity[-1] == 0.0 and curve.label[-1] == "neutral"  # trailing silence
