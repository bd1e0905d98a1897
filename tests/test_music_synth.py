"""SoundFont rendering is reproducible bit for bit, and never touches file descriptor 2 (issue 16 item 5: a music
render in threads used to leave fd 2 on /dev/null, so the next error line vanished)."""

import subprocess
import sys
import textwrap

import numpy as np
import pretty_midi

from affectstudio.models.music.synth import render_parts


def score(shift: int = 0) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=110)
    for k, (name, prog, drum) in enumerate((("pad", 48, False), ("bass", 33, False), ("drums", 0, True))):
        inst = pretty_midi.Instrument(prog, is_drum=drum, name=name)
        for i in range(6):
            pitch = 36 + 2 * (i % 3) if drum else 48 + (5 * i + 7 * k + shift) % 24
            inst.notes.append(pretty_midi.Note(85, pitch, 0.3 * i + 0.01 * k, 0.3 * i + 0.45))
        pm.instruments.append(inst)
    return pm


def test_same_score_same_samples_in_any_order():
    first = render_parts(score())
    render_parts(score(shift=3))  # another score in between: no state carries over
    again = render_parts(score())
    assert set(first) == set(again)
    for name in first:
        assert first[name].tobytes() == again[name].tobytes(), name
        assert np.abs(first[name]).max() > 1e-3, name


SCRIPT = textwrap.dedent(
    """
    import sys, threading, pretty_midi
    sys.path.insert(0, {tests!r})
    from test_music_synth import score
    from affectstudio.models.music.synth import load_soundfont, render_parts

    bad = {bad!r}
    open(bad, "wb").write(b"RIFF\\x10\\x00\\x00\\x00sfbk" + b"\\0" * 32)  # FluidSynth and libinstpatch complain
    def work(i):
        render_parts(score(i))
        try:
            load_soundfont(bad)
        except Exception:
            pass
    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print("error: after the music", file=sys.stderr, flush=True)
    """
)


def test_threaded_renders_leave_stderr_working(tmp_path):
    tests = str(__import__("pathlib").Path(__file__).parent)
    code = SCRIPT.format(tests=tests, bad=str(tmp_path / "fake.sf2"))
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert run.stderr == "error: after the music\n"  # the error line, and nothing native printed
