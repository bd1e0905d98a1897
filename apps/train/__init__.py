"""Trainers, one module per target, each with ``main(argv)``; ``affectstudio train TARGET`` dispatches here."""

from __future__ import annotations

import importlib

from affectstudio.errors import InputError

TRAINERS = {
    "portrait": "affectstudio.apps.train.portrait",
    "emotion-text": "affectstudio.apps.train.emotion_text",
    "emotion-speech": "affectstudio.apps.train.emotion_speech",
    "emotion-face": "affectstudio.apps.train.emotion_face",
    "music": "affectstudio.apps.train.music",
    "dubbing": "affectstudio.apps.train.dubbing",
}


def run_trainer(target: str, argv: list[str]) -> None:
    if target not in TRAINERS:
        raise InputError(f"unknown training target {target!r}; choose one of: {', '.join(TRAINERS)}")
    importlib.import_module(TRAINERS[target]).main(argv)
