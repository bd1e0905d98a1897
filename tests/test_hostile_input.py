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


# ---------------------------------------------------------------------------------- outputs, text, seeds


def _clip(path: Path, seconds: float = 2.0, frames: int | None = None) -> Path:
    import subprocess

    from affectstudio.media import ffmpeg_exe

    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=s=64x64:d={seconds}:r=25"]
    cmd += ["-frames:v", str(frames)] if frames else []
    subprocess.run([*cmd, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


@pytest.fixture
def media(tmp_path, face) -> dict:
    from affectstudio.media import write_wav

    wav = write_wav(tmp_path / "speech.wav", np.zeros(8000, np.float32), 16000)
    return {"clip": _clip(tmp_path / "clip.mp4"), "face": face, "wav": wav, "dir": tmp_path}


def _unchanged(path: Path, before: bytes) -> bool:
    return path.read_bytes() == before


@pytest.mark.parametrize(
    "argv",
    [
        ["dub", "--video", "{clip}", "--text", "hello", "-o", "{clip}"],
        ["dub", "--video", "{clip}", "--text", "hello", "--voice", "{wav}", "-o", "{dir}/o.mp4", "--wav", "{wav}"],
        ["music", "--video", "{clip}", "-o", "{dir}/./clip.mp4"],
        ["portrait", "--image", "{face}", "--audio", "{clip}", "-o", "{clip}"],
        ["scene", "--image", "{face}", "--text", "hi", "--voice", "{wav}", "-o", "{dir}/s.mp4", "--wav", "{wav}"],
    ],
)
def test_output_equal_to_an_input_is_refused_before_rendering(argv, media, capsys):
    before = {k: Path(v).read_bytes() for k, v in media.items() if k != "dir"}
    code, err, seconds = cli([a.format(**media) for a in argv], capsys)
    assert code == 2 and err.startswith("error:") and "input" in err and len(err.splitlines()) == 1, err
    assert all(_unchanged(Path(media[k]), b) for k, b in before.items())
    assert not list(media["dir"].glob(".*partial*")) and not (media["dir"] / "o.mp4").exists()


def test_output_through_a_hard_link_is_the_same_file(media):
    from affectstudio.apps.jobs.preflight import require_distinct

    link = media["dir"] / "link.mp4"
    link.hardlink_to(media["clip"])
    with pytest.raises(InputError, match="is the --video input"):
        require_distinct({"output": link}, {"video": media["clip"]})


def test_batch_job_output_onto_its_input_fails_only_that_job(tmp_path, media):
    """Batch outputs live in --out-dir, inputs next to the job file; an input inside --out-dir named as the output is
    caught by the renderer's own preflight (the job fails, the input is untouched)."""
    from affectstudio.apps.jobs.batch import MANIFEST, run_batch

    out = tmp_path / "out"
    out.mkdir()
    clip = out / "c.mp4"
    clip.write_bytes(media["clip"].read_bytes())
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump({"jobs": [{"id": "m", "task": "music", "video": str(clip), "output": "c.mp4"}]}))
    assert run_batch(jobs, out, echo=lambda line: None) == 1
    import json

    entry = json.loads((out / MANIFEST).read_text())[0]
    assert entry["status"] == "failed" and "is the --video input" in entry["error"]
    assert clip.read_bytes() == media["clip"].read_bytes()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["music", "--video", "{clip}", "-o", "{dir}"], "must be a .mp4"),
        (["music", "--video", "{clip}", "-o", "{dir}/folder.mp4"], "is a folder"),
        (["music", "--video", "{clip}", "-o", "{face}/x.mp4"], "is not a folder"),
        (["dub", "--video", "{clip}", "--text", "hi", "--seed", "-1", "-o", "{dir}/o.mp4"], "--seed"),
        (["scene", "--image", "{face}", "--text", "hi", "--seed", "-1", "-o", "{dir}/o.mp4"], "--seed"),
        (["music", "--video", "{clip}", "--seed", "-1", "-o", "{dir}/o.mp4"], "--seed"),
    ],
)
def test_bad_outputs_and_seeds_are_one_line_before_rendering(argv, words, media, capsys):
    (media["dir"] / "folder.mp4").mkdir()
    code, err, seconds = cli([a.format(**media) for a in argv], capsys)
    assert code == 2 and err.startswith("error:") and words in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and not list(media["dir"].glob(".*partial*"))


def test_unwritable_output_folder_is_refused(media, monkeypatch):
    import tempfile

    from affectstudio.apps.jobs.preflight import require_output

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)  # root ignores chmod; the probe file is what counts
    with pytest.raises(InputError, match="not writable"):
        require_output(media["dir"] / "new" / "o.mp4", ".mp4")


def test_failed_rename_leaves_no_partial_file(tmp_path):
    from affectstudio.media import atomic_path

    target = tmp_path / "out.mp4"
    target.mkdir()
    with pytest.raises(InputError, match="is a folder"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_batch_seed_below_zero_is_a_structure_error(tmp_path, face, capsys):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        yaml.safe_dump(
            {"jobs": [{"id": "s", "task": "portrait", "image": str(face), "text": "hi", "seed": -1, "output": "a.mp4"}]}
        )
    )
    code, err, _ = cli(["batch", jobs, "--out-dir", tmp_path / "out"], capsys)
    assert code == 2 and "job s: 'seed' must be from 0" in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["dub", "--video", "{clip}", "--text", "A long script. " * 400, "-o", "{dir}/o.mp4"], "fits at most 50"),
        (["portrait", "--image", "{face}", "--text", "x" * 20_000, "-o", "{dir}/o.mp4"], "fits at most 15000"),
        (
            ["portrait", "--image", "{face}", "--text", "word " * 100, "--max-seconds", "2", "-o", "{dir}/o.mp4"],
            "fits at most 50",
        ),
        (["scene", "--image", "{face}", "--text", "x" * 20_000, "-o", "{dir}/o.mp4"], "fits at most 15000"),
        (["dub", "--video", "{clip}", "--text", "?!... —", "-o", "{dir}/o.mp4"], "nothing to pronounce"),
        (["portrait", "--image", "{face}", "--text", "🎉🔥", "-o", "{dir}/o.mp4"], "nothing to pronounce"),
        (["dub", "--video", "{clip}", "--text", "你好，世界", "-o", "{dir}/o.mp4"], "--language"),
        (["dub", "--video", "{clip}", "--text", "שלום עולם", "-o", "{dir}/o.mp4"], "--language"),
    ],
)
def test_scripts_are_checked_before_any_model_loads(argv, words, media, capsys):
    import sys

    code, err, seconds = cli([a.format(**media) for a in argv], capsys)
    assert code == 2 and err.startswith("error:") and words in err and len(err.splitlines()) == 1, err
    assert "torch" not in sys.modules or seconds < 5.0  # no model was loaded to find this out


def test_script_helpers_drop_emoji_and_keep_letters():
    from affectstudio.conditioning.phonemes import check_script, drop_symbols

    assert drop_symbols("Great 😀🎉 news ❤️!").split() == ["Great", "news", "!"]
    assert check_script("Café crème, 5 € — naïve", 10, "fr") == "Café crème, 5 € — naïve"
    assert check_script("Привет", 10, "ru") == "Привет"
    with pytest.raises(InputError, match="--language"):
        check_script("Привет, мир", 10, "en")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: _clip(d / "one.mp4", frames=1), "single image"),
        (lambda d: Path(Image.new("RGB", (64, 64)).save(d / "png.mp4", format="PNG") or d / "png.mp4"), "single image"),
        (lambda d: (d / "empty.mp4").write_bytes(b"") and d / "empty.mp4" or d / "empty.mp4", "empty"),
    ],
)
def test_videos_that_are_not_clips_fail_fast(make, words, tmp_path, capsys):
    video = make(tmp_path)
    for argv in (
        ["dub", "--video", video, "--text", "hello there", "-o", tmp_path / "o.mp4"],
        ["music", "--video", video, "-o", tmp_path / "o.mp4"],
    ):
        code, err, seconds = cli(argv, capsys)
        assert code == 2 and words in err and len(err.splitlines()) == 1, err


def test_scene_work_folder_of_a_dead_process_is_removed(tmp_path):
    import subprocess

    from affectstudio.apps.jobs.scene import remove_stale_work, work_prefix

    out = tmp_path / "s.mp4"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{work_prefix(out)}{dead.pid}-abc"
    (stale / "sub").mkdir(parents=True)
    (stale / "voice.wav").write_bytes(b"x")
    running = tmp_path / f"{work_prefix(out)}{__import__('os').getpid()}-def"
    running.mkdir()
    assert remove_stale_work(out) == [stale]
    assert not stale.exists() and running.exists()


# ------------------------------------------------------------------------------ bombs, protocols, fast checks


def _png_bomb(path: Path, side: int = 15000) -> Path:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_png_is_one_line(tmp_path, media, capsys):
    from affectstudio.errors import MediaDecodeError
    from affectstudio.media import load_image

    bomb = _png_bomb(tmp_path / "bomb.png")
    with pytest.raises(MediaDecodeError, match="megapixels"):
        load_image(bomb)
    for argv in (
        ["portrait", "--image", bomb, "--audio", media["wav"], "-o", tmp_path / "o.mp4"],
        ["scene", "--image", bomb, "--text", "hi", "-o", tmp_path / "o.mp4"],
        ["emotion", "--image", bomb],
    ):
        code, err, _ = cli(argv, capsys)
        assert code == 2 and "megapixels" in err and len(err.splitlines()) == 1, err


def test_ffmpeg_reads_a_protocol_looking_name_as_a_file(tmp_path, media):
    from affectstudio.video_io import probe_video

    odd = tmp_path / "concat:clip.mp4"
    odd.write_bytes(media["clip"].read_bytes())
    info = probe_video(odd, count_frames=True)
    assert info.num_frames == 50 and info.width == 64
    from affectstudio.media import ffmpeg_path

    assert ffmpeg_path("concat:a.mp4").startswith("file:/")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["emotion", "--audio", "{dir}/nope.wav"], "not found"),
        (["emotion", "--audio", "{dir}/empty.wav"], "empty"),
        (["emotion", "--audio", "{dir}/corrupt.wav"], "audio"),
        (["emotion", "--audio", "{wav}"], "silent"),
        (["emotion", "--image", "{dir}/corrupt.wav"], "not a valid image"),
        (["emotion", "--text", "?!... —"], "no words"),
        (["dub", "--video", "{clip}", "--text", "hello there", "-o", "{dir}/o.mp4"], "no face found in video"),
    ],
)
def test_emotion_and_dub_cheap_checks_answer_before_any_model(argv, words, media, capsys):
    (media["dir"] / "empty.wav").write_bytes(b"")
    (media["dir"] / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(2000))
    code, err, seconds = cli([a.format(**media) for a in argv], capsys)
    assert code == 2 and err.startswith("error:") and words in err and len(err.splitlines()) == 1, err
    from affectstudio.conditioning.emotion.spec import load_encoder

    assert load_encoder.cache_info().currsize == 0 or seconds < 2.0  # answered without loading an encoder


@pytest.mark.parametrize("job", ["render_portrait", "render_dub", "render_music"])
def test_render_functions_refuse_a_negative_seed_from_python(job, tmp_path):
    """The job functions themselves (Python callers, not only the CLI) refuse seed -1 before touching any file."""
    from affectstudio.apps.jobs import render

    kwargs = {
        "render_portrait": {"image": tmp_path / "a.jpg", "output": tmp_path / "o.mp4", "text": "hi"},
        "render_dub": {"video": tmp_path / "v.mp4", "text": "hi", "output": tmp_path / "o.mp4"},
        "render_music": {"video": tmp_path / "v.mp4", "output": tmp_path / "o.mp4"},
    }[job]
    with pytest.raises(InputError, match="--seed must be a whole number"):
        getattr(render, job)(seed=-1, **kwargs)
    assert list(tmp_path.iterdir()) == []
