"""The Emotion Lab's two clickable pictures, drawn with matplotlib at a fixed layout so that a click's pixel maps
back to data: the valence–arousal plane (a click → valence, arousal → the nearest labels as a spec) and the curve
preview (a click → a time in seconds)."""

from __future__ import annotations

import io
from typing import Optional, Sequence

import numpy as np

from affectstudio.conditioning.emotion import EMOTIONS, VAD_ANCHORS

LIMIT = 1.1  # the plane shows valence and arousal in [-LIMIT, LIMIT]
PLANE_PX = 520  # the plane image is PLANE_PX square
PLANE_AXES = (0.14, 0.11, 0.82, 0.82)  # left, bottom, width, height as fractions of the figure
CURVE_PX = (720, 330)
CURVE_AXES = (0.07, 0.27, 0.9, 0.62)
SIGMA = 0.22  # how far a click reaches toward a label on the plane
# label text offsets (points) chosen so that no two labels overlap: fearful and angry sit 0.13 apart
LABEL_OFFSETS = {
    "neutral": (6, -12),
    "happy": (6, -12),
    "sad": (6, -12),
    "angry": (8, 6),
    "fearful": (-52, 6),
    "disgusted": (-62, -10),
    "surprised": (-18, 9),
    "contempt": (8, -10),
}
SOURCE_COLOURS = {
    "text": "tab:blue",
    "speech": "tab:orange",
    "face": "tab:green",
    "fused": "black",
    "mix": "tab:purple",
    "click": "tab:red",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _to_array(fig) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def plane_image(points: Sequence[tuple[str, float, float, float]] = (), title: str = "valence–arousal") -> np.ndarray:
    """The plane (RGB array, ``PLANE_PX`` square) with the eight label anchors, legible, and one dot per point
    ``(name, valence, arousal, intensity)`` (dot size = intensity)."""
    plt = _plt()
    fig = plt.figure(figsize=(PLANE_PX / 100, PLANE_PX / 100), dpi=100)
    ax = fig.add_axes(PLANE_AXES)
    ax.axhline(0, color="0.85", lw=1)
    ax.axvline(0, color="0.85", lw=1)
    for label, (v, a, _) in VAD_ANCHORS.items():
        ax.scatter(v, a, marker="x", color="0.45", s=30)
        ax.annotate(label, (v, a), textcoords="offset points", xytext=LABEL_OFFSETS[label], color="0.2", fontsize=9)
    for name, v, a, intensity in points:
        ax.scatter(v, a, s=60 + 160 * intensity, color=SOURCE_COLOURS.get(name, "tab:red"), alpha=0.85, label=name)
    if points:
        ax.legend(loc="lower right", fontsize=8)
    ax.set(xlim=(-LIMIT, LIMIT), ylim=(-LIMIT, LIMIT), title=title)
    ax.set_xlabel("valence (unpleasant → pleasant)", fontsize=9)
    ax.set_ylabel("arousal (calm → excited)", fontsize=9)
    ax.text(0.01, 0.99, "click anywhere to set an emotion", transform=ax.transAxes, va="top", fontsize=8, color="0.4")
    return _to_array(fig)


def plane_point(x: float, y: float) -> tuple[float, float]:
    """A click at pixel ``(x, y)`` of the plane image (origin top left) → (valence, arousal), clipped to [-1, 1]."""
    left, bottom, width, height = PLANE_AXES
    fx, fy = x / PLANE_PX, 1.0 - y / PLANE_PX
    v = -LIMIT + 2 * LIMIT * (fx - left) / width
    a = -LIMIT + 2 * LIMIT * (fy - bottom) / height
    return float(np.clip(v, -1, 1)), float(np.clip(a, -1, 1))


def nearest_labels(valence: float, arousal: float, keep: float = 0.1, top: int = 3) -> list[tuple[str, float]]:
    """The labels nearest a point of the plane with their shares (a Gaussian of the distance to each anchor,
    shares below ``keep`` dropped, at most ``top``, normalised)."""
    anchors = np.array([VAD_ANCHORS[e][:2] for e in EMOTIONS])
    d2 = ((anchors - np.array([valence, arousal])) ** 2).sum(1)
    w = np.exp(-d2 / (2 * SIGMA**2))
    if w.sum() < 1e-12:  # far from every anchor: the closest one
        w = (d2 == d2.min()).astype(float)
    w = w / w.sum()
    order = [int(i) for i in np.argsort(-w)[:top] if w[i] >= keep] or [int(np.argmax(w))]
    total = float(sum(w[i] for i in order))
    return [(EMOTIONS[i], float(w[i]) / total) for i in order]


def point_spec(valence: float, arousal: float) -> str:
    """The spec a click sets: one label (with an intensity from how far out the click is) or a mix."""
    near = nearest_labels(valence, arousal)
    if len(near) == 1:
        label = near[0][0]
        if label == "neutral":
            return "neutral"
        anchor = np.hypot(*VAD_ANCHORS[label][:2])
        intensity = float(np.clip(np.hypot(valence, arousal) / anchor, 0.2, 1.0))
        return label if intensity >= 0.95 else f"{label}:{intensity:.2f}"
    shares = [(label, round(w, 2)) for label, w in near]
    return ",".join(f"{label}:{w:g}" for label, w in shares if w > 0)


def curve_span(curve) -> tuple[float, float]:
    return 0.0, max(float(curve.duration), 1.0) * 1.15 + 0.5


def curve_image(curve, selected: Optional[int] = None) -> np.ndarray:
    """Valence, arousal and intensity over the curve's time span (RGB array ``CURVE_PX``), the keyframes marked
    and named, the selected one highlighted."""
    plt = _plt()
    fig = plt.figure(figsize=(CURVE_PX[0] / 100, CURVE_PX[1] / 100), dpi=100)
    ax = fig.add_axes(CURVE_AXES)
    start, end = curve_span(curve)
    t = np.linspace(start, end, 300)
    states = curve.at_times(t)
    ax.plot(t, states.vad[:, 0], label="valence", color="tab:blue")
    ax.plot(t, states.vad[:, 1], label="arousal", color="tab:orange")
    ax.plot(t, states.intensity, label="intensity", color="0.5", ls="--")
    for i, (kt, s) in enumerate(zip(curve.times, curve.states)):
        chosen = i == selected
        ax.axvline(kt, color="tab:red" if chosen else "0.8", lw=2 if chosen else 1)
        ax.annotate(
            s.label, (kt, 1.02), fontsize=8, xycoords=("data", "axes fraction"), ha="center",
            color="tab:red" if chosen else "0.2",
        )  # fmt: skip
    ax.set(xlim=(start, end), ylim=(-1.05, 1.05))
    ax.set_xlabel("time (s) — click to move the selected keyframe here, or to add one", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8, frameon=False)
    return _to_array(fig)


def curve_time(x: float, curve) -> float:
    """A click at pixel column ``x`` of the curve preview → seconds (≥ 0, to 0.1 s)."""
    left, _, width, _ = CURVE_AXES
    start, end = curve_span(curve)
    t = start + (x / CURVE_PX[0] - left) / width * (end - start)
    return round(max(0.0, float(t)), 1)
