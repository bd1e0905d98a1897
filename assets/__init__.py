"""Bundled default checkpoints and samples (see LICENSES.md). ``asset_path`` is the one way to find them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def asset_path(*parts: str) -> Path:
    """Filesystem path of a bundled asset.

    E.g. ``asset_path("emotion_text")`` or ``asset_path("samples", "portrait.jpg")``.
    """
    path = Path(str(resources.files("affectstudio.assets").joinpath(*parts)))
    if not path.exists():
        raise FileNotFoundError(f"bundled asset {'/'.join(parts)} is missing from this installation ({path})")
    return path
