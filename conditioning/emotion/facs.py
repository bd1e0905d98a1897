"""EMFACS emotion prototypes: the ONE table used both to read expressions (the face emotion encoder) and to
synthesise them (the portrait data engine).

Weights are relative action-unit intensities in [0, 1] for the full-blown expression (after Friesen & Ekman's
EMFACS and the prototypes summarised in Ekman, Friesen & Hager, FACS Investigator's Guide, 2002). AU names
match :data:`affectstudio.conditioning.face_features.ACTION_UNITS`. Unilateral actions (contempt's one-sided smile /
dimpler) are listed in :data:`UNILATERAL`: the weight applies to that side only (the subject's ``"r"`` by
convention; mirrored expressions are equally valid).
"""

from __future__ import annotations

import numpy as np

from affectstudio.conditioning.face_features import ACTION_UNITS

EMFACS_PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"AU6": 1.0, "AU12": 1.0},
    "sad": {"AU1": 1.0, "AU4": 0.8, "AU15": 1.0, "AU17": 0.4},
    "angry": {"AU4": 1.0, "AU5": 0.6, "AU7": 0.8, "AU23": 1.0},
    "fearful": {"AU1": 1.0, "AU2": 0.8, "AU4": 0.6, "AU5": 1.0, "AU7": 0.5, "AU20": 1.0, "AU26": 0.8},
    "disgusted": {"AU9": 1.0, "AU10": 1.0, "AU15": 0.6, "AU17": 0.4},
    "surprised": {"AU1": 1.0, "AU2": 1.0, "AU5": 0.8, "AU26": 1.0},
    "contempt": {"AU12": 0.6, "AU14": 1.0},
}

# emotion -> {AU: side} for actions done on one side of the face only ("r"/"l" = subject's right/left).
UNILATERAL: dict[str, dict[str, str]] = {"contempt": {"AU12": "r", "AU14": "r"}}

# Asymmetry features (|right - left|) the encoder reads besides the bilateral AU means.
ASYMMETRY_FEATURES = ("AU12_asym", "AU14_asym")
ENCODER_FEATURES: tuple[str, ...] = tuple(ACTION_UNITS) + ASYMMETRY_FEATURES


def side_weights(emotion: str, au: str) -> tuple[float, float]:
    """(right, left) weight of ``au`` in ``emotion``'s prototype, for synthesising per-side motion."""
    w = EMFACS_PROTOTYPES[emotion].get(au, 0.0)
    side = UNILATERAL.get(emotion, {}).get(au)
    if side is None:
        return w, w
    return (w, 0.0) if side == "r" else (0.0, w)


def prototype_features(emotion: str) -> np.ndarray:
    """The prototype as an :data:`ENCODER_FEATURES` vector ``(F,)``: bilateral AUs are the mean of the two
    sides (what :func:`~affectstudio.conditioning.face_features.measure_action_units` reports), plus asymmetries."""
    vec = np.zeros(len(ENCODER_FEATURES), dtype=np.float32)
    for au in EMFACS_PROTOTYPES[emotion]:
        r, l = side_weights(emotion, au)
        vec[ENCODER_FEATURES.index(au)] = 0.5 * (r + l)
        if f"{au}_asym" in ENCODER_FEATURES:
            vec[ENCODER_FEATURES.index(f"{au}_asym")] = abs(r - l)
    return vec


def prototype_matrix(emotions: tuple[str, ...]) -> np.ndarray:
    """``(len(emotions), F)`` prototypes in the given label order."""
    return np.stack([prototype_features(e) for e in emotions])


def encoder_features(aus: dict) -> np.ndarray:
    """:data:`ENCODER_FEATURES` from a :func:`measure_action_units` dict: ``(F,)`` or ``(t, F)``."""
    cols = []
    for name in ENCODER_FEATURES:
        if name.endswith("_asym"):
            base = name[: -len("_asym")]
            cols.append(np.abs(np.asarray(aus[f"{base}_r"]) - np.asarray(aus[f"{base}_l"])))
        else:
            cols.append(np.asarray(aus[name]))
    return np.stack(cols, axis=-1).astype(np.float32)
