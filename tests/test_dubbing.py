"""Dubbing: the Piper voice with exact per-phoneme durations, emotional prosody, DubbingPipeline (slow: the
voice's ONNX graph is edited and loaded once per process, ~8 s)."""

import numpy as np
import pytest
import torch

from affectstudio.assets import asset_path
from affectstudio.conditioning.lips import span_iou
from affectstudio.conditioning.phonemes import phonemize
from affectstudio.conditioning.speech_features import speech_activity
from affectstudio.errors import InputError, MissingFileError, NoSpeechError
from affectstudio.media import load_audio, write_wav
from affectstudio.models.dubbing.espeak import EspeakVoice
from affectstudio.models.dubbing.prosody import emotion_targets, f0_track
from affectstudio.video_io import probe_video

pytestmark = pytest.mark.slow
CLIP = asset_path("samples", "silent_talk.mp4")
SCRIPT = asset_path("samples", "script.txt").read_text().strip()


@pytest.fixture(scope="module")
def pipe():
    from affectstudio.pipelines.dubbing import DubbingPipeline

    return DubbingPipeline.from_pretrained()


def _mean_f0(wave, sr):
    _, f0 = f0_track(wave, sr)
    return float(f0[f0 > 0].mean())


def _level(wave):
    x = wave[np.abs(wave) > 0.01]
    return 20 * np.log10(np.sqrt(np.mean(x**2)))


def test_voice_durations_are_exact_and_deterministic(pipe):
    voice = pipe.voice
    seq = phonemize("Hello there, how are you today?")
    r = voice.render(seq, seed=3)
    assert r.wave.size == (r.frames.sum() + sum(r.lead_frames)) * r.hop
    target = np.maximum(1, (r.frames * 1.6).astype(int))
    scales, offsets = voice.frame_controls(seq, target)
    r2 = voice.render(seq, scales, offsets, seed=3)
    assert np.array_equal(r2.frames, target)
    assert np.array_equal(voice.render(seq, seed=3).wave, r.wave)  # onnxruntime.set_seed
    nat = voice.natural_durations(seq)
    assert nat.shape == (len(seq),) and 0.8 < nat.sum() < 3.0


def test_emotion_targets_blend_and_scale():
    neutral, happy, sad = np.eye(8)[0], np.eye(8)[1], np.eye(8)[2]
    t = emotion_targets(np.stack([neutral, happy, sad]), np.array([1.0, 1.0, 1.0]))
    assert t["f0"][0] == 1.0 and t["f0"][1] / t["f0"][2] >= 1.3
    half = emotion_targets(happy, 0.5)
    assert 1.0 < half["f0"][0] < t["f0"][1] and 0 < half["energy"][0] < t["energy"][1]


def test_tts_emotions_are_audible(pipe):
    outs = {e: pipe(video=None, text=SCRIPT, emotion=e, seed=0) for e in ("neutral", "happy", "sad", "angry")}
    sr = outs["neutral"].sample_rate
    assert sr == 24000 and outs["neutral"].waveform.dtype == np.float32
    assert _mean_f0(outs["happy"].waveform, sr) / _mean_f0(outs["sad"].waveform, sr) >= 1.15
    assert _level(outs["angry"].waveform) > _level(outs["neutral"].waveform) + 2.0
    assert outs["sad"].duration > outs["neutral"].duration  # slower
    assert np.abs(outs["angry"].waveform).max() <= 10 ** (-1.0 / 20)  # AAC headroom


def test_intensity_is_monotonic(pipe):
    f0s = [
        _mean_f0(pipe(video=None, text=SCRIPT, emotion="happy", emotion_intensity=a, seed=0).waveform, 24000)
        for a in (0.0, 0.5, 1.0)
    ]
    assert f0s[0] < f0s[1] < f0s[2]


def test_dub_fills_the_clip_and_follows_the_lips(pipe, tmp_path):
    out = pipe(video=CLIP, text=SCRIPT, emotion="happy", seed=0, output_path=tmp_path / "d.mp4")
    assert abs(out.duration - out.lips.duration) <= 0.1
    assert span_iou(speech_activity(out.waveform, out.sample_rate, out.lips.fps), out.lips.active) >= 0.7
    assert {"lip_analysis", "alignment", "synthesis", "prosody"} <= set(out.timings)
    info = probe_video(tmp_path / "d.mp4")
    assert info.has_audio and abs(info.duration - 8.6) < 0.1
    out.save(tmp_path / "d.wav")
    wave, sr = load_audio(tmp_path / "d.wav")
    assert sr == 24000 and abs(wave.size / sr - out.duration) < 0.01
    with pytest.raises(InputError):
        out.save(tmp_path / "d.ogg")


def _token_f0_and_rms(out):
    t, f0 = f0_track(out.waveform, out.sample_rate)
    f, r = [], []
    for a, b in out.token_times:
        m = (t >= a) & (t < b) & (f0 > 0)
        f.append(f0[m].mean() if m.any() else np.nan)
        seg = out.waveform[int(a * out.sample_rate) : max(int(b * out.sample_rate), int(a * out.sample_rate) + 1)]
        r.append(np.sqrt(np.mean(seg**2)) + 1e-9)
    return np.array(f), np.array(r)


def test_curve_rises(pipe):
    """Phoneme by phoneme against the neutral rendering of the same text (so the voice's own declination and
    the different speaking rates cancel out): F0 and level ratios grow from the first to the last third."""
    text = SCRIPT + " " + SCRIPT
    f_c, r_c = _token_f0_and_rms(pipe(video=None, text=text, emotion="neutral@0; angry@6", seed=0))
    f_n, r_n = _token_f0_and_rms(pipe(video=None, text=text, emotion="neutral", seed=0))
    voiced = np.flatnonzero(np.isfinite(f_c / f_n))
    first, _, last = np.array_split(voiced, 3)
    ratio = lambda k: np.exp(np.mean(np.log(f_c[k] / f_n[k])))  # noqa: E731
    gain = lambda k: np.median(20 * np.log10(r_c[k] / r_n[k]))  # noqa: E731
    assert ratio(last) > ratio(first) * 1.02 and gain(last) > gain(first) + 1.5


def test_other_languages_use_espeak_with_duration_control(pipe):
    seq = phonemize("Hola, ¿cómo estás? Muy bien.", "es")
    voice = EspeakVoice()
    nat = voice.natural_durations(seq)
    a, b = seq.phrases()[1]
    wave = voice.render_timed(seq, a, b, nat[a:b] * 1.5)
    assert abs(wave.size / 24000 - 1.5 * nat[a:b].sum()) < 0.01
    out = pipe(video=None, text="Guten Tag, wie geht es Ihnen?", language="de", emotion="sad")
    assert out.duration > 1.0 and np.abs(out.waveform).max() > 0.05


def test_bad_inputs(pipe, tmp_path):
    write_wav(tmp_path / "silence.wav", np.zeros(24000, np.float32), 24000)
    with pytest.raises(NoSpeechError):
        pipe(video=None, text="hello", reference_audio=tmp_path / "silence.wav")
    with pytest.raises(InputError, match="empty"):
        pipe(video=None, text="  ")
    with pytest.raises(InputError, match="fits at most .* shorten it"):  # refused before any model runs
        pipe(video=CLIP, text=SCRIPT * 4)
    with pytest.raises(MissingFileError):
        pipe(video=None, text="hello", voice_model=str(tmp_path / "nope.onnx"))
    with pytest.raises(InputError):
        pipe(video=None, text="hello", output_path=tmp_path / "x.mp4")  # TTS has no clip to mux into


def test_reference_voice_moves_pitch(pipe, tmp_path):
    t = np.arange(48000) / 24000
    hum = (0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    write_wav(tmp_path / "ref.wav", hum, 24000)
    base = pipe(video=None, text=SCRIPT, seed=0)
    moved = pipe(video=None, text=SCRIPT, seed=0, reference_audio=tmp_path / "ref.wav")
    assert _mean_f0(moved.waveform, 24000) > 1.4 * _mean_f0(base.waveform, 24000)


def test_generator_and_save_load(pipe, tmp_path):
    a = pipe(video=None, text="Hello there.", generator=torch.Generator().manual_seed(1))
    b = pipe(video=None, text="Hello there.", generator=torch.Generator().manual_seed(1))
    assert np.array_equal(a.waveform, b.waveform)
    pipe.save_pretrained(tmp_path / "p")
    from affectstudio.pipelines.dubbing import DubbingPipeline

    again = DubbingPipeline.from_pretrained(tmp_path / "p")
    assert np.array_equal(
        again(video=None, text="Hello there.", seed=5).waveform, pipe(video=None, text="Hello there.", seed=5).waveform
    )
