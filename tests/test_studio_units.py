"""Studio pieces without a browser: the curve table → CLI curve syntax, the emotion mixer, the progress bridge."""

import pytest

gr = pytest.importorskip("gradio")


def test_curve_table_gives_the_cli_curve_syntax():
    from affectstudio.apps.studio.emotion import curve_spec
    from affectstudio.conditioning.emotion import parse_emotion_spec

    rows = [[3.5, "angry", 0.8], [0, "neutral", 1.0], [6, "a quiet, simmering anger", None], ["", "", ""]]
    spec = curve_spec(rows)
    assert spec == "neutral@0; angry:0.8@3.5; a quiet, simmering anger@6"
    curve = parse_emotion_spec("neutral@0; angry:0.8@3.5")
    assert curve.times.tolist() == [0.0, 3.5]
    for bad, words in [
        ([[0, "happy:0.6,sad:0.4", 0.5]], "single label"),
        ([[0, "happy", 1], [0, "sad", 1]], "same time"),
        ([["soon", "happy", 1]], "number of seconds"),
        ([], "at least one row"),
        ([[0, "happy@2", 1]], "one emotion per row"),
    ]:
        with pytest.raises(gr.Error, match=words):
            curve_spec(bad)


def test_mix_sliders_give_a_spec():
    from affectstudio.apps.studio.emotion import LABELS, mix_spec

    weights = [0.0] * len(LABELS)
    weights[LABELS.index("happy")] = 0.6
    assert mix_spec(*weights, 0.5) == "happy:0.5"
    weights[LABELS.index("surprised")] = 0.2
    assert mix_spec(*weights, 1.0) == "happy:0.75,surprised:0.25"
    with pytest.raises(gr.Error):
        mix_spec(*([0.0] * len(LABELS)), 1.0)


def test_a_generator_that_has_not_landed_shows_a_note(monkeypatch):
    from affectstudio.apps.jobs import render
    from affectstudio.apps.studio.app import build_studio

    monkeypatch.delattr(render, "render_music")
    demo = build_studio()
    notes = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown) and "Not available" in str(b.value)]
    assert len(notes) == 1 and "render_music" in notes[0]
    assert "music" not in {fn.api_name for fn in demo.fns.values()}
    assert {"portrait", "dub", "scene", "read_emotion"} <= {fn.api_name for fn in demo.fns.values()}


def test_portrait_tab_passes_head_gaze_blink_and_framing_to_the_renderer(monkeypatch, tmp_path):
    from affectstudio.apps.jobs import render
    from affectstudio.apps.studio import portrait as studio_portrait

    seen = {}
    monkeypatch.setattr(render, "render_portrait", lambda **kw: seen.update(kw))
    monkeypatch.setattr(studio_portrait, "run_render", lambda fn, progress, stages, **kw: fn(**kw))
    photo = tmp_path / "face.jpg"
    photo.write_bytes(b"x")
    args = (str(photo), "Script", None, "Hello.", "happy", 0.8, False, 7, False, 10, 256, 60)
    studio_portrait.render(*args, 0.0, 5.0, "camera", "whole photo", progress=None)
    assert (seen["pose_scale"], seen["blink_rate"], seen["gaze"], seen["paste_back"]) == (0.0, 5.0, "camera", True)
    studio_portrait.render(*args, progress=None)  # defaults: natural head, gaze, blinks; the pipeline picks framing
    assert (seen["pose_scale"], seen["blink_rate"], seen["gaze"], seen["paste_back"]) == (1.0, 15.0, "natural", None)
