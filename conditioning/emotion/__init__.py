"""The shared emotion space and its encoders.

Importing this package is cheap (numpy only): the encoders (diffusers, MiniLM, opensmile, mediapipe) are
imported on first attribute access, and MiniLM loads on the first text encode.
"""

from __future__ import annotations

from .curve import EmotionCurve
from .embedding import CONDITION_DIM, EMOTIONS, VAD_ANCHORS, EmotionEmbedding
from .fusion import encode_emotion, fuse_emotions
from .spec import load_encoder, parse_emotion_spec

__all__ = [
    "CONDITION_DIM",
    "EMOTIONS",
    "EmotionCurve",
    "VAD_ANCHORS",
    "EmotionEmbedding",
    "FaceEmotionEncoder",
    "SpeechEmotionEncoder",
    "TextEmotionEncoder",
    "encode_emotion",
    "fuse_emotions",
    "load_encoder",
    "parse_emotion_spec",
]

# heavy imports (diffusers, opensmile, mediapipe) deferred to first access
_LAZY = {
    "TextEmotionEncoder": "affectstudio.conditioning.emotion.text",
    "SpeechEmotionEncoder": "affectstudio.conditioning.emotion.speech",
    "FaceEmotionEncoder": "affectstudio.conditioning.emotion.face",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
