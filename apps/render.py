"""One function per job, shared by the CLI, the studio and batch rendering: validated inputs in, a file out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from affectstudio.errors import EmptyTextError, InputError


def read_emotions(text: Optional[str] = None, text_file: Optional[Path] = None, audio: Optional[Path] = None,
                  image: Optional[Path] = None) -> list:
    """Emotion readings (``EmotionEmbedding``) for one source: a text, each line of a text file, speech or a face."""
    from affectstudio.conditioning import emotion as E

    if text is not None:
        return [E.TextEmotionEncoder.from_pretrained().encode(text)]
    if text_file is not None:
        from affectstudio.errors import MissingFileError

        path = Path(text_file)
        if not path.is_file():
            raise MissingFileError(f"text file not found: {path}")
        try:
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as e:
            raise InputError(f"{path} is not a UTF-8 text file") from e
        lines = [ln for ln in lines if ln]
        if not lines:
            raise EmptyTextError(f"{path} has no text in it")
        return E.TextEmotionEncoder.from_pretrained().encode(lines)
    if audio is not None:
        return [E.SpeechEmotionEncoder.from_pretrained().encode(audio)]
    if image is not None:
        return [E.FaceEmotionEncoder.from_pretrained().encode(image)]
    raise InputError("nothing to read an emotion from")
