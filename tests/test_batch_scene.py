"""Scenes (``affectstudio scene`` and the ``scene`` batch task): cheap input errors before any model loads, and one
real end-to-end scene rendered through a batch job file."""

import json

import numpy as np
import pytest
from PIL import Image

from affectstudio.apps.cli import main


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    return exc.value.code, capsys.readouterr().err


def test_scene_user_errors_are_one_line(tmp_path, capsys):
    from affectstudio.assets import asset_path

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(blank)
    portrait = str(asset_path("samples", "portrait.jpg"))
    cases = [
        (["--image", str(tmp_path / "none.jpg"), "--text", "Hi."], "not found"),
        (["--image", portrait, "--text", "  "], "empty"),
        (["--image", portrait, "--text", "Hi.", "--emotion", "zorblax:0.5"], "zorblax"),
        (["--image", str(blank), "--text", "Hi."], "face"),
        (["--image", portrait, "--text", "Hi.", "--face", "3"], "only one face"),
        (["--image", portrait, "--text", "Hi.", "--face", "left"], "face must be"),
        (["--image", portrait, "--text", "Hi.", "--plot", str(tmp_path / "plot.txt")], ".png"),
        (["--image", portrait, "--text", "Hi.", "--voice-wav", str(tmp_path / "v.mp3")], ".wav"),
    ]
    for args, words in cases:
        out = tmp_path / "scene.mp4"
        code, err = run(capsys, "scene", *args, "-o", str(out))
        assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
        assert words in err.lower(), err
        assert not out.exists() and not list(tmp_path.glob(".scene*"))


@pytest.mark.slow
def test_scene_job_end_to_end(tmp_path, capsys):
    import yaml

    from affectstudio.assets import asset_path
    from affectstudio.media import load_audio
    from affectstudio.video_io import probe_video

    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        yaml.safe_dump(
            {
                "jobs": [
                    {
                        "id": "scene",
                        "task": "scene",
                        "image": str(asset_path("samples", "portrait.jpg")),
                        "text": "Hello. Now I am angry!",
                        "emotion": "neutral@0; angry:0.9@1",
                        "steps": 2,
                        "wav": "scene.wav",
                        "output": "scene.mp4",
                    }
                ]
            }
        )
    )
    code, err = run(capsys, "batch", str(jobs), "--out-dir", str(tmp_path / "out"))
    assert code == 0, err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest == [{"id": "scene", "status": "ok", "output": "scene.mp4", "error": None}]
    info = probe_video(tmp_path / "out" / "scene.mp4")
    assert info.has_audio and info.fps == pytest.approx(25) and info.width == 256
    mix, sr = load_audio(tmp_path / "out" / "scene.wav")
    assert abs(len(mix) / sr - info.duration) < 0.1 and 0.1 < np.abs(mix).max() < 0.95
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".scene")]
