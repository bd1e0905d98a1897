"""Studio tab "Batch": run a job file (the ``affectstudio batch`` format) on this machine and show its manifest.

The studio serves clients that are not the machine's owner, so this tab touches only its own files: the job file
comes only as an upload (or the bundled example), the media it names only from files uploaded with it or the
studio's own sample and config folders (``validate_jobs(input_roots=...)``: anything else, absolute paths, ``..``
and symlinks included, is a structure error and nothing renders), and every output lands in a named folder under
the studio's own output folder. Errors quote at most a key and a short value, never a file's content."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Optional

import gradio as gr

from affectstudio.apps.studio.common import RENDER_QUEUE, require, user_error
from affectstudio.errors import InputError

_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
JOB_SUFFIXES = (".yaml", ".yml")


def batch_root() -> Path:
    """Every studio batch writes under this folder (one sub-folder per output-folder name), inside the studio's own
    output folder under the system temp directory."""
    return Path(tempfile.gettempdir()) / "affectstudio-studio" / "batch"


def _own_folders() -> list[Path]:
    """The studio's own input folders a job file may name media from: the bundled samples and configs."""
    from importlib import resources

    from affectstudio.assets import asset_path

    return [asset_path("samples"), Path(str(resources.files("affectstudio.configs")))]


def _stage_uploads(job_file: str, media: Optional[list]) -> Path:
    """Copy the uploaded job file (as ``jobs.yaml``) and media (by their own base names) into a fresh folder, so the
    job file's relative paths name only what was uploaded with it. Returns the job file's path."""
    folder = batch_root().parent / "batch-inputs" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    target = folder / "jobs.yaml"
    shutil.copyfile(job_file, target)
    for item in media or []:
        src = Path(item if isinstance(item, str) else getattr(item, "name", str(item)))
        name = src.name
        require(bool(name) and not name.startswith(".") and name != target.name, f"cannot use an upload named {name!r}")
        require(not (folder / name).exists(), f"two uploads are named {name!r}: rename one")
        shutil.copyfile(src, folder / name)
    return target


def run(job_file, media, use_example, folder_name, resume, processes, progress=gr.Progress()):
    from affectstudio.apps.jobs.batch import MANIFEST, run_batch

    folder_name = (folder_name or "").strip()
    require(
        bool(_FOLDER_NAME.match(folder_name)),
        "The output folder name may use letters, digits, '.', '_' and '-' (up to 64, no leading '.'); every batch "
        "writes under the studio's own output folder.",
    )
    if job_file:
        require(
            Path(job_file).suffix.lower() in JOB_SUFFIXES, "Upload the job file as .yaml or .yml (a YAML job file)."
        )
        jobs_path = _stage_uploads(job_file, media)
        roots = [jobs_path.parent, *_own_folders()]
    else:
        require(bool(use_example), "Upload a job file (YAML), or tick 'Use the bundled example job file'.")
        roots = _own_folders()
        jobs_path = roots[1] / "jobs_example.yaml"
    out_dir = batch_root() / folder_name
    lines: list[str] = []
    progress(0, desc="validating the job file")
    try:
        code = run_batch(
            jobs_path,
            out_dir,
            resume=bool(resume),
            processes=int(processes),
            echo=lines.append,
            progress=lambda done, total: progress((done, total), desc="jobs", unit="jobs"),
            input_roots=roots,
        )
    except InputError as e:
        raise user_error("; ".join(line.strip() for line in str(e).splitlines())) from e
    manifest = json.loads((out_dir / MANIFEST).read_text())
    rows = [[e["id"], e["status"], e["output"] or "", e["error"] or ""] for e in manifest]
    videos = [
        str(out_dir / e["output"])
        for e in manifest
        if e["status"] != "failed" and e["output"] and e["output"].endswith(".mp4")
    ]
    status = (
        ("All jobs ok or skipped." if code == 0 else "Some jobs failed (see the table).")
        + "\n\n"
        + "\n".join(f"- {line}" for line in lines)
    )
    return rows, status, videos


def build_tab(configs_dir) -> dict:
    gr.Markdown(
        "Render many jobs from a job file (same format as `affectstudio batch jobs.yaml --out-dir DIR`). Upload the "
        "job file and the media it names (by file name, e.g. `image: face.jpg`); a job may also use the studio's "
        "bundled samples. Outputs land in the named folder under the studio's output folder, with `manifest.json`. "
        "For server paths or a cluster, use the command line (`--processes N`, `--address`)."
    )
    with gr.Row():
        with gr.Column():
            job_file = gr.File(label="Job file (.yaml)", file_types=list(JOB_SUFFIXES), type="filepath")
            media = gr.File(
                label="Media the job file names (photos, audio, videos, curve files)",
                file_count="multiple",
                type="filepath",
            )
            use_example = gr.Checkbox(
                value=True,
                label="Use the bundled example job file when no job file is uploaded",
                info=f"{Path(configs_dir).name}/jobs_example.yaml: two portraits from the samples and one job that "
                "fails on purpose",
            )
            folder = gr.Textbox(label="Output folder name", value="batch", info="inside the studio's output folder")
            with gr.Row():
                resume = gr.Checkbox(value=True, label="Resume (skip jobs already rendered with the same settings)")
                processes = gr.Slider(1, 8, value=1, step=1, label="Worker processes (1: no cluster)")
            go = gr.Button("Run batch", variant="primary")
        with gr.Column():
            table = gr.Dataframe(headers=["id", "status", "output", "error"], label="Manifest", interactive=False)
            status = gr.Markdown()
            gallery = gr.Files(label="Rendered videos")
    go.click(
        run,
        [job_file, media, use_example, folder, resume, processes],
        [table, status, gallery],
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
    )
    return {}
