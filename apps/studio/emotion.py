"""Studio tab "Emotion Lab": read an emotion from text, speech or a face; mix emotions with sliders; build an emotion
curve over time in a table. Every result is an emotion spec in the CLI syntax that the generator tabs accept."""

from __future__ import annotations

from typing import Optional

import gradio as gr
import numpy as np

from affectstudio.apps.studio.common import clean_text, input_error, require
from affectstudio.conditioning.emotion import EMOTIONS as LABELS  # noqa: E402  (the eight labels, in order)
from affectstudio.errors import InputError

CURVE_HEADERS = ["time (s)", "emotion", "intensity"]
DEFAULT_CURVE = [[0.0, "neutral", 1.0], [1.5, "happy", 0.8], [3.5, "angry", 0.8]]
SOURCE_COLOURS = {
    "text": "tab:blue",
    "speech": "tab:orange",
    "face": "tab:green",
    "fused": "black",
    "mix": "tab:purple",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def va_figure(points: list[tuple[str, float, float, float]], title: str = "valence–arousal"):
    """The valence–arousal plane with the eight label anchors and one dot per reading (size = intensity)."""
    from affectstudio.conditioning.emotion import VAD_ANCHORS

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=90)
    ax.axhline(0, color="0.85", lw=1)
    ax.axvline(0, color="0.85", lw=1)
    for label, (v, a, _) in VAD_ANCHORS.items():
        ax.scatter(v, a, marker="x", color="0.6")
        ax.annotate(label, (v, a), textcoords="offset points", xytext=(4, -10), color="0.45", fontsize=8)
    for name, v, a, intensity in points:
        ax.scatter(
            v,
            a,
            s=60 + 160 * intensity,
            color=SOURCE_COLOURS.get(name, "tab:red"),
            alpha=0.85,
            label=name,
            edgecolor="white",
        )
    if points:
        ax.legend(loc="lower right", fontsize=8)
    ax.set(
        xlim=(-1.1, 1.1),
        ylim=(-1.1, 1.1),
        xlabel="valence (unpleasant → pleasant)",
        ylabel="arousal (calm → excited)",
        title=title,
    )
    fig.tight_layout()
    plt.close(fig)
    return fig


def curve_figure(curve):
    """Valence, arousal and the top label's probability over the curve's time span."""
    plt = _plt()
    end = max(float(curve.duration), 1.0) * 1.15
    t = np.linspace(0, end, 200)
    states = curve.at_times(t)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=90)
    ax.plot(t, states.vad[:, 0], label="valence", color="tab:blue")
    ax.plot(t, states.vad[:, 1], label="arousal", color="tab:orange")
    ax.plot(t, states.intensity, label="intensity", color="0.5", ls="--")
    for kt, s in zip(curve.times, curve.states):
        ax.axvline(kt, color="0.85", lw=1)
        ax.annotate(s.label, (kt, 1.02), fontsize=8, xycoords=("data", "axes fraction"), ha="center")
    ax.set(xlim=(0, end), ylim=(-1.05, 1.05), xlabel="time (s)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _probs(emb) -> dict:
    return {label: float(p) for label, p in zip(LABELS, np.asarray(emb.probs, dtype=float))}


def _summary(name: str, emb) -> str:
    return (
        f"**{name}**: {emb.label} — valence {float(emb.valence):+.2f}, arousal {float(emb.arousal):+.2f}, "
        f"dominance {float(emb.dominance):+.2f}, intensity {float(emb.intensity):.2f}"
    )


def read_emotion(text: Optional[str], audio: Optional[str], image: Optional[str]):
    """Each given source read on its own, then fused (the same fusion the generators use for several sources)."""
    from affectstudio.apps.jobs.render import read_emotions
    from affectstudio.conditioning.emotion import encode_emotion

    text = clean_text(text)
    require(bool(text or audio or image), "Type a sentence, record or upload speech, or upload a face photo.")
    readings, lines = [], []
    try:
        for name, kwargs in (("text", {"text": text}), ("speech", {"audio": audio}), ("face", {"image": image})):
            if next(iter(kwargs.values())):
                emb = read_emotions(**kwargs)[0]
                readings.append((name, emb))
                lines.append(_summary(name, emb))
        fused = readings[0][1] if len(readings) == 1 else encode_emotion(text=text, audio=audio, image=image)
    except InputError as e:
        raise input_error(e) from e
    if len(readings) > 1:
        lines.append(_summary("fused", fused))
    points = [(n, float(e.valence), float(e.arousal), float(e.intensity)) for n, e in readings]
    if len(readings) > 1:
        points.append(("fused", float(fused.valence), float(fused.arousal), float(fused.intensity)))
    return _probs(fused), va_figure(points), "\n\n".join(lines), fused.label


def mix_spec(*values) -> str:
    """Slider weights (one per label, then intensity) → ``happy:0.6,surprised:0.4`` (or ``sad:0.5``)."""
    weights, intensity = values[:-1], float(values[-1])
    parts = [(label, float(w)) for label, w in zip(LABELS, weights) if float(w) > 0]
    require(bool(parts), "Move at least one emotion slider above 0.")
    if len(parts) == 1:
        label = parts[0][0]
        return label if intensity >= 1 else f"{label}:{intensity:g}"
    total = sum(w for _, w in parts)
    return ",".join(f"{label}:{w / total:.2f}".rstrip("0").rstrip(".") for label, w in parts)


def mix_emotion(*values):
    from affectstudio.conditioning.emotion import parse_emotion_spec

    spec = mix_spec(*values)
    try:
        emb = parse_emotion_spec(spec, intensity=float(values[-1]))
    except InputError as e:
        raise input_error(e) from e
    return (
        spec,
        _probs(emb),
        va_figure([("mix", float(emb.valence), float(emb.arousal), float(emb.intensity))], title=f"mix: {spec}"),
    )


def _rows(table) -> list[list]:
    if table is None:
        return []
    rows = table.values.tolist() if hasattr(table, "values") else list(table)
    return [r for r in rows if any(str(c).strip() not in ("", "nan", "None") for c in r)]


def curve_spec(table) -> str:
    """Table rows ``(time, emotion, intensity)`` → ``neutral@0; angry:0.8@3.5`` (rows sorted by time)."""
    keyframes = []
    for i, row in enumerate(_rows(table), start=1):
        row = list(row) + [None] * (3 - len(row))
        try:
            t = float(row[0])
        except (TypeError, ValueError):
            raise gr.Error(f"row {i}: time must be a number of seconds, got {row[0]!r}") from None
        spec = str(row[1] or "").strip()
        require(bool(spec) and spec.lower() != "nan", f"row {i}: give an emotion (a label, mix or description)")
        require(";" not in spec and "@" not in spec, f"row {i}: one emotion per row (no ';' or '@')")
        intensity = row[2]
        try:
            intensity = 1.0 if intensity in (None, "") or str(intensity) == "nan" else float(intensity)
        except (TypeError, ValueError):
            raise gr.Error(f"row {i}: intensity must be a number between 0 and 1, got {row[2]!r}") from None
        require(0.0 <= intensity <= 1.0, f"row {i}: intensity must be between 0 and 1, got {intensity:g}")
        if intensity < 1.0:
            require(
                spec.lower() in LABELS,
                f"row {i}: an intensity below 1 needs a single label (e.g. angry), "
                f"not {spec!r}; leave it at 1 for mixes and descriptions",
            )
            spec = f"{spec.lower()}:{intensity:g}"
        keyframes.append((t, spec))
    require(bool(keyframes), "Add at least one row: time (s), emotion, intensity.")
    times = [t for t, _ in keyframes]
    require(len(set(times)) == len(times), "Two rows have the same time; each keyframe needs its own time.")
    return "; ".join(f"{spec}@{t:g}" for t, spec in sorted(keyframes))


def build_curve(table):
    from affectstudio.conditioning.emotion import parse_emotion_spec

    spec = curve_spec(table)
    try:
        curve = parse_emotion_spec(spec)
    except InputError as e:
        raise input_error(e) from e
    return spec, curve_figure(curve)


def build_tab(examples_dir) -> dict:
    """The Emotion Lab; returns the components other tabs connect to (``curve_spec``, ``use_curve``, …)."""
    gr.Markdown(
        "Read the emotion in a sentence, a voice or a face; mix emotions; draw an emotion curve over time. "
        "The **spec** boxes hold the same syntax the command line accepts — send one to the generator tabs."
    )
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text", lines=2, placeholder="I can't believe you did that!", elem_id="lab-text")
            audio = gr.Audio(label="Speech (record or upload)", sources=["microphone", "upload"], type="filepath")
            image = gr.Image(label="Face photo", type="filepath", height=220)
            read = gr.Button("Read emotion", variant="primary", elem_id="lab-read")
        with gr.Column():
            probs = gr.Label(label="Probabilities", num_top_classes=8, elem_id="lab-probs")
            plane = gr.Plot(label="Valence–arousal plane", elem_id="lab-plane")
            summary = gr.Markdown(elem_id="lab-summary")
            read_spec = gr.Textbox(label="Spec (top label)", interactive=False, elem_id="lab-read-spec")
    gr.Examples([[s] for s in _example_sentences(examples_dir)], inputs=[text], label="Example sentences")
    read.click(
        read_emotion,
        [text, audio, image],
        [probs, plane, summary, read_spec],
        api_name="read_emotion",
        concurrency_limit=4,
    )

    with gr.Accordion("Mix emotions", open=False):
        with gr.Row():
            sliders = [gr.Slider(0, 1, value=0.0, step=0.05, label=label) for label in LABELS]
        intensity = gr.Slider(0, 1, value=1.0, step=0.05, label="Intensity")
        mix = gr.Button("Mix")
        with gr.Row():
            mix_probs = gr.Label(label="Mixed probabilities", num_top_classes=8)
            mix_plane = gr.Plot(label="Mix on the valence–arousal plane")
        mix_out = gr.Textbox(label="Mix spec", interactive=False, elem_id="lab-mix-spec")
    mix.click(mix_emotion, [*sliders, intensity], [mix_out, mix_probs, mix_plane], concurrency_limit=4)

    with gr.Accordion("Emotion curve over time", open=True):
        gr.Markdown(
            "One row per keyframe: the time in seconds, an emotion (label, mix or description) and an "
            "intensity (0–1, for single labels). States are interpolated between keyframes and held "
            "before the first and after the last."
        )
        table = gr.Dataframe(
            value=DEFAULT_CURVE,
            headers=CURVE_HEADERS,
            datatype=["number", "str", "number"],
            column_count=3,
            interactive=True,
            label="Keyframes",
            elem_id="lab-curve-table",
        )
        build = gr.Button("Build curve")
        curve_out = gr.Textbox(label="Curve spec", interactive=False, elem_id="lab-curve-spec")
        curve_plot = gr.Plot(label="Curve preview")
        use_curve = gr.Button("Use this curve in the generator tabs", variant="secondary")
    build.click(build_curve, [table], [curve_out, curve_plot], concurrency_limit=4)
    return {"curve_spec": curve_out, "use_curve": use_curve, "mix_spec": mix_out, "read_spec": read_spec}


def _example_sentences(examples_dir) -> list[str]:
    path = examples_dir / "sentences.txt"
    try:
        return [s.strip() for s in path.read_text().splitlines() if s.strip()][:6]
    except OSError:
        return ["I can't believe it, we won!"]
