"""Weighted multi-source fusion (as SynchroRaMa fuses text, speech and face): one embedding from several readings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from affectstudio.errors import InputError

from .embedding import EmotionEmbedding

# Default trust per source, from the encoders' held-out quality (README): text reads categories best, speech
# reads arousal, the face reads smiles well and neutral faces poorly.
DEFAULT_WEIGHTS = {"text": 1.0, "speech": 0.6, "face": 0.8}


def fuse_emotions(embeddings: Sequence[EmotionEmbedding], weights: Sequence[float] | None = None) -> EmotionEmbedding:
    """Weighted fusion. Each reading's weight is scaled by its confidence (its top probability), so a
    confident reading counts more than an unsure one; probabilities, VAD and intensity are averaged with
    those weights (curves are resampled to the longest)."""
    embeddings = list(embeddings)
    if not embeddings:
        raise InputError("nothing to fuse: give at least one emotion reading")
    weights = [1.0] * len(embeddings) if weights is None else [float(w) for w in weights]
    if len(weights) != len(embeddings):
        raise InputError(f"got {len(weights)} fusion weights for {len(embeddings)} readings")
    confidence = [float(np.max(np.asarray(e.probs), axis=-1).mean()) for e in embeddings]
    return EmotionEmbedding.mix(embeddings, [w * c for w, c in zip(weights, confidence)])


def encode_emotion(
    text: str | None = None, audio=None, image=None, weights: dict[str, float] | None = None
) -> EmotionEmbedding:
    """Read every source given (the script's text, a reference voice, a face photo) and fuse the readings."""
    from .spec import load_encoder

    sources = {"text": text, "speech": audio, "face": image}
    given = {k: v for k, v in sources.items() if v is not None}
    if not given:
        raise InputError("give at least one of text, audio or image to read an emotion from")
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    readings = [load_encoder(kind).encode(value) for kind, value in given.items()]
    return fuse_emotions(readings, [weights[k] for k in given])
