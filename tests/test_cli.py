"""The CLI contract (docs/cli.md): subcommands, JSON output, one-line errors with exit code 2, no partial outputs."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from affectstudio.apps.cli import main
from affectstudio.media import write_wav

SUBCOMMANDS = ["demo", "portrait", "dub", "music", "emotion", "batch", "studio", "bench", "train"]


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def assert_one_line_error(code, err):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


def test_help_lists_every_subcommand():
    proc = subprocess.run([sys.executable, "-m", "affectstudio", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in SUBCOMMANDS:
        assert f"  {name}" in proc.stdout


def test_usage_errors_are_one_line(capsys):
    assert_one_line_error(*run(capsys, "portrait", "--image", "x.png")[::2])  # missing -o
    assert_one_line_error(*run(capsys, "emotion")[::2])
    assert_one_line_error(*run(capsys, "emotion", "--text", "hi", "--audio", "a.wav")[::2])
    assert_one_line_error(*run(capsys, "nonsense")[::2])


@pytest.mark.parametrize(
    "cmd", [["dub", "--video", "v.mp4", "--text", "hi", "-o", "o.mp4"], ["music", "--video", "v.mp4", "-o", "o.mp4"]]
)
def test_generators_report_a_missing_video_in_one_line(capsys, cmd):
    code, _, err = run(capsys, *cmd)
    assert_one_line_error(code, err)
    assert "not found" in err and "v.mp4" in err


def test_emotion_text_json(capsys):
    code, out, err = run(capsys, "emotion", "--text", "I can't stop smiling, this is the best day ever!", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert set(d) == {"label", "probs", "valence", "arousal", "dominance", "intensity"}
    assert d["label"] == "happy" and abs(sum(d["probs"].values()) - 1) < 1e-3 and d["valence"] > 0


def test_emotion_text_file_one_object_per_line(capsys, tmp_path):
    f = tmp_path / "lines.txt"
    f.write_text("My dog died this morning.\n\nGet out of my house right now!\n")
    code, out, err = run(capsys, "emotion", "--text-file", str(f), "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["label"] for r in rows] == ["sad", "angry"]


def test_emotion_image_reads_the_bundled_smile(capsys):
    from affectstudio.assets import asset_path

    code, out, err = run(capsys, "emotion", "--image", str(asset_path("samples", "portrait.jpg")), "--json")
    assert code == 0, err
    assert json.loads(out)["label"] == "happy"


def test_emotion_bad_inputs(capsys, tmp_path):
    (tmp_path / "corrupt.jpg").write_bytes(b"definitely not a jpeg")
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    write_wav(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "empty.txt").write_text("\n  \n")
    cases = [
        ["--image", str(tmp_path / "missing.png")],
        ["--image", str(tmp_path / "corrupt.jpg")],
        ["--image", str(tmp_path / "wall.png")],
        ["--text", "   "],
        ["--audio", str(tmp_path / "silence.wav")],
        ["--text-file", str(tmp_path / "empty.txt")],
        ["--audio", str(tmp_path / "nope.wav")],
    ]
    for case in cases:
        code, _, err = run(capsys, "emotion", *case)
        assert_one_line_error(code, err)


def test_portrait_bad_inputs_leave_no_output(capsys, tmp_path):
    from affectstudio.assets import asset_path

    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt definitely not audio")
    write_wav(tmp_path / "long.wav", np.zeros(3 * 16000, np.float32), 16000)
    face = str(asset_path("samples", "portrait.jpg"))
    out = tmp_path / "out.mp4"
    for case in [
        ["--image", face, "--audio", str(tmp_path / "corrupt.wav")],
        ["--image", face, "--audio", str(tmp_path / "long.wav"), "--max-seconds", "2"],
        ["--image", face, "--text", "A script far longer than one second. " * 4, "--max-seconds", "1"],
        ["--image", str(tmp_path / "missing.png"), "--text", "hello"],
        ["--image", str(tmp_path / "wall.png"), "--text", "hello"],
        ["--image", str(tmp_path / "wall.png"), "--text", "   "],
        ["--image", str(tmp_path / "wall.png"), "--text", "hi", "--emotion", "zorblax:0.5"],
        ["--image", str(tmp_path / "wall.png"), "--audio", str(tmp_path / "none.wav")],
    ]:
        code, _, err = run(capsys, "portrait", *case, "-o", str(out))
        assert_one_line_error(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.wav", "long.wav", "wall.png"]


@pytest.mark.slow
def test_portrait_end_to_end_subprocess(tmp_path):
    from affectstudio.assets import asset_path
    from affectstudio.video_io import probe_video

    out = tmp_path / "clip.mp4"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "affectstudio",
            "portrait",
            "--image",
            str(asset_path("samples", "portrait.jpg")),
            "--text",
            "Hello there, how are you?",
            "--emotion",
            "happy:0.8",
            "--steps",
            "4",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = probe_video(out)
    assert info.fps == 25 and info.width == 256 and info.has_audio and info.num_frames > 25


@pytest.mark.parametrize("case", ["missing_image", "unknown_label", "no_face"])
def test_portrait_input_errors_come_before_any_generator_loads(tmp_path, case):
    """Fail fast: a missing file, a bad emotion label or a face-less photo is reported before torch (and so any
    model) is imported — under two seconds on a CPU instead of the model-loading time."""
    from affectstudio.assets import asset_path

    photo = str(asset_path("samples", "portrait.jpg"))
    speech = str(asset_path("samples", "speech.wav"))
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(blank)
    args = {
        "missing_image": ["--image", str(tmp_path / "missing.png")],
        "unknown_label": ["--image", photo, "--emotion", "zorblax:0.5"],
        "no_face": ["--image", str(blank)],
    }[case]
    out = tmp_path / "out.mp4"
    code = (
        "import sys\nfrom affectstudio.apps.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
        "    print('torch' in sys.modules, e.code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "portrait", *args, "--audio", speech, "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.stdout.split() == ["False", "2"], (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ") and not out.exists()


def test_train_help_reaches_the_trainer():
    top = subprocess.run([sys.executable, "-m", "affectstudio", "train", "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and "targets:" in top.stdout and "music" in top.stdout
    own = subprocess.run(
        [sys.executable, "-m", "affectstudio", "train", "portrait", "--help"], capture_output=True, text=True
    )
    assert own.returncode == 0 and "--steps" in own.stdout and "--data" in own.stdout


@pytest.mark.parametrize("target", ["portrait", "dubbing", "music", "emotion-text", "emotion-speech", "emotion-face"])
def test_trainers_name_their_output_folder_alike(target, capsys):
    from affectstudio.apps.training import run_trainer

    with pytest.raises(SystemExit) as exc:
        run_trainer(target, ["--help"])
    assert exc.value.code == 0 and "--output" in capsys.readouterr().out
