"""Video analysis on synthetic clips with known cuts, colours, motion and speech (tiny, seeded, CPU)."""

import numpy as np
import pytest

from affectstudio.conditioning.video import analyze_video, detect_cuts, probs_from_vad, synthetic_clip
from affectstudio.errors import MediaDecodeError, MissingFileError
from affectstudio.video_io import probe_video

CUTS = (1.2, 2.6)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    bright = synthetic_clip(d / "bright.mp4", "bright", 4.0, cut_times=CUTS, size=(160, 90), speech=(1.5, 3.0))
    dark = synthetic_clip(d / "dark.mp4", "dark", 4.0, cut_times=CUTS, size=(160, 90), seed=1)
    return analyze_video(bright, faces=False), analyze_video(dark, faces=False)


def test_cuts_found_within_one_frame(clips):
    for a in clips:
        assert len(a.cut_times) == len(CUTS)
        assert np.abs(a.cut_times - np.array(CUTS)).max() <= 1 / 25 + 1e-6


def test_bright_fast_vs_dark_slow(clips):
    bright, dark = clips
    assert bright.brightness.mean() > dark.brightness.mean() + 0.2
    assert bright.saturation.mean() > dark.saturation.mean() + 0.3
    assert bright.motion.mean() > 3 * dark.motion.mean()
    eb, ed = bright.emotion_curve(), dark.emotion_curve()
    assert eb.is_curve and eb.num_frames == 4
    assert eb.valence.mean() > 0.3 > -0.3 > ed.valence.mean()
    assert eb.arousal.mean() > ed.arousal.mean() + 0.4


def test_speech_detected_in_its_span(clips):
    bright, dark = clips
    t = np.arange(len(bright.speech)) / 25
    inside, outside = bright.speech[(t > 1.7) & (t < 2.8)], bright.speech[(t < 1.2) | (t > 3.3)]
    assert inside.mean() > 0.5 and outside.mean() < 0.1
    assert dark.speech.size == 0  # no audio track


def test_detect_cuts_ignores_steady_motion():
    rng = np.random.default_rng(0)
    diffs = rng.uniform(5, 9, 100).astype(np.float32)
    assert len(detect_cuts(diffs, 25.0)[0]) == 0
    diffs[40] = 30
    assert detect_cuts(diffs, 25.0)[0].tolist() == [pytest.approx(40 / 25)]


def test_probs_from_vad_picks_nearest_anchor():
    p = probs_from_vad(np.array([[0.8, 0.5, 0.4], [-0.6, -0.3, -0.3]]))
    assert p.shape == (2, 8) and np.allclose(p.sum(-1), 1)
    assert p[0].argmax() == 1 and p[1].argmax() == 2  # happy, sad


def test_bad_files(tmp_path):
    with pytest.raises(MissingFileError):
        analyze_video(tmp_path / "none.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 500)
    with pytest.raises(MediaDecodeError):
        probe_video(bad)
    wav = tmp_path / "sound.mp4"
    import subprocess

    from affectstudio.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(wav)], check=True)
    with pytest.raises(MediaDecodeError, match="no video"):
        analyze_video(wav)
