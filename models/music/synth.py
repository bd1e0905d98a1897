"""SoundFont rendering: a ``pretty_midi`` score → one waveform per part (stems), through FluidSynth.

FluidSynth (Debian ``libfluidsynth3`` via ``pyfluidsynth``) reads SF2 and SF3 and, with dynamic sample
loading, opens a 35 MB SF3 in ~0.02 s and decodes only the presets a score uses. Measured here on 60 s of
four parts: FluidSynth 1.3–1.5 s (warm), ``pretty_midi.fluidsynth`` 2.8 s (it reloads the font per
instrument; 9 s with the SF3), ``tinysoundfont`` 0.85 s but SF2 only. FluidSynth is used.

The default font is the best permissive General MIDI font found (:data:`SOUNDFONT_SEARCH`): MuseScore
General (MIT; Debian ``musescore-general-soundfont-small``, installed by ``scripts/setup.sh``), then
FluidR3_GM (MIT), then TimGM6mb as pretty_midi/Debian ship it (GPL, used in place, never copied). A user
``.sf2``/``.sf3`` is checked (RIFF ``sfbk`` header, FluidSynth must load it) and rejected with an InputError.

Reproducible: the same score gives the same samples bit for bit (each part on a fresh synth borrowing the loaded
font, float output without dither — see :class:`_Font`). Quiet without touching fd 2: FluidSynth's and GLib's log
messages go to the ``affectstudio.fluidsynth`` logger (:func:`_native_api`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
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


_LOG = logging.getLogger("affectstudio.fluidsynth")
_native_lock = threading.Lock()
_native: dict = {}  # the ctypes callbacks and functions, kept alive for the process


def _native_log(source: str, level: int, msg) -> None:
    _LOG.debug("%s[%d]: %s", source, level, (msg or b"").decode("utf-8", "replace"))


def _native_api():
    """FluidSynth's float writer, with FluidSynth's and libinstpatch's (GLib) log messages routed to the
    ``affectstudio.fluidsynth`` logger (debug) instead of file descriptor 2: nothing native is printed and fd 2 is
    never redirected, so another thread's error line always reaches stderr (a dup2 around the load raced between
    the render threads and could leave fd 2 on /dev/null). Set up once per process, under a lock."""
    with _native_lock:
        if _native:
            return _native
        import ctypes

        import fluidsynth

        lib = fluidsynth._fl
        log_fn = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)(
            lambda level, msg, data: _native_log("fluidsynth", level, msg)
        )
        lib.fluid_set_log_function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        for level in range(5):  # FLUID_PANIC .. FLUID_DBG
            lib.fluid_set_log_function(level, ctypes.cast(log_fn, ctypes.c_void_p), None)
        _native["log_fn"] = log_fn
        try:  # libinstpatch (FluidSynth's DLS reader) reports through GLib's default log domain
            glib = ctypes.CDLL(ctypes.util.find_library("glib-2.0") or "libglib-2.0.so.0")
            glib_fn = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)(
                lambda domain, level, msg, data: _native_log("glib", level, msg)
            )
            glib.g_log_set_default_handler.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            glib.g_log_set_default_handler.restype = ctypes.c_void_p
            glib.g_log_set_default_handler(ctypes.cast(glib_fn, ctypes.c_void_p), None)
            _native["glib_fn"] = glib_fn
        except OSError:  # no GLib: FluidSynth without libinstpatch prints nothing through it
            pass
        for name, res, args in (
            ("fluid_synth_get_sfont_by_id", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
            ("fluid_synth_add_sfont", ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
            ("fluid_synth_remove_sfont", ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
        ):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
            _native[name.removeprefix("fluid_synth_").replace("_by_id", "")] = fn
        write = lib.fluid_synth_write_float
        write.argtypes = [ctypes.c_void_p, ctypes.c_int] + [ctypes.c_void_p, ctypes.c_int, ctypes.c_int] * 2
        write.restype = ctypes.c_int
        _native["write_float"] = write
        return _native


def _samples(synth, n: int) -> np.ndarray:
    """``n`` stereo frames as float32 ``(n, 2)``: FluidSynth's float output (its 16-bit writer dithers from a
    counter that carries over between calls, so the same score rendered twice differed by up to 0.016)."""
    out = np.zeros((n, 2), dtype=np.float32)
    if n:
        ptr = out.ctypes.data
        _native_api()["write_float"](synth.synth, n, ptr, 0, 2, ptr + 4, 0, 2)
    return out


def load_soundfont(path=None) -> Path:
    """Resolve (``None``: the default font) and fully validate a SoundFont by loading it (~0.02 s with
    dynamic sample loading); InputError for a file FluidSynth cannot read."""
    p = check_soundfont(path) if path is not None else default_soundfont()
    _load_font(str(p))
    return p


SYNTH_SETTINGS = {"synth.dynamic-sample-loading": 1, "synth.polyphony": 256, "synth.chorus.active": 0}


class _Font:
    """One loaded SoundFont, owned by a *holder* synth that is never played.

    Every part renders on a fresh synth that borrows the font (``fluid_synth_add_sfont``): FluidSynth's voices,
    filters and reverb keep state between renders that no reset clears (the same score rendered twice on one
    synth differed by up to 3e-3 per stem), while a fresh synth is exactly reproducible — bit for bit, in any
    order, in any process. A fresh synth costs ~0.03 s; the font's decoded presets stay with the holder, which
    keeps every preset a render used selected on one of its channels, so each is decoded once per process."""

    def __init__(self, path: str):
        try:
            import fluidsynth
        except (ImportError, OSError) as e:
            raise DependencyError(
                f"music rendering needs pyfluidsynth and libfluidsynth3 ({e}): run scripts/setup.sh"
            ) from e
        api = _native_api()
        self._fluidsynth = fluidsynth
        self.holder = fluidsynth.Synth(samplerate=float(SAMPLE_RATE), **SYNTH_SETTINGS, **{"synth.midi-channels": 256})
        self.sfid = self.holder.sfload(path)
        if self.sfid < 0:
            self.holder.delete()
            raise InputError(f"FluidSynth could not load the SoundFont {path}: the file is damaged or not a SoundFont")
        self.sfont = api["get_sfont"](self.holder.synth, self.sfid)
        self.pinned: dict[tuple[int, int], int] = {}

    @contextlib.contextmanager
    def synth(self):
        """A fresh synth with the font: ``(synth, font_id)``."""
        api = _native_api()
        synth = self._fluidsynth.Synth(gain=0.5, samplerate=float(SAMPLE_RATE), **SYNTH_SETTINGS)
        synth.set_reverb(0.6, 0.3, 0.8, 0.35)
        sid = api["add_sfont"](synth.synth, self.sfont)
        try:
            yield synth, sid
        finally:
            synth.system_reset()
            api["remove_sfont"](synth.synth, self.sfont)
            synth.delete()

    def pin(self, bank: int, program: int) -> None:
        """Keep a preset's samples decoded: select it on a channel of the holder."""
        if (bank, program) not in self.pinned and len(self.pinned) < 256:
            ch = len(self.pinned)
            if self.holder.program_select(ch, self.sfid, bank, program) == 0:
                self.pinned[(bank, program)] = ch


def _render_instrument(font: _Font, inst, k: int, total: int, sample_rate: int) -> np.ndarray:
    name = inst.name or f"part{k}"
    ch = 9 if inst.is_drum else PART_CHANNEL.get(name, k % 9)
    bank = 128 if inst.is_drum else 0
    events = sorted(
        [(n.start, 1, n.pitch, n.velocity) for n in inst.notes] + [(n.end, 0, n.pitch, 0) for n in inst.notes]
    )
    with font.synth() as (synth, sid):
        program = inst.program
        if synth.program_select(ch, sid, bank, program) != 0:
            program = 0  # the font lacks it: its first
            synth.program_select(ch, sid, bank, program)
        font.pin(bank, program)
        chunks, cur = [], 0
        for t, on, pitch, vel in events:
            s = min(int(round(t * sample_rate / BLOCK)) * BLOCK, total)
            if s > cur:
                chunks.append(_samples(synth, s - cur))
                cur = s
            if on:
                synth.noteon(ch, pitch, vel)
            else:
                synth.noteoff(ch, pitch)
        if total > cur:
            chunks.append(_samples(synth, total - cur))
    stereo = np.concatenate(chunks)
    return (stereo.mean(1)[:total] * 10 ** (PART_GAIN_DB.get(name, 0.0) / 20)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _load_font(path: str, worker: int = 0) -> _Font:
    """The font loaded once per path and render thread (cached)."""
    return _Font(path)


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
            font = _load_font(path, w)
            return {
                inst.name or f"part{k}": _render_instrument(font, inst, k, total, sample_rate) for k, inst in groups[w]
            }

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(WORKERS) as pool:  # FluidSynth releases the GIL while it renders
        results = list(pool.map(work, range(WORKERS)))
    stems = {}
    for k, inst in jobs:  # the score's part order
        name = inst.name or f"part{k}"
        stems[name] = next(r[name] for r in results if name in r)
    return stems
