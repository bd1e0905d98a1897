"""Face emotion encoder: EMFACS table, bundled calibration, save/load, real photo (skimage astronaut)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mediapipe")
skdata = pytest.importorskip("skimage.data")

from affectstudio.conditioning.emotion.embedding import EMOTIONS, EmotionEmbedding  # noqa: E402
from affectstudio.conditioning.emotion.face import FaceEmotionEncoder  # noqa: E402
from affectstudio.conditioning.emotion.facs import (  # noqa: E402
    EMFACS_PROTOTYPES,
    ENCODER_FEATURES,
    UNILATERAL,
    prototype_features,
    side_weights,
)
from affectstudio.conditioning.face import analyze_face  # noqa: E402
from affectstudio.conditioning.face_features import ACTION_UNITS  # noqa: E402
from affectstudio.errors import MediaDecodeError, NoFaceError  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    return FaceEmotionEncoder.from_pretrained()


@pytest.fixture(scope="module")
def astronaut_face():
    return analyze_face(skdata.astronaut())


def test_prototype_table():
    assert set(EMFACS_PROTOTYPES) == set(EMOTIONS)
    assert EMFACS_PROTOTYPES["neutral"] == {}
    for emo, aus in EMFACS_PROTOTYPES.items():
        assert set(aus) <= set(ACTION_UNITS), emo
        assert all(0 < w <= 1 for w in aus.values()), emo
    assert {"AU6", "AU12"} <= set(EMFACS_PROTOTYPES["happy"])
    assert side_weights("contempt", "AU14") == (1.0, 0.0) and side_weights("happy", "AU12") == (1.0, 1.0)
    assert set(UNILATERAL) <= set(EMOTIONS)
    c = prototype_features("contempt")
    assert c[ENCODER_FEATURES.index("AU14_asym")] == 1.0 and c[ENCODER_FEATURES.index("AU14")] == 0.5


def test_prototypes_classified(encoder):
    x = torch.from_numpy(np.stack([prototype_features(e) for e in EMOTIONS]))
    with torch.no_grad():
        pred = encoder(x).argmax(-1).tolist()
    assert pred == list(range(len(EMOTIONS)))


def test_untrained_init_matches_prototypes():
    torch.manual_seed(0)
    model = FaceEmotionEncoder()
    x = torch.from_numpy(np.stack([prototype_features(e) for e in EMOTIONS]))
    with torch.no_grad():
        assert model(x).argmax(-1).tolist() == list(range(len(EMOTIONS)))


def test_save_load_roundtrip(encoder, tmp_path):
    encoder.save_pretrained(tmp_path)
    loaded = FaceEmotionEncoder.from_pretrained(tmp_path)
    assert loaded.config.features == encoder.config.features
    x = torch.rand(16, len(ENCODER_FEATURES), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), encoder(x))


def test_astronaut_reads_happy(encoder, astronaut_face):
    emb = encoder.encode_landmarks(astronaut_face.landmarks)
    assert isinstance(emb, EmotionEmbedding)
    assert emb.label == "happy" and emb.probs[EMOTIONS.index("happy")] > 0.6
    assert emb.valence > 0.3
    from_image = encoder.encode(skdata.astronaut())
    np.testing.assert_allclose(from_image.probs, emb.probs, atol=1e-6)


def test_landmark_curve(encoder, astronaut_face):
    lm = np.stack([astronaut_face.landmarks] * 3)
    emb = encoder.encode_landmarks(lm)
    assert emb.is_curve and emb.num_frames == 3
    # against its own neutral, the unchanged face expresses nothing
    rest = encoder.encode_landmarks(astronaut_face.landmarks, neutral=astronaut_face.landmarks)
    assert rest.label == "neutral"


def test_encode_errors(encoder, tmp_path):
    with pytest.raises(NoFaceError):
        encoder.encode(np.full((200, 200, 3), 90, np.uint8))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(MediaDecodeError):
        encoder.encode(bad)
