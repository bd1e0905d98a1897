"""What every studio tab shares: running a renderer with ``gr.Progress`` fed by the pipeline's own progress bars,
typed user errors as ``gr.Error``, seeds, output files and examples."""

from __future__ import annotations

import logging
import random
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Optional, Sequence

import gradio as gr

from affectstudio.apps.jobs.batch_runtime import one_line
from affectstudio.errors import AffectStudioError, InputError
from affectstudio.pipelines.progress import report_progress

log = logging.getLogger("affectstudio.studio")

RENDER_QUEUE = "render"  # one render at a time per process: the cached pipelines are shared by every tab
MAX_SEED = 2**31 - 1
EMOTION_HELP = (
    "A label (happy), label:intensity (sad:0.5), a mix (happy:0.6,surprised:0.4), free text (a quiet, "
    "simmering anger) or a curve over time (neutral@0; angry:0.8@3.5) — build one in the Emotion Lab."
)


def output_file(suffix: str) -> Path:
    """A fresh path for one result, in this process's studio folder under the system temp directory."""
    folder = Path(tempfile.gettempdir()) / "affectstudio-studio"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{uuid.uuid4().hex[:12]}{suffix}"


def seed_controls(default: int = 0) -> tuple[gr.Number, gr.Checkbox]:
    with gr.Row():
        seed = gr.Number(value=default, label="Seed", precision=0, minimum=0, maximum=MAX_SEED, scale=3)
        randomise = gr.Checkbox(value=False, label="Randomise seed", scale=1)
    return seed, randomise


def pick_seed(seed, randomise: bool) -> int:
    if randomise:
        return random.randint(0, MAX_SEED)
    if seed is None:
        return 0
    return int(seed)


def run_render(render: Callable, progress: gr.Progress, stages: Sequence[str], **kwargs):
    """Call an ``apps.render`` function; its pipelines' progress bars drive ``progress``; user mistakes (typed
    :class:`InputError`) become ``gr.Error`` with the same message the CLI prints."""

    def report(stage: int, done: int, total: int) -> None:
        name = stages[stage - 1] if stage <= len(stages) else f"step {stage}"
        progress((done, total) if total else None, desc=name, unit="steps")

    progress(0, desc="starting")
    try:
        with report_progress(report):
            return render(**kwargs)
    except InputError as e:
        raise gr.Error(one_line(e), title="Please check the inputs") from e
    except AffectStudioError as e:
        raise gr.Error(one_line(e)) from e
    except Exception as e:  # a bug: keep the studio alive, say what happened, log the traceback
        log.exception("render failed")
        raise gr.Error(f"internal error: {one_line(e)}") from e


def user_error(message: str) -> gr.Error:
    return gr.Error(message, title="Please check the inputs")


def not_available(tab: str, task: str, renderer: str) -> None:
    gr.Markdown(
        f"### {tab}\n**Not available in this version yet.** The `{task}` generator "
        f"(`affectstudio.apps.jobs.render.{renderer}`) has not landed in this build of AffectStudio; this tab "
        f"turns on by itself once it does. The Talking Portrait tab works today."
    )


def clean_text(value: Optional[str]) -> Optional[str]:
    value = (value or "").strip()
    return value or None


def file_or_none(value) -> Optional[Path]:
    return Path(value) if value else None


def require(condition: bool, message: str) -> None:
    if not condition:
        raise user_error(message)


def input_error(e: InputError) -> gr.Error:
    return user_error(one_line(e))
