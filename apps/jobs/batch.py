"""``affectstudio batch JOBS.yaml --out-dir DIR [--resume] [--processes N] [--address CLUSTER]`` (docs/cli.md).

1. The whole job file is validated first (:mod:`affectstudio.apps.jobs.batch_tasks`): every structure problem is listed
   with its job id and nothing is rendered (exit 2).
2. Jobs run through their ``apps.render`` function (``render_portrait``, …), which loads each pipeline once per
   process and reuses it. ``--processes 1`` (the default) renders in this process and starts no cluster.
   ``--processes N`` starts a Dask ``LocalCluster`` of N single-threaded worker processes listening on 127.0.0.1
   only, with no dashboard and mutual TLS from fresh credentials (``Security.temporary()``): no other process on
   the machine can connect to it. ``--address tcp://host:8786`` joins an existing Dask cluster instead, with that
   cluster's own security (``tls://`` addresses use the TLS settings of the Dask configuration,
   ``distributed.comm.tls.*`` — see docs/cli.md). A worker that dies
   mid-job is restarted by its nanny and the job is retried once (the scheduler's ``allowed-failures``); a second
   death marks it failed. Outputs are written atomically by the renderers, so a dead worker leaves no
   half-written file and loses no finished one.
3. After every job, ``DIR/manifest.json`` (``[{"id", "status", "output", "error"}]``, job-file order) and the job
   hashes (``DIR/.affectstudio-batch.json``) are replaced atomically. ``--resume`` skips a job when its outputs
   exist and were made from the same settings and input file contents (the job hash), without touching them.
Exit code: 0 when every job is ok or skipped, 1 when any failed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from affectstudio.apps.jobs.batch_runtime import execute_job, one_line
from affectstudio.apps.jobs.batch_tasks import TASKS, Job, load_job_file, validate_jobs
from affectstudio.errors import DependencyError, InputError

MANIFEST = "manifest.json"
STATE = ".affectstudio-batch.json"
RETRY_NOTE = "its worker process died while rendering it, twice (the job was retried once)"


# ------------------------------------------------------------------------------------------------ state


class BatchState:
    """The manifest and the job hashes of one output folder, both replaced atomically after each job."""

    def __init__(self, out_dir: Path, jobs: list[Job]):
        self.out_dir, self.jobs = Path(out_dir), jobs
        self.entries: dict[int, dict] = {}
        path = self.out_dir / STATE
        try:
            self.hashes = json.loads(path.read_text())["hashes"] if path.is_file() else {}
        except (ValueError, KeyError, TypeError):
            self.hashes = {}

    def is_done(self, job: Job) -> bool:
        """The job's outputs exist and were rendered from the same settings and input contents."""
        return self.hashes.get(job.output) == job.hash and all(p.is_file() for p in job.outputs)

    def record(self, job: Job, status: str, error: Optional[str] = None) -> dict:
        entry = {"id": job.id, "status": status, "output": job.output if status != "failed" else None, "error": error}
        self.entries[job.index] = entry
        if status == "ok":
            self.hashes[job.output] = job.hash
        self.write()
        return entry

    def write(self) -> None:
        from affectstudio.media import atomic_path

        manifest = [self.entries[j.index] for j in self.jobs if j.index in self.entries]
        with atomic_path(self.out_dir / MANIFEST) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        with atomic_path(self.out_dir / STATE) as tmp:
            tmp.write_text(json.dumps({"version": 1, "hashes": self.hashes}, indent=2, sort_keys=True) + "\n")

    @property
    def counts(self) -> dict:
        counts = {"ok": 0, "failed": 0, "skipped": 0}
        for e in self.entries.values():
            counts[e["status"]] += 1
        return counts


def remove_partials(jobs: Iterable[Job]) -> None:
    """Delete hidden ``.NAME.partial-PID.EXT`` files a killed renderer may have left beside an output, and a killed
    scene's ``.NAME.scene-PID-XXXX/`` work folder."""
    from affectstudio.apps.jobs.scene import remove_stale_work

    for job in jobs:
        for out in job.outputs:
            for stale in out.parent.glob(f".{out.stem}.partial-*{out.suffix}"):
                stale.unlink(missing_ok=True)
        if job.task == "scene":
            remove_stale_work(job.outputs[0])


# -------------------------------------------------------------------------------------------- executors

Work = tuple[Job, Callable, dict]  # the job, its renderer, the renderer's keyword arguments


def run_in_process(work: list[Work]) -> Iterator[tuple[Job, dict]]:
    """``--processes 1``: one job after the other in this process; no cluster, no extra process."""
    for job, fn, kwargs in work:
        yield job, execute_job(fn, kwargs)


def _gpu_resources(client) -> bool:
    workers = client.scheduler_info().get("workers", {}).values()
    return any(w.get("resources", {}).get("GPU") for w in workers)


def local_security():
    """Fresh self-signed TLS credentials for one local cluster (``Security.temporary()``, mutual TLS, in memory
    only): the scheduler and the workers accept only peers holding them, so another process on this machine cannot
    connect and submit work, even on 127.0.0.1."""
    try:
        from distributed.security import Security

        return Security.temporary()
    except ImportError as e:  # Security.temporary needs the cryptography package
        raise DependencyError(
            "local batch workers need 'cryptography' for their TLS: pip install 'affectstudio[app]'"
        ) from e


def start_local_cluster(processes: int):
    """``--processes N``: N single-threaded worker processes on 127.0.0.1, mutual TLS (:func:`local_security`), no
    dashboard. Returns ``(cluster, security)``; a client needs ``security`` to connect."""
    import dask
    from dask.distributed import LocalCluster

    security = local_security()
    # The scheduler and each worker always start an HTTP server; with no routes it serves nothing (no dashboard, no
    # JSON state, no proxy to the workers), and on a random port, not :8787.
    with dask.config.set({"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}):
        cluster = LocalCluster(
            n_workers=processes,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tls://",
            security=security,
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,
        )
    return cluster, security


def run_on_dask(work: list[Work], processes: int, address: Optional[str]) -> Iterator[tuple[Job, dict]]:
    """Submit every job to Dask and yield outcomes as they complete (any order)."""
    try:
        import dask
        from dask.distributed import Client, as_completed
        from distributed.scheduler import KilledWorker
    except ImportError as e:
        raise DependencyError(
            "batch workers need Dask distributed: pip install 'affectstudio[app]' "
            "(or --processes 1, which needs no cluster)"
        ) from e

    cluster = client = None
    # allowed-failures=1: a task whose worker dies is rescheduled once, then raises KilledWorker.
    # worker-saturation=1: a single-threaded worker holds one job at a time, so a crash implicates only that job.
    with dask.config.set(
        {
            "distributed.scheduler.allowed-failures": 1,
            "distributed.worker.daemon": False,
            "distributed.scheduler.worker-saturation": 1.0,
        }
    ):
        try:
            if address:
                try:
                    client = Client(address, timeout="10s")
                except (OSError, TimeoutError, ValueError) as e:
                    raise InputError(f"cannot reach the Dask cluster at {address}: {one_line(e)}") from e
            else:
                cluster, security = start_local_cluster(processes)
                client = Client(cluster, security=security)
            use_gpu = _gpu_resources(client)
            started = time.time_ns()
            futures = {}
            for job, fn, kwargs in work:
                wants_gpu = use_gpu and str(kwargs.get("device", "auto")).startswith(("cuda", "auto"))
                fut = client.submit(
                    execute_job,
                    fn,
                    kwargs,
                    job.outputs,
                    started,
                    key=f"affectstudio-job-{job.index}-{job.hash[:12]}",
                    pure=False,
                    resources={"GPU": 1} if wants_gpu else None,
                )
                futures[fut] = job
            for fut in as_completed(list(futures)):
                job = futures.pop(fut)
                try:
                    outcome = fut.result()
                except KilledWorker:
                    outcome = {"status": "failed", "error": RETRY_NOTE}
                except Exception as e:  # e.g. the job could not be unpickled on the worker
                    outcome = {"status": "failed", "error": one_line(e)}
                fut.release()  # the scheduler forgets the result: a later worker death cannot re-run this job
                yield job, outcome
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()


# ------------------------------------------------------------------------------------------------- main


def run_batch(
    jobs_file: Path,
    out_dir: Path,
    resume: bool = False,
    processes: int = 1,
    address: Optional[str] = None,
    renderers: Optional[dict] = None,
    echo: Optional[Callable] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    input_roots: Optional[Sequence[Path]] = None,
) -> int:
    """Validate, render, keep the manifest; return the exit code (0 all ok/skipped, 1 any failed).

    ``renderers`` maps task names to render functions to use instead of ``apps.render``'s (tests; the job
    schema is still read from the real renderers). ``progress(done, total)`` is called after each job.
    ``input_roots`` (the studio): every input file must lie inside these folders (:func:`validate_jobs`)."""
    from tqdm.auto import tqdm

    echo = echo if echo is not None else (lambda line: tqdm.write(line, file=sys.stderr))
    if processes < 1:
        raise InputError(f"--processes must be at least 1, got {processes}")
    jobs_file = Path(jobs_file)
    jobs = validate_jobs(load_job_file(jobs_file), jobs_file.resolve().parent, Path(out_dir), input_roots)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = BatchState(out_dir, jobs)
    todo = []
    for job in jobs:
        if resume and state.is_done(job):
            state.entries[job.index] = {"id": job.id, "status": "skipped", "output": job.output, "error": None}
        else:
            todo.append(job)
    state.write()
    remove_partials(todo)
    renderers = renderers or {}
    work: list[tuple[Job, Callable, dict]] = []
    for job in todo:
        fn = renderers.get(job.task) or TASKS[job.task].renderer()
        assert fn is not None, f"task {job.task} names no function in apps.render"  # TASKS lists real renderers
        work.append((job, fn, job.kwargs))

    bar = tqdm(
        total=len(jobs), initial=len(jobs) - len(todo), desc="batch", unit="job", file=sys.stderr, dynamic_ncols=True
    )
    if len(todo) < len(jobs):
        echo(f"resume: {len(jobs) - len(todo)} job(s) already rendered with the same settings, skipped")
    runner = run_in_process(work) if processes == 1 and not address else run_on_dask(work, processes, address)
    try:
        for job, outcome in runner:
            state.record(job, outcome["status"], outcome.get("error"))
            if outcome["status"] == "failed":
                echo(f"job {job.id} failed: {outcome['error']}")
            bar.update(1)
            if progress is not None:
                progress(bar.n, len(jobs))
    finally:
        bar.close()
    remove_partials(todo)  # a worker killed mid-write leaves its hidden partial file behind
    counts = state.counts
    echo(
        f"batch: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped; "
        f"manifest: {out_dir / MANIFEST}"
    )
    return 1 if counts["failed"] else 0
