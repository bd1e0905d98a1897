"""EmotionEmbedding operations and emotion-spec parsing (no encoders loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from affectstudio.conditioning.emotion import (
    CONDITION_DIM,
    EMOTIONS,
    VAD_ANCHORS,
    EmotionEmbedding,
    fuse_emotions,
    parse_emotion_spec,
)
from affectstudio.errors import EmptyTextError, InputError, MissingFileError, UnknownEmotionError


def test_label_set_and_anchors():
    assert EMOTIONS == ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised", "contempt")
    assert CONDITION_DIM == 12
    assert set(VAD_ANCHORS) == set(EMOTIONS)
    for v in VAD_ANCHORS.values():
        assert len(v) == 3 and all(-1 <= x <= 1 for x in v)
    assert VAD_ANCHORS["happy"][0] > 0 > VAD_ANCHORS["sad"][0]
    assert VAD_ANCHORS["angry"][1] > VAD_ANCHORS["sad"][1]


@pytest.mark.parametrize("label", EMOTIONS)
def test_from_label(label):
    e = EmotionEmbedding.from_label(label, intensity=0.4)
    assert e.label == label and e.probs.dtype == np.float32 and e.probs.shape == (8,)
    assert e.probs[EMOTIONS.index(label)] == 1.0
    np.testing.assert_allclose(e.vad, VAD_ANCHORS[label], atol=1e-6)
    assert e.intensity == pytest.approx(0.4) and not e.is_curve and e.num_frames is None


def test_synonyms_and_case():
    assert EmotionEmbedding.from_label("JOY").label == "happy"
    assert EmotionEmbedding.from_label("Anger").label == "angry"
    with pytest.raises(UnknownEmotionError):
        EmotionEmbedding.from_label("zorblax")


def test_from_mix_normalises_and_weights_vad():
    e = EmotionEmbedding.from_mix({"happy": 3, "surprised": 1})
    assert e.probs.sum() == pytest.approx(1.0)
    assert e.probs[EMOTIONS.index("happy")] == pytest.approx(0.75)
    expected = 0.75 * np.array(VAD_ANCHORS["happy"]) + 0.25 * np.array(VAD_ANCHORS["surprised"])
    np.testing.assert_allclose(e.vad, expected, atol=1e-6)
    with pytest.raises(InputError):
        EmotionEmbedding.from_mix({"happy": 0.0})
    with pytest.raises(InputError):
        EmotionEmbedding.from_mix({"happy": -1.0, "sad": 2.0})


def test_from_probs_intensity_and_validation():
    p = np.zeros(8, np.float32)
    p[0], p[3] = 0.25, 0.75
    e = EmotionEmbedding.from_probs(p)
    assert e.label == "angry" and e.intensity == pytest.approx(0.75)
    assert EmotionEmbedding.neutral().intensity == 0.0 and EmotionEmbedding.neutral().label == "neutral"
    with pytest.raises(InputError):
        EmotionEmbedding(probs=np.full(8, 0.2), vad=np.zeros(3), intensity=0.5)  # sums to 1.6
    with pytest.raises(InputError):
        EmotionEmbedding(probs=np.eye(8)[1], vad=np.array([2.0, 0, 0]), intensity=0.5)
    with pytest.raises(InputError):
        EmotionEmbedding(probs=np.eye(8)[1], vad=np.zeros(3), intensity=1.5)
    with pytest.raises(InputError):
        EmotionEmbedding(probs=np.eye(8)[1], vad=np.zeros(2), intensity=0.5)
    with pytest.raises(InputError):
        EmotionEmbedding(probs=np.ones((4, 8)) / 8, vad=np.zeros((3, 3)), intensity=0.5)


def test_mix_lerp_mirror():
    a, b = EmotionEmbedding.from_label("happy", 1.0), EmotionEmbedding.from_label("sad", 0.0)
    assert a.lerp(b, 0.0).allclose(a) and a.lerp(b, 1.0).allclose(b)
    mid = EmotionEmbedding.mix([a, b], [1, 3])
    assert mid.intensity == pytest.approx(0.25) and mid.label == "sad"
    assert mid.probs[EMOTIONS.index("happy")] == pytest.approx(0.25)
    m = EmotionEmbedding.from_mix({"happy": 0.7, "angry": 0.3}, intensity=0.6).mirror()
    assert m.label == "sad" and m.intensity == pytest.approx(0.6)
    assert m.probs.sum() == pytest.approx(1.0)
    assert m.mirror().label == "happy" and m.mirror().probs[EMOTIONS.index("happy")] == pytest.approx(0.7)
    e = EmotionEmbedding.from_label("fearful")
    assert e.mirror().label == "surprised"
    np.testing.assert_allclose(e.mirror().vad, e.vad * np.array([-1, 1, 1]), atol=1e-7)


def test_curve_resample_and_condition():
    keys = [EmotionEmbedding.from_label("neutral", 0.0), EmotionEmbedding.from_label("angry", 1.0)]
    c = EmotionEmbedding.curve(keys, 11)
    assert c.is_curve and c.num_frames == 11 and c.probs.shape == (11, 8) and c.vad.shape == (11, 3)
    np.testing.assert_allclose(c.probs.sum(-1), 1.0, atol=1e-6)
    assert c.label[0] == "neutral" and c.label[-1] == "angry"
    assert c.intensity[5] == pytest.approx(0.5) and np.all(np.diff(c.intensity) >= 0)
    assert c.valence.shape == (11,) and c.arousal[-1] == pytest.approx(VAD_ANCHORS["angry"][1])
    cond = c.as_condition()
    assert isinstance(cond, torch.Tensor) and cond.dtype == torch.float32 and cond.shape == (11, CONDITION_DIM)
    assert c.as_condition(num_frames=21).shape == (21, 12)
    r = c.resample(21)
    assert r.intensity[10] == pytest.approx(0.5) and r.label[-1] == "angry"

    s = EmotionEmbedding.from_mix({"happy": 0.5, "surprised": 0.5}, intensity=0.8)
    v = s.as_condition()
    assert v.shape == (12,)
    np.testing.assert_allclose(v[:8].numpy(), s.probs)
    np.testing.assert_allclose(v[8:11].numpy(), s.vad)
    assert v[11].item() == pytest.approx(0.8)
    b = s.as_condition(num_frames=7)
    assert b.shape == (7, 12) and torch.equal(b[0], v) and torch.equal(b[-1], v)


def test_mix_static_with_curve():
    c = EmotionEmbedding.curve([EmotionEmbedding.from_label("sad"), EmotionEmbedding.from_label("happy")], 5)
    m = EmotionEmbedding.mix([c, EmotionEmbedding.from_label("neutral", 0.0)])
    assert m.num_frames == 5 and m.probs[:, 0].min() == pytest.approx(0.5)


def test_json_round_trip_and_cli_dict():
    e = EmotionEmbedding.from_mix({"angry": 0.72, "disgusted": 0.28}, intensity=0.8)
    d = e.to_dict()
    assert set(d) == {"label", "probs", "valence", "arousal", "dominance", "intensity"}
    assert d["label"] == "angry" and list(d["probs"]) == list(EMOTIONS)
    json.dumps(d)
    assert EmotionEmbedding.from_json(e.to_json()) == e
    c = EmotionEmbedding.curve([e, EmotionEmbedding.from_label("happy", 0.3)], 9)
    back = EmotionEmbedding.from_json(c.to_json())
    assert back == c and back.is_curve
    cd = c.to_dict()  # curve → mean over time
    assert cd["intensity"] == pytest.approx(float(np.mean(c.intensity)))
    with pytest.raises(InputError):
        EmotionEmbedding.from_json("{not json")
    with pytest.raises(InputError):
        EmotionEmbedding.from_json('{"label": "happy"}')


def test_describe():
    text = EmotionEmbedding.from_mix({"angry": 0.72, "disgusted": 0.28}, intensity=0.8).describe()
    assert text.startswith("mostly angry (0.72)") and "disgusted" in text and "intensity 0.8" in text
    assert "valence -0.5" in text


# ------------------------------------------------------------------ specs (label forms need no encoder)
def test_spec_label_forms():
    e = parse_emotion_spec("happy")
    assert e.label == "happy" and e.intensity == 1.0
    e = parse_emotion_spec("happy:0.6")
    assert e.label == "happy" and e.intensity == pytest.approx(0.6)
    e = parse_emotion_spec(" Happy:0.6 , surprised:0.4 ")
    assert e.intensity == 1.0
    assert e.probs[EMOTIONS.index("happy")] == pytest.approx(0.6)
    assert e.probs[EMOTIONS.index("surprised")] == pytest.approx(0.4)
    e = parse_emotion_spec("happy:3,surprised:1", intensity=0.5)
    assert e.probs[EMOTIONS.index("happy")] == pytest.approx(0.75) and e.intensity == 0.5
    assert parse_emotion_spec("joy").label == "happy"
    assert parse_emotion_spec("sad:0.2", intensity=0.9).intensity == pytest.approx(0.9)


def test_spec_other_objects():
    base = EmotionEmbedding.from_label("angry", 0.3)
    assert parse_emotion_spec(base) == base
    assert parse_emotion_spec(base, intensity=0.7).intensity == pytest.approx(0.7)
    e = parse_emotion_spec({"sad": 1, "fearful": 1})
    assert e.probs[EMOTIONS.index("sad")] == pytest.approx(0.5)


def test_spec_errors(tmp_path):
    with pytest.raises(UnknownEmotionError):
        parse_emotion_spec("zorblax:0.5")
    with pytest.raises(UnknownEmotionError):
        parse_emotion_spec("happy:0.5,zorblax:0.5")
    for empty in ("", "   ", "\n"):
        with pytest.raises(EmptyTextError):
            parse_emotion_spec(empty)
    for missing in ("nope.wav", str(tmp_path / "ref.flac"), "face.png", "x/y.JPG"):
        with pytest.raises(MissingFileError):
            parse_emotion_spec(missing)
    with pytest.raises(MissingFileError):
        parse_emotion_spec(Path(tmp_path / "voice.wav"))
    with pytest.raises(InputError):
        parse_emotion_spec("happy:1.5")  # an intensity above 1
    with pytest.raises(InputError):
        parse_emotion_spec("happy", intensity=2.0)
    with pytest.raises(InputError):
        parse_emotion_spec(42)


def test_fuse_emotions():
    happy, sad = EmotionEmbedding.from_label("happy", 1.0), EmotionEmbedding.from_label("sad", 0.2)
    f = fuse_emotions([happy, sad], [3, 1])
    assert f.label == "happy" and f.probs[EMOTIONS.index("happy")] == pytest.approx(0.75)
    assert f.intensity == pytest.approx(0.8)
    # a confident reading outweighs a flat one at equal nominal weight
    flat = EmotionEmbedding.from_probs(np.full(8, 1 / 8, np.float32))
    assert fuse_emotions([flat, sad]).label == "sad"
    with pytest.raises(InputError):
        fuse_emotions([])
    with pytest.raises(InputError):
        fuse_emotions([happy], [1, 2])


def test_package_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, affectstudio.conditioning.emotion as e; "
        "print(any(m in sys.modules for m in ('diffusers', 'sentence_transformers', 'mediapipe', 'opensmile')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
