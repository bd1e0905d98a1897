"""Every photo with a findable face renders: video close-ups, faces cut by an edge or filling the frame, small
faces in big photos, tilted faces, and the files phones and editors write (issue 15).

The photos are built here from ``skimage.data.astronaut()`` (the bundled portrait; face oval x 179–272, y 69–178,
chin at y 177, eyes 42 px apart) by cropping, scaling, turning and re-encoding. ``python
tests/test_portrait_closeup.py OUT_DIR`` writes them as files.

Checks, per photo, in crop and paste-back mode at 256 and 512 (the full matrix is marked slow; the fast suite
renders each photo at one of the four and the close-up the border fix refused at all four):

* it renders, the face moves, and the reference motion gives the photo back (paste-back);
* the border check of ``tests/test_portrait_border.py`` (mean |gradient| across / along each border band; a
  smeared, edge-replicated band scores ~0) stays within the photo's own range: at least half the lowest ratio
  of the photo's own bands (its four borders and six bands through it);
* lip sync, measured as ``apps/evaluation/quality.py`` does (dlib's inner-lip gap of the rendered frames against
  the speech's RMS envelope, Pearson), is at least 0.7 when the motion follows the speech (``jaw_open`` driven
  by the envelope of the bundled speech): the framing keeps the mouth readable. Needs dlib (the ``eval`` extra).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mediapipe")
pytest.importorskip("skimage")

from affectstudio.errors import InputError  # noqa: E402

FACE_CENTRE = (225.0, 123.0)  # the astronaut's face-oval centre
SIZES_MODES = [(256, "crop"), (512, "paste_back"), (512, "crop"), (256, "paste_back")]
BAND = 6

# ------------------------------------------------------------------------------------------------ the photos


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS))


def closeup_16x9(a: np.ndarray) -> np.ndarray:
    """640×360 video still: the face oval ~70 % of the frame height (mediapipe's face box ~60 %), chin 2 % above
    the bottom edge, face centre two thirds of the way across — the photo the border fix refused."""
    wide = np.pad(a, ((0, 0), (300, 300), (0, 0)), mode="reflect")
    h = int(107 / 0.7)
    w = int(round(h * 16 / 9))
    y1 = int(177 + 0.02 * h)
    x0 = int(525 - 2 / 3 * w)
    return resize(np.ascontiguousarray(wide[y1 - h : y1, x0 : x0 + w]), 640, 360)


def rolled(a: np.ndarray, degrees: float) -> np.ndarray:
    """The astronaut turned ``degrees`` in the image plane about the face, cropped to what the photo covers."""
    import cv2

    m = cv2.getRotationMatrix2D(FACE_CENTRE, degrees, 1.0)
    turned = cv2.warpAffine(a, m, (512, 512), flags=cv2.INTER_CUBIC)
    r = 86  # the largest square about the face whose source stays inside the photo
    cx, cy = int(FACE_CENTRE[0]), int(FACE_CENTRE[1])
    return resize(np.ascontiguousarray(turned[cy - r : cy + r, cx - r : cx + r]), 344, 344)


def small_face(a: np.ndarray, face_px: float) -> np.ndarray:
    """A 1024×768 photo (the astronaut's suit and flag, enlarged) with her head ``face_px`` across."""
    canvas = resize(np.ascontiguousarray(a[300:512, 0:280]), 1024, 768).copy()
    head = resize(a, int(512 * face_px / 93), int(512 * face_px / 93))
    canvas[200 : 200 + head.shape[0], 480 : 480 + head.shape[1]] = head
    return canvas


def framings(a: np.ndarray) -> dict[str, np.ndarray]:
    """The framing cases, RGB uint8."""
    return {
        "closeup_16x9": closeup_16x9(a),
        "chin_cut": np.ascontiguousarray(a[0:165, 60:400]),  # the bottom edge between mouth and chin
        "forehead_cut": np.ascontiguousarray(a[80:420, 80:380]),  # the top edge just above the brows
        "cut_left": np.ascontiguousarray(a[20:330, 205:500]),  # the left edge through the cheek
        "cut_right": np.ascontiguousarray(a[20:330, 0:250]),
        "fill_90": resize(np.ascontiguousarray(a[63:184, 145:306]), 483, 363),  # oval 109 of 121 rows
        "fill_100": resize(np.ascontiguousarray(a[70:177, 153:298]), 435, 321),  # forehead and chin at the edges
        "small_56px": small_face(a, 56),
        "roll_+30": rolled(a, 30),
        "roll_-30": rolled(a, -30),
    }


def encoded(a: np.ndarray) -> dict[str, bytes]:
    """The file-format cases: a phone JPEG stored sideways with EXIF orientation 6, greyscale PNG, CMYK JPEG,
    16-bit RGBA PNG with a transparent corner."""
    import cv2
    from PIL import Image

    photo = np.ascontiguousarray(a[0:400, 60:360])
    out = {}
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(np.rot90(photo, 1).copy()).save(buf, format="JPEG", quality=92, exif=exif.tobytes())
    out["exif_rotated.jpg"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(photo).convert("L").save(buf, format="PNG")
    out["greyscale.png"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(photo).convert("CMYK").save(buf, format="JPEG", quality=92)
    out["cmyk.jpg"] = buf.getvalue()
    rgba16 = np.concatenate([photo.astype(np.uint16) * 257, np.full(photo.shape[:2] + (1,), 65535, np.uint16)], -1)
    rgba16[:60, :60, 3] = 0
    ok, png = cv2.imencode(".png", rgba16[..., [2, 1, 0, 3]])
    assert ok
    out["rgba16.png"] = png.tobytes()
    return out


CASES = [
    "closeup_16x9",
    "chin_cut",
    "forehead_cut",
    "cut_left",
    "cut_right",
    "fill_90",
    "fill_100",
    "small_56px",
    "roll_+30",
    "roll_-30",
    "exif_rotated.jpg",
    "greyscale.png",
    "cmyk.jpg",
    "rgba16.png",
]

# ------------------------------------------------------------------------------------------------ measures


def band_ratio(f: np.ndarray, rows: slice | None = None, cols: slice | None = None) -> float:
    """Mean |gradient| across / along a horizontal (``rows``) or vertical (``cols``) band of a grey image."""
    if rows is not None:
        band = f[rows]
        return float(np.abs(np.diff(band, axis=0)).mean() / (np.abs(np.diff(band, axis=1)).mean() + 1e-6))
    band = f[:, cols]
    return float(np.abs(np.diff(band, axis=1)).mean() / (np.abs(np.diff(band, axis=0)).mean() + 1e-6))


def border_ratios(frame: np.ndarray) -> dict[str, float]:
    """The border check of ``tests/test_portrait_border.py``: across/along ratio of each border band."""
    f = frame.astype(np.float64).mean(-1)
    return {
        "top": band_ratio(f, rows=slice(0, BAND + 1)),
        "bottom": band_ratio(f, rows=slice(-BAND - 1, None)),
        "left": band_ratio(f, cols=slice(0, BAND + 1)),
        "right": band_ratio(f, cols=slice(-BAND - 1, None)),
    }


def own_range(photo: np.ndarray) -> tuple[float, float]:
    """The ratios a photo's own bands have: its four borders and bands through it at 1/4, 1/2, 3/4."""
    f = photo.astype(np.float64).mean(-1)
    h, w = f.shape
    vals = list(border_ratios(photo).values())
    for k in (0.25, 0.5, 0.75):
        y, x = int(k * h), int(k * w)
        vals += [band_ratio(f, rows=slice(y, y + BAND + 1)), band_ratio(f, cols=slice(x, x + BAND + 1))]
    return min(vals), max(vals)


def speech(seconds: float) -> tuple[np.ndarray, int]:
    from affectstudio.assets import asset_path
    from affectstudio.media import load_audio

    wave, sr = load_audio(asset_path("samples") / "speech.wav")
    return wave[int(0.5 * sr) : int((0.5 + seconds) * sr)], sr


def speech_motion(codec, env: np.ndarray) -> torch.Tensor:
    """Motion whose jaw follows the speech envelope (the lip sync a renderer must keep), ``(t, D)``."""
    jaw = 0.9 * np.clip(env / np.percentile(env, 95), 0, 1.2)
    return codec.from_named([{"jaw_open": float(j)} for j in jaw])


def lip_sync(frames: np.ndarray, env: np.ndarray) -> tuple[float, float]:
    """(Pearson of dlib's inner-lip gap with the envelope, fraction of frames with a detected face)."""
    from affectstudio.apps.evaluation.metrics import inner_lip_gap, pearson
    from affectstudio.apps.evaluation.quality_models import DlibFace

    found = DlibFace().analyse(frames, 10**9)
    return pearson(inner_lip_gap(found["landmarks"]), env), float(found["found"].mean())


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    from PIL import Image

    from affectstudio.conditioning.photo import load_photo

    a = astronaut()
    out = framings(a)
    for name, data in encoded(a).items():
        out[name] = load_photo(Image.open(io.BytesIO(data)))
    return out


@pytest.fixture(scope="module")
def renderer():
    from affectstudio.models.portrait import PortraitRenderer

    return PortraitRenderer()


@pytest.fixture(scope="module")
def motions(renderer):
    codec = renderer.codec
    return torch.stack(
        [
            codec.from_named(m)
            for m in (
                {},
                {"jaw_open": 0.8, "AU12": 0.6},
                {"AU15": 0.8, "AU4": 0.7, "pitch": 0.1},
                {"yaw": 0.15, "roll": -0.1, "jaw_open": 0.4},
                {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0},  # surprise: brows up, jaw dropped
            )
        ]
    )


_ANALYSES: dict = {}


def analysis_of(name: str, photo: np.ndarray):
    from affectstudio.conditioning.face import analyze_face

    if name not in _ANALYSES:
        _ANALYSES[name] = analyze_face(photo)
    return _ANALYSES[name]


def check_renders(renderer, motions, name: str, photo: np.ndarray, size: int, mode: str) -> dict:
    state = renderer.prepare(photo, analysis_of(name, photo), size=size, mode=mode)
    frames = renderer.render(state, motion=motions)
    want = photo.shape if mode == "paste_back" else (size, size, 3)
    assert frames.shape == (len(motions), *want)
    low, high = own_range(photo)
    worst = min(min(border_ratios(f).values()) for f in frames)
    assert worst >= 0.5 * low, (name, size, mode, worst, low)
    rest = renderer.render(state, motion=state.reference_motion[None])[0]
    assert np.abs(frames[1].astype(float) - rest).max() > 40  # the mouth opens
    if mode == "paste_back":
        assert np.abs(rest.astype(float) - photo).mean() < 3.0  # the reference motion gives the photo back
    return {"border_min": worst, "own": (low, high), "box": state.crop_box.tolist()}


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("size,mode", SIZES_MODES)
def test_the_closeup_the_border_fix_refused_renders(photos, renderer, motions, size, mode):
    from affectstudio.conditioning.face_align import FACE_MARGIN

    photo = photos["closeup_16x9"]
    face = analysis_of("closeup_16x9", photo)
    x0, y0, x1, y1 = face.bbox
    assert 0.65 < (y1 - y0) / 360 < 0.75 and 355 - 0.03 * 360 < y1 < 360 and 0.6 < (x0 + x1) / 2 / 640 < 0.72
    out = check_renders(renderer, motions, "closeup_16x9", photo, size, mode)
    bx, by, side = out["box"][:3]
    assert by + side > 360  # the square runs past the bottom edge: room under the chin ...
    assert by <= y0 and by + side >= y1 + FACE_MARGIN * (y1 - y0) - 1  # ... and holds the face
    assert bx >= 0 and bx + side <= 640  # shifted inward where the photo allows


@pytest.mark.parametrize("name", CASES)
def test_every_photo_with_a_face_renders(photos, renderer, motions, name):
    size, mode = SIZES_MODES[CASES.index(name) % len(SIZES_MODES)]
    check_renders(renderer, motions, name, photos[name], size, mode)


@pytest.mark.slow
@pytest.mark.parametrize("size,mode", SIZES_MODES)
@pytest.mark.parametrize("name", CASES)
def test_every_photo_renders_at_every_size_and_mode(photos, renderer, motions, name, size, mode):
    check_renders(renderer, motions, name, photos[name], size, mode)


def _check_lip_sync(photos, renderer, name, size, mode, seconds):
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    from affectstudio.apps.evaluation.metrics import rms_envelope

    wave, sr = speech(seconds)
    env = rms_envelope(wave, sr, num_frames=int(seconds * 25))
    state = renderer.prepare(photos[name], analysis_of(name, photos[name]), size=size, mode=mode)
    frames = renderer.render(state, motion=speech_motion(renderer.codec, env))
    corr, found = lip_sync(frames, env)
    assert found > 0.9 and corr >= 0.7, (name, size, mode, corr, found)


@pytest.mark.parametrize("name,size,mode", [("closeup_16x9", 256, "crop"), ("fill_100", 512, "paste_back")])
def test_lip_sync_survives_the_framing(photos, renderer, name, size, mode):
    _check_lip_sync(photos, renderer, name, size, mode, seconds=3.0)


@pytest.mark.slow
@pytest.mark.parametrize("size,mode", SIZES_MODES)
@pytest.mark.parametrize("name", CASES)
def test_lip_sync_survives_every_framing(photos, renderer, name, size, mode):
    _check_lip_sync(photos, renderer, name, size, mode, seconds=6.0)


def test_a_face_too_small_to_animate_is_one_error_naming_its_size(renderer):
    from affectstudio.conditioning.face import analyze_face

    photo = small_face(astronaut(), 56)
    face = analyze_face(photo)
    tiny = face.landmarks.copy()
    tiny[:, :2] = (tiny[:, :2] - tiny[:, :2].mean(0)) * (34 / 56) + tiny[:, :2].mean(0)  # the same face, 34 px
    with pytest.raises(InputError, match=r"the face is 3\d px across; at least 40 px"):
        renderer.prepare(photo, tiny, size=256)


def test_the_photo_is_read_as_displayed(photos):
    from PIL import Image

    from affectstudio.conditioning.photo import load_photo

    ref = np.ascontiguousarray(astronaut()[0:400, 60:360]).astype(float)
    for name in ("exif_rotated.jpg", "cmyk.jpg", "rgba16.png"):
        got = photos[name].astype(float)
        assert got.shape == ref.shape, name  # upright: the EXIF orientation applied
        err = np.abs(got - ref)[60:, 60:].mean()
        assert err < 4.0, (name, err)
    assert (photos["rgba16.png"][:60, :60] == 255).all()  # transparency over white
    grey = photos["greyscale.png"]
    assert grey.shape == ref.shape and (grey[..., 0] == grey[..., 2]).all()
    g16 = Image.fromarray((ref.mean(-1) * 257).astype(np.uint16))  # 16-bit greyscale: scaled, not clipped
    assert np.abs(load_photo(g16)[..., 0].astype(float) - ref.mean(-1)).mean() < 1.0


def test_face_square_runs_past_the_photo_only_when_the_face_needs_it():
    from affectstudio.conditioning.face_align import face_square

    lm = np.zeros((478, 3), np.float32)
    lm[:, :2] = np.random.default_rng(0).uniform([300, 100], [400, 230], size=(478, 2))
    from affectstudio.models.portrait import FACE_OVAL

    lm[FACE_OVAL[:2], :2] = [[300, 100], [400, 230]]  # oval box 100 × 130, chin 10 px above the bottom
    roomy = face_square(lm, 2.1, 0.04, upright=False, image_size=(480, 640), whole_pixels=True, min_scale=1.3)
    plain = face_square(lm, 2.1, 0.04, upright=False, image_size=(480, 640), whole_pixels=True)
    assert roomy.box() == plain.box()  # a photo with room: the framing of before
    x0, y0, side = face_square(
        lm, 2.1, 0.04, upright=False, image_size=(240, 640), whole_pixels=True, min_scale=1.3
    ).box()
    assert side >= 1.3 * 130 - 1 and y0 + side >= 230 + 13 and y0 <= 100  # past the bottom, face inside
    assert 0 <= x0 and x0 + side <= 640


def test_padded_crop_mirrors_and_keeps_the_grain():
    from affectstudio.conditioning.face_align import padded_crop

    photo = astronaut()[40:200, 165:449]
    inside = padded_crop(photo, 10, 5, 120)
    assert (inside == photo[5:125, 10:130]).all()
    out = padded_crop(photo, 100, 60, 160)  # 60 rows past the bottom
    assert (out[:100] == photo[60:160, 100:260]).all()
    low, _ = own_range(photo)
    assert band_ratio(out.astype(float).mean(-1), rows=slice(-BAND - 1, None)) > 0.5 * low


def test_the_triangulation_never_leaves_a_hole():
    from affectstudio.models.portrait.warp import rasterize

    verts = np.array([[0, 0], [16, 0], [0, 16], [16, 16], [8, 8]], np.float64)
    tris = np.array([[0, 1, 4], [0, 2, 4], [1, 3, 4]])  # the bottom triangle missing: a hole
    ids, bary = rasterize(verts, tris, 16)
    assert ids.shape == (256, 3) and np.allclose(bary.sum(-1), 1) and (bary >= 0).all()


if __name__ == "__main__":
    from PIL import Image

    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    a = astronaut()
    for name, img in framings(a).items():
        Image.fromarray(img).save(folder / f"{name}.png")
    for name, data in encoded(a).items():
        (folder / name).write_bytes(data)
    print(f"wrote {folder}")
