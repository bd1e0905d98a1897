"""AffectStudio: emotional media generation steered by one shared emotion space.

The public API is re-exported here lazily, so ``import affectstudio`` stays cheap::

    from affectstudio import TalkingPortraitPipeline, EmotionEmbedding, parse_emotion_spec
"""

from __future__ import annotations

import importlib

from .errors import (
    AffectStudioError,
    DependencyError,
    EmptyTextError,
    InputError,
    InputTooLongError,
    MediaDecodeError,
    MissingFileError,
    NoFaceError,
    NoSpeechError,
    UnknownEmotionError,
)

__version__ = "0.1.0"

_LAZY = {
    "TalkingPortraitPipeline": "affectstudio.pipelines.portrait",
    "TalkingPortraitOutput": "affectstudio.pipelines.portrait",
    "EmotionEmbedding": "affectstudio.conditioning.emotion",
    "parse_emotion_spec": "affectstudio.conditioning.emotion",
    "encode_emotion": "affectstudio.conditioning.emotion",
    "AffectDiT": "affectstudio.models.dit",
    "DubbingPipeline": "affectstudio.pipelines.dubbing",
    "DubbingOutput": "affectstudio.pipelines.dubbing",
    "VideoMusicPipeline": "affectstudio.pipelines.music",
    "VideoMusicOutput": "affectstudio.pipelines.music",
}

__all__ = [
    "AffectStudioError",
    "DependencyError",
    "EmptyTextError",
    "InputError",
    "InputTooLongError",
    "MediaDecodeError",
    "MissingFileError",
    "NoFaceError",
    "NoSpeechError",
    "UnknownEmotionError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'affectstudio' has no attribute {name!r}")
