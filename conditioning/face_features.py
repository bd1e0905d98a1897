"""FACS action-unit geometry from face-mesh landmarks: raw expression features in the head-fixed frame
(:func:`expression_features`) and action units relative to a neutral face (:func:`measure_action_units`).
Works on landmark arrays only (no mediapipe). Landmark conventions as in :mod:`affectstudio.conditioning.face`."""

from __future__ import annotations

import numpy as np

from affectstudio.conditioning.face import MESH_REGIONS, landmark_batch, to_face_coords

# ---------------------------------------------------------------------------------------- action units


def _y(local: np.ndarray, idx) -> np.ndarray:
    return local[:, list(np.atleast_1d(idx)), 1].mean(-1)


def expression_features(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Raw expression geometry in the head-fixed frame (interocular units, y down), each ``(t,)``.

    Per side where it matters (``_r``/``_l`` = subject's right/left); :func:`measure_action_units` turns
    differences from a neutral face into action units.
    """
    local = to_face_coords(landmarks)  # (t, 478, 3)
    f: dict[str, np.ndarray] = {}
    for s, (inner_c, outer_c, b_in, b_out, brow, up_lid, lo_lid, _eye, corner, wing, cheek) in {
        "r": (
            133,
            33,
            (107, 55),
            (70, 46),
            MESH_REGIONS["right_brow"],
            (158, 159, 160),
            (144, 145, 153),
            MESH_REGIONS["right_eye"],
            61,
            (64, 48),
            (50, 101, 118),
        ),
        "l": (
            362,
            263,
            (336, 285),
            (300, 276),
            MESH_REGIONS["left_brow"],
            (385, 386, 387),
            (373, 374, 380),
            MESH_REGIONS["left_eye"],
            291,
            (294, 278),
            (280, 330, 347),
        ),
    }.items():
        corner_line = 0.5 * (_y(local, inner_c) + _y(local, outer_c))
        eye_w = np.linalg.norm(local[:, inner_c, :2] - local[:, outer_c, :2], axis=-1)
        f[f"brow_inner_{s}"] = _y(local, inner_c) - _y(local, b_in)  # inner brow height above inner eye corner
        f[f"brow_outer_{s}"] = _y(local, outer_c) - _y(local, b_out)  # outer brow height above outer corner
        f[f"brow_mean_{s}"] = corner_line - _y(local, brow)  # whole brow height above the eye-corner line
        f[f"eye_open_{s}"] = (_y(local, lo_lid) - _y(local, up_lid)) / eye_w  # lid gap / eye width
        f[f"lower_lid_{s}"] = _y(local, lo_lid) - corner_line  # lower lid depth below the corner line
        f[f"cheek_{s}"] = _y(local, cheek) - corner_line  # cheek depth below the corner line
        f[f"nose_wing_{s}"] = _y(local, wing) - _y(local, inner_c)  # nose wing below the inner eye corner
        lip_mid = 0.5 * (_y(local, 13) + _y(local, 14))
        f[f"corner_elev_{s}"] = lip_mid - _y(local, corner)  # mouth corner height above the mid-lip line
        f[f"corner_depth_{s}"] = local[:, corner, 2] - 0.5 * (local[:, 0, 2] + local[:, 17, 2])  # corner behind lips
    f["brow_gap"] = np.linalg.norm(local[:, 336, :2] - local[:, 107, :2], axis=-1)  # inner brow distance
    f["mouth_width"] = np.linalg.norm(local[:, 291, :2] - local[:, 61, :2], axis=-1)
    f["upper_lip"] = _y(local, 0) - _y(local, 2)  # subnasale → upper lip top
    f["lip_thickness"] = (_y(local, 13) - _y(local, 0)) + (_y(local, 17) - _y(local, 14))  # red lip heights
    f["lip_gap"] = np.maximum(_y(local, 14) - _y(local, 13), 0.0)  # inner-lip opening
    f["jaw"] = _y(local, 152) - _y(local, 2)  # chin below the nose base
    f["chin_lip"] = _y(local, 152) - _y(local, 17)  # chin below the lower lip
    return f


# Population-typical neutral geometry (interocular units). No canonical head model ships in the mediapipe
# wheel, so these were measured with :func:`expression_features` on the neutral-looking real faces on hand
# (Grace Hopper in matplotlib's sample data, the woman at the back of insightface's t1.jpg, the mouth and
# brows of Tom Hanks in insightface's sample) and rounded by hand. Per-person differences are large
# (±0.05 on most entries): pass the person's own neutral mesh to measure_action_units when there is one.
NEUTRAL_FEATURES: dict[str, float] = {
    "brow_inner": 0.26,
    "brow_outer": 0.20,
    "brow_mean": 0.27,
    "eye_open": 0.27,
    "lower_lid": 0.04,
    "cheek": 0.40,
    "nose_wing": 0.62,
    "corner_elev": 0.01,
    "corner_depth": 0.28,
    "brow_gap": 0.47,
    "mouth_width": 0.85,
    "upper_lip": 0.24,
    "lip_thickness": 0.25,
    "lip_gap": 0.0,
    "jaw": 0.97,
    "chin_lip": 0.50,
}

ACTION_UNITS = (
    "AU1",
    "AU2",
    "AU4",
    "AU5",
    "AU6",
    "AU7",
    "AU9",
    "AU10",
    "AU12",
    "AU14",
    "AU15",
    "AU17",
    "AU20",
    "AU23",
    "AU25",
    "AU26",
    "AU43",
)


def _neutral_features(neutral: np.ndarray | None) -> dict[str, float]:
    if neutral is None:
        out = {}
        for k, v in NEUTRAL_FEATURES.items():
            out[k] = v
            out[f"{k}_r"] = out[f"{k}_l"] = v
        return out
    feats = expression_features(neutral)
    return {k: float(np.mean(v)) for k, v in feats.items()}


def measure_action_units(landmarks: np.ndarray, neutral: np.ndarray | None = None) -> dict[str, float | np.ndarray]:
    """FACS action-unit estimates from mesh geometry, each in [0, 1] (0 absent, 1 strong).

    ``landmarks`` ``(478, 3)`` → floats, ``(t, 478, 3)`` → ``(t,)`` arrays. Pose and scale are removed
    (:func:`to_face_coords`); changes are taken against ``neutral`` (the same person's neutral mesh) or,
    without one, :data:`NEUTRAL_FEATURES`. Δ = value − neutral, all in interocular units, clip to [0, 1]:

    AU1  inner brow raise   = Δ(inner brow height above inner eye corner) / 0.08
    AU2  outer brow raise   = Δ(outer brow height above outer eye corner) / 0.08
    AU4  brow lowerer       = ½·(−Δ mean brow height)/0.06 + ½·(−Δ inner-brow distance)/0.08
    AU5  upper lid raise    = Δ(lid gap / eye width) / 0.10
    AU6  cheek raise        = −Δ(cheek depth below the eye-corner line) / 0.08
    AU7  lid tightener      = −Δ(lower-lid depth below the eye-corner line) / 0.03
    AU9  nose wrinkle       = −Δ(nose-wing depth below the inner eye corners) / 0.12
    AU10 upper lip raise    = −Δ(subnasale → upper-lip distance) / 0.10
    AU12 lip corner puller  = Δ(corner height above the mid-lip line)/0.12 + ½·Δ(mouth width)/0.15, per side
    AU14 dimpler            = Δ(corner depth behind the lip centre) / 0.08, per side
    AU15 lip corner depress = −Δ(corner height above the mid-lip line) / 0.06
    AU17 chin raiser        = −Δ(chin → lower-lip distance) / 0.08
    AU20 lip stretcher      = Δ(mouth width)/0.15 · (1 − Δ corner height/0.06)
    AU23 lip tightener      = −Δ(red-lip thickness)/0.08 · (1 − Δ mouth width/0.12)
    AU25 lips part          = Δ(inner-lip gap) / 0.05
    AU26 jaw drop           = Δ(chin depth below the nose base) / 0.20
    AU43 eyes closed        = (0.75·neutral openness − openness) / (0.75·neutral openness)

    Also returned: ``AU12_r/_l``, ``AU14_r/_l``, ``AU15_r/_l`` (subject's sides), ``mouth_open`` (inner-lip
    gap / interocular, raw), ``eye_open_r/_l/eye_open`` (lid gap / eye width, raw).
    """
    lm, single = landmark_batch(landmarks)
    f = expression_features(lm)
    n = _neutral_features(neutral)

    def d(key: str) -> np.ndarray:
        return f[key] - n[key]

    def both(key: str) -> np.ndarray:
        return 0.5 * (d(f"{key}_r") + d(f"{key}_l"))

    c = lambda x: np.clip(x, 0.0, 1.0)  # noqa: E731
    au: dict[str, np.ndarray] = {}
    au["AU1"] = c(both("brow_inner") / 0.08)
    au["AU2"] = c(both("brow_outer") / 0.08)
    au["AU4"] = c(0.5 * c(-both("brow_mean") / 0.06) + 0.5 * c(-d("brow_gap") / 0.08))
    au["AU5"] = c(both("eye_open") / 0.10)
    au["AU6"] = c(-both("cheek") / 0.08)
    au["AU7"] = c(-both("lower_lid") / 0.03)
    au["AU9"] = c(-both("nose_wing") / 0.12)
    au["AU10"] = c(-d("upper_lip") / 0.10)
    width = d("mouth_width")
    for s in ("r", "l"):
        au[f"AU12_{s}"] = c(d(f"corner_elev_{s}") / 0.12 + 0.5 * c(width / 0.15))
        au[f"AU14_{s}"] = c(d(f"corner_depth_{s}") / 0.08)
        au[f"AU15_{s}"] = c(-d(f"corner_elev_{s}") / 0.06)
    au["AU12"] = 0.5 * (au["AU12_r"] + au["AU12_l"])
    au["AU14"] = 0.5 * (au["AU14_r"] + au["AU14_l"])
    au["AU15"] = 0.5 * (au["AU15_r"] + au["AU15_l"])
    au["AU17"] = c(-d("chin_lip") / 0.08)
    au["AU20"] = c(width / 0.15) * (1.0 - c(both("corner_elev") / 0.06))
    au["AU23"] = c(-d("lip_thickness") / 0.08) * (1.0 - c(width / 0.12))
    au["AU25"] = c(d("lip_gap") / 0.05)
    au["AU26"] = c(d("jaw") / 0.20)
    for s in ("r", "l"):
        ref = 0.75 * n[f"eye_open_{s}"]
        au[f"AU43_{s}"] = c((ref - f[f"eye_open_{s}"]) / max(ref, 1e-6))
    au["AU43"] = 0.5 * (au["AU43_r"] + au["AU43_l"])
    au["mouth_open"] = f["lip_gap"]
    au["eye_open_r"], au["eye_open_l"] = f["eye_open_r"], f["eye_open_l"]
    au["eye_open"] = 0.5 * (f["eye_open_r"] + f["eye_open_l"])
    if single:
        return {k: float(v[0]) for k, v in au.items()}
    return {k: np.asarray(v, dtype=np.float32) for k, v in au.items()}
