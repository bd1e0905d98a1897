"""The shared emotion space: :class:`EmotionEmbedding`, the one currency between inputs and generators.

An embedding is a categorical distribution over MEAD's eight emotions (``probs``), a point in
valence/arousal/dominance space (``vad``, each in [-1, 1]) and an ``intensity`` in [0, 1]. It is either
static (``probs`` (8,), ``vad`` (3,), ``intensity`` float) or a *curve* with a time axis (``probs`` (t, 8),
``vad`` (t, 3), ``intensity`` (t,)), one state per video frame or bar.

Generators see :meth:`EmotionEmbedding.as_condition`: 12 numbers per clip or per frame
(8 probs, 3 VAD, intensity). The unconditional input for classifier-free guidance is a learned null token
inside the DiT, so there is deliberately no "null" embedding here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from affectstudio.conditioning.timeseries import resample_frames
from affectstudio.errors import InputError, UnknownEmotionError

if TYPE_CHECKING:
    import torch

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised", "contempt")
NUM_EMOTIONS = len(EMOTIONS)
CONDITION_DIM = NUM_EMOTIONS + 3 + 1  # 8 probs, valence/arousal/dominance, intensity

# Valence, arousal, dominance anchors in [-1, 1]. The seven basic emotions use the PAD values of
# Russell & Mehrabian (1977, "Evidence for a three-factor theory of emotions") as tabulated by
# Mehrabian (1980) and reused by Buechel & Hahn (2018) for mapping categories to VAD:
# happy ~ "happy", sad ~ "sad", angry ~ "angry", fearful ~ "afraid", disgusted ~ "disgusted",
# surprised ~ "surprised". Contempt is not in that table; it is placed from its description in the
# same literature (unpleasant like disgust, low-to-moderate arousal, high dominance: a feeling of
# superiority). Neutral is the origin.
VAD_ANCHORS: dict[str, tuple[float, float, float]] = {
    "neutral": (0.00, 0.00, 0.00),
    "happy": (0.81, 0.51, 0.46),
    "sad": (-0.63, -0.27, -0.33),
    "angry": (-0.51, 0.59, 0.25),
    "fearful": (-0.64, 0.60, -0.43),
    "disgusted": (-0.60, 0.35, 0.11),
    "surprised": (0.40, 0.67, -0.13),
    "contempt": (-0.50, 0.20, 0.55),
}
_ANCHORS = np.array([VAD_ANCHORS[e] for e in EMOTIONS], dtype=np.float32)  # (8, 3)

# One table of accepted names: canonical labels plus obvious synonyms (case-insensitive).
LABEL_SYNONYMS: dict[str, str] = {
    **{e: e for e in EMOTIONS},
    "calm": "neutral",
    "none": "neutral",
    "joy": "happy",
    "joyful": "happy",
    "happiness": "happy",
    "glad": "happy",
    "sadness": "sad",
    "unhappy": "sad",
    "anger": "angry",
    "mad": "angry",
    "fear": "fearful",
    "afraid": "fearful",
    "scared": "fearful",
    "disgust": "disgusted",
    "surprise": "surprised",
    "contemptuous": "contempt",
    "scorn": "contempt",
}

# The valence mirror, used as the default *negative* guidance emotion: every category is sent to the
# category nearest its anchor with valence negated, except where that lands on neutral (sad: the
# valence-flipped sad point is closest to neutral, but "away from happy" is what sad needs).
#   happy -> sad, sad -> happy, fearful -> surprised, surprised -> fearful,
#   angry / disgusted / contempt -> happy (the only clearly positive categories are happy and
#   surprised; happy is the nearest flip of all three), neutral -> neutral.
# The mirrored VAD is exactly (-valence, arousal, dominance).
MIRROR: dict[str, str] = {
    "neutral": "neutral",
    "happy": "sad",
    "sad": "happy",
    "angry": "happy",
    "fearful": "surprised",
    "disgusted": "happy",
    "surprised": "fearful",
    "contempt": "happy",
}
_MIRROR_MATRIX = np.zeros((NUM_EMOTIONS, NUM_EMOTIONS), dtype=np.float32)  # (from, to)
for _src, _dst in MIRROR.items():
    _MIRROR_MATRIX[EMOTIONS.index(_src), EMOTIONS.index(_dst)] = 1.0

_PROB_TOL = 1e-3
_RANGE_TOL = 1e-4


def canonical_label(name: str) -> str:
    """Map a label or synonym (any case) to one of :data:`EMOTIONS`; raise UnknownEmotionError otherwise."""
    key = str(name).strip().lower()
    if key not in LABEL_SYNONYMS:
        raise UnknownEmotionError(f"unknown emotion {name!r}; use one of: {', '.join(EMOTIONS)}")
    return LABEL_SYNONYMS[key]


def vad_from_probs(probs: np.ndarray) -> np.ndarray:
    """Probability-weighted VAD anchors: (..., 8) -> (..., 3)."""
    return np.clip(np.asarray(probs, dtype=np.float32) @ _ANCHORS, -1.0, 1.0).astype(np.float32)


@dataclass
class EmotionEmbedding:
    """An emotional state (static) or a sequence of states (curve).

    probs: (8,) or (t, 8), non-negative, sums to 1 over the last axis, ordered as :data:`EMOTIONS`.
    vad: (3,) or (t, 3), valence/arousal/dominance in [-1, 1].
    intensity: float or (t,) in [0, 1]; how strongly the emotion is expressed (its own channel: VAD is
        not scaled by it).
    """

    probs: np.ndarray
    vad: np.ndarray
    intensity: float | np.ndarray = 1.0

    def __post_init__(self) -> None:
        probs = np.asarray(self.probs, dtype=np.float32)
        vad = np.asarray(self.vad, dtype=np.float32)
        intensity = np.asarray(self.intensity, dtype=np.float32)
        if probs.ndim not in (1, 2) or probs.shape[-1] != NUM_EMOTIONS:
            raise InputError(f"emotion probs must have shape (8,) or (t, 8), got {probs.shape}")
        curve = probs.ndim == 2
        t: int | None = probs.shape[0] if curve else None
        if vad.shape != ((t, 3) if curve else (3,)):
            raise InputError(f"emotion vad must have shape {(t, 3) if curve else (3,)}, got {vad.shape}")
        if curve and intensity.ndim == 0:
            intensity = np.full(probs.shape[:1], float(intensity), dtype=np.float32)
        if intensity.shape != ((t,) if curve else ()):
            raise InputError(f"emotion intensity must have shape {(t,) if curve else ()}, got {intensity.shape}")
        if curve and t == 0:
            raise InputError("an emotion curve needs at least one frame")
        for name, arr in (("probs", probs), ("vad", vad), ("intensity", intensity)):
            if not np.all(np.isfinite(arr)):
                raise InputError(f"emotion {name} contains NaN or infinity")
        if np.any(probs < -_RANGE_TOL):
            raise InputError("emotion probs must be non-negative")
        sums = probs.sum(axis=-1)
        if np.any(np.abs(sums - 1.0) > _PROB_TOL):
            raise InputError(f"emotion probs must sum to 1 (got {np.round(sums, 4).tolist()})")
        if np.any(np.abs(vad) > 1.0 + _RANGE_TOL):
            raise InputError("valence, arousal and dominance must lie in [-1, 1]")
        if np.any(intensity < -_RANGE_TOL) or np.any(intensity > 1.0 + _RANGE_TOL):
            raise InputError("emotion intensity must lie in [0, 1]")
        probs = np.clip(probs, 0.0, None)
        self.probs = (probs / probs.sum(axis=-1, keepdims=True)).astype(np.float32)
        self.vad = np.clip(vad, -1.0, 1.0).astype(np.float32)
        intensity = np.clip(intensity, 0.0, 1.0).astype(np.float32)
        self.intensity = intensity if curve else float(intensity)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_label(cls, label: str, intensity: float = 1.0) -> "EmotionEmbedding":
        return cls.from_mix({label: 1.0}, intensity=intensity)

    @classmethod
    def from_mix(cls, weights: Mapping[str, float], intensity: float = 1.0) -> "EmotionEmbedding":
        """A mix of labels; weights are normalised to sum to 1 (labels may repeat via synonyms)."""
        if not weights:
            raise InputError("an emotion mix needs at least one label")
        probs = np.zeros(NUM_EMOTIONS, dtype=np.float64)
        for name, w in weights.items():
            w = float(w)
            if not np.isfinite(w) or w < 0:
                raise InputError(f"emotion weight for {name!r} must be a non-negative number, got {w}")
            probs[EMOTIONS.index(canonical_label(name))] += w
        if probs.sum() <= 0:
            raise InputError("emotion mix weights must not all be zero")
        probs = (probs / probs.sum()).astype(np.float32)
        return cls(probs=probs, vad=vad_from_probs(probs), intensity=intensity)

    @classmethod
    def from_probs(
        cls, probs: Sequence[float] | np.ndarray, intensity: float | np.ndarray | None = None
    ) -> "EmotionEmbedding":
        """From a distribution (8,) or (t, 8); VAD is the probability-weighted anchor.

        ``intensity=None`` means "how much of the mass is not neutral": ``1 - p(neutral)``.
        """
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim not in (1, 2) or probs.shape[-1] != NUM_EMOTIONS:
            raise InputError(f"emotion probs must have shape (8,) or (t, 8), got {probs.shape}")
        if intensity is None:
            intensity = 1.0 - probs[..., 0] / np.clip(probs.sum(axis=-1), 1e-12, None)
        return cls(
            probs=probs,
            vad=vad_from_probs(probs / np.clip(probs.sum(-1, keepdims=True), 1e-12, None)),
            intensity=intensity,
        )

    @classmethod
    def neutral(cls) -> "EmotionEmbedding":
        """Neutral, at intensity 0 (nothing expressed)."""
        return cls.from_label("neutral", intensity=0.0)

    @classmethod
    def curve(cls, keyframes: Sequence["EmotionEmbedding"], num_frames: int) -> "EmotionEmbedding":
        """An emotion curve through ``keyframes`` spaced evenly over ``num_frames`` frames (linear between)."""
        if not keyframes:
            raise InputError("an emotion curve needs at least one keyframe")
        if num_frames < 1:
            raise InputError(f"num_frames must be >= 1, got {num_frames}")
        from .curve import EmotionCurve  # keyframes at evenly spaced frames, linear between

        if num_frames == 1 or len(keyframes) == 1:
            first = keyframes[0].mean() if keyframes[0].is_curve else keyframes[0]
            return first.resample(num_frames)
        times = np.linspace(0.0, num_frames - 1.0, len(keyframes))
        return EmotionCurve(times, list(keyframes)).at_times(np.arange(num_frames))

    @classmethod
    def mix(
        cls, embeddings: Sequence["EmotionEmbedding"], weights: Sequence[float] | None = None
    ) -> "EmotionEmbedding":
        """Weighted average of embeddings (weights normalised; equal when None).

        Static and curve inputs may be mixed: everything is resampled to the longest curve.
        """
        if not embeddings:
            raise InputError("nothing to mix")
        w = np.ones(len(embeddings)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(embeddings),) or np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise InputError("mix weights must be one non-negative number per embedding, not all zero")
        w = (w / w.sum()).astype(np.float32)
        lengths = [e.probs.shape[0] for e in embeddings if e.is_curve]
        if lengths:
            embeddings = [e.resample(max(lengths)) for e in embeddings]
        probs = sum(wi * e.probs for wi, e in zip(w, embeddings))
        vad = sum(wi * e.vad for wi, e in zip(w, embeddings))
        inten = sum(wi * np.asarray(e.intensity, dtype=np.float32) for wi, e in zip(w, embeddings))
        return cls(probs=probs / probs.sum(-1, keepdims=True), vad=vad, intensity=inten)

    # ------------------------------------------------------------------ operations
    def lerp(self, other: "EmotionEmbedding", t: float) -> "EmotionEmbedding":
        """Linear interpolation: ``t=0`` gives self, ``t=1`` gives other."""
        if not 0.0 <= t <= 1.0:
            raise InputError(f"lerp t must lie in [0, 1], got {t}")
        return EmotionEmbedding.mix([self, other], [1.0 - t, t])

    def mirror(self) -> "EmotionEmbedding":
        """The valence mirror (default negative-guidance emotion): probs mapped by :data:`MIRROR`,
        VAD = (-valence, arousal, dominance), same intensity."""
        probs = self.probs @ _MIRROR_MATRIX
        vad = self.vad * np.array([-1.0, 1.0, 1.0], dtype=np.float32)
        return EmotionEmbedding(probs=probs, vad=vad, intensity=np.copy(self.intensity))

    def with_intensity(self, intensity: float | np.ndarray) -> "EmotionEmbedding":
        return EmotionEmbedding(probs=self.probs.copy(), vad=self.vad.copy(), intensity=intensity)

    def resample(self, num_frames: int) -> "EmotionEmbedding":
        """A curve of ``num_frames`` frames: a static embedding is repeated, a curve is interpolated."""
        if num_frames < 1:
            raise InputError(f"num_frames must be >= 1, got {num_frames}")
        if not self.is_curve:
            return EmotionEmbedding(
                probs=np.repeat(self.probs[None], num_frames, 0),
                vad=np.repeat(self.vad[None], num_frames, 0),
                intensity=np.full((num_frames,), self.intensity, dtype=np.float32),
            )
        probs = resample_frames(self.probs, num_frames)
        return EmotionEmbedding(
            probs=probs / probs.sum(-1, keepdims=True),
            vad=resample_frames(self.vad, num_frames),
            intensity=resample_frames(self.intensity, num_frames),
        )

    def mean(self) -> "EmotionEmbedding":
        """Time average of a curve (a static embedding is returned unchanged)."""
        if not self.is_curve:
            return self
        return EmotionEmbedding(
            probs=self.probs.mean(0), vad=self.vad.mean(0), intensity=float(np.mean(self.intensity))
        )

    # ------------------------------------------------------------------ properties
    @property
    def is_curve(self) -> bool:
        return self.probs.ndim == 2

    @property
    def num_frames(self) -> int | None:
        return self.probs.shape[0] if self.is_curve else None

    @property
    def label(self) -> str | list[str]:
        """Most probable category (a list, one per frame, for curves)."""
        idx = self.probs.argmax(-1)
        return [EMOTIONS[i] for i in idx] if self.is_curve else EMOTIONS[int(idx)]

    @property
    def valence(self) -> float | np.ndarray:
        return self.vad[..., 0] if self.is_curve else float(self.vad[0])

    @property
    def arousal(self) -> float | np.ndarray:
        return self.vad[..., 1] if self.is_curve else float(self.vad[1])

    @property
    def dominance(self) -> float | np.ndarray:
        return self.vad[..., 2] if self.is_curve else float(self.vad[2])

    # ------------------------------------------------------------------ conditioning
    def as_condition(self, num_frames: int | None = None) -> "torch.Tensor":
        """The 12-number affect vector (8 probs, 3 VAD, intensity): (12,) for a static embedding,
        (t, 12) for a curve or when ``num_frames`` is given (static broadcast, curve resampled)."""
        emb = self if num_frames is None or num_frames == self.num_frames else self.resample(num_frames)
        inten = np.asarray(emb.intensity, dtype=np.float32)[..., None]  # (1,) or (t, 1)
        cond = np.concatenate([emb.probs, emb.vad, inten], axis=-1)  # (12,) or (t, 12)
        import torch  # deferred: importing the emotion space stays cheap

        return torch.from_numpy(np.ascontiguousarray(cond, dtype=np.float32))

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """The CLI's JSON object (curves: mean over time)."""
        m = self.mean()
        return {
            "label": m.label,
            "probs": {e: float(p) for e, p in zip(EMOTIONS, m.probs)},
            "valence": float(m.vad[0]),
            "arousal": float(m.vad[1]),
            "dominance": float(m.vad[2]),
            "intensity": float(m.intensity),
        }

    def to_json(self) -> str:
        """JSON that :meth:`from_json` reads back exactly; curves add a ``frames`` object."""
        d = self.to_dict()
        if self.is_curve:
            d["frames"] = {
                "probs": self.probs.tolist(),
                "vad": self.vad.tolist(),
                "intensity": np.asarray(self.intensity).tolist(),
            }
        return json.dumps(d)

    @classmethod
    def from_dict(cls, d: Mapping) -> "EmotionEmbedding":
        try:
            if "frames" in d:
                f = d["frames"]
                return cls(probs=f["probs"], vad=f["vad"], intensity=f["intensity"])
            probs = d["probs"]
            if isinstance(probs, Mapping):
                unknown = set(probs) - set(EMOTIONS)
                if unknown:
                    raise UnknownEmotionError(f"unknown emotion label(s) in probs: {sorted(unknown)}")
                probs = [float(probs.get(e, 0.0)) for e in EMOTIONS]
            vad = np.array([float(d["valence"]), float(d["arousal"]), float(d["dominance"])], dtype=np.float32)
            return cls(probs=probs, vad=vad, intensity=float(d["intensity"]))
        except (KeyError, TypeError) as err:
            raise InputError(f"not an emotion embedding object (missing or mistyped {err})") from err

    @classmethod
    def from_json(cls, text: str) -> "EmotionEmbedding":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"emotion JSON could not be parsed: {err}") from err
        if not isinstance(d, dict):
            raise InputError("emotion JSON must be an object")
        return cls.from_dict(d)

    def describe(self) -> str:
        """Short human summary.

        E.g. 'mostly angry (0.72), a little disgusted; valence -0.6, arousal 0.7, intensity 0.8'.
        """
        m = self.mean()
        order = np.argsort(-m.probs)
        top = int(order[0])
        p = float(m.probs[top])
        lead = "mostly" if p >= 0.6 else "partly" if p < 0.4 else "largely"
        parts = [f"{lead} {EMOTIONS[top]} ({p:.2f})"]
        for i in order[1:3]:
            q = float(m.probs[i])
            if q >= 0.25:
                parts.append(f"some {EMOTIONS[i]}")
            elif q >= 0.08:
                parts.append(f"a little {EMOTIONS[i]}")
        text = ", ".join(parts)
        text += f"; valence {m.vad[0]:.1f}, arousal {m.vad[1]:.1f}, intensity {m.intensity:.1f}"
        if self.is_curve:
            labels = self.label
            text = f"over {self.num_frames} frames ({labels[0]} -> {labels[-1]}): " + text
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EmotionEmbedding):
            return NotImplemented
        return (
            self.probs.shape == other.probs.shape
            and np.array_equal(self.probs, other.probs)
            and np.array_equal(self.vad, other.vad)
            and np.array_equal(np.asarray(self.intensity), np.asarray(other.intensity))
        )

    def allclose(self, other: "EmotionEmbedding", atol: float = 1e-5) -> bool:
        return (
            self.probs.shape == other.probs.shape
            and np.allclose(self.probs, other.probs, atol=atol)
            and np.allclose(self.vad, other.vad, atol=atol)
            and np.allclose(np.asarray(self.intensity), np.asarray(other.intensity), atol=atol)
        )
