"""The generator pipelines, importable lazily: ``from affectstudio.pipelines import VideoMusicPipeline``."""

import importlib

_LAZY = {
    "TalkingPortraitPipeline": "affectstudio.pipelines.portrait",
    "DubbingPipeline": "affectstudio.pipelines.dubbing",
    "DubbingOutput": "affectstudio.pipelines.dubbing",
    "VideoMusicPipeline": "affectstudio.pipelines.music",
    "VideoMusicOutput": "affectstudio.pipelines.music",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
