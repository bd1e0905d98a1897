"""VideoMusicPipeline end to end on tiny synthetic clips, and the `affectstudio music` CLI's error contract."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from affectstudio.conditioning.video import synthetic_clip
from affectstudio.errors import InputError, MissingFileError
from affectstudio.models.dit import AffectDiT
from affectstudio.models.flow import make_scheduler
from affectstudio.models.music.codec import BAR_CHANNELS, PLAN_CHANNELS
from affectstudio.pipelines.music import VideoMusicOutput, VideoMusicPipeline


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return synthetic_clip(tmp_path_factory.mktemp("m") / "clip.mp4", "bright", 4.0, cut_times=(1.6,), size=(96, 64))


@pytest.fixture(scope="module")
def tiny_pipe():
    torch.manual_seed(0)
    dit = AffectDiT.from_preset(
        "tiny", in_channels=BAR_CHANNELS, content_streams={"bars": PLAN_CHANNELS}, hidden_size=32, depth=1, num_heads=2
    )
    return VideoMusicPipeline(dit=dit, scheduler=make_scheduler())


def gen(seed):
    return torch.Generator("cpu").manual_seed(seed)


@pytest.mark.slow
def test_pipeline_outputs(tiny_pipe, clip, tmp_path):
    steps = []
    out = tiny_pipe(
        clip,
        num_inference_steps=2,
        generator=gen(0),
        stems=True,
        callback_on_step_end=lambda p, i, t, kw: steps.append(i) or {},
    )
    assert isinstance(out, VideoMusicOutput)
    assert out.waveform.dtype == np.float32 and abs(len(out.waveform) / out.sample_rate - 4.0) < 1e-3
    assert np.abs(out.waveform).max() <= 1.0 and out.waveform.std() > 0.01
    assert steps == [0, 1]
    assert set(out.stems) >= {"pad", "bass", "melody"}
    assert np.allclose(sum(out.stems.values()), out.waveform, atol=2e-3)
    assert out.cut_times.tolist() == [pytest.approx(1.6, abs=0.05)]
    for suffix in (".wav", ".mid", ".png", ".mp4"):
        assert out.save(tmp_path / f"o{suffix}").stat().st_size > 0
    with pytest.raises(InputError):
        out.save(tmp_path / "o.txt")


@pytest.mark.slow
def test_seeds_and_overrides(tiny_pipe, clip):
    a = tiny_pipe(clip, num_inference_steps=2, generator=gen(0))
    b = tiny_pipe(clip, num_inference_steps=2, generator=gen(0))
    c = tiny_pipe(clip, num_inference_steps=2, generator=gen(1))
    notes = lambda o: [(n.pitch, round(n.start, 3)) for i in o.midi.instruments for n in i.notes]  # noqa: E731
    assert notes(a) == notes(b)
    assert np.corrcoef(a.waveform, b.waveform)[0, 1] > 0.999  # FluidSynth's reverb keeps a trace of earlier renders
    assert notes(a) != notes(c)
    sad = tiny_pipe(clip, emotion="sad", tempo=70, key="D minor", num_inference_steps=2, generator=gen(0))
    assert sad.key == "D minor" and abs(sad.tempo - 70) < 1e-6
    assert tiny_pipe(clip, emotion="sad", num_inference_steps=2, generator=gen(0)).key.endswith("minor")


def test_rule_based_without_dit(clip):
    out = VideoMusicPipeline()(clip, generator=gen(0), duration=3.0)
    assert abs(len(out.waveform) / out.sample_rate - 3.0) < 1e-3


def test_bad_inputs(tiny_pipe, clip, tmp_path):
    with pytest.raises(MissingFileError):
        tiny_pipe(tmp_path / "none.mp4")
    with pytest.raises(InputError):
        tiny_pipe(clip, tempo=500)
    with pytest.raises(InputError):
        tiny_pipe(clip, key="H#")
    with pytest.raises(InputError):
        tiny_pipe(clip, duration=0)
    with pytest.raises(InputError):
        tiny_pipe(clip, output_path=tmp_path / "x.avi")


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "affectstudio", "music", *map(str, args)], capture_output=True, text=True
    )


def test_cli_errors_leave_nothing(clip, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 100)
    sf2 = tmp_path / "bad.sf2"
    sf2.write_bytes(b"RIFF\x10\x00\x00\x00sfbk" + b"\0" * 16)
    cases = [
        ("--video", bad),
        ("--video", tmp_path / "missing.mp4"),
        ("--video", clip, "--emotion", "zorblax:0.5"),
        ("--video", clip, "--soundfont", sf2),
        ("--video", clip, "--key", "H"),
    ]
    for case in cases:
        out = tmp_path / "out.mp4"
        r = _cli(*case, "-o", out)
        assert r.returncode == 2, (case, r.stderr)
        assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not out.exists()
        assert not list(tmp_path.glob(".out.partial*"))


@pytest.mark.slow
def test_cli_bundled(clip, tmp_path):
    r = _cli(
        "--video",
        clip,
        "--seed",
        "1",
        "-o",
        tmp_path / "o.mp4",
        "--wav",
        tmp_path / "o.wav",
        "--midi",
        tmp_path / "o.mid",
        "--stems",
        tmp_path / "stems",
    )
    assert r.returncode == 0, r.stderr
    from affectstudio.media import load_audio
    from affectstudio.video_io import probe_video

    wave, sr = load_audio(tmp_path / "o.mp4")
    assert abs(len(wave) / sr - probe_video(clip).duration) < 0.1
    assert np.abs(wave).max() < 1.0
    assert len(list((tmp_path / "stems").glob("*.wav"))) >= 3


@pytest.mark.slow
def test_too_short_video(tmp_path):
    short = synthetic_clip(tmp_path / "short.mp4", "dark", 0.2, size=(64, 64))
    with pytest.raises(InputError, match="at least"):
        VideoMusicPipeline()(short)
    r = _cli("--video", short, "-o", tmp_path / "o.mp4")
    assert r.returncode == 2 and r.stderr.startswith("error:") and not (tmp_path / "o.mp4").exists()
