"""Voice presets (issue 17): ``affectstudio voices``, ``--voice-preset`` / ``voice=``, ``affectstudio speak``, the
reference path's base-voice choice and the voice design."""

import numpy as np
import pytest
import soundfile as sf

from affectstudio.apps.cli import main
from affectstudio.errors import InputError
from affectstudio.media import write_wav
from affectstudio.models.dubbing.prosody import f0_track
from affectstudio.models.dubbing.voices import (
    DEFAULT_VOICE,
    VOICE_PRESETS,
    design_voice,
    nearest_preset,
    voice_lines,
    voice_preset,
)


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def _median_f0(wave, sr):
    _, f0 = f0_track(wave, sr, 60, 500)
    return float(np.median(f0[f0 > 0]))


def _vowel(f0, sr=24000, seconds=1.0):
    """A buzzy vowel-like tone: harmonics of ``f0`` under a fixed two-formant envelope."""
    t = np.arange(int(sr * seconds)) / sr
    wave = np.zeros_like(t)
    for k in range(1, int(5000 / f0)):
        f = k * f0
        gain = np.exp(-(((f - 700) / 300) ** 2)) + 0.5 * np.exp(-(((f - 1200) / 400) ** 2)) + 0.02
        wave += gain * np.sin(2 * np.pi * f * t) / k**0.5
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


def test_voices_lists_one_voice_a_line(capsys):
    code, out, err = run(capsys, "voices")
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines == voice_lines() and len(lines) == len(VOICE_PRESETS)
    fields = [line.split("\t") for line in lines]
    assert all(len(f) == 4 and f[1] in ("female", "male") and f[2] and f[3] for f in fields)
    assert {f[1] for f in fields} == {"female", "male"}  # at least one of each
    assert DEFAULT_VOICE in {f[0] for f in fields}


def test_unknown_preset_is_one_error_line(capsys, tmp_path):
    with pytest.raises(InputError, match="joe, jess"):
        voice_preset("bob")
    out = tmp_path / "x.wav"
    code, _, err = run(capsys, "speak", "--text", "Hello there.", "--voice-preset", "bob", "-o", str(out))
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1 and not out.exists()
    code, _, err = run(capsys, "speak", "--text", "Hello there.", "-o", str(tmp_path / "x.mp4"))
    assert code == 2 and ".wav" in err


def test_speak_refuses_a_reference_with_no_speech(capsys, tmp_path):
    write_wav(tmp_path / "silence.wav", np.zeros(24000 * 4, np.float32), 24000)
    out = tmp_path / "out.wav"
    code, _, err = run(
        capsys, "speak", "--text", "Hello there.", "--voice", str(tmp_path / "silence.wav"), "-o", str(out)
    )
    assert code == 2 and "no speech" in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_nearest_preset_follows_the_reference_pitch():
    assert nearest_preset(100.0).gender == "male"
    assert nearest_preset(210.0).gender == "female"
    assert nearest_preset(120.0).name == "joe" and nearest_preset(170.0).name == "jess"


def test_design_scales_pitch_and_keeps_length():
    sr = 24000
    wave = _vowel(100.0, sr)
    jess = voice_preset("jess")
    out = design_voice(wave, sr, jess)
    assert out.shape == wave.shape and out.dtype == np.float32
    ratio = _median_f0(out, sr) / _median_f0(wave, sr)
    assert abs(ratio / jess.f0_scale - 1) < 0.08
    assert np.array_equal(design_voice(wave, sr, voice_preset("joe")), wave)  # the base voice is untouched


@pytest.mark.slow
def test_speak_with_each_preset(capsys, tmp_path):
    """The female preset is in the female range and the male one is not; the output is a 24 kHz .wav."""
    f0 = {}
    for name in VOICE_PRESETS:
        out = tmp_path / f"{name}.wav"
        text = "Please put the books back on the shelf."
        code, _, err = run(capsys, "speak", "--text", text, "--voice-preset", name, "--seed", "1", "-o", str(out))
        assert code == 0 and out.is_file(), err
        wave, sr = sf.read(out, dtype="float32")
        assert sr == 24000 and wave.size > sr
        f0[name] = _median_f0(wave, sr)
    assert 165 <= f0["jess"] <= 255 and f0["joe"] < 140


@pytest.mark.slow
def test_sad_keeps_pitch_above_creak():
    from affectstudio.pipelines.dubbing import DubbingPipeline

    pipe = DubbingPipeline.from_pretrained()
    text = "I never thought I would see the Earth from up here."
    for name in VOICE_PRESETS:
        neutral = pipe(video=None, text=text, emotion="neutral", voice=name)
        sad = pipe(video=None, text=text, emotion="sad", voice=name)
        assert _median_f0(sad.waveform, 24000) >= 0.8 * _median_f0(neutral.waveform, 24000)
