"""What runs inside a render worker (a batch worker process, the studio's request thread, or the batch's own
process with ``--processes 1``): one job through its ``apps.jobs.render`` function, its outcome as a plain dict. The
pipelines' console bars are silenced through their own hook (:func:`~affectstudio.pipelines.progress.report_progress`).
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Callable, Optional

from affectstudio.errors import AffectStudioError
from affectstudio.pipelines.progress import report_progress


def one_line(error: BaseException) -> str:
    """A readable one-line message: the typed error's own text, or the exception type and message for a bug."""
    text = " ".join(str(error).split())
    if isinstance(error, AffectStudioError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _written_since(outputs, since_ns: int) -> bool:
    try:
        return bool(outputs) and all(os.stat(p).st_mtime_ns >= since_ns for p in outputs)
    except OSError:
        return False


def execute_job(
    render: Callable, kwargs: dict, outputs: Optional[list] = None, run_started_ns: Optional[int] = None
) -> dict:
    """Run one job: ``render(**kwargs)`` with the pipelines' bars silenced. Never raises for a job's own
    failure; returns ``{"status": "ok"|"failed", "error": str|None, "seconds": float}`` (``traceback`` for bugs).

    ``outputs`` + ``run_started_ns``: when every output was already written during this batch run (a cluster
    re-runs a finished task whose result was held by a worker that died before the result was collected), the
    job is reported ok without rendering it a second time."""
    start = time.perf_counter()
    if run_started_ns is not None and _written_since(outputs, run_started_ns):
        return {"status": "ok", "error": None, "seconds": 0.0, "reused": True}
    try:
        with report_progress(None):
            render(**kwargs)
    except AffectStudioError as e:
        return {"status": "failed", "error": one_line(e), "seconds": time.perf_counter() - start}
    except Exception as e:  # a bug in one job must not stop the others: reported with its traceback
        return {
            "status": "failed",
            "error": one_line(e),
            "traceback": traceback.format_exc(),
            "seconds": time.perf_counter() - start,
        }
    return {"status": "ok", "error": None, "seconds": time.perf_counter() - start}
