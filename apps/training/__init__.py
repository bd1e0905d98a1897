"""Trainers, one module per target, each with ``main(argv)``; ``affectstudio train TARGET`` dispatches here."""

from __future__ import annotations

import importlib

from affectstudio.errors import InputError

TRAINERS = {
    "portrait": "affectstudio.apps.training.portrait",
    "emotion-text": "affectstudio.apps.training.emotion_text",
    "emotion-speech": "affectstudio.apps.training.emotion_speech",
    "emotion-face": "affectstudio.apps.training.emotion_face",
    "music": "affectstudio.apps.training.music",
    "dubbing": "affectstudio.apps.training.dubbing",
}


def run_trainer(target: str, argv: list[str]) -> None:
    if target not in TRAINERS:
        raise InputError(f"unknown training target {target!r}; choose one of: {', '.join(TRAINERS)}")
    importlib.import_module(TRAINERS[target]).main(argv)
