"""`affectstudio dub` (docs/cli.md): writes the clip with speech (and the wav); bad input is one `error:` line,
exit code 2, nothing written."""

import numpy as np
import pytest

from affectstudio.apps.cli import main
from affectstudio.assets import asset_path
from affectstudio.media import write_wav
from affectstudio.video_io import probe_video, write_video

CLIP = str(asset_path("samples", "silent_talk.mp4"))
SCRIPT = asset_path("samples", "script.txt").read_text().strip()


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def assert_error(capsys, tmp_path, *argv, match=""):
    code, _, err = run(capsys, "dub", *argv, "-o", str(tmp_path / "out.mp4"), "--wav", str(tmp_path / "out.wav"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[0], lines[0]
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".*out*"))


def test_cheap_errors(capsys, tmp_path):
    assert_error(capsys, tmp_path, "--video", CLIP, "--text", "  ", match="empty")
    assert_error(capsys, tmp_path, "--video", CLIP, "--text", "hi", "--language", "tlh", match="unsupported language")
    assert_error(capsys, tmp_path, "--video", str(tmp_path / "nope.mp4"), "--text", "hi", match="not found")
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00garbage" * 100)
    assert_error(capsys, tmp_path, "--video", str(tmp_path / "corrupt.mp4"), "--text", "hi", match="video")
    assert_error(capsys, tmp_path, "--video", CLIP, "--text", "hi", "--emotion", "zorblax:0.5", match="zorblax")


@pytest.mark.slow
def test_errors_after_analysis(capsys, tmp_path):
    # too long for the clip: the preflight's bound (the aligner's own "needs about N s" is in test_dubbing_spread)
    assert_error(capsys, tmp_path, "--video", CLIP, "--text", SCRIPT * 4, match="shorten it")
    frames = (np.random.default_rng(0).random((20, 96, 96, 3)) * 60 + 90).astype(np.uint8)
    write_video(tmp_path / "noface.mp4", frames, 10.0)
    assert_error(capsys, tmp_path, "--video", str(tmp_path / "noface.mp4"), "--text", "hi", match="face")
    write_wav(tmp_path / "quiet.wav", np.zeros(24000, np.float32), 24000)
    assert_error(
        capsys, tmp_path, "--video", CLIP, "--text", "hi", "--voice", str(tmp_path / "quiet.wav"), match="speech"
    )


@pytest.mark.slow
def test_dub_writes_clip_and_wav(capsys, tmp_path):
    code, out, err = run(
        capsys,
        "dub",
        "--video",
        CLIP,
        "--text",
        SCRIPT,
        "--emotion",
        "sad:0.7",
        "--seed",
        "1",
        "-o",
        str(tmp_path / "d.mp4"),
        "--wav",
        str(tmp_path / "d.wav"),
    )
    assert code in (0, None), err
    info = probe_video(tmp_path / "d.mp4")
    assert info.has_audio and abs(info.duration - probe_video(CLIP).duration) < 0.1
    assert (tmp_path / "d.wav").stat().st_size > 100_000
