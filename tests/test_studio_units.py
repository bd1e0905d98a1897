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
        ([], "at least one keyframe"),
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
    monkeypatch.setattr(studio_portrait, "run_render", lambda fn, progress, plan, **kw: fn(**kw))
    photo = tmp_path / "face.jpg"
    photo.write_bytes(b"x")
    args = (str(photo), "Script", None, "Hello.", "happy", 7, False, 10, 256, 60)
    out = studio_portrait.render(*args, 0.0, 5.0, "camera", "whole photo", progress=None)
    assert (seen["pose_scale"], seen["blink_rate"], seen["gaze"], seen["paste_back"]) == (0.0, 5.0, "camera", True)
    assert "intensity" not in seen  # one place for intensity: the spec (sad:0.5)
    assert seen["face"] == "auto"
    assert out[0].endswith("portrait_happy_seed7.mp4") and "happy 100 %" in out[1]
    studio_portrait.render(*args, progress=None)  # defaults: natural head, gaze, blinks; the pipeline picks framing
    assert (seen["pose_scale"], seen["blink_rate"], seen["gaze"], seen["paste_back"]) == (1.0, 15.0, "natural", None)


def test_job_progress_is_one_bar_weighted_by_stage_and_named():
    from affectstudio.apps.studio.common import JobPlan, JobProgress, Stage

    shown = []
    plan = JobPlan(
        Stage("preparing", 2.0), (Stage("sampling", 4.0), Stage("rendering", 3.0, lead=1.0)), Stage("writing", 1.0)
    )
    bar = JobProgress(lambda f, desc: shown.append((round(f, 3), desc)), plan)
    bar(1, 0, 10)
    bar(1, 5, 10)
    bar(1, 10, 10)
    bar(2, 0, 4)
    bar(2, 4, 4)
    bar(1, 3, 10)  # never backwards
    assert shown == [
        (0.0, "preparing"), (0.2, "sampling"), (0.4, "sampling"), (0.6, "sampling"),
        (0.7, "rendering"), (0.9, "rendering"),
    ]  # fmt: skip
    bar.tick()  # the last bar is done: the clock moves into writing
    assert shown[-1] == (0.9, "writing")


def test_first_call_names_what_it_loads(monkeypatch):
    from affectstudio.apps.studio import common

    monkeypatch.setattr(common, "_loaded", set())
    plan = common.JobPlan(common.Stage("preparing", 1.0), (), common.Stage("writing", 1.0), ("the voice",), 9.0)
    shown = []
    common.run_render(lambda: None, lambda f, desc: shown.append(desc), plan)
    assert shown[0] == "loading the voice (first call), then preparing"
    common.run_render(lambda: None, lambda f, desc: shown.append(desc), plan)
    assert shown[-1] == "preparing"


def test_errors_name_files_not_temporary_paths(tmp_path):
    from affectstudio.apps.studio.common import check_photo, run_render
    from affectstudio.errors import MissingFileError

    fake = tmp_path / "gradio" / "0123abcd" / "holiday.jpg"
    fake.parent.mkdir(parents=True)
    fake.write_text("not a photo")
    with pytest.raises(gr.Error) as e:
        check_photo(fake)
    assert "holiday.jpg" in e.value.message and str(tmp_path) not in e.value.message

    def fail(image):
        raise MissingFileError(f"--image file not found: {image}")

    with pytest.raises(gr.Error) as e:
        run_render(fail, None, None, image=fake)
    assert e.value.message == "--image file not found: holiday.jpg"


def test_the_preview_is_upright_where_the_file_is_stored_sideways(tmp_path):
    """A click on the preview is mapped to the face picker's boxes, which are in the upright photo's pixels."""
    import numpy as np
    from PIL import Image

    from affectstudio.apps.studio.common import preview_photo
    from affectstudio.conditioning.photo import load_photo

    yy, xx = np.mgrid[0:120, 0:80]
    upright = np.stack([yy * 2, xx * 3, 255 - yy * 2], -1).astype(np.uint8)  # smooth, and no two rotations alike
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    sideways = tmp_path / "phone.jpg"
    Image.fromarray(np.rot90(upright, 1).copy()).save(sideways, quality=95, exif=exif.tobytes())
    shown = preview_photo(sideways)
    assert isinstance(shown, np.ndarray) and shown.shape == (120, 80, 3)
    assert np.array_equal(shown, load_photo(sideways))
    assert np.abs(shown.astype(float) - upright).mean() < 8  # the JPEG's loss only, not another rotation

    plain = tmp_path / "plain.png"
    Image.fromarray(upright).save(plain)
    assert preview_photo(plain) == str(plain)  # served as it is


def test_malformed_curves_get_the_parsers_message_everywhere_in_the_studio():
    from affectstudio.apps.studio.common import emotion_reading
    from affectstudio.apps.studio.emotion import load_curve
    from affectstudio.conditioning.emotion import parse_emotion_spec
    from affectstudio.errors import InputError

    for bad in ("happy@; sad:2@-1", "happy@1; sad@1"):
        with pytest.raises(InputError) as parsed:
            parse_emotion_spec(bad)
        for studio in (emotion_reading, load_curve):
            with pytest.raises(gr.Error) as e:
                studio(bad)
            assert e.value.message == " ".join(str(parsed.value).split())


def test_readings_say_how_a_spec_was_read():
    from affectstudio.apps.studio.common import emotion_reading

    assert emotion_reading("sad:0.5") == "**Reading** — sad:0.5 → sad 100 % · intensity 0.50"
    assert emotion_reading("", "empty") == "empty"
    assert emotion_reading("neutral@0; angry@2").startswith("**Reading** — a curve of 2 keyframes: 0 s: neutral 100 %")


def test_plane_click_maps_back_to_the_anchor_it_was_aimed_at():
    from affectstudio.apps.studio import lab_plots
    from affectstudio.conditioning.emotion import VAD_ANCHORS

    for label in ("happy", "sad", "angry", "fearful"):
        v, a = VAD_ANCHORS[label][:2]
        left, bottom, width, height = lab_plots.PLANE_AXES
        x = (left + (v + 1.1) / 2.2 * width) * lab_plots.PLANE_PX
        y = (1 - (bottom + (a + 1.1) / 2.2 * height)) * lab_plots.PLANE_PX
        got = lab_plots.plane_point(x, y)
        assert abs(got[0] - v) < 0.01 and abs(got[1] - a) < 0.01
        assert lab_plots.nearest_labels(*got)[0][0] == label
    assert lab_plots.point_spec(0.0, 0.0) == "neutral"
    assert lab_plots.plane_image().shape == (lab_plots.PLANE_PX, lab_plots.PLANE_PX, 3)


def test_curve_editor_adds_moves_and_removes_keyframes():
    from affectstudio.apps.studio.emotion import DEFAULT_CURVE, add_keyframe, curve_spec, load_curve, remove_keyframe

    rows, sel, _ = add_keyframe([list(r) for r in DEFAULT_CURVE], 1, "sad")  # after 'happy' (1.5 s): 2.5 s
    assert curve_spec(rows) == "neutral@0; happy:0.8@1.5; sad@2.5; angry:0.8@3.5" and sel == 2
    rows, sel, _ = remove_keyframe(rows, 1)
    assert curve_spec(rows) == "neutral@0; sad@2.5; angry:0.8@3.5" and sel is None
    rows, _, _ = load_curve("neutral@0;  angry:0.8@3.5")
    assert curve_spec(rows) == "neutral@0; angry:0.8@3.5"
    with pytest.raises(gr.Error, match="at least one keyframe"):
        remove_keyframe([[0, "happy", 1]], 0)


def test_send_buttons_fill_one_tab():
    from affectstudio.apps.studio.app import build_studio

    demo = build_studio()
    sends = [fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "send"]
    assert len(sends) == 16  # four results x four tabs
    assert all(len(fn.outputs) == 3 for fn in sends)  # one emotion box, its reading, the tab switch


def test_tempo_box_empty_is_automatic():
    from affectstudio.apps.studio.music import parse_tempo

    assert parse_tempo("") is None and parse_tempo(None) is None and parse_tempo("112 bpm") == 112.0
    with pytest.raises(gr.Error, match="beats per minute"):
        parse_tempo("fast")


def test_library_notes_become_toasts_for_this_render_only(monkeypatch):
    """Which face of a group photo was animated (the CLI's ``note:`` line) shows as a ``gr.Info`` in the studio;
    a note logged by another thread (another session) does not."""
    import logging
    import threading

    from affectstudio.apps.studio import common
    from affectstudio.conditioning.face_choice import NOTES_LOGGER

    shown = []
    monkeypatch.setattr(common.gr, "Info", shown.append)

    def render(**_):
        logging.getLogger(NOTES_LOGGER).info("animating face 2 of 4 (numbered 0-3 left to right), 119 px wide")
        other = threading.Thread(target=logging.getLogger(NOTES_LOGGER).info, args=("someone else's note",))
        other.start()
        other.join()
        return "done"

    plan = common.JobPlan(prepare=common.Stage("checking", 0.1), bars=(), finish=common.Stage("writing", 0.1))
    assert common.run_render(render, None, plan) == "done"
    assert shown == ["animating face 2 of 4 (numbered 0-3 left to right), 119 px wide"]
    logging.getLogger(NOTES_LOGGER).info("after the render")
    assert len(shown) == 1
