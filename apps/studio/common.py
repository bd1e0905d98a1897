"""What every studio tab shares: running a renderer with one ``gr.Progress`` bar per job (stages weighted by their
measured cost), typed user errors as ``gr.Error`` without internal paths, uploads checked by us (not by Gradio's
preprocessing), the reading of an emotion spec, seeds, readable output files and examples."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import random
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import gradio as gr

from affectstudio.apps.jobs.batch_runtime import one_line
from affectstudio.conditioning.face_choice import NOTES_LOGGER
from affectstudio.errors import AffectStudioError, InputError
from affectstudio.pipelines.progress import report_progress

log = logging.getLogger("affectstudio.studio")

RENDER_QUEUE = "render"  # one render at a time per process: the cached pipelines are shared by every tab
MAX_SEED = 2**31 - 1
EMOTION_HELP = (
    "A label (happy), label:intensity (sad:0.5 — the one place for intensity), a mix (happy:0.6,surprised:0.4), "
    "free text (a quiet, simmering anger) or a curve over time (neutral@0; angry:0.8@3.5) — build one in the "
    "Emotion Lab. Its reading shows below when you leave the box."
)
STUDIO_DIR = Path(tempfile.gettempdir()) / "affectstudio-studio"
IMAGE_TYPES = [".jpg", ".jpeg", ".png", ".webp", ".bmp"]


def output_file(name: str) -> Path:
    """A fresh path for one result with a readable file name (``portrait_happy_seed42.mp4``): each result gets its
    own folder in this process's studio folder under the system temp directory, so names never collide."""
    folder = STUDIO_DIR / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def slug(text: Optional[str], fallback: str, limit: int = 32) -> str:
    """A file-name part from an emotion spec: ``happy``, ``sad-0.5``, ``neutral-to-angry`` (curves), the first
    words of a description; ``fallback`` when empty."""
    text = (text or "").strip()
    if not text:
        return fallback
    if "@" in text:  # a curve: first and last keyframe's emotion
        labels = [p.split("@")[0] for p in text.split(";") if p.strip()]
        text = f"{labels[0]} to {labels[-1]}" if len(labels) > 1 else labels[0]
    text = re.sub(r"[^A-Za-z0-9.]+", "-", text.replace(":", "-")).strip("-.").lower()
    return text[:limit].rstrip("-.") or fallback


# ---------------------------------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class Stage:
    """One stage of a job: ``name`` shown on the bar; ``seconds`` it took in a measured warm run (its weight), of
    which ``lead`` seconds of preparation came before its progress bar started."""

    name: str
    seconds: float
    lead: float = 0.0


@dataclass(frozen=True)
class JobPlan:
    """The stages of one job in the order their progress bars arrive. ``prepare`` runs before the first bar
    (checks, photo and speech preparation, and loading on the first call, measured as ``cold_seconds``); ``bars``
    follow the pipelines' bars one by one; ``finish`` runs after the last bar (writing, muxing). ``loads``: what
    the first call loads (named on the bar while it does)."""

    prepare: Stage
    bars: tuple[Stage, ...]
    finish: Stage
    loads: tuple[str, ...] = ()
    cold_seconds: float = 0.0


_loaded: set[str] = set()  # what this process has loaded (pipelines and encoders are cached per process)


class JobProgress:
    """One bar over the whole job from the pipelines' bars ``(bar, done, total)``: each stage advances it by its
    measured share of the job and names it. Time without a bar (preparing, loading, the lead of a stage, writing)
    moves the bar on the clock toward the measured length of that part (never past 95 % of it), so it does not
    sit still."""

    TICK = 0.5  # seconds between clock updates

    def __init__(self, progress: Callable, plan: JobPlan):
        self.progress, self.plan = progress, plan
        cold = [x for x in plan.loads if x not in _loaded]
        stages = [plan.prepare, *plan.bars, plan.finish]
        prepare = plan.cold_seconds if cold and plan.cold_seconds else plan.prepare.seconds
        self.seconds = [prepare] + [max(s.seconds, 1e-3) for s in stages[1:]]
        self.leads = [self.seconds[0]] + [min(s.lead, s.seconds) for s in plan.bars] + [self.seconds[-1]]
        total = sum(self.seconds)
        self.weights = [s / total for s in self.seconds]
        self.names = [s.name for s in stages]
        if cold:
            self.names[0] = f"loading {', '.join(cold)} (first call), then {plan.prepare.name}"
        self.last = len(stages) - 1
        self.seen = [False] * len(stages)
        self.index, self.fraction, self.started = 0, 0.0, time.monotonic()
        self.lock = threading.RLock()
        self.stopped = threading.Event()
        self.shown: list[tuple[float, str]] = []  # (fraction of the job, stage name) as shown, for tests
        self.at(0, 0.0)

    def at(self, index: int, fraction: float) -> None:
        with self.lock:
            index = min(index, self.last)
            if index < self.index or (index == self.index and fraction < self.fraction):
                return  # never backwards
            if index != self.index:
                self.index, self.started = index, time.monotonic()
            self.fraction = min(max(fraction, 0.0), 1.0)
            done = min(sum(self.weights[:index]) + self.weights[index] * self.fraction, 1.0)
            self.shown.append((round(done, 4), self.names[index]))
            self.progress(done, desc=self.names[index])

    def __call__(self, bar: int, done: int, total: int) -> None:
        bar = min(bar, len(self.plan.bars))  # more bars than measured (a long input in windows): the last one
        with self.lock:
            self.seen[bar] = True
            lead = self.leads[bar] / self.seconds[bar]
            self.at(bar, lead + (1.0 - lead) * (done / total if total else 0.0))

    def tick(self) -> None:
        """Clock: after a stage's bar completes, the next stage's lead starts; time without a bar advances as
        1 - exp(-elapsed / its measured length), up to 95 % of it."""
        with self.lock:
            i = self.index
            if 0 < i < self.last and self.seen[i] and self.fraction >= 1.0:
                self.at(i + 1, 0.0)
                return
            if 0 < i < self.last and self.seen[i]:
                return  # a bar is reporting
            elapsed = time.monotonic() - self.started
            lead = max(self.leads[i], 0.05)
            estimate = min(0.95, 1.0 - math.exp(-elapsed / lead)) * lead / self.seconds[i]
            if estimate > self.fraction:
                self.at(i, estimate)

    def __enter__(self) -> "JobProgress":
        ctx = contextvars.copy_context()  # gr.Progress finds its event through context variables

        def clock() -> None:
            while not self.stopped.wait(self.TICK):
                self.tick()

        threading.Thread(target=ctx.run, args=(clock,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()


def run_render(render: Callable, progress, plan: JobPlan, uploads: Iterable = (), **kwargs):
    """Call an ``apps.jobs`` render function with one progress bar over the job; user mistakes (typed
    :class:`InputError`) become one ``gr.Error`` with the CLI's message, upload and output paths shown as their
    file names."""
    bar = JobProgress(progress, plan) if progress is not None else None
    try:
        with report_progress(bar), bar or contextlib.nullcontext(), shown_notes():
            result = render(**kwargs)
    except InputError as e:
        raise user_error(readable(e, uploads, kwargs.values())) from e
    except AffectStudioError as e:
        raise gr.Error(readable(e, uploads, kwargs.values())) from e
    except Exception as e:  # a bug: keep the studio alive, say what happened, log the traceback
        log.exception("render failed")
        raise gr.Error(f"internal error: {readable(e, uploads, kwargs.values())}") from e
    _loaded.update(plan.loads)
    return result


# ------------------------------------------------------------------------------------------------ messages


@contextlib.contextmanager
def shown_notes():
    """The library's user-facing notes logged while a render runs (the ``affectstudio.notes`` logger: which face
    of a group photo is animated, a script longer than the clip) shown as ``gr.Info`` toasts — the CLI's
    ``note:`` lines. Only this thread's notes: another session's render does not show here."""
    thread = threading.get_ident()

    class Toast(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == thread:
                gr.Info(record.getMessage())

    logger, handler = logging.getLogger(NOTES_LOGGER), Toast(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def readable(error: BaseException, *path_groups: Iterable) -> str:
    """The error's one line with every known path (uploads, outputs) shown as its file name, and any other path
    under the system temp directory (Gradio's upload cache, our output folder) shortened the same way."""
    text = one_line(error)
    paths = sorted(
        {str(p) for group in path_groups for p in group if isinstance(p, (str, Path)) and "/" in str(p)},
        key=len,
        reverse=True,
    )
    for p in paths:
        text = text.replace(p, Path(p).name)
    tmp = re.escape(tempfile.gettempdir().rstrip("/"))
    return re.sub(tmp + r"/[^\s'\"]*/([^/\s'\"]+)", r"\1", text)


def user_error(message: str) -> gr.Error:
    return gr.Error(message, title="Please check the inputs")


def require(condition: bool, message: str) -> None:
    if not condition:
        raise user_error(message)


def input_error(e: InputError, *path_groups: Iterable) -> gr.Error:
    return user_error(readable(e, *path_groups))


# ------------------------------------------------------------------------------------------------- uploads


def photo_input(label: str, elem_id: str, height: int = 240):
    """A photo upload that we check ourselves (Gradio's image preprocessing answers a bad file with a dump of
    its internals): a file box for the upload and a preview that shows the photo once it is read."""
    upload = gr.File(label=label, file_types=IMAGE_TYPES, type="filepath", elem_id=elem_id, height=130)
    preview = gr.Image(
        label=f"{label} (preview)", interactive=False, height=height, elem_id=f"{elem_id}-preview", format="png"
    )
    upload.change(preview_photo, [upload], [preview], concurrency_limit=4, show_progress="hidden")
    return upload, preview


def preview_photo(path):
    """The uploaded photo as it will be used, or one readable error. A file stored sideways (EXIF orientation), in
    CMYK or 16-bit is shown as the pipeline reads it (upright, 8-bit RGB), so a click on the preview lands on the
    pixel the face picker's boxes use whatever the browser does with the tag; any other file is shown as it is."""
    if not path:
        return None
    check_photo(path)
    from PIL import ExifTags, Image

    from affectstudio.conditioning.photo import load_photo

    with Image.open(path) as im:  # the header only: check_photo decoded it
        as_is = im.getexif().get(ExifTags.Base.Orientation, 1) == 1 and im.mode in ("RGB", "RGBA", "L", "LA", "P")
    return str(path) if as_is else load_photo(path)


def check_photo(path) -> Path:
    from affectstudio.media import load_image

    try:
        load_image(path)
    except InputError as e:
        raise input_error(e, [path]) from e
    return Path(path)


def check_audio(path, what: str) -> Optional[Path]:
    """An uploaded or recorded audio file decodes (else one readable error naming ``what``); ``None`` passes."""
    if not path:
        return None
    from affectstudio.media import load_audio

    try:
        load_audio(path)
    except InputError as e:
        raise input_error(e, [path]) from e
    return Path(path)


# ------------------------------------------------------------------------------------------ emotion readings


def emotion_reading(spec: Optional[str], empty: str = "") -> str:
    """How an emotion spec is read, in words: ``grumpy-ish → contempt 29 %, angry 20 %, … · intensity 0.6``; a
    curve keyframe by keyframe. A malformed spec raises the parser's own message (the CLI's words) as
    ``gr.Error``."""
    from affectstudio.conditioning.emotion import EmotionCurve, parse_emotion_spec

    spec = (spec or "").strip()
    if not spec:
        return empty
    try:
        emb = parse_emotion_spec(spec)
    except InputError as e:
        raise input_error(e) from e
    if isinstance(emb, EmotionCurve):
        frames = [f"{t:g} s: {_shares(s)}" for t, s in zip(emb.times, emb.states)]
        return f"**Reading** — a curve of {len(frames)} keyframes: " + "; ".join(frames)
    return f"**Reading** — {spec} → {_shares(emb)}"


def _shares(emb, floor: float = 0.05) -> str:
    import numpy as np

    from affectstudio.conditioning.emotion import EMOTIONS

    probs = np.asarray(emb.probs, dtype=float).reshape(-1, len(EMOTIONS)).mean(0)
    order = [int(i) for i in np.argsort(-probs) if probs[i] >= floor][:3] or [int(np.argmax(probs))]
    shares = ", ".join(f"{EMOTIONS[i]} {probs[i] * 100:.0f} %" for i in order)
    return f"{shares} · intensity {float(np.mean(emb.intensity)):.2f}"


def emotion_box(elem_id: str, placeholder: str, empty_reading: str = "", label: str = "Emotion or emotion curve"):
    """The emotion spec box every generator tab has, with its reading shown underneath when the box is left."""
    box = gr.Textbox(label=label, info=EMOTION_HELP, elem_id=elem_id, placeholder=placeholder)
    reading = gr.Markdown(empty_reading, elem_id=f"{elem_id}-reading")
    for event in (box.blur, box.submit):
        event(
            lambda s: emotion_reading(s, empty_reading),
            [box],
            [reading],
            concurrency_limit=4,
            show_progress="hidden",
        )
    return box, reading


# ---------------------------------------------------------------------------------------------------- misc


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


def zip_folder(folder: Path, archive: Path) -> Path:
    """Every file of ``folder`` into ``archive`` (.zip, stored flat)."""
    import zipfile

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(Path(folder).iterdir()):
            if f.is_file():
                z.write(f, f.name)
    return archive


def rename(path: Path, name: str) -> Path:
    """``path`` renamed to ``name`` in its folder (readable names decided after the render)."""
    target = Path(path).with_name(name)
    Path(path).replace(target)
    return target
