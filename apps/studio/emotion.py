"""Studio tab "Emotion Lab": read an emotion from text, speech or a face; click the valence–arousal plane; mix
emotions with sliders; edit an emotion curve (keyframes added, moved and removed, previewed as you go). Every
result is a spec in the CLI syntax, and each has "send to" buttons that fill one generator tab."""

from __future__ import annotations

from typing import Optional

import gradio as gr
import numpy as np

from affectstudio.apps.studio import lab_plots
from affectstudio.apps.studio.common import check_audio, clean_text, input_error, photo_input, require, user_error
from affectstudio.conditioning.emotion import EMOTIONS as LABELS  # the eight labels, in order
from affectstudio.errors import InputError

CURVE_HEADERS = ["time (s)", "emotion", "intensity"]
DEFAULT_CURVE = [[0.0, "neutral", 1.0], [1.5, "happy", 0.8], [3.5, "angry", 0.8]]
#: the generator tabs a result can be sent to: (task id, button text)
SEND_TARGETS = (("portrait", "Talking Portrait"), ("dub", "Dubbing"), ("music", "Music"), ("scene", "Scene"))


def _parse(spec: str):
    from affectstudio.conditioning.emotion import parse_emotion_spec

    try:
        return parse_emotion_spec(spec)
    except InputError as e:
        raise input_error(e) from e


def _probs(emb) -> dict:
    return {label: float(p) for label, p in zip(LABELS, np.asarray(emb.probs, dtype=float))}


def _summary(name: str, emb) -> str:
    return (
        f"**{name}**: {emb.label} — valence {float(emb.valence):+.2f}, arousal {float(emb.arousal):+.2f}, "
        f"dominance {float(emb.dominance):+.2f}, intensity {float(emb.intensity):.2f}"
    )


def _point(name: str, emb) -> tuple[str, float, float, float]:
    return name, float(emb.valence), float(emb.arousal), float(emb.intensity)


def reading_spec(emb) -> str:
    """A reading as a spec: its top label with the reading's intensity (``happy:0.81``; ``neutral``)."""
    label, intensity = emb.label, float(emb.intensity)
    return label if label == "neutral" or intensity >= 0.995 else f"{label}:{intensity:.2f}"


# ------------------------------------------------------------------------------------------------ read


def read_emotion(text: Optional[str], audio: Optional[str], image: Optional[str]):
    """Each given source read on its own, then fused (the same fusion the generators use for several sources)."""
    from affectstudio.apps.jobs.render import read_emotions
    from affectstudio.conditioning.emotion import encode_emotion

    text = clean_text(text)
    require(bool(text or audio or image), "Type a sentence, record or upload speech, or upload a face photo.")
    check_audio(audio, "speech")
    readings, lines = [], []
    try:
        for name, kwargs in (("text", {"text": text}), ("speech", {"audio": audio}), ("face", {"image": image})):
            if next(iter(kwargs.values())):
                emb = read_emotions(**kwargs)[0]
                readings.append((name, emb))
                lines.append(_summary(name, emb))
        fused = readings[0][1] if len(readings) == 1 else encode_emotion(text=text, audio=audio, image=image)
    except InputError as e:
        raise input_error(e, [audio, image]) from e
    points = [_point(n, e) for n, e in readings]
    if len(readings) > 1:
        lines.append(_summary("fused", fused))
        points.append(_point("fused", fused))
    return _probs(fused), lab_plots.plane_image(points), "\n\n".join(lines), reading_spec(fused)


# ----------------------------------------------------------------------------------------------- plane


def click_plane(evt: gr.SelectData):
    """A click on the plane: the emotion there (nearest labels), drawn, with its spec."""
    v, a = lab_plots.plane_point(*evt.index[:2])
    spec = lab_plots.point_spec(v, a)
    emb = _parse(spec)
    near = ", ".join(f"{label} {w * 100:.0f} %" for label, w in lab_plots.nearest_labels(v, a))
    note = f"Clicked valence {v:+.2f}, arousal {a:+.2f} → nearest: {near}"
    image = lab_plots.plane_image([("click", v, a, float(emb.intensity))], title=f"click: {spec}")
    return spec, note, image, _probs(emb)


# ------------------------------------------------------------------------------------------------- mix


def mix_spec(*values) -> str:
    """Slider weights (one per label, then intensity) → ``happy:0.6,surprised:0.4`` (or ``sad:0.5``). The intensity
    slider applies to a single label; a mix is written as weights (its intensity is full)."""
    weights, intensity = values[:-1], float(values[-1])
    parts = [(label, float(w)) for label, w in zip(LABELS, weights) if float(w) > 0]
    require(bool(parts), "Move at least one emotion slider above 0.")
    if len(parts) == 1:
        label = parts[0][0]
        return label if intensity >= 1 else f"{label}:{intensity:g}"
    total = sum(w for _, w in parts)
    return ",".join(f"{label}:{w / total:.2f}".rstrip("0").rstrip(".") for label, w in parts)


def mix_emotion(*values):
    spec = mix_spec(*values)
    emb = _parse(spec)
    return spec, _probs(emb), lab_plots.plane_image([_point("mix", emb)], title=f"mix: {spec}")


# ----------------------------------------------------------------------------------------------- curve


def _rows(table) -> list[list]:
    if table is None:
        return []
    rows = table.values.tolist() if hasattr(table, "values") else list(table)
    return [list(r) for r in rows if any(str(c).strip() not in ("", "nan", "None") for c in r)]


def curve_spec(table) -> str:
    """Table rows ``(time, emotion, intensity)`` → ``neutral@0; angry:0.8@3.5`` (rows sorted by time). The
    result is read by the one spec parser (:func:`parse_emotion_spec`), never here."""
    keyframes = []
    for i, row in enumerate(_rows(table), start=1):
        row = list(row) + [None] * (3 - len(row))
        try:
            t = float(row[0])
        except (TypeError, ValueError):
            raise user_error(f"row {i}: time must be a number of seconds, got {row[0]!r}") from None
        spec = str(row[1] or "").strip()
        require(bool(spec) and spec.lower() != "nan", f"row {i}: give an emotion (a label, mix or description)")
        require(";" not in spec and "@" not in spec, f"row {i}: one emotion per row (no ';' or '@')")
        intensity = row[2]
        try:
            intensity = 1.0 if intensity in (None, "") or str(intensity) == "nan" else float(intensity)
        except (TypeError, ValueError):
            raise user_error(f"row {i}: intensity must be a number between 0 and 1, got {row[2]!r}") from None
        require(0.0 <= intensity <= 1.0, f"row {i}: intensity must be between 0 and 1, got {intensity:g}")
        if intensity < 1.0:
            require(
                spec.lower() in LABELS,
                f"row {i}: an intensity below 1 needs a single label (e.g. angry), "
                f"not {spec!r}; leave it at 1 for mixes and descriptions",
            )
            spec = f"{spec.lower()}:{intensity:g}"
        keyframes.append((t, spec))
    require(bool(keyframes), "Add at least one keyframe: time (s), emotion, intensity.")
    times = [t for t, _ in keyframes]
    require(len(set(times)) == len(times), "Two keyframes have the same time; each keyframe needs its own time.")
    return "; ".join(f"{spec}@{t:g}" for t, spec in sorted(keyframes))


def _curve(table):
    """The table's curve spec and the parsed curve (errors in the parser's words)."""
    spec = curve_spec(table)
    return spec, _parse(spec)


def build_curve(table, selected=None):
    spec, curve = _curve(table)
    return spec, lab_plots.curve_image(curve, _index(selected, table))


def _index(selected, table) -> Optional[int]:
    n = len(_rows(table))
    return int(selected) if selected is not None and 0 <= int(selected) < n else None


def _sorted(rows: list[list], keep: Optional[int]) -> tuple[list[list], Optional[int]]:
    """Rows sorted by time; the index that ``rows[keep]`` has afterwards."""
    order = sorted(range(len(rows)), key=lambda i: _time(rows[i]))
    return [rows[i] for i in order], (order.index(keep) if keep is not None else None)


def _time(row) -> float:
    try:
        return float(row[0])
    except (TypeError, ValueError):
        return float("inf")


def _selection_note(rows: list[list], selected: Optional[int]) -> str:
    if selected is None:
        return "*No keyframe selected: click a row to select it (then − removes it, a click on the preview moves it).*"
    t, emotion = rows[selected][0], rows[selected][1]
    return f"Selected keyframe {selected + 1}: **{emotion}** at {float(t):g} s — click the preview to move it."


def add_keyframe(table, selected, new_emotion):
    """+ : a keyframe one second after the selected one (or the last), with the "new keyframe" emotion."""
    rows = _rows(table)
    emotion = clean_text(new_emotion) or "neutral"
    at = _index(selected, table)
    base = _time(rows[at]) if at is not None else max((_time(r) for r in rows), default=-1.0)
    t = base + 1.0 if np.isfinite(base) else 0.0
    while any(abs(_time(r) - t) < 1e-9 for r in rows):
        t += 0.5
    rows.append([round(t, 2), emotion, 1.0])
    rows, sel = _sorted(rows, len(rows) - 1)
    return rows, sel, _selection_note(rows, sel)


def remove_keyframe(table, selected):
    """− : the selected keyframe (or the last) goes."""
    rows = _rows(table)
    require(len(rows) > 1, "A curve needs at least one keyframe; add another before removing this one.")
    at = _index(selected, table)
    rows.pop(at if at is not None else len(rows) - 1)
    return rows, None, _selection_note(rows, None)


def select_keyframe(table, evt: gr.SelectData):
    rows = _rows(table)
    sel = int(evt.index[0]) if evt.index is not None and int(evt.index[0]) < len(rows) else None
    return sel, _selection_note(rows, sel)


def click_curve(table, selected, new_emotion, evt: gr.SelectData):
    """A click on the preview: the selected keyframe moves to that time, or a new keyframe is added there."""
    rows = _rows(table)
    _, curve = _curve(rows)
    t = lab_plots.curve_time(evt.index[0], curve)
    at = _index(selected, rows)
    require(all(abs(_time(r) - t) > 1e-9 for i, r in enumerate(rows) if i != at), f"A keyframe is already at {t:g} s.")
    if at is None:
        rows.append([t, clean_text(new_emotion) or "neutral", 1.0])
        at = len(rows) - 1
    else:
        rows[at][0] = t
    rows, sel = _sorted(rows, at)
    return rows, sel, _selection_note(rows, sel)


def load_curve(spec: Optional[str]):
    """A curve typed or pasted as a spec → the editor's rows (read by the one spec parser: a malformed curve gets
    the same message as on the command line). A static spec becomes one keyframe at 0 s."""
    from affectstudio.conditioning.emotion import EmotionCurve

    spec = clean_text(spec) or ""
    require(bool(spec), "Type a curve such as neutral@0; angry:0.8@3.5, or edit the keyframes above.")
    parsed = _parse(spec)
    if not isinstance(parsed, EmotionCurve):
        return [[0.0, spec, 1.0]], None, _selection_note([], None)
    texts = [part.rsplit("@", 1)[0].strip() for part in spec.split(";") if part.strip()]
    pairs = sorted(zip(parsed.times.tolist(), texts)) if len(texts) == len(parsed.times) else []
    rows = [[t, text, 1.0] for t, text in pairs]
    rows = rows or [[float(t), s.label, 1.0] for t, s in zip(parsed.times, parsed.states)]
    return rows, None, _selection_note(rows, None)


# ----------------------------------------------------------------------------------------------- layout


def send_buttons(prefix: str) -> dict:
    """One row of "send to" buttons for a result: each fills the emotion box of one generator tab."""
    with gr.Row(elem_id=f"{prefix}-send"):
        gr.Markdown("Send to:", elem_classes=["send-label"])
        return {task: gr.Button(f"→ {title}", size="sm", elem_id=f"{prefix}-to-{task}") for task, title in SEND_TARGETS}


def build_tab(examples_dir) -> dict:
    """The Emotion Lab; returns ``{"sends": [(spec component, {task: button})]}`` for app.py to wire."""
    sends = []
    gr.Markdown(
        "Read the emotion in a sentence, a voice or a face; click the valence–arousal plane; mix emotions; "
        "edit an emotion curve. Each result is a **spec** in the syntax the command line accepts — send it to "
        "one generator tab with the buttons under it."
    )
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text", lines=2, placeholder="I can't believe you did that!", elem_id="lab-text")
            audio = gr.Audio(label="Speech (record or upload)", sources=["microphone", "upload"], type="filepath")
            image, _preview = photo_input("Face photo", "lab-face", height=160)
            read = gr.Button("Read emotion", variant="primary", elem_id="lab-read")
            gr.Examples([[s] for s in _example_sentences(examples_dir)], inputs=[text], label="Example sentences")
            probs = gr.Label(label="Probabilities", num_top_classes=8, elem_id="lab-probs")
            summary = gr.Markdown(elem_id="lab-summary")
            read_spec = gr.Textbox(label="Reading as a spec", interactive=False, elem_id="lab-read-spec")
            sends.append((read_spec, send_buttons("lab-read")))
        with gr.Column():
            plane = gr.Image(
                value=lab_plots.plane_image(),
                label="Valence–arousal plane (click to set an emotion)",
                interactive=False,
                format="png",
                elem_id="lab-plane",
                buttons=[],
            )
            plane_note = gr.Markdown(elem_id="lab-plane-note")
            plane_spec = gr.Textbox(label="Clicked emotion as a spec", interactive=False, elem_id="lab-plane-spec")
            sends.append((plane_spec, send_buttons("lab-plane")))
    read.click(
        read_emotion,
        [text, audio, image],
        [probs, plane, summary, read_spec],
        api_name="read_emotion",
        concurrency_limit=4,
    )
    plane.select(click_plane, None, [plane_spec, plane_note, plane, probs], concurrency_limit=4)

    with gr.Accordion("Mix emotions", open=False):
        with gr.Row():
            sliders = [gr.Slider(0, 1, value=0.0, step=0.05, label=label) for label in LABELS]
        intensity = gr.Slider(
            0, 1, value=1.0, step=0.05, label="Intensity", info="for a single emotion; a mix is written as weights"
        )
        mix = gr.Button("Mix")
        mix_out = gr.Textbox(label="Mix spec", interactive=False, elem_id="lab-mix-spec")
        sends.append((mix_out, send_buttons("lab-mix")))
    mix.click(mix_emotion, [*sliders, intensity], [mix_out, probs, plane], concurrency_limit=4)

    with gr.Accordion("Emotion curve over time", open=True, elem_id="lab-curve"):
        gr.Markdown(
            "Keyframes: a time in seconds, an emotion (label, mix or description) and an intensity (0–1, for "
            "single labels). Edit a cell, **+** adds a keyframe after the selected one, **−** removes the selected "
            "one, a click on the preview moves the selected keyframe to that time (or adds one there). States are "
            "interpolated between keyframes and held before the first and after the last."
        )
        selected = gr.State(None)
        table = gr.Dataframe(
            value=DEFAULT_CURVE,
            headers=CURVE_HEADERS,
            datatype=["number", "str", "number"],
            column_count=3,
            interactive=True,
            label="Keyframes",
            elem_id="lab-curve-table",
        )
        with gr.Row():
            add = gr.Button("+ Add keyframe", size="sm", elem_id="lab-curve-add")
            remove = gr.Button("− Remove selected keyframe", size="sm", elem_id="lab-curve-remove")
            new_emotion = gr.Textbox(
                value="happy", label="Emotion of a new keyframe", scale=2, elem_id="lab-curve-new-emotion"
            )
        note = gr.Markdown(_selection_note(DEFAULT_CURVE, None), elem_id="lab-curve-note")
        spec0, image0 = build_curve(DEFAULT_CURVE)
        preview = gr.Image(
            value=image0,
            label="Curve preview (click: move the selected keyframe here, or add one)",
            interactive=False,
            format="png",
            elem_id="lab-curve-preview",
            buttons=[],
        )
        curve_out = gr.Textbox(
            value=spec0,
            label="Curve spec (edit the keyframes, or type or paste a curve here and press Enter)",
            elem_id="lab-curve-spec",
        )
        sends.append((curve_out, send_buttons("lab-curve")))
    table.change(build_curve, [table, selected], [curve_out, preview], concurrency_limit=4, show_progress="hidden")
    table.select(select_keyframe, [table], [selected, note], queue=False).then(
        build_curve, [table, selected], [curve_out, preview], show_progress="hidden"
    )
    add.click(add_keyframe, [table, selected, new_emotion], [table, selected, note], concurrency_limit=4)
    remove.click(remove_keyframe, [table, selected], [table, selected, note], concurrency_limit=4)
    preview.select(click_curve, [table, selected, new_emotion], [table, selected, note], concurrency_limit=4)
    curve_out.submit(load_curve, [curve_out], [table, selected, note], concurrency_limit=4)
    return {"sends": sends, "preview": preview, "table": table, "selected": selected}


def _example_sentences(examples_dir) -> list[str]:
    path = examples_dir / "sentences.txt"
    try:
        return [s.strip() for s in path.read_text().splitlines() if s.strip()][:6]
    except OSError:
        return ["I can't believe it, we won!"]
