"""``affectstudio batch`` (docs/cli.md): validation before rendering, manifest, resume, per-job errors, Dask workers.

The scheduling tests swap the portrait renderer for a small recording function (``renderers=``, the job schema is
still the real ``render_portrait`` signature); the slow test at the end renders real portraits end to end."""

import functools
import json
import os
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
from PIL import Image

from affectstudio.apps.cli import main
from affectstudio.apps.jobs.batch import MANIFEST, RETRY_NOTE, run_batch
from affectstudio.errors import InputError, NoSpeechError
from affectstudio.media import atomic_path

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Dask workers cannot import this test module


def record_render(image, output, text=None, log=None, marker_dir=None, **kwargs):
    """Stands in for ``render_portrait`` in scheduling tests: behaviour chosen by the job's text."""
    if text == "fail":
        raise NoSpeechError("the speech has no words in it")
    if text == "bug":
        raise RuntimeError("something broke")
    if text in ("crash", "crash-once"):
        marker = Path(marker_dir) / f"{Path(output).stem}.crashed"
        if text == "crash" or not marker.exists():
            marker.touch()
            out = Path(output)
            (out.parent / f".{out.stem}.partial-{os.getpid()}{out.suffix}").write_bytes(b"half")
            os._exit(1)  # the worker process dies mid-write
    if text and text.startswith("sleep"):
        time.sleep(float(text.split()[1]))
    with atomic_path(output) as tmp:
        tmp.write_bytes(Path(image).read_bytes() + str(text).encode())
    with open(log, "a") as f:
        f.write(f"{Path(output).name} {os.getpid()}\n")


def write_jobs(path: Path, jobs: list) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"jobs": jobs}))
    return path


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "inputs"
    d.mkdir()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(d / "face.png")
    return d


def renderers(tmp_path):
    return {"portrait": functools.partial(record_render, log=str(tmp_path / "calls.log"), marker_dir=str(tmp_path))}


def calls(tmp_path) -> list[str]:
    log = tmp_path / "calls.log"
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def manifest(out: Path) -> dict:
    return {e["id"]: e for e in json.loads((out / MANIFEST).read_text())}


def test_structure_errors_are_all_listed_and_nothing_renders(tmp_path, inputs, capsys):
    jobs = write_jobs(
        inputs / "jobs.yaml",
        [
            {"id": "ok", "task": "portrait", "image": "face.png", "text": "hi", "output": "ok.mp4"},
            {"id": "t1", "task": "karaoke", "output": "k.mp4"},
            {"id": "t2", "task": "portrait", "image": "face.png", "text": "hi", "output": "../escape.mp4"},
            {"id": "t3", "task": "portrait", "image": "face.png", "text": "hi", "output": "/tmp/abs.mp4"},
            {"id": "t4", "task": "portrait", "image": "face.png", "text": "hi", "seed": "zero", "output": "a.mp4"},
            {"id": "t5", "task": "portrait", "image": "face.png", "text": "hi", "colour": "red", "output": "b.mp4"},
            {"id": "t6", "task": "portrait", "text": "hi", "output": "c.mp4"},
            {"id": "t7", "task": "portrait", "image": "face.png", "text": "hi", "audio": "x.wav", "output": "d.mp4"},
            {"id": "t8", "task": "portrait", "image": "face.png", "text": "hi", "output": "ok.mp4"},
            {"id": "t9", "task": "portrait", "image": "face.png", "text": "hi", "output": "e.wav"},
            {"id": "ok", "task": "portrait", "image": "face.png", "text": "hi", "output": "f.mp4"},
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(jobs), "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error:") and "Traceback" not in err
    for jid, words in [
        ("t1", "unknown task 'karaoke'"),
        ("t2", "'..'"),
        ("t3", "absolute"),
        ("t4", "'seed'"),
        ("t5", "unknown key 'colour'"),
        ("t6", "missing key 'image'"),
        ("t7", "exactly one of"),
        ("t8", "also written by job ok"),
        ("t9", "must end in .mp4"),
        ("ok", "duplicate id"),
    ]:
        assert any(line.strip().startswith(f"job {jid}:") and words in line for line in err.splitlines()), (jid, err)
    assert not (tmp_path / "out").exists()


def test_not_a_job_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs: [\n")
    for path in (bad, tmp_path / "missing.yaml"):
        with pytest.raises(SystemExit) as exc:
            main(["batch", str(path), "--out-dir", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_manifest_errors_and_resume(tmp_path, inputs):
    jobs = write_jobs(
        inputs / "jobs.yaml",
        [
            {"id": "a", "task": "portrait", "image": "face.png", "text": "hello", "output": "a.mp4"},
            {"id": "broken", "task": "portrait", "image": "face.png", "text": "fail", "output": "broken.mp4"},
            {"id": "b", "task": "portrait", "image": "face.png", "text": "world", "seed": 3, "output": "sub/b.mp4"},
            {"id": "bug", "task": "portrait", "image": "face.png", "text": "bug", "output": "bug.mp4"},
        ],
    )
    out = tmp_path / "out"
    assert run_batch(jobs, out, renderers=renderers(tmp_path)) == 1
    m = manifest(out)
    assert [m[k]["status"] for k in ("a", "broken", "b", "bug")] == ["ok", "failed", "ok", "failed"]
    assert m["broken"]["error"] == "the speech has no words in it" and m["broken"]["output"] is None
    assert m["bug"]["error"] == "RuntimeError: something broke"
    assert set(m["a"]) == {"id", "status", "output", "error"} and m["b"]["output"] == "sub/b.mp4"
    assert (out / "sub" / "b.mp4").is_file() and not (out / "broken.mp4").exists()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "a.mp4", out / "sub" / "b.mp4")}
    time.sleep(0.01)

    # --resume: finished jobs are skipped untouched; the failed ones run again (and fail again: exit 1)
    assert run_batch(jobs, out, resume=True, renderers=renderers(tmp_path)) == 1
    m = manifest(out)
    assert [m[k]["status"] for k in ("a", "broken", "b", "bug")] == ["skipped", "failed", "skipped", "failed"]
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert sorted(calls(tmp_path)) == ["a.mp4", "b.mp4"]

    # a changed input file (same path) or changed settings re-render only the jobs they belong to
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(inputs / "face.png")
    write_jobs(
        jobs,
        [
            {"id": "a", "task": "portrait", "image": "face.png", "text": "hello", "output": "a.mp4"},
            {"id": "b", "task": "portrait", "image": "face.png", "text": "world", "seed": 4, "output": "sub/b.mp4"},
        ],
    )
    assert run_batch(jobs, out, resume=True, renderers=renderers(tmp_path)) == 0
    assert [m["status"] for m in manifest(out).values()] == ["ok", "ok"]
    assert sorted(calls(tmp_path)) == ["a.mp4", "a.mp4", "b.mp4", "b.mp4"]


def test_removed_output_is_rendered_again_on_resume(tmp_path, inputs):
    jobs = write_jobs(
        inputs / "jobs.yaml", [{"id": "a", "task": "portrait", "image": "face.png", "text": "hello", "output": "a.mp4"}]
    )
    out = tmp_path / "out"
    assert run_batch(jobs, out, renderers=renderers(tmp_path)) == 0
    (out / "a.mp4").unlink()
    assert run_batch(jobs, out, resume=True, renderers=renderers(tmp_path)) == 0
    assert manifest(out)["a"]["status"] == "ok" and calls(tmp_path) == ["a.mp4", "a.mp4"]


@pytest.mark.slow  # the client retries the address for 10 s before giving up
def test_unreachable_cluster_is_a_user_error(tmp_path, inputs):
    jobs = write_jobs(
        inputs / "jobs.yaml", [{"id": "a", "task": "portrait", "image": "face.png", "text": "hello", "output": "a.mp4"}]
    )
    with pytest.raises(InputError, match="cannot reach the Dask cluster"):
        run_batch(jobs, tmp_path / "out", address="tcp://127.0.0.1:9", renderers=renderers(tmp_path))


@pytest.mark.slow
def test_two_dask_workers_render_each_job_once_and_survive_a_dead_worker(tmp_path, inputs):
    names = [f"j{i}" for i in range(6)]
    jobs = write_jobs(
        inputs / "jobs.yaml",
        [
            *[
                {"id": n, "task": "portrait", "image": "face.png", "text": "sleep 0.3", "output": f"{n}.mp4"}
                for n in names
            ],
            {"id": "dies-once", "task": "portrait", "image": "face.png", "text": "crash-once", "output": "once.mp4"},
            {"id": "dies", "task": "portrait", "image": "face.png", "text": "crash", "output": "dies.mp4"},
        ],
    )
    out = tmp_path / "out"
    assert run_batch(jobs, out, processes=2, renderers=renderers(tmp_path)) == 1
    m = manifest(out)
    assert all(m[n]["status"] == "ok" for n in names) and m["dies-once"]["status"] == "ok"
    assert m["dies"] == {"id": "dies", "status": "failed", "output": None, "error": RETRY_NOTE}
    done = calls(tmp_path)
    assert sorted(done) == sorted([f"{n}.mp4" for n in names] + ["once.mp4"])  # each job rendered exactly once
    pids = {line.split()[1] for line in (tmp_path / "calls.log").read_text().splitlines()}
    assert len(pids) >= 2 and os.getpid() not in {int(p) for p in pids}  # rendered by the workers
    assert all((out / f"{n}.mp4").is_file() for n in names)
    assert not list(out.glob(".*partial*"))

    # identical manifest and resume semantics: nothing is rendered again
    assert run_batch(jobs, out, processes=2, resume=True, renderers=renderers(tmp_path)) == 1
    assert len(calls(tmp_path)) == len(done)
    assert [manifest(out)[n]["status"] for n in names] == ["skipped"] * len(names)


@pytest.mark.slow
def test_real_portrait_jobs_end_to_end(tmp_path, capsys):
    from affectstudio.assets import asset_path

    jobs = write_jobs(
        tmp_path / "jobs.yaml",
        [
            {
                "id": "hello",
                "task": "portrait",
                "image": str(asset_path("samples", "portrait.jpg")),
                "text": "Hello.",
                "emotion": "happy",
                "steps": 2,
                "size": 256,
                "output": "hello.mp4",
            },
            {
                "id": "angry",
                "task": "portrait",
                "image": str(asset_path("samples", "portrait.jpg")),
                "text": "No.",
                "emotion": "neutral@0; angry:0.8@0.5",
                "steps": 2,
                "output": "angry.mp4",
            },
            {"id": "noface", "task": "portrait", "image": "missing.png", "text": "Hi.", "output": "noface.mp4"},
        ],
    )
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(jobs), "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 1, err
    m = manifest(out)
    assert m["hello"]["status"] == "ok" and m["angry"]["status"] == "ok"
    assert m["noface"]["status"] == "failed" and "missing.png" in m["noface"]["error"]
    from affectstudio.video_io import probe_video

    info = probe_video(out / "hello.mp4")
    assert info.fps == pytest.approx(25) and info.width == 256
    mtime = (out / "hello.mp4").stat().st_mtime_ns
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(jobs), "--out-dir", str(out), "--resume"])
    assert exc.value.code == 1 and (out / "hello.mp4").stat().st_mtime_ns == mtime
    assert manifest(out)["hello"]["status"] == "skipped"


def test_local_cluster_has_no_dashboard_and_refuses_clients_without_its_credentials():
    """Issue 16: another process on the machine could connect to the local scheduler and run code on the workers."""
    import urllib.error
    import urllib.request

    from dask.distributed import Client

    from affectstudio.apps.jobs.batch import start_local_cluster

    cluster, security = start_local_cluster(1)
    try:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        ports = [sock.getsockname()[1] for sock in cluster.scheduler.http_server._sockets.values()]
        assert ports and 8787 not in ports
        for route in ("status", "json/identity.json", "info/main/workers.html", "proxy/1/127.0.0.1/status", "health"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/{route}", timeout=5)
            assert err.value.code == 404, route
        with pytest.raises((OSError, TimeoutError, ValueError)):
            Client(address.replace("tls://", "tcp://"), timeout="3s")  # plain TCP: refused
        with pytest.raises((OSError, TimeoutError, ValueError, TypeError)):
            Client(address, timeout="3s")  # TLS without the cluster's certificate: refused
        with Client(cluster, security=security) as owner:
            assert owner.submit(lambda x: x + 1, 1).result() == 2
    finally:
        cluster.close()
