"""Studio tab "Batch": run a job file (the ``affectstudio batch`` format) on this machine and show its manifest."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from affectstudio.apps.jobs.batch_runtime import one_line
from affectstudio.apps.studio.common import RENDER_QUEUE, require, user_error
from affectstudio.errors import InputError


def run(job_file, out_dir, resume, processes, progress=gr.Progress()):
    from affectstudio.apps.jobs.batch import MANIFEST, run_batch

    require(bool((job_file or "").strip()), "Give the path of a job file (YAML).")
    require(bool((out_dir or "").strip()), "Give an output folder.")
    lines = []
    progress(0, desc="validating the job file")
    try:
        code = run_batch(
            Path(job_file.strip()).expanduser(),
            Path(out_dir).expanduser(),
            resume=bool(resume),
            processes=int(processes),
            echo=lines.append,
            progress=lambda done, total: progress((done, total), desc="jobs", unit="jobs"),
        )
    except InputError as e:
        raise user_error(one_line(e) if "\n" not in str(e) else str(e).replace("\n", "; ")) from e
    manifest = json.loads((Path(out_dir).expanduser() / MANIFEST).read_text())
    rows = [[e["id"], e["status"], e["output"] or "", e["error"] or ""] for e in manifest]
    videos = [
        str(Path(out_dir).expanduser() / e["output"])
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
        "Render many jobs from a job file (same format as `affectstudio batch jobs.yaml --out-dir DIR`): "
        "input paths are relative to the job file; every output lands in the output folder with "
        "`manifest.json`. For a cluster, use the command line with `--processes N` or `--address`."
    )
    with gr.Row():
        with gr.Column():
            example = configs_dir / "jobs_example.yaml"
            job_file = gr.Textbox(
                label="Job file (path on this machine)",
                value=str(example),
                info="input paths inside it are relative to the job file's folder",
            )
            out_dir = gr.Textbox(label="Output folder (on this machine)", value="studio_batch_output")
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
        [job_file, out_dir, resume, processes],
        [table, status, gallery],
        concurrency_id=RENDER_QUEUE,
        concurrency_limit=1,
    )
    return {}
