"""Hostile and clumsy input (issue 16): the studio's Batch tab touches only its own files, job files cannot bomb
memory, outputs never overwrite inputs, long scripts are refused before any model loads, and every mistake is one
short line, fast. The CLI and the studio are both checked where both reach a defect."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import yaml
from PIL import Image

from affectstudio.apps.cli import main
from affectstudio.apps.jobs.batch_tasks import load_job_file, validate_jobs
from affectstudio.errors import InputError

SECRET = "s3cret-token-0123456789abcdef"


def no_progress(*args, **kwargs):
    return None


def cli(argv, capsys) -> tuple[int, str, float]:
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    return exc.value.code, capsys.readouterr().err, time.perf_counter() - start


@pytest.fixture
def face(tmp_path) -> Path:
    path = tmp_path / "face.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(path)
    return path


@pytest.fixture
def private(tmp_path) -> Path:
    """A server file a studio client must never see: text, a curve-like csv and a photo outside the studio."""
    d = tmp_path / "private"
    d.mkdir()
    (d / "notes.yaml").write_text(f"jobs: [\n  {SECRET}: {{\n")
    (d / "curve.csv").write_text(f"{SECRET},happy\n")
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(d / "photo.png")
    return d


# ------------------------------------------------------------------------------------------- studio batch


def studio_run(job_file=None, media=None, use_example=False, folder="t", resume=False):
    from affectstudio.apps.studio import batch as studio_batch

    return studio_batch.run(job_file, media, use_example, folder, resume, 1, progress=no_progress)


@pytest.fixture
def studio_tmp(tmp_path, monkeypatch):
    """The studio's own folder under a per-test temp directory."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "systmp"))
    (tmp_path / "systmp").mkdir()
    return tmp_path / "systmp" / "affectstudio-studio"


def test_studio_batch_refuses_media_outside_the_upload_and_its_own_folders(tmp_path, private, studio_tmp, face):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for i, (key, value) in enumerate(
        [
            ("image", str(private / "photo.png")),  # absolute path outside
            ("image", "../private/photo.png"),  # relative escape
            ("emotion", str(private / "curve.csv")),  # a curve file outside
            ("emotion", f"neutral@0; {private / 'photo.png'}@2"),  # a face reference inside a curve
        ]
    ):
        job = {"id": f"j{i}", "task": "portrait", "image": "face.png", "text": "hi", "output": f"o{i}.mp4"}
        job[key] = value
        jobs = uploads / f"jobs{i}.yaml"
        jobs.write_text(yaml.safe_dump({"jobs": [job]}))
        with pytest.raises(gr.Error) as exc:
            studio_run(str(jobs), [str(face)])
        message = str(exc.value.message)
        assert "uploaded with the job file" in message or "inside a curve" in message, message
        assert SECRET not in message and str(private) not in message
    assert not (studio_tmp / "batch" / "t").exists()  # nothing rendered, no output folder made


def test_studio_batch_takes_job_files_only_as_uploads_and_outputs_only_in_its_folder(studio_tmp, tmp_path, face):
    with pytest.raises(gr.Error, match="Upload a job file"):
        studio_run(None)
    bad_names = ["../escape", "/tmp/x", ".hidden", "a/b", ""]
    for name in bad_names:
        with pytest.raises(gr.Error, match="output folder name"):
            studio_run(None, use_example=True, folder=name)
    text = tmp_path / "jobs.txt"
    text.write_text("jobs: []")
    with pytest.raises(gr.Error, match=r"\.yaml"):
        studio_run(str(text))
    assert not any((studio_tmp / "batch").glob("*")) if (studio_tmp / "batch").exists() else True


def test_studio_batch_yaml_error_does_not_echo_the_file(private, studio_tmp):
    with pytest.raises(gr.Error) as exc:
        studio_run(str(private / "notes.yaml"))
    message = str(exc.value.message)
    assert "not valid YAML" in message and "line" in message and SECRET not in message


def test_bundled_example_validates_inside_the_studio_folders(tmp_path):
    from affectstudio.apps.studio.batch import _own_folders

    example = _own_folders()[1] / "jobs_example.yaml"
    jobs = validate_jobs(load_job_file(example), example.resolve().parent, tmp_path, input_roots=_own_folders())
    assert [j.id for j in jobs] == ["hello-happy", "speech-curve", "broken-on-purpose"]


def test_uploaded_media_resolve_by_name(tmp_path, studio_tmp, face, monkeypatch):
    """A job naming an uploaded photo by its file name validates; its renderer sees the staged copy."""
    from affectstudio.apps.jobs import batch as batch_mod

    seen = {}

    def fake_run_batch(jobs_file, out_dir, input_roots=None, **kwargs):
        jobs = validate_jobs(load_job_file(jobs_file), Path(jobs_file).parent, out_dir, input_roots)
        seen["image"] = jobs[0].kwargs["image"]
        seen["out"] = jobs[0].outputs[0]
        raise InputError("stop here")

    monkeypatch.setattr(batch_mod, "run_batch", fake_run_batch)
    jobs = tmp_path / "mine.yml"
    jobs.write_text(
        yaml.safe_dump({"jobs": [{"id": 1, "task": "portrait", "image": "face.png", "text": "hi", "output": "a.mp4"}]})
    )
    with pytest.raises(gr.Error, match="stop here"):
        studio_run(str(jobs), [str(face)])
    assert seen["image"].name == "face.png" and studio_tmp.resolve() in seen["image"].resolve().parents
    assert (studio_tmp / "batch" / "t").resolve() in seen["out"].parents


# ------------------------------------------------------------------------------------------ YAML and values

ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "jobs: [{id: x, task: portrait, image: *g, text: hi, output: a.mp4}]\n"
)


def test_yaml_alias_bomb_is_refused_in_one_short_line(tmp_path, capsys, studio_tmp):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    code, err, seconds = cli(["batch", bomb, "--out-dir", tmp_path / "out"], capsys)
    assert code == 2 and err.startswith("error:") and "anchors" in err
    assert len(err) < 300 and len(err.splitlines()) == 1 and seconds < 2.0
    with pytest.raises(gr.Error, match="anchors"):
        studio_run(str(bomb))
    merge = tmp_path / "merge.yaml"
    merge.write_text("base: &b {task: portrait}\njobs: [{<<: *b, id: x}]\n")
    with pytest.raises(InputError, match="anchors"):
        load_job_file(merge)


def test_validation_errors_quote_short_values_only(tmp_path, capsys, face):
    long_value = "A" * 100_000
    nested = [[["x"] * 50 for _ in range(50)] for _ in range(10)]
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        yaml.safe_dump(
            {
                "jobs": [
                    {
                        "id": "a",
                        "task": "portrait",
                        "image": "face.png",
                        "text": "hi",
                        "seed": long_value,
                        "output": "a.mp4",
                    },
                    {"id": "b", "task": long_value, "output": "b.mp4"},
                    {"id": "c", "task": "portrait", "image": nested, "text": "hi", "output": "c.mp4"},
                    {
                        "id": long_value,
                        "task": "portrait",
                        "image": "face.png",
                        "text": "hi",
                        long_value: 1,
                        "output": long_value + ".mp4",
                    },
                ],
                long_value: 1,
            }
        )
    )
    code, err, _ = cli(["batch", jobs, "--out-dir", tmp_path / "out"], capsys)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err
    assert len(err) < 2000, len(err)
    assert "job a: 'seed' must be an integer, got 'AAAA" in err
    assert "a list of 10 item(s)" in err


def test_deeply_nested_or_huge_job_file_is_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.yaml"
    deep.write_text("jobs: " + "[" * 5000 + "]" * 5000 + "\n")
    code, err, _ = cli(["batch", deep, "--out-dir", tmp_path / "out"], capsys)
    assert code == 2 and err.startswith("error:") and len(err.splitlines()) == 1
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * (2 << 20) + "\njobs: []\n")
    code, err, _ = cli(["batch", huge, "--out-dir", tmp_path / "out"], capsys)
    assert code == 2 and "at most" in err


def test_curve_file_errors_do_not_echo_content(private):
    from affectstudio.conditioning.emotion import parse_emotion_spec

    with pytest.raises(InputError) as exc:
        parse_emotion_spec(str(private / "curve.csv"))
    assert "row 1" in str(exc.value) and SECRET not in str(exc.value)
    bad_json = private / "curve.json"
    bad_json.write_text(f'[{{"time": "{SECRET}", "emotion": "happy"}}]')
    with pytest.raises(InputError) as exc:
        parse_emotion_spec(str(bad_json))
    assert "keyframe 1" in str(exc.value) and SECRET not in str(exc.value)
