"""Progress of every AffectStudio pipeline, reported to a plain callback — the pipelines' own hook.

Every pipeline counts its work through ``AffectPipeline.progress_bar`` (sampling steps, rendered frames, …).
Outside :func:`report_progress` that is diffusers' tqdm bar (``set_progress_bar_config`` configures it); inside,
each bar a pipeline opens in this thread becomes a counter that calls ``report(stage, done, total)`` and prints
nothing: ``stage`` numbers the bars from 1 across every pipeline called in the block (a scene's three, the portrait's
own text-to-speech), ``report=None`` only silences them. The studio feeds ``gr.Progress`` from it; batch workers use
it to keep console bars quiet. Light on purpose (no torch): the jobs enter it before any model loads.

    with report_progress(lambda stage, done, total: print(stage, done, total)):
        pipe(image=..., audio=...)
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator, Optional

__all__ = ["ProgressFn", "ReportingBar", "report_progress", "reporting_bar"]

ProgressFn = Callable[[int, int, int], None]  # (stage: 1-based bar index within the block, done, total)

_local = threading.local()


class ReportingBar:
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

    def __enter__(self) -> "ReportingBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def set_description(self, *args, **kwargs) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass


@contextlib.contextmanager
def report_progress(report: Optional[ProgressFn] = None) -> Iterator[None]:
    """Inside this block, pipelines called from this thread report their progress to ``report`` (and print no
    console bar); ``report=None`` only silences them. Blocks nest; other threads are not affected."""
    previous = getattr(_local, "state", None)
    _local.state = {"report": report, "stage": 0}
    try:
        yield
    finally:
        _local.state = previous


def reporting_bar(iterable=None, total: Optional[int] = None) -> Optional[ReportingBar]:
    """The bar for the next stage when this thread is inside :func:`report_progress`, else ``None``."""
    state = getattr(_local, "state", None)
    if state is None:
        return None
    state["stage"] += 1
    return ReportingBar(state["report"], state["stage"], iterable=iterable, total=total)
