"""Lip activity from raw video: opening curve, spans, peaks, errors (conditioning/lips.py)."""

import numpy as np
import pytest

from affectstudio.assets import asset_path
from affectstudio.conditioning.lips import analyze_lips, lip_activity_from_opening, span_iou, spans_from_mask
from affectstudio.conditioning.speech_features import speech_activity
from affectstudio.errors import MediaDecodeError, MissingFileError, NoFaceError
from affectstudio.media import load_audio
from affectstudio.video_io import write_video


def test_spans_from_mask_and_iou():
    m = np.array([0, 1, 1, 0, 0, 1, 0], bool)
    assert spans_from_mask(m, 10.0) == [(0.1, 0.3), (0.5, 0.6)]
    assert span_iou(m, m) == 1.0
    assert span_iou(np.zeros(4, bool), np.zeros(4, bool)) == 1.0
    assert span_iou(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 0], bool)) == pytest.approx(1 / 3)


def test_activity_from_synthetic_opening_bridges_closures():
    fps = 25.0
    t = np.arange(250) / fps
    opening = np.full(t.size, 0.02)
    speak = (t > 2) & (t < 5)
    opening[speak] += 0.12 * np.abs(np.sin(2 * np.pi * 2.5 * t[speak]))  # syllables, closures in between
    active, peaks = lip_activity_from_opening(opening, fps)
    spans = spans_from_mask(active, fps)
    assert len(spans) == 1  # closures between syllables do not split the span
    # spans reach ~0.3 s beyond the first and last opening (voice onsets lead and offsets trail the mouth)
    assert 1.6 <= spans[0][0] <= 2.05 and 4.95 <= spans[0][1] <= 5.4
    assert 12 <= len(peaks) <= 16 and np.all(active[peaks])  # |sin| at 2.5 Hz: 5 openings a second


def test_still_mouth_has_no_activity():
    active, peaks = lip_activity_from_opening(np.full(100, 0.05) + 1e-3 * np.sin(np.arange(100)), 25.0)
    assert not active.any() and peaks.size == 0


def test_real_clip_spans_match_its_speech():
    """The bundled silent clip was rendered from assets/samples/speech.wav: its lips move with that speech."""
    lips = analyze_lips(asset_path("samples", "silent_talk.mp4"))
    assert lips.fps == 25.0 and lips.duration == pytest.approx(8.6, abs=0.05)
    assert lips.face_found.all() and len(lips.spans) >= 1 and lips.peaks.size >= 5
    wave, sr = load_audio(asset_path("samples", "speech.wav"))
    assert span_iou(lips.active, speech_activity(wave, sr, lips.fps)) >= 0.7


def test_no_face_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    frames = (rng.random((10, 64, 64, 3)) * 40 + 100).astype(np.uint8)
    write_video(tmp_path / "noface.mp4", frames, 10.0)
    with pytest.raises(NoFaceError, match="face"):
        analyze_lips(tmp_path / "noface.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all" * 50)
    with pytest.raises(MediaDecodeError):
        analyze_lips(tmp_path / "bad.mp4")
    with pytest.raises(MissingFileError):
        analyze_lips(tmp_path / "missing.mp4")
