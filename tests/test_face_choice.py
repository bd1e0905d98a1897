"""Choosing the face of a group photo (issue 15, item 2; docs/cli.md ``--face``): the rules, the left-to-right
numbering, the picker's list, the CLI's one-line errors and ``note:`` line, and — on a group photo built from
package faces — that each ``face=N`` animates that person while the others stay still."""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from affectstudio.conditioning.face import MESH_REGIONS, NUM_LANDMARKS, FaceAnalysis
from affectstudio.conditioning.face_choice import (
    NOTES_LOGGER,
    DetectedFace,
    face_at,
    parse_face,
    pick_face,
)
from affectstudio.errors import InputError, NoFaceError

sys.path.insert(0, str(Path(__file__).parent))  # helpers beside this file (pytest runs with --import-mode=importlib)
from group_photo import group_photo  # noqa: E402

# ------------------------------------------------------------------------------- rules on synthetic meshes


def fake_face(cx: float, cy: float, width: float, image_size=(400, 1000)) -> FaceAnalysis:
    """A face whose oval is centred on (cx, cy) with a box ``width`` wide (1.2 x as tall)."""
    lm = np.zeros((NUM_LANDMARKS, 3), np.float32)
    oval = list(MESH_REGIONS["face_oval"])
    a = np.linspace(0, 2 * np.pi, len(oval), endpoint=False)
    lm[oval, 0] = cx + width / 2 * np.cos(a)
    lm[oval, 1] = cy + 0.6 * width * np.sin(a)
    box = (int(cx - width / 2), int(cy - 0.6 * width), int(cx + width / 2), int(cy + 0.6 * width))
    return FaceAnalysis(landmarks=lm, bbox=box, image_size=image_size, score=0.9)


@pytest.mark.parametrize(
    ("spec", "want"),
    [(None, "auto"), ("auto", "auto"), (" Largest ", "largest"), ("centre", "center"), ("3", 3), (0, 0), (2, 2)],
)
def test_parse_face(spec, want):
    assert parse_face(spec) == want


@pytest.mark.parametrize("spec", ["left", "-1", -2, "1.5", True, ""])
def test_parse_face_rejects(spec):
    with pytest.raises(InputError, match="face"):
        parse_face(spec)


def test_numbers_count_left_to_right_whatever_the_detector_order():
    faces = [fake_face(800, 200, 90), fake_face(100, 150, 60), fake_face(450, 250, 120)]  # detector order
    assert [pick_face(faces, n).face.center[0] for n in range(3)] == pytest.approx([100, 450, 800], abs=1)
    choice = pick_face(faces, "1")
    assert (choice.index, choice.count, choice.rule, choice.width) == (1, 3, "number", 120)
    assert choice.describe() == "animating face 1 of 3 (numbered 0-2 left to right), 120 px wide"


def test_number_past_the_last_face_says_how_many():
    faces = [fake_face(200, 200, 80), fake_face(500, 200, 80), fake_face(800, 200, 80)]
    with pytest.raises(InputError, match=r"face 3 asked for, but 3 faces were found in g\.jpg \(numbered 0-2"):
        pick_face(faces, 3, "g.jpg")
    with pytest.raises(InputError, match="only one face was found in p.jpg"):
        pick_face(faces[:1], 1, "p.jpg")
    with pytest.raises(NoFaceError, match="no face found in p.jpg"):
        pick_face([], "auto", "p.jpg")


def test_auto_largest_center():
    # a big face off to the left, a small face in the middle: auto and largest take the big one, center the small
    faces = [fake_face(150, 200, 150), fake_face(500, 200, 70)]
    assert pick_face(faces, "auto").index == 0
    assert pick_face(faces, "largest").index == 0
    assert pick_face(faces, "center").index == 1
    # near-equal heads (within 10 % of the largest's width): auto takes the most central, largest the biggest
    row = [fake_face(150, 200, 100), fake_face(480, 200, 95), fake_face(850, 200, 98)]
    assert pick_face(row, "auto").index == 1
    assert pick_face(row, "largest").index == 0
    assert pick_face(row, "center").index == 1
    # one face: every rule picks it, and the message does not count
    one = pick_face([fake_face(300, 200, 90)], "center")
    assert one.index == 0 and one.describe() == "animating the one face found, 90 px wide"


def test_face_at_maps_a_click_to_a_number():
    thumb = np.zeros((8, 8, 3), np.uint8)
    faces = [
        DetectedFace(0, (100, 100, 200, 220), 100, 0.9, thumb, False),
        DetectedFace(1, (400, 100, 520, 240), 120, 0.9, thumb, True),
    ]
    assert face_at(faces, 150, 150) == 0 and face_at(faces, 460, 230) == 1
    assert face_at(faces, 250, 160) == 0  # just beside the box: the nearest face within one face width
    assert face_at(faces, 300, 390) is None
    assert faces[1].label == "face 1 · 120 px · auto"


# ------------------------------------------------------------------------- a group photo of package faces


@pytest.fixture(scope="module")
def group():
    return group_photo()


def test_group_photo_faces_listed_left_to_right(group):
    pytest.importorskip("mediapipe")
    from affectstudio.conditioning.face import analyze_faces
    from affectstudio.conditioning.face_choice import MAX_FACES, choose_face, list_faces

    photo, tiles = group
    faces = list_faces(photo, thumb_size=64)
    assert [f.index for f in faces] == [0, 1, 2, 3]
    for f, (t0, t1) in zip(faces, tiles):
        assert t0 <= f.bbox[0] < f.bbox[2] <= t1  # face n lies in the n-th person's tile
        assert f.thumbnail.shape == (64, 64, 3) and f.thumbnail.dtype == np.uint8
        assert 80 <= f.width <= 150
    # the thumbnail shows that face: its centre matches the photo around the face's centre
    f = faces[1]
    cx, cy = (f.bbox[0] + f.bbox[2]) // 2, (f.bbox[1] + f.bbox[3]) // 2
    patch = photo[cy - 20 : cy + 20 : 5, cx - 20 : cx + 20 : 5].astype(float).mean((0, 1))
    assert np.abs(f.thumbnail[26:38, 26:38].astype(float).mean((0, 1)) - patch).max() < 25
    assert sum(f.auto for f in faces) == 1
    auto = choose_face(photo, "auto")  # the whole path: detection, then the rule
    assert faces[auto.index].auto and auto.count == 4
    found = analyze_faces(photo, max_faces=MAX_FACES)  # the rest on one detection
    assert pick_face(found, "largest").index == max(range(4), key=lambda i: _area(faces[i]))
    for n in range(4):
        assert pick_face(found, n).bbox == faces[n].bbox
    with pytest.raises(InputError, match=r"face 4 asked for, but 4 faces were found .*numbered 0-3 left to right"):
        pick_face(found, 4)
    assert face_at(faces, *faces[2].bbox[:2]) == 2


def _area(f: DetectedFace) -> int:
    return (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])


def test_cli_face_errors_are_one_line_before_rendering(group, tmp_path, capsys):
    pytest.importorskip("mediapipe")
    from PIL import Image

    from affectstudio.apps.cli import main
    from affectstudio.media import write_wav

    Image.fromarray(group[0]).save(tmp_path / "group.png")
    write_wav(tmp_path / "s.wav", np.zeros(24000, np.float32), 24000)
    out = tmp_path / "o.mp4"
    for face, message in (("4", "face 4 asked for, but 4 faces were found"), ("left", "face must be auto")):
        with pytest.raises(SystemExit) as exc:
            main(["portrait", "--image", str(tmp_path / "group.png"), "--audio", str(tmp_path / "s.wav")]
                 + ["--face", face, "-o", str(out), "--device", "cpu"])  # fmt: skip
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err
        assert not out.exists()


def test_cli_prints_library_notes(capsys):
    from affectstudio.apps.cli import _print_notes

    _print_notes()
    _print_notes()  # idempotent: one handler
    logging.getLogger(NOTES_LOGGER).info("animating face 1 of 3 (numbered 0-2 left to right), 120 px wide")
    assert capsys.readouterr().err == "note: animating face 1 of 3 (numbered 0-2 left to right), 120 px wide\n"


# ------------------------------------------------------------------------------------- rendering each face


def _render_each_face(pipe, photo, faces, wave, sr, caplog):
    import torch

    results = []
    for n in range(len(faces)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=NOTES_LOGGER):
            out = pipe(
                image=photo,
                audio=(wave, sr),
                emotion="happy",
                face=n,
                paste_back=True,
                size=256,
                num_inference_steps=2,
                generator=torch.Generator("cpu").manual_seed(0),
            )
        assert out.face.index == n and out.face.count == len(faces)
        assert f"animating face {n} of {len(faces)}" in caplog.text
        diff = np.abs(out.frames.astype(np.int16) - photo[None].astype(np.int16)).max(-1)  # (t, h, w)
        moved = [float(diff[:, f.bbox[1] : f.bbox[3], f.bbox[0] : f.bbox[2]].mean()) for f in faces]
        x0, y0, x1, y1 = faces[n].bbox
        pad = x1 - x0  # the chosen face's region: its box and one face width around it
        outside = np.ones(photo.shape[:2], bool)
        outside[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad] = False
        results.append((moved, float(diff[:, outside].max())))
    return results


@pytest.mark.slow
def test_each_face_number_animates_that_person_and_no_one_else(group, caplog):
    """The bundled pipeline on the group photo, 0.5 s of the bundled speech: face=N moves face N (mean change in its
    box > 3 levels) and leaves every other face and everything beyond one face width of face N unchanged
    (at most 2 levels; measured: exactly 0)."""
    pytest.importorskip("mediapipe")
    from affectstudio.assets import asset_path
    from affectstudio.conditioning.face_choice import list_faces
    from affectstudio.media import load_audio
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    photo, _ = group
    faces = list_faces(photo)
    assert len(faces) == 4
    pipe = TalkingPortraitPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    wave, sr = load_audio(asset_path("samples", "speech.wav"))
    for n, (moved, outside) in enumerate(_render_each_face(pipe, photo, faces, wave[: sr // 2], sr, caplog)):
        others = [m for i, m in enumerate(moved) if i != n]
        assert moved[n] > 3.0 and max(others) <= 0.5, (n, moved)
        assert outside <= 2.0, (n, outside)


def test_job_files_take_the_face_key(tmp_path):
    """``face`` is a portrait job key (read from render_portrait's signature): a number or a rule, passed through."""
    from affectstudio.apps.jobs.batch_tasks import validate_jobs

    jobs = [
        {"id": f"j{i}", "task": "portrait", "image": "g.png", "audio": "s.wav", "face": face, "output": f"{i}.mp4"}
        for i, face in enumerate((2, "center"))
    ]
    valid = validate_jobs({"jobs": jobs}, tmp_path, tmp_path / "out")
    assert [j.kwargs["face"] for j in valid] == [2, "center"]
