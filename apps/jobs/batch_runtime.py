"""What runs inside a render worker (a batch worker process, the studio's request thread, or the batch's own
process with ``--processes 1``): one job through its ``apps.render`` function, its outcome as a plain dict.

Also the progress bridge: every pipeline reports progress through diffusers' ``DiffusionPipeline.progress_bar``
(sampling steps, rendered frames, …). :func:`pipeline_progress` routes those bars, for the current thread only,
to a plain callback ``fn(stage, done, total)`` — the studio feeds ``gr.Progress`` from it, batch workers use it to
keep the pipelines' console bars quiet. The core never sees gradio; pipelines need no extra argument.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import sys
import threading
import time
import traceback
from typing import Callable, Iterator, Optional

from affectstudio.errors import AffectStudioError

ProgressFn = Callable[[int, int, int], None]  # (stage: 1-based bar index within the call, done, total)

_local = threading.local()
_patched = False
_patch_lock = threading.Lock()


class _ReportingBar:
    """Stands in for the tqdm bar a pipeline asked for: counts updates and reports them; prints nothing."""

    def __init__(self, report: Optional[ProgressFn], stage: int, iterable=None, total: Optional[int] = None):
        self._report, self._stage, self._iterable = report, stage, iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total = int(total or 0)
        self.n = 0
        self.update(0)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._report is not None:
            self._report(self._stage, self.n, self.total)

    def __iter__(self):
        for item in self._iterable:
            yield item
            self.update(1)

    def __enter__(self) -> "_ReportingBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def set_description(self, *args, **kwargs) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass


_PIPELINE_UTILS = "diffusers.pipelines.pipeline_utils"


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Patches diffusers the moment a renderer first imports it, so a job that fails its cheap input checks
    never pays for importing diffusers (and torch) just to be quiet."""

    def find_spec(self, name, path, target=None):
        if name != _PIPELINE_UTILS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                exec_module = spec.loader.exec_module

                def exec_and_patch(module, _exec=exec_module):
                    _exec(module)
                    _patch(module.DiffusionPipeline)

                spec.loader.exec_module = exec_and_patch
                return spec
        return None


def _install_patch() -> None:
    """Wrap ``DiffusionPipeline.progress_bar`` once per process (now, or when diffusers is first imported);
    threads outside :func:`pipeline_progress` get diffusers' own bar."""
    with _patch_lock:
        if _patched or any(isinstance(f, _PatchAfterImport) for f in sys.meta_path):
            return
        module = sys.modules.get(_PIPELINE_UTILS)
        if module is not None:
            _patch(module.DiffusionPipeline)
        else:
            sys.meta_path.insert(0, _PatchAfterImport())


def _patch(DiffusionPipeline) -> None:
    global _patched
    if _patched:
        return
    original = DiffusionPipeline.progress_bar

    def progress_bar(self, iterable=None, total=None):
        state = getattr(_local, "state", None)
        if state is None:
            return original(self, iterable=iterable, total=total)
        state["stage"] += 1
        return _ReportingBar(state["report"], state["stage"], iterable=iterable, total=total)

    progress_bar.__doc__ = original.__doc__
    DiffusionPipeline.progress_bar = progress_bar
    _patched = True


@contextlib.contextmanager
def pipeline_progress(report: Optional[ProgressFn] = None) -> Iterator[None]:
    """Inside this block, pipelines called from this thread report their progress bars to ``report`` (and print
    no console bar). ``report=None`` only silences them."""
    _install_patch()
    previous = getattr(_local, "state", None)
    _local.state = {"report": report, "stage": 0}
    try:
        yield
    finally:
        _local.state = previous


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
        with pipeline_progress(None):
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
