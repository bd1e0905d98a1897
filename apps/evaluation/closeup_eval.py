"""Per-case table of issue 15, item 1: the close-ups, edge cuts, small and tilted faces and file formats of
``tests/test_portrait_closeup.py`` rendered end to end by the bundled ``TalkingPortraitPipeline`` with real speech.

Per case: the photo's size and mode as stored (PIL's mode; a PNG's bit depth), and for each of 256/512 × crop/
paste-back whether it rendered, the border figure (the test's across/along gradient ratio of the four border bands,
the lowest over the frames) against the photo's own range (its borders and bands through it; the test passes at
≥ half its lowest), and the lip sync of the rendered frames as :mod:`affectstudio.apps.evaluation.quality` measures
it: dlib's inner-lip gap against the speech's RMS envelope (Pearson at lag 0, and the best of lags ±3 frames),
with the fraction of frames where dlib found the face and the mean gap in the speech's core silences.

The photos and the border check are the test's own (one definition: the module is loaded from its file), the
speech is the bundled sample (``assets/samples/speech.wav`` from 0.5 s, as the test takes it), the emotion neutral,
sampling at the pipeline's defaults with seed 0. Needs the ``eval`` extra (dlib) and the repository's ``tests/``.

Usage::

    python -m affectstudio.apps.evaluation.closeup_eval --json assets/talking_portrait/closeup_eval.json
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import platform
import time
from pathlib import Path
from types import ModuleType
from typing import Optional, Sequence

import numpy as np

from affectstudio.errors import AffectStudioError, DependencyError

from .metrics import core_silence, inner_lip_gap, lagged_pearson, masked_mean, pearson, rms_envelope, silence_mask
from .quality import write_report
from .quality_models import _require_eval_packages, evaluator_versions

COMBOS = ((256, "crop"), (512, "crop"), (256, "paste_back"), (512, "paste_back"))
CASES_FILE = Path(__file__).resolve().parents[2] / "tests" / "test_portrait_closeup.py"


def load_cases(path: Path = CASES_FILE) -> ModuleType:
    """The framing test module (its photo builders, ``CASES``, ``speech`` and border check), loaded from its file."""
    if not path.is_file():
        raise DependencyError(f"the close-up cases live in the repository's tests: no {path} (give --cases)")
    spec = importlib.util.spec_from_file_location("closeup_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png_bit_depth(data: bytes) -> Optional[int]:
    return data[24] if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 24 else None


def case_inputs(cases: ModuleType) -> dict[str, tuple[object, np.ndarray, dict]]:
    """``name -> (what the pipeline is given, the photo as displayed (RGB uint8), what the file is)``; the framings
    are described as the PNGs ``python tests/test_portrait_closeup.py DIR`` writes."""
    from PIL import Image

    from affectstudio.conditioning.photo import load_photo

    a = cases.astronaut()
    out: dict[str, tuple[object, np.ndarray, dict]] = {}
    for name, img in cases.framings(a).items():
        h, w = img.shape[:2]
        out[name] = (img, img, {"file": f"{name}.png", "size": [w, h], "mode": "RGB", "bit_depth": 8})
    for name, data in cases.encoded(a).items():
        im = Image.open(io.BytesIO(data))
        info = {"file": name, "size": list(im.size), "mode": im.mode, "bit_depth": _png_bit_depth(data)}
        exif = im.getexif().get(0x0112)
        if exif:
            info["exif_orientation"] = int(exif)
        photo = load_photo(im)
        info["displayed_size"] = [photo.shape[1], photo.shape[0]]
        out[name] = (im, photo, info)
    return {name: out[name] for name in cases.CASES}


def lip_sync_figures(face, frames: np.ndarray, wave: np.ndarray, sr: int) -> dict:
    found = face.analyse(frames, 10**9)
    gap = inner_lip_gap(found["landmarks"])
    env = rms_envelope(wave, sr, num_frames=len(frames))
    lags = lagged_pearson(gap, env)
    best = max(lags, key=lambda k: -np.inf if np.isnan(lags[k]) else lags[k])
    core = core_silence(silence_mask(env))
    return {
        "corr_envelope": pearson(gap, env),
        "best_lag_frames": int(best),
        "corr_best_lag": lags[best],
        "face_found_fraction": float(np.mean(found["found"])),
        "gap_speech_mean": masked_mean(gap, ~silence_mask(env)),
        "gap_core_silence_mean": masked_mean(gap, core),
        "core_silent_frames": int(core.sum()),
    }


def eval_case(pipe, face, cases: ModuleType, given, photo: np.ndarray, wave, sr, combos, steps: Optional[int]) -> dict:
    import torch

    low, high = cases.own_range(photo)
    out: dict = {"own_range": [low, high], "renders": {}}
    for size, mode in combos:
        key = f"{size}_{mode}"
        t0 = time.perf_counter()
        kw = {} if steps is None else {"num_inference_steps": steps}
        try:
            res = pipe(
                image=given,
                audio=(wave, sr),
                emotion="neutral",
                size=size,
                paste_back=mode == "paste_back",
                generator=torch.Generator("cpu").manual_seed(0),
                **kw,
            )
        except AffectStudioError as err:
            out["renders"][key] = {"rendered": False, "error": f"{type(err).__name__}: {err}"}
            continue
        frames = res.frames
        worst = min(min(cases.border_ratios(f).values()) for f in frames[::5])
        out["renders"][key] = {
            "rendered": True,
            "frame_shape": list(frames.shape[1:]),
            "seconds_to_render": time.perf_counter() - t0,
            "border_min": worst,
            "border_ok": bool(worst >= 0.5 * low),
            "lip_sync": lip_sync_figures(face, frames, wave, sr),
        }
    return out


def summary_table(report: dict) -> list[str]:
    combos = [f"{s}_{m}" for s, m in COMBOS]
    lines = [
        "| case | size, mode | rendered 256c/512c/256p/512p | border min (own range) | lip sync (best lag) |",
        "|---|---|---|---|---|",
    ]
    for name, r in report["cases"].items():
        p = r["photo"]
        mode = p["mode"] + (f" {p['bit_depth']}-bit" if p.get("bit_depth") and p["bit_depth"] != 8 else "")
        rend = [r["renders"].get(c, {}) for c in combos]
        ok = "/".join("yes" if x.get("rendered") else ("-" if not x else "NO") for x in rend)
        done = [x for x in rend if x.get("rendered")]
        border = ", ".join(f"{x['border_min']:.2f}" for x in done)
        sync = ", ".join(f"{x['lip_sync']['corr_envelope']:.2f} ({x['lip_sync']['corr_best_lag']:.2f})" for x in done)
        lo, hi = r["own_range"]
        size = f"{p['size'][0]}×{p['size'][1]} {mode}"
        lines.append(f"| {name} | {size} | {ok} | {border} ({lo:.2f}–{hi:.2f}) | {sync} |")
    return lines


def evaluate(
    cases_path: Path = CASES_FILE,
    names: Optional[Sequence[str]] = None,
    combos: Sequence[tuple[int, str]] = COMBOS,
    seconds: float = 6.0,
    steps: Optional[int] = None,
    log=print,
) -> dict:
    _require_eval_packages()
    from affectstudio.pipelines.portrait import LIP_SYNC_STRENGTH, TalkingPortraitPipeline

    from .quality_models import DlibFace

    cases = load_cases(cases_path)
    inputs = case_inputs(cases)
    unknown = sorted(set(names or ()) - set(inputs))
    if unknown:
        raise DependencyError(f"no such case: {', '.join(unknown)} (cases: {', '.join(inputs)})")
    wave, sr = cases.speech(seconds)
    pipe = TalkingPortraitPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    face = DlibFace()
    t0 = time.perf_counter()
    results = {}
    for name, (given, photo, info) in inputs.items():
        if names and name not in names:
            continue
        log(f"{name} ({time.perf_counter() - t0:.0f} s)")
        results[name] = {"photo": info, **eval_case(pipe, face, cases, given, photo, wave, sr, combos, steps)}
    return {
        "what": "issue 15 item 1: each close-up/edge/format case of tests/test_portrait_closeup.py rendered end to "
        "end (TalkingPortraitPipeline with speech); see affectstudio/apps/evaluation/closeup_eval.py",
        "settings": {
            "speech": f"assets/samples/speech.wav, {seconds:g} s from 0.5 s",
            "emotion": "neutral",
            "steps": steps or "pipeline default",
            "lip_sync_strength": LIP_SYNC_STRENGTH,
            "seed": 0,
            "combos": [f"{s}_{m}" for s, m in combos],
        },
        "method": {
            "border": "lowest over every 5th frame of the across/along |gradient| ratio of the 6-px border bands "
            "(tests/test_portrait_border.py); ok when >= 0.5 x the lowest of the photo's own bands",
            "lip_sync": "dlib 68-point inner-lip gap / inter-ocular vs RMS envelope (40 ms, 3-frame average), "
            "Pearson at lag 0 and the best of lags -3..3 frames (apps/evaluation/quality.py)",
        },
        "evaluators": evaluator_versions(),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "seconds": round(time.perf_counter() - t0, 1),
        "cases": results,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m affectstudio.apps.evaluation.closeup_eval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", type=Path, required=True, help="where to write the report")
    parser.add_argument("--cases", type=Path, default=CASES_FILE, help="the framing test module (its photos)")
    parser.add_argument("--only", nargs="+", default=None, help="case names (default: every case)")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of the bundled speech")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the pipeline's)")
    parser.add_argument(
        "--combos", nargs="+", default=None, help="size_mode pairs, e.g. 256_crop 512_paste_back (default: all four)"
    )
    args = parser.parse_args(argv)
    combos: Sequence[tuple[int, str]] = COMBOS
    if args.combos:
        allowed = {f"{s}_{m}": (s, m) for s, m in COMBOS}
        bad = [c for c in args.combos if c not in allowed]
        if bad:
            parser.error(f"unknown combo {bad[0]!r}; choose from {', '.join(allowed)}")
        combos = tuple(allowed[c] for c in args.combos)
    return write_report(
        args.json, lambda: evaluate(args.cases, args.only, combos, args.seconds, args.steps), summary_table
    )


if __name__ == "__main__":
    raise SystemExit(main())
