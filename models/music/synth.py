"""SoundFont rendering: a ``pretty_midi`` score → one waveform per part (stems), through FluidSynth.

FluidSynth (Debian ``libfluidsynth3`` via ``pyfluidsynth``) reads SF2 and SF3 and, with dynamic sample
loading, opens a 35 MB SF3 in ~0.02 s and decodes only the presets a score uses. Measured here on 60 s of
four parts: FluidSynth 1.3–1.5 s (warm), ``pretty_midi.fluidsynth`` 2.8 s (it reloads the font per
instrument; 9 s with the SF3), ``tinysoundfont`` 0.85 s but SF2 only. FluidSynth is used.

The default font is the best permissive General MIDI font found (:data:`SOUNDFONT_SEARCH`): MuseScore
General (MIT; Debian ``musescore-general-soundfont-small``, installed by ``scripts/setup.sh``), then
FluidR3_GM (MIT), then TimGM6mb as pretty_midi/Debian ship it (GPL, used in place, never copied). A user
``.sf2``/``.sf3`` is checked (RIFF ``sfbk`` header, FluidSynth must load it) and rejected with an InputError.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from pathlib import Path

import numpy as np

from affectstudio.errors import DependencyError, InputError, MissingFileError

SAMPLE_RATE = 44100
SOUNDFONT_SEARCH = (
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
)
PART_GAIN_DB = {"pad": -3.0, "arp": -4.0, "bass": 0.0, "melody": 0.0, "drums": -1.0}
PART_CHANNEL = {"pad": 0, "arp": 1, "bass": 2, "melody": 3, "drums": 9}
WORKERS = 2  # parts render on this many FluidSynth instances in parallel threads
BLOCK = 64  # FluidSynth's block: every call is a whole number of blocks, so events land identically each run
_LOCKS = [threading.Lock() for _ in range(WORKERS)]


def default_soundfont() -> Path:
    """The first installed font of :data:`SOUNDFONT_SEARCH` (``AFFECTSTUDIO_SOUNDFONT`` overrides)."""
    env = os.environ.get("AFFECTSTUDIO_SOUNDFONT")
    if env:
        return check_soundfont(env)
    for p in SOUNDFONT_SEARCH:
        if Path(p).is_file():
            return Path(p)
    try:
        import pretty_midi

        bundled = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
        if bundled.is_file():
            return bundled
    except ImportError:
        pass
    raise DependencyError(
        "no General MIDI SoundFont found: run scripts/setup.sh "
        "(installs musescore-general-soundfont-small) or pass --soundfont FILE.sf2"
    )


def check_soundfont(path) -> Path:
    """Cheap validation of a user SoundFont file (exists, RIFF/sfbk header); InputError otherwise."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingFileError(f"SoundFont file not found: {p}")
    with open(p, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise InputError(f"{p} is not a SoundFont (.sf2/.sf3) file: its RIFF 'sfbk' header is missing")
    return p


@contextlib.contextmanager
def _quiet_stderr():
    """FluidSynth and libinstpatch log straight to file descriptor 2; silence it while a font loads so the
    CLI's stderr carries only our one-line errors."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture, notebooks)
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def load_soundfont(path=None) -> Path:
    """Resolve (``None``: the default font) and fully validate a SoundFont by loading it (~0.02 s with
    dynamic sample loading); InputError for a file FluidSynth cannot read."""
    p = check_soundfont(path) if path is not None else default_soundfont()
    _load_synth(str(p))
    return p


def _render_instrument(synth, sfid: int, inst, k: int, total: int, sample_rate: int) -> np.ndarray:
    name = inst.name or f"part{k}"
    ch = 9 if inst.is_drum else PART_CHANNEL.get(name, k % 9)
    synth.all_sounds_off(ch)
    synth.get_samples(BLOCK * (3 * sample_rate // BLOCK))  # the previous render's reverb tail dies out here
    if synth.program_select(ch, sfid, 128 if inst.is_drum else 0, inst.program) != 0:
        synth.program_select(ch, sfid, 128 if inst.is_drum else 0, 0)  # the font lacks it: its first
    events = sorted(
        [(n.start, 1, n.pitch, n.velocity) for n in inst.notes] + [(n.end, 0, n.pitch, 0) for n in inst.notes]
    )
    chunks, cur = [], 0
    for t, on, pitch, vel in events:
        s = min(int(round(t * sample_rate / BLOCK)) * BLOCK, total)
        if s > cur:
            chunks.append(synth.get_samples(s - cur))
            cur = s
        if on:
            synth.noteon(ch, pitch, vel)
        else:
            synth.noteoff(ch, pitch)
    for n in range(128):
        synth.noteoff(ch, n)
    if total > cur:
        chunks.append(synth.get_samples(total - cur))
    stereo = np.concatenate(chunks).astype(np.float32).reshape(-1, 2) / 32768.0
    return (stereo.mean(1)[:total] * 10 ** (PART_GAIN_DB.get(name, 0.0) / 20)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _load_synth(path: str, worker: int = 0):
    """A FluidSynth instance with the font loaded (cached per font path and worker thread)."""
    try:
        import fluidsynth
    except (ImportError, OSError) as e:
        raise DependencyError(
            f"music rendering needs pyfluidsynth and libfluidsynth3 ({e}): run scripts/setup.sh"
        ) from e
    synth = fluidsynth.Synth(
        gain=0.5,
        samplerate=float(SAMPLE_RATE),
        **{"synth.dynamic-sample-loading": 1, "synth.polyphony": 256, "synth.chorus.active": 0},
    )
    with _quiet_stderr():
        sfid = synth.sfload(path)
    if sfid < 0:
        synth.delete()
        raise InputError(f"FluidSynth could not load the SoundFont {path}: the file is damaged or not a SoundFont")
    synth.set_reverb(0.6, 0.3, 0.8, 0.35)
    return synth, sfid


def render_parts(
    pm, soundfont: str | os.PathLike | None = None, sample_rate: int = SAMPLE_RATE, tail: float = 2.5
) -> dict[str, np.ndarray]:
    """Render every instrument of ``pm`` separately (mono float32 at ``sample_rate``): ``{name: wave}``.

    All stems have the same length (the score's end plus ``tail`` seconds), so they sum to the mix.
    """
    if sample_rate != SAMPLE_RATE:
        raise InputError(f"music renders at {SAMPLE_RATE} Hz")
    path = str(check_soundfont(soundfont) if soundfont is not None else default_soundfont())
    total = int(np.ceil((pm.get_end_time() + tail) * sample_rate / BLOCK)) * BLOCK
    jobs = [(k, inst) for k, inst in enumerate(pm.instruments)]
    groups = [jobs[w::WORKERS] for w in range(WORKERS)]

    def work(w: int) -> dict[str, np.ndarray]:
        with _LOCKS[w]:
            synth, sfid = _load_synth(path, w)
            return {
                inst.name or f"part{k}": _render_instrument(synth, sfid, inst, k, total, sample_rate)
                for k, inst in groups[w]
            }

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(WORKERS) as pool:  # FluidSynth releases the GIL while it renders
        results = list(pool.map(work, range(WORKERS)))
    stems = {}
    for k, inst in jobs:  # the score's part order
        name = inst.name or f"part{k}"
        stems[name] = next(r[name] for r in results if name in r)
    return stems
