"""The batch task registry and job-file validation (docs/cli.md, ``affectstudio batch``).

A task is a name bound to its one-function-per-job renderer in ``affectstudio.apps.jobs.render`` (``render_portrait``,
``render_dub``, ``render_music``, ``render_scene``). A job's keys are the CLI option names without dashes — which
are exactly the renderer's keyword arguments — so the schema of each task is read from the renderer's signature:
required keys are the arguments without a default, ``Path`` arguments are input files (relative to the job file),
``int``/``float``/``str``/``bool`` are checked as such. A task whose renderer has not landed in this version is
reported as unavailable (a structure error), never faked. Validation collects every problem with its job id.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Callable, Optional, Sequence

from affectstudio.conditioning.emotion.curve import CURVE_FILE_EXTENSIONS
from affectstudio.errors import InputError, quote_value
from affectstudio.media import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS

#: emotion specs that name a file (speech/face reference, curve file) are resolved like the other input paths
FILE_SPEC_SUFFIXES = tuple(
    dict.fromkeys((*AUDIO_EXTENSIONS, ".mp4", ".mov", *IMAGE_EXTENSIONS, *CURVE_FILE_EXTENSIONS))
)
MAX_JOB_FILE_BYTES = 1 << 20  # a job file is a few kB; a megabyte is already thousands of jobs
NOT_JOB_KEYS = ("output", "progress")  # renderer arguments the job file never sets directly


@dataclass(frozen=True)
class Task:
    """One batch task: ``function`` in ``module``; ``suffix`` of its ``output``;
    ``extra_outputs``: renderer arguments that name further output files (inside the output folder);
    ``one_of``: groups of keys of which exactly one must be given."""

    name: str
    function: str
    suffix: str = ".mp4"
    extra_outputs: tuple[tuple[str, str], ...] = ()  # (key, suffix)
    one_of: tuple[tuple[str, ...], ...] = ()
    exclude: tuple[str, ...] = ()  # renderer arguments a job file cannot set (e.g. an output folder)
    module: str = "affectstudio.apps.jobs.render"  # where ``function`` lives

    def renderer(self) -> Optional[Callable]:
        import importlib

        return getattr(importlib.import_module(self.module), self.function, None)

    def schema(self) -> dict[str, "Field"]:
        fn = self.renderer()
        if fn is None:
            return {}
        hints = typing.get_type_hints(fn)
        fields = {}
        for name, p in inspect.signature(fn).parameters.items():
            if name in NOT_JOB_KEYS or name in self.exclude or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            kind = _kind(hints.get(name, Any))
            if name in dict(self.extra_outputs):
                kind = "output"
            fields[name] = Field(name, kind, required=p.default is inspect.Parameter.empty)
        return fields


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # file | output | str | int | float | bool | any
    required: bool = False


def _kind(annotation) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Union and len(args) == 1:
        annotation = args[0]
    if annotation is Path or (isinstance(annotation, type) and issubclass(annotation, Path)):
        return "file"
    return {str: "str", int: "int", float: "float", bool: "bool"}.get(annotation, "any")


TASKS: dict[str, Task] = {
    "portrait": Task("portrait", "render_portrait", ".mp4", one_of=(("audio", "text"),)),
    "dub": Task("dub", "render_dub", ".mp4", extra_outputs=(("wav", ".wav"),)),
    "music": Task(
        "music",
        "render_music",
        ".mp4",
        extra_outputs=(("wav", ".wav"), ("midi", ".mid"), ("plot", ".png")),
        exclude=("stems",),
    ),
    "scene": Task(
        "scene",
        "render_scene",
        ".mp4",
        extra_outputs=(("wav", ".wav"), ("voice_wav", ".wav"), ("music_wav", ".wav"), ("plot", ".png")),
        exclude=("stems",),
        module="affectstudio.apps.jobs.scene",
    ),
}


def available_tasks() -> list[str]:
    return [name for name, task in TASKS.items() if task.renderer() is not None]


@dataclass
class Job:
    """A validated job: ``kwargs`` ready for the renderer (paths absolute, outputs inside the output folder)."""

    index: int
    id: str
    task: str
    output: str  # as written in the job file (relative to the output folder)
    kwargs: dict
    outputs: list[Path] = field(default_factory=list)  # every file the job writes
    hash: str = ""


def _check_type(value, kind: str) -> bool:
    if kind in ("file", "output", "str"):
        return isinstance(value, str) and value != ""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    return True


_TYPE_WORDS = {
    "file": "a file path",
    "output": "a file name",
    "str": "a non-empty string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "any": "a value",
}


def _output_problem(name: str, suffix: str) -> Optional[str]:
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        return f"{quote_value(name)} is an absolute path: outputs are file names inside --out-dir"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return f"{quote_value(name)} leaves --out-dir ('..' is not allowed)"
    if not parts or parts[-1] in (".", ""):
        return f"{quote_value(name)} is not a file name"
    if PurePosixPath(name).suffix.lower() != suffix:
        return f"{quote_value(name)} must end in {suffix}"
    return None


class _JobFileError(Exception):
    """Raised by the job-file loader: an anchor or alias (the loader refuses them), with where it is."""

    def __init__(self, what: str, mark):
        super().__init__(what)
        self.what, self.mark = what, mark


def _job_file_loader():
    """A ``yaml.SafeLoader`` that refuses anchors and aliases: a job file never needs them, and a few hundred bytes
    of nested aliases expand to gigabytes (an "alias bomb") before any check could see the values."""
    import yaml

    class JobFileLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                raise _JobFileError("aliases (*name) are not allowed in a job file", event.start_mark)
            if getattr(event, "anchor", None) is not None:
                raise _JobFileError("anchors (&name) are not allowed in a job file", event.start_mark)
            return super().compose_node(parent, index)

    return JobFileLoader


def _where(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"


def load_job_file(path: Path) -> Any:
    """Read a job file (YAML, at most :data:`MAX_JOB_FILE_BYTES`, no anchors or aliases). Errors say what is wrong
    and where (line, column), never the file's text."""
    import yaml

    from affectstudio.errors import MissingFileError

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"job file not found: {path}")
    if path.stat().st_size > MAX_JOB_FILE_BYTES:
        raise InputError(f"{path} is {path.stat().st_size} bytes; a job file may be at most {MAX_JOB_FILE_BYTES}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not a UTF-8 text file") from e
    try:
        return yaml.load(text, Loader=_job_file_loader())  # noqa: S506 - a SafeLoader subclass
    except _JobFileError as e:
        raise InputError(f"{path} is not a valid job file: {e.what} ({_where(e.mark)})") from None
    except yaml.MarkedYAMLError as e:
        problem = " ".join(str(e.problem or e.context or "syntax error").split())[:80]
        raise InputError(f"{path} is not valid YAML: {problem} ({_where(e.problem_mark)})") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path} is not valid YAML ({type(e).__name__})") from None
    except RecursionError:
        raise InputError(f"{path} is not a valid job file: nested too deeply") from None


def _job_label(jid) -> str:
    text = str(jid)
    return "".join(c if c.isprintable() else "?" for c in text[:32]) + ("…" if len(text) > 32 else "")


def validate_jobs(data: Any, job_dir: Path, out_dir: Path, input_roots: Optional[Sequence[Path]] = None) -> list[Job]:
    """Check the whole job file; raise one :class:`InputError` listing every problem (``job ID: ...``).

    ``input_roots`` (the studio): every input file a job names — media, SoundFonts, voice models, emotion reference
    and curve files, and the files a curve file names — must resolve (symlinks followed) inside one of these
    folders. Messages quote at most a key and a short, sanitised value, never a whole value."""
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise InputError("the job file must be a mapping with a 'jobs' list: {jobs: [{id, task, ..., output}]}")
    if not data["jobs"]:
        raise InputError("the job file has no jobs")
    problems: list[str] = []
    extra_top = sorted(set(data) - {"jobs"}, key=str)
    if extra_top:
        problems.append(f"unknown top-level key(s): {', '.join(map(quote_value, extra_top[:5]))} (only 'jobs')")
    jobs: list[Job] = []
    seen_ids: set[str] = set()
    seen_outputs: dict[str, str] = {}
    out_root = Path(out_dir).resolve()
    for index, raw in enumerate(data["jobs"]):
        if not isinstance(raw, dict):
            problems.append(f"job #{index + 1}: must be a mapping with id, task, output, got {type(raw).__name__}")
            continue
        jid = raw.get("id")
        before = len(problems)
        name = (
            f"job {_job_label(jid)}"
            if isinstance(jid, (str, int)) and not isinstance(jid, bool) and str(jid)
            else f"job #{index + 1}"
        )
        bad = problems.append
        if not (isinstance(jid, (str, int)) and not isinstance(jid, bool) and str(jid)):
            bad(f"{name}: missing or invalid 'id' (a string or number)")
        elif str(jid) in seen_ids:
            bad(f"{name}: duplicate id")
        seen_ids.add(str(jid))
        task_name = raw.get("task")
        task = TASKS.get(task_name) if isinstance(task_name, str) else None
        if task is None:
            bad(
                f"{name}: "
                + ("missing 'task'" if task_name is None else f"unknown task {quote_value(task_name)}")
                + f" (tasks: {', '.join(TASKS)})"
            )
            continue
        schema = task.schema()
        if not schema:
            bad(
                f"{name}: task {task_name!r} is not available in this version of AffectStudio "
                f"(available: {', '.join(available_tasks()) or 'none'})"
            )
            continue
        output = raw.get("output")
        if not isinstance(output, str) or not output:
            bad(f"{name}: missing or invalid 'output' (a file name inside --out-dir)")
        else:
            problem = _output_problem(output, task.suffix)
            if problem:
                bad(f"{name}: output {problem}")
        for key in sorted(set(raw) - set(schema) - {"id", "task", "output"}, key=str)[:5]:
            bad(f"{name}: unknown key {quote_value(key)} for task {task_name} (allowed: {', '.join(schema)})")
        for f in schema.values():
            if f.name not in raw or raw[f.name] is None:
                if f.required:
                    bad(f"{name}: missing key {f.name!r}")
                continue
            if not _check_type(raw[f.name], f.kind):
                bad(f"{name}: {f.name!r} must be {_TYPE_WORDS[f.kind]}, got {quote_value(raw[f.name])}")
            elif f.name == "seed" and not 0 <= raw[f.name] < 2**32:
                bad(f"{name}: 'seed' must be from 0 to {2**32 - 1}, got {quote_value(raw[f.name])}")
            elif f.kind == "output":
                suffix = dict(task.extra_outputs)[f.name]
                problem = _output_problem(raw[f.name], suffix)
                if problem:
                    bad(f"{name}: {f.name} {problem}")
        for group in task.one_of:
            given = [k for k in group if raw.get(k) is not None]
            if len(given) != 1:
                bad(
                    f"{name}: give exactly one of {', '.join(map(repr, group))}"
                    + (f" (got {', '.join(given)})" if given else "")
                )
        job_outputs = [raw.get("output")] + [raw.get(k) for k, _ in task.extra_outputs]
        for o in job_outputs:
            if isinstance(o, str) and o:
                key = str((out_root / o).resolve())
                if key in seen_outputs:
                    bad(f"{name}: output {quote_value(o)} is also written by {seen_outputs[key]}")
                seen_outputs[key] = name
        if len(problems) > before:
            continue
        jobs.append(_build_job(index, str(jid), task, raw, schema, Path(job_dir), out_root))
    for job in jobs:  # a resolved path can still escape through a symlink inside the output folder
        for p in job.outputs:
            if out_root not in p.parents:
                problems.append(f"job {_job_label(job.id)}: output {quote_value(p.name)} is outside --out-dir")
    if input_roots is not None:
        problems += _confinement_problems(jobs, [Path(r).resolve() for r in input_roots])
    if problems:
        raise InputError(f"the job file has {len(problems)} problem(s), nothing was rendered:\n" + "\n".join(problems))
    return jobs


def _resolve_input(value: str, job_dir: Path) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (job_dir / p).resolve())


def _build_job(index: int, jid: str, task: Task, raw: dict, schema: dict, job_dir: Path, out_root: Path) -> Job:
    kwargs, outputs = {}, [(out_root / raw["output"]).resolve()]
    for key, f in schema.items():
        value = raw.get(key)
        if value is None:
            continue
        if f.kind == "file":
            value = Path(_resolve_input(value, job_dir))
        elif f.kind == "output":
            value = (out_root / value).resolve()
            outputs.append(value)
        elif (
            key == "emotion"
            and isinstance(value, str)
            and value.strip().lower().endswith(FILE_SPEC_SUFFIXES)
            and "@" not in value
        ):
            value = _resolve_input(value.strip(), job_dir)
        elif f.kind == "float":
            value = float(value)
        kwargs[key] = value
    kwargs["output"] = outputs[0]
    job = Job(index=index, id=jid, task=task.name, output=raw["output"], kwargs=kwargs, outputs=outputs)
    job.hash = job_hash(job, schema)
    return job


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return "missing"
    return h.hexdigest()


def job_hash(job: Job, schema: dict) -> str:
    """sha256 of the task, its settings and the contents of every input file (paths themselves do not count,
    so moving the inputs keeps the hash; editing one changes it)."""
    settings: dict[str, Any] = {}
    for key, value in sorted(job.kwargs.items()):
        kind = schema[key].kind if key in schema else "output"
        if kind == "output":
            settings[key] = str(Path(value).name)
        elif kind == "file" or (key == "emotion" and isinstance(value, str) and Path(value).is_absolute()):
            settings[key] = {"sha256": _file_digest(Path(value)), "suffix": Path(value).suffix.lower()}
        else:
            settings[key] = value
    blob = json.dumps({"task": job.task, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _inside(path: str | Path, roots: list[Path]) -> bool:
    p = Path(path).resolve()
    return any(p == r or r in p.parents for r in roots)


def _names_file(spec: str) -> bool:
    return spec.strip().lower().endswith(FILE_SPEC_SUFFIXES)


def _confinement_problems(jobs: list[Job], roots: list[Path]) -> list[str]:
    """Every file a job would read must lie under ``roots`` (see :func:`validate_jobs`)."""
    from affectstudio.conditioning.emotion.curve import read_curve_rows

    problems = []
    where = "a file uploaded with the job file or one of the studio's samples"
    for job in jobs:
        schema = TASKS[job.task].schema()
        for key, value in job.kwargs.items():
            kind = schema[key].kind if key in schema else "output"
            if kind == "file" and not _inside(value, roots):
                problems.append(f"job {_job_label(job.id)}: {key!r} must be {where}, got {quote_value(value.name)}")
            if key != "emotion" or not isinstance(value, str):
                continue
            if Path(value).is_absolute() and _names_file(value):  # resolved by _build_job: one reference file
                if not _inside(value, roots):
                    problems.append(
                        f"job {_job_label(job.id)}: 'emotion' must be {where}, got {quote_value(Path(value).name)}"
                    )
                elif value.lower().endswith(CURVE_FILE_EXTENSIONS):
                    try:
                        rows = read_curve_rows(Path(value))
                    except InputError:
                        continue  # a broken curve file fails its own job when it renders
                    if any(_names_file(spec) for _, spec in rows):
                        problems.append(
                            f"job {_job_label(job.id)}: the curve file {quote_value(Path(value).name)} names files "
                            "in its keyframes; in the studio a keyframe is a label, a mix or free text"
                        )
            elif any(_names_file(part.rsplit("@", 1)[0]) for part in value.split(";")):
                problems.append(
                    f"job {_job_label(job.id)}: 'emotion' names a file inside a curve; in the studio a keyframe is a "
                    "label, a mix or free text"
                )
    return problems
