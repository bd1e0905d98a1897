"""Face analysis: mediapipe mesh, crop/align, regions, head pose, action units (real photo: skimage astronaut)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mediapipe")
cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from affectstudio.conditioning.face import (  # noqa: E402
    KEYPOINTS,
    MESH_REGIONS,
    NUM_LANDMARKS,
    analyze_face,
    analyze_faces,
    eye_centers,
    head_pose_from_landmarks,
    to_face_coords,
    track_faces,
)
from affectstudio.conditioning.face_align import crop_align, paste_back, transform_points  # noqa: E402
from affectstudio.conditioning.face_features import ACTION_UNITS, measure_action_units  # noqa: E402
from affectstudio.errors import NoFaceError  # noqa: E402


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


@pytest.fixture(scope="module")
def face(astronaut):
    return analyze_face(astronaut)


def test_regions_match_mediapipe():
    from mediapipe.python.solutions import face_mesh_connections as c

    def idx(edges):
        return {i for e in edges for i in e}

    assert set(MESH_REGIONS["lips_outer"]) | set(MESH_REGIONS["lips_inner"]) == idx(c.FACEMESH_LIPS)
    assert set(MESH_REGIONS["left_eye"]) == idx(c.FACEMESH_LEFT_EYE)
    assert set(MESH_REGIONS["right_eye"]) == idx(c.FACEMESH_RIGHT_EYE)
    assert set(MESH_REGIONS["left_brow"]) == idx(c.FACEMESH_LEFT_EYEBROW)
    assert set(MESH_REGIONS["right_brow"]) == idx(c.FACEMESH_RIGHT_EYEBROW)
    assert set(MESH_REGIONS["face_oval"]) == idx(c.FACEMESH_FACE_OVAL)
    assert set(MESH_REGIONS["nose"]) == idx(c.FACEMESH_NOSE)
    assert set(MESH_REGIONS["left_iris"][1:]) == idx(c.FACEMESH_LEFT_IRIS)
    assert set(MESH_REGIONS["right_iris"][1:]) == idx(c.FACEMESH_RIGHT_IRIS)
    # the ordered loops follow the mesh's own edges
    for name in ("lips_outer", "lips_inner", "left_eye", "right_eye", "face_oval"):
        loop = MESH_REGIONS[name]
        edges = {frozenset(e) for e in c.FACEMESH_TESSELATION} | {frozenset(e) for e in c.FACEMESH_CONTOURS}
        assert all(frozenset((a, b)) in edges for a, b in zip(loop, loop[1:] + loop[:1])), name


def test_analyze_astronaut(face, astronaut):
    lm = face.landmarks
    assert lm.shape == (NUM_LANDMARKS, 3) and lm.dtype == np.float32
    assert face.image_size == astronaut.shape[:2]
    x0, y0, x1, y1 = face.bbox
    assert (lm[:, 0] >= x0 - 1).all() and (lm[:, 0] <= x1 + 1).all()
    assert (lm[:, 1] >= y0 - 1).all() and (lm[:, 1] <= y1 + 1).all()
    # the astronaut's face is in the upper middle of the 512x512 photo, ~100 px wide
    assert 150 < x0 < x1 < 300 and 40 < y0 < y1 < 220 and 70 < x1 - x0 < 140
    # mouth corners: subject's right corner on the image left, both below the eyes and above the chin
    r, l = lm[KEYPOINTS["mouth_corner_r"]], lm[KEYPOINTS["mouth_corner_l"]]
    eye_r, eye_l = eye_centers(lm)
    assert r[0] < l[0]
    assert max(eye_r[1], eye_l[1]) < min(r[1], l[1]) < lm[KEYPOINTS["chin"], 1]
    assert 20 < face.interocular < 80
    assert face.score > 0.5
    yaw, pitch, roll = face.head_pose()
    assert abs(yaw) < 15 and abs(pitch) < 15 and abs(roll) < 10


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_face(kind):
    rng = np.random.default_rng(0)
    img = (
        np.full((256, 256, 3), 128, np.uint8)
        if kind == "blank"
        else rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    )
    with pytest.raises(NoFaceError, match="no face found"):
        analyze_face(img)


def test_largest_face_selected(face, astronaut):
    x0, y0, x1, y1 = face.bbox
    pad = 40
    head = astronaut[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad]
    big = cv2.resize(head, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(head, None, fx=1.0, fy=1.0)
    canvas = np.full((big.shape[0] + 40, big.shape[1] + small.shape[1] + 80, 3), 200, np.uint8)
    canvas[20 : 20 + small.shape[0], 20 : 20 + small.shape[1]] = small  # small face on the left
    ox = small.shape[1] + 60
    canvas[20 : 20 + big.shape[0], ox : ox + big.shape[1]] = big  # big face on the right
    found = analyze_faces(canvas)
    assert len(found) == 2
    chosen = analyze_face(canvas)
    assert chosen.center[0] > ox and chosen.interocular > 1.5 * found[1].interocular


def test_tiny_and_huge_images(face, astronaut):
    tiny = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)
    huge = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    for img, k in ((tiny, 0.25), (huge, 4.0)):
        f = analyze_face(img)
        corners = f.landmarks[[61, 291], :2] / k
        assert np.abs(corners - face.landmarks[[61, 291], :2]).max() < 6.0


def test_crop_align_upright(astronaut, face):
    h, w = astronaut.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)  # rotate the photo 20 degrees
    tilted = cv2.warpAffine(astronaut, rot, (w, h), borderMode=cv2.BORDER_REFLECT)
    tface = analyze_face(tilted)
    assert abs(tface.head_pose()[2] - face.head_pose()[2]) > 12  # roll follows the rotation
    crop, m = crop_align(tilted, tface, size=256)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8 and m.shape == (2, 3)
    lm = transform_points(tface.landmarks, m)
    er, el = eye_centers(lm)
    assert abs(er[1] - el[1]) < 1.0 and er[0] < el[0]  # eyes level, upright
    assert 0.25 * 256 < lm[:, 1].mean() < 0.6 * 256 and 0.35 * 256 < lm[:, 0].mean() < 0.65 * 256
    cface = analyze_face(crop)  # the crop is itself a valid, upright face photo
    assert abs(cface.head_pose()[2]) < 4
    back = paste_back(crop, m, tilted)
    x0, y0, x1, y1 = tface.bbox
    diff = np.abs(back[y0:y1, x0:x1].astype(float) - tilted[y0:y1, x0:x1].astype(float)).mean()
    assert back.shape == tilted.shape and diff < 8


def test_action_units_astronaut(face):
    aus = measure_action_units(face.landmarks)
    assert set(ACTION_UNITS) <= set(aus)
    assert all(0.0 <= aus[a] <= 1.0 for a in ACTION_UNITS)
    assert aus["AU12"] > 0.6  # broad smile
    assert aus["AU25"] > 0.0 and aus["mouth_open"] > 0.05  # lips apart, teeth showing
    assert aus["AU15"] < 0.2 and aus["AU43"] < 0.2


def test_jaw_drop_raises_au26(face):
    lm = face.landmarks.astype(np.float64).copy()
    local = to_face_coords(lm)[0]
    below = local[:, 1] > 0.5 * (local[14, 1] + local[13, 1])  # lower lip, chin, jaw line
    drop = 0.25 * face.interocular
    right, left = eye_centers(lm)
    down = np.array([-(left - right)[1], (left - right)[0]]) / np.linalg.norm((left - right)[:2])  # face "down"
    lm[below, :2] += drop * down
    before = measure_action_units(face.landmarks)
    after = measure_action_units(lm)
    assert after["AU26"] > before["AU26"] + 0.3
    assert after["mouth_open"] > before["mouth_open"] + 0.15
    # against its own neutral the unchanged face reads no jaw drop
    assert measure_action_units(face.landmarks, neutral=face.landmarks)["AU26"] == 0.0
    assert measure_action_units(lm, neutral=face.landmarks)["AU26"] > 0.9


def test_au_batch_and_pose_invariance(face):
    lm = face.landmarks.astype(np.float64)
    c = lm[:, :2].mean(0)
    th = np.radians(25)
    r = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    rotated = lm.copy()
    rotated[:, :2] = (lm[:, :2] - c) @ r.T * 1.7 + c  # rotate in the image plane and scale
    rotated[:, 2] *= 1.7  # z is scaled like x
    batch = measure_action_units(np.stack([lm, rotated]))
    assert batch["AU12"].shape == (2,)
    for a in ACTION_UNITS:
        assert abs(batch[a][0] - batch[a][1]) < 1e-4, a
    pose = head_pose_from_landmarks(np.stack([lm, rotated]))
    assert pose.shape == (2, 3) and abs(pose[1, 2] - pose[0, 2] - 25) < 0.5


def test_track_faces_interpolates(astronaut):
    frames = [np.roll(astronaut, 3 * i, axis=1) for i in range(4)]
    frames[2] = np.full_like(astronaut, 128)  # a frame without a face
    track = track_faces(np.stack(frames))
    assert track.shape == (4, NUM_LANDMARKS, 3) and np.isfinite(track).all()
    np.testing.assert_allclose(track[2], 0.5 * (track[1] + track[3]), atol=1e-3)
    assert track[3, 61, 0] - track[0, 61, 0] == pytest.approx(9.0, abs=2.5)
    with pytest.raises(NoFaceError):
        track_faces(np.full((2, 64, 64, 3), 128, np.uint8))
