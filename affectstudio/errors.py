"""Typed errors. Everything a user can fix is an :class:`InputError`; the CLI turns it into one
``error: <message>`` line and exit code 2, the studio into a ``gr.Error``."""

from __future__ import annotations


class AffectStudioError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(AffectStudioError, ValueError):
    """Bad user input: the message says what is wrong and what to do about it."""


class MissingFileError(InputError, FileNotFoundError):
    """An input path does not exist."""


class MediaDecodeError(InputError):
    """A media file exists but cannot be decoded (corrupt, empty or unsupported)."""


class NoFaceError(InputError):
    """No face was found where one is needed."""


class NoSpeechError(InputError):
    """Audio holds no speech where speech is needed (silence, noise only, empty file)."""


class EmptyTextError(InputError):
    """Text input is empty or whitespace only."""


class UnknownEmotionError(InputError):
    """An emotion spec names a label that is not one of the eight."""


class InputTooLongError(InputError):
    """An input exceeds a configured length limit."""


class DependencyError(AffectStudioError):
    """An optional package or system library this feature needs is missing; the message names it."""


def quote_value(value: object, limit: int = 32) -> str:
    """A short, printable quotation of a user-supplied value for an error message: at most ``limit`` characters,
    control and non-printing characters as ``?``, cut with ``…``. Error messages never echo whole values (a job
    file's or curve file's content may come from a file the user should not see, or be megabytes long)."""
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {type(value).__name__} of {len(value)} item(s)"  # never the repr of a nested structure
    text = value if isinstance(value, str) else repr(value)
    head = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return repr(head[:limit] + "…") if len(text) > limit else repr(head)
