"""Emotion curves (docs/cli.md "EMOTION CURVE"): keyframe text, .json/.csv files, interpolation, holding, errors."""

import json

import numpy as np
import pytest

from affectstudio.conditioning.emotion import EmotionCurve, EmotionEmbedding, parse_emotion_spec
from affectstudio.errors import InputError, MissingFileError, UnknownEmotionError


def test_keyframes_interpolate_in_the_emotion_space_and_hold_outside():
    curve = parse_emotion_spec("neutral@1; angry:0.8@3")
    assert isinstance(curve, EmotionCurve) and curve.duration == 3.0
    states = curve.at_times([0.0, 1.0, 2.0, 3.0, 9.0])
    angry, neutral = EmotionEmbedding.from_label("angry", 0.8), EmotionEmbedding.from_label("neutral")
    np.testing.assert_allclose(states.probs[0], neutral.probs, atol=1e-6)  # held before the first keyframe
    np.testing.assert_allclose(states.probs[2], 0.5 * (neutral.probs + angry.probs), atol=1e-6)
    np.testing.assert_allclose(states.vad[4], angry.vad, atol=1e-6)  # held after the last
    np.testing.assert_allclose(states.intensity, [1.0, 1.0, 0.9, 0.8, 0.8], atol=1e-6)


def test_at_frames_gives_one_state_per_frame():
    emb = parse_emotion_spec("sad@0; happy:0.6,surprised:0.4@2").at_frames(75, 25.0)
    assert emb.is_curve and emb.num_frames == 75
    assert emb.label[0] == "sad" and emb.label[-1] == "happy"
    assert emb.as_condition().shape == (75, 12)


def test_intensity_overrides_every_keyframe():
    curve = parse_emotion_spec("sad@0; angry@2", intensity=0.3)
    assert np.allclose(curve.at_times([0, 1, 5]).intensity, 0.3)


def test_curve_files(tmp_path):
    j = tmp_path / "c.json"
    j.write_text(json.dumps([{"time": 0, "emotion": "calm and content"}, {"time": 4, "emotion": "angry"}]))
    c = tmp_path / "c.csv"
    c.write_text('time,emotion\n0,neutral\n2.5,"happy:0.6,surprised:0.4"\n')
    from_json = parse_emotion_spec(j)
    assert isinstance(from_json, EmotionCurve) and from_json.at_times([4.0]).label[0] == "angry"
    from_csv = parse_emotion_spec(str(c))
    assert list(from_csv.times) == [0.0, 2.5] and from_csv.at_times([3.0]).label[0] == "happy"


@pytest.mark.parametrize(
    "spec, error",
    [
        ("zorblax:0.5@0; sad@2", UnknownEmotionError),
        ("sad@2; angry@2", InputError),
        ("missing_curve.json", MissingFileError),
    ],
)
def test_bad_curves(spec, error):
    with pytest.raises(error):
        parse_emotion_spec(spec)


def test_bad_curve_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"time": 0}')
    with pytest.raises(InputError, match="expected"):
        parse_emotion_spec(bad)


def test_free_text_with_an_at_sign_is_still_text_when_not_keyframes():
    assert not isinstance(parse_emotion_spec("happy"), EmotionCurve)
    from affectstudio.conditioning.emotion.curve import is_curve_text

    assert is_curve_text("neutral@0; angry:0.8@3.5") and is_curve_text("sad @ 2s")
    assert not is_curve_text("meet me @ the station, I'm thrilled")
