"""The fresh-face report's pure parts: crop picking, the face nearest the centre, counts and the table."""

import numpy as np
import pytest

from affectstudio.apps.evaluation.fresh_faces import counts, nearest_centre, on_face, pick_crops, table


def _row(fer, net, identity):
    return {"fer": {"majority": fer}, "fernet": {"majority": net}, "identity_mean": identity}


def test_pick_crops_keeps_the_asked_order_and_refuses_a_missing_face():
    crops = [("a", np.zeros(1)), ("b#0", np.ones(1)), ("b#1", np.full(1, 2.0))]
    assert [n for n, _ in pick_crops(crops, ["b#1", "a"])] == ["b#1", "a"]
    assert pick_crops(crops, ["b#1"])[0][1][0] == 2.0
    with pytest.raises(LookupError, match="b#2"):
        pick_crops(crops, ["a", "b#2"])


def test_nearest_centre_ignores_a_far_neighbour():
    shape = (300, 300, 3)
    boxes = [(0, 0, 60, 60), (120, 130, 60, 60), (240, 240, 60, 60)]
    assert nearest_centre(boxes, shape) == 1
    assert nearest_centre([(0, 0, 60, 60)], shape) is None  # 120 px off a 300 px crop: a neighbour
    assert nearest_centre([], shape) is None


def test_on_face_takes_the_box_centred_on_the_dlib_face():
    face = (100, 100, 100, 100)
    boxes = [(0, 0, 90, 90), (95, 90, 120, 120), (130, 130, 20, 20)]
    assert on_face(boxes, face) == (95, 90, 120, 120)  # centre 5 px off the face centre; (140, 140) is 14 px
    assert on_face(boxes[:1], face) is None
    assert on_face(boxes, None) is None


def test_counts_and_table():
    per_face = {
        "p": {"photo_labels": {}, "sad": _row("sad", "angry", 0.30), "happy": _row("happy", "happy", 0.2)},
        "q": {"photo_labels": {}, "sad": _row("neutral", "sad", 0.50), "happy": _row("neutral", None, 0.4)},
        "r": {"photo_labels": {}, "sad": _row("neutral", "neutral", np.nan), "happy": _row("happy", "sad", 0.3)},
    }
    c = counts(per_face)
    assert (c["sad"]["fer"], c["sad"]["fernet"], c["sad"]["either"], c["sad"]["faces"]) == (1, 1, 2, 3)
    assert c["sad"]["fer_read_as"] == {"neutral": 2, "sad": 1}
    assert c["sad"]["identity_mean"] == pytest.approx(0.40) and c["sad"]["identity_worst"] == pytest.approx(0.5)
    assert c["happy"]["either"] == 2 and c["happy"]["fernet_read_as"]["None"] == 1
    rows = table(c)
    assert len(rows) == 4 and rows[2].startswith("| happy | 2/3 | 1/3 | 2/3 ✗ | 0.300 / 0.400 ✓")
    assert "2/3 ✗ | 0.400 / 0.500 ✓ (2 faces: dlib lost the others)" in rows[3]
    assert c["sad"]["identity_measured"] == 2 and "dlib lost" not in rows[2]
    assert "3/3 ✓" in table({"sad": {**c["sad"], "either": 3}})[2]
