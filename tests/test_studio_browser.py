"""The studio in a real browser: Debian's chromium driven by the ``playwright`` package (``executable_path``; a
browser download is not possible here). Drives every tab once: a bad upload and a malformed curve give one readable
error and the studio stays usable; the Emotion Lab reads a sentence, takes a click on the valence–arousal plane,
edits a curve (add, select, move by a click on the preview, remove) and sends it to one tab; portrait, dubbing,
music and scene each render once, their videos play to ``readyState`` 4 with the duration of the file (dub and
music: of the input clip), the progress bar shows only on the main output, downloads have readable names.
Screenshots go to a temporary folder (and, compressed, to ``$AFFECTSTUDIO_SCREENSHOTS`` when set). Skipped only when
chromium or playwright is absent (``scripts/setup.sh`` installs both)."""

import os
import re
import shutil
import socket
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RENDER_TIMEOUT = 300_000  # ms: a first render imports torch/diffusers and loads models on 2 busy cores

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is absent (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api")
sys.path.insert(0, str(Path(__file__).parent))  # helpers beside this file (pytest runs with --import-mode=importlib)
from group_photo import group_photo  # noqa: E402

TIMINGS: dict[str, float] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio_url():
    from affectstudio.apps.studio.app import launch

    port = _free_port()
    demo = launch(host="127.0.0.1", port=port, prevent_thread_lock=True)
    yield f"http://127.0.0.1:{port}"
    demo.close()


@pytest.fixture(scope="module")
def page(studio_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(studio_url, wait_until="load")  # not "networkidle": the page keeps a heartbeat open (gr.State)
        pg.get_by_role("tab", name="Batch", exact=True).wait_for()
        yield pg
        browser.close()
    if TIMINGS:
        print("\nstudio render timings (s, click to playable video):", TIMINGS)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("screens")
    yield folder
    extra = os.environ.get("AFFECTSTUDIO_SCREENSHOTS")
    if extra:
        from PIL import Image

        Path(extra).mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            with Image.open(png) as im:  # palette PNGs stay under 250 KB for the docs
                small = im.convert("RGB")
                if small.height > 2400:
                    small = small.resize((small.width * 2400 // small.height, 2400))
                small.quantize(colors=128).save(Path(extra) / png.name, optimize=True)


@pytest.fixture(scope="module")
def samples():
    from affectstudio.assets import asset_path

    return asset_path("samples")


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(300)


def _field(page, elem_id: str):
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def _value(page, elem_id: str) -> str:
    return _field(page, elem_id).input_value()


def _wait_value(page, elem_id: str, condition: str, timeout: int = 60_000) -> None:
    page.wait_for_function(
        f"() => {{ const e = document.querySelector('#{elem_id} textarea, #{elem_id} input');"
        f" return e && {condition}; }}",
        timeout=timeout,
    )


def _toasts(page) -> list[str]:
    return [t.strip() for t in page.locator("[data-testid=toast-body]").all_inner_texts()]


def _errors(page) -> list[str]:
    """Toasts other than notes (``gr.Info``: the library's notes, e.g. which face was animated)."""
    return [t for t in _toasts(page) if not t.startswith("Info")]


def _notes(page) -> list[str]:
    return [t.split("\n")[-1] for t in _toasts(page) if t.startswith("Info")]


def _close_toasts(page) -> None:
    for close in page.locator(".toast-close").all():
        close.click()
    page.wait_for_function("() => !document.querySelector('[data-testid=toast-body]')")


def _wait_toast(page, timeout: int = 60_000) -> str:
    page.wait_for_selector("[data-testid=toast-body]", timeout=timeout)
    page.wait_for_timeout(300)
    texts = _toasts(page)
    assert len(texts) == 1, texts
    return texts[0]


def _assert_readable(message: str) -> None:
    """One readable message: no framework dump, no internal or temporary paths."""
    for bad in ("/tmp", "gradio", "preprocess", "Traceback", "event handler", "{'path'"):
        assert bad not in message, message


def _file_path(url: str) -> Path:
    return Path(urllib.parse.unquote(url.split("file=", 1)[1]))


def _downloads(page, elem_id: str) -> list[str]:
    return [a.get_attribute("href") for a in page.locator(f"#{elem_id} a[href*='file=']").all()]


def _render_and_play(page, button: str, video: str, name: str, shots) -> dict:
    """Click ``button``; the job's one progress bar shows only on ``#video``; the video plays to readyState 4."""
    start = time.perf_counter()
    page.locator(f"#{button}").click()
    page.wait_for_selector(f"#{video} .progress-text, #{video} .eta-bar", timeout=30_000)
    outside = page.evaluate(
        f"() => [...document.querySelectorAll('.progress-text, .eta-bar')].filter(e => !e.closest('#{video}')).length"
    )
    assert outside == 0, "the progress shows on more than the main output"
    page.screenshot(path=str(shots / f"after_{name}_progress.png"))
    page.wait_for_function(
        f"() => document.querySelector('#{video} video') || [...document.querySelectorAll('[data-testid=toast-body]')]"
        ".some(e => !e.innerText.trim().startsWith('Info'))",
        timeout=RENDER_TIMEOUT,
    )
    assert not _errors(page), _errors(page)
    notes = _notes(page)
    for note in notes:
        _assert_readable(note)
    if notes:
        _close_toasts(page)
    page.wait_for_function(
        f"() => {{ const v = document.querySelector('#{video} video'); return v && v.readyState >= 4; }}",
        timeout=60_000,
    )
    TIMINGS[name] = round(time.perf_counter() - start, 1)
    page.evaluate(f"() => {{ const v = document.querySelector('#{video} video'); v.muted = true; return v.play(); }}")
    page.wait_for_function(f"() => document.querySelector('#{video} video').currentTime > 0.2", timeout=30_000)
    info = page.evaluate(
        f"() => {{ const v = document.querySelector('#{video} video');"
        f" return {{width: v.videoWidth, height: v.videoHeight, duration: v.duration, src: v.currentSrc,"
        f" state: v.readyState}}; }}"
    )
    from affectstudio.video_io import probe_video

    assert info["state"] == 4
    probed = probe_video(_file_path(info["src"]))
    assert abs(info["duration"] - probed.duration) < 0.1, (info, probed.duration)
    page.screenshot(path=str(shots / f"after_{name}_result.png"), full_page=True)
    return {**info, "notes": notes}


def test_every_tab_opens(page, shots):
    names = ["Talking Portrait", "Dubbing", "Music for Video", "Emotion Lab", "Scene", "Batch"]
    assert [t.inner_text().strip() for t in page.get_by_role("tab").all()] == names
    for name in names:
        _open_tab(page, name)
        page.screenshot(path=str(shots / f"after_tab_{name.lower().replace(' ', '_')}.png"), full_page=True)
        assert not _toasts(page)


def test_bad_upload_and_malformed_curve_give_one_readable_error(page, shots, tmp_path):
    from affectstudio.conditioning.emotion import parse_emotion_spec
    from affectstudio.errors import InputError

    _open_tab(page, "Talking Portrait")
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is a text file, not a photo\n")
    page.locator("#portrait-image input[type=file]").set_input_files(str(fake))
    message = _wait_toast(page)
    page.screenshot(path=str(shots / "after_portrait_error_fake_jpg.png"))
    _assert_readable(message)
    assert "holiday.jpg" in message and "not a valid image" in message, message
    _close_toasts(page)
    page.locator("#portrait-image button[aria-label=Clear]").click()  # the studio stays usable: upload again
    page.locator("#portrait-image input[type=file]").wait_for(state="attached")

    bad = "happy@; sad:2@-1"  # a keyframe with no time: the parser's message, as on the command line
    with pytest.raises(InputError) as parsed:
        parse_emotion_spec(bad)
    box = _field(page, "portrait-emotion")
    box.fill(bad)
    box.press("Tab")  # leaving the box shows its reading, or the parser's error
    message = _wait_toast(page)
    _assert_readable(message)
    assert " ".join(str(parsed.value).split()) in message, message
    _close_toasts(page)
    box.fill("")
    box.press("Tab")


def test_emotion_lab_read_click_curve_and_send(page, shots):
    from affectstudio.apps.studio import lab_plots
    from affectstudio.conditioning.emotion import VAD_ANCHORS

    _open_tab(page, "Emotion Lab")
    page.locator("#lab-text textarea").fill("We won the final and the whole street was dancing!")
    page.locator("#lab-read").click()
    _wait_value(page, "lab-read-spec", "e.value.length > 0")
    assert _value(page, "lab-read-spec").startswith("happy")
    assert "happy" in page.locator("#lab-probs").inner_text()

    # a click on the plane near the 'sad' anchor sets a sad emotion and names the nearest labels
    plane = page.locator("#lab-plane img")
    box = plane.bounding_box()
    v, a = VAD_ANCHORS["sad"][:2]
    left, bottom, width, height = lab_plots.PLANE_AXES
    fx = left + (v + lab_plots.LIMIT) / (2 * lab_plots.LIMIT) * width
    fy = 1 - (bottom + (a + lab_plots.LIMIT) / (2 * lab_plots.LIMIT) * height)
    plane.click(position={"x": fx * box["width"], "y": fy * box["height"]})
    _wait_value(page, "lab-plane-spec", "e.value.startsWith('sad')")
    assert "nearest: sad" in page.locator("#lab-plane-note").inner_text()

    # the curve editor: + adds a keyframe, a row click selects, a click on the preview moves it, − removes it
    start = "neutral@0; happy:0.8@1.5; angry:0.8@3.5"
    assert _value(page, "lab-curve-spec") == start
    _field(page, "lab-curve-new-emotion").fill("sad")
    page.locator("#lab-curve-add").click()
    _wait_value(page, "lab-curve-spec", "e.value.includes('sad@4.5')")
    page.locator("#lab-curve-table [role=gridcell]").filter(has_text="happy").first.click()
    page.wait_for_function("() => document.querySelector('#lab-curve-note').innerText.includes('happy')")
    page.wait_for_timeout(1500)  # the selection redraws the preview (selected keyframe in red): click the new one
    page.wait_for_function(
        "() => { const i = document.querySelector('#lab-curve-preview img'); return i && i.complete; }"
    )
    assert not _toasts(page), _toasts(page)
    preview = page.locator("#lab-curve-preview img")
    pbox = preview.bounding_box()
    span = lab_plots.curve_span(type("C", (), {"duration": 4.5})())
    left, _, width, _ = lab_plots.CURVE_AXES
    fx = left + (2.5 - span[0]) / (span[1] - span[0]) * width  # 2.5 s on the preview's time axis
    preview.click(position={"x": fx * pbox["width"], "y": pbox["height"] * 0.5})
    _wait_value(page, "lab-curve-spec", "/happy:0.8@2\\.[456]/.test(e.value)")
    page.locator("#lab-curve-remove").click()
    _wait_value(page, "lab-curve-spec", "!e.value.includes('happy')")
    curve = _value(page, "lab-curve-spec")
    assert curve == "neutral@0; angry:0.8@3.5; sad@4.5", curve
    page.screenshot(path=str(shots / "after_emotion_lab_result.png"), full_page=True)

    # "send to" fills ONE tab and opens it
    portrait_before = _value(page, "portrait-emotion")
    page.locator("#lab-curve-to-dub").click()
    _wait_value(page, "dub-emotion", f"e.value === {curve!r}")
    assert page.get_by_role("tab", name="Dubbing", exact=True).get_attribute("aria-selected") == "true"
    assert "a curve of 3 keyframes" in page.locator("#dub-emotion-reading").inner_text()
    assert _value(page, "portrait-emotion") == portrait_before
    _open_tab(page, "Music for Video")
    assert _value(page, "music-emotion") == ""


def test_group_photo_face_picker(page, shots, tmp_path):
    """A group photo shows a gallery of its faces (left to right from 0); a thumbnail click and a click on a face in
    the photo's preview each put that face's number in the face box; a one-face photo hides the gallery again."""
    from PIL import Image

    from affectstudio.conditioning.face_choice import list_faces

    photo, _ = group_photo()
    path = tmp_path / "group.png"
    Image.fromarray(photo).save(path)
    faces = list_faces(photo)
    _open_tab(page, "Talking Portrait")
    page.locator("#portrait-image input[type=file]").set_input_files(str(path))
    gallery = page.locator("#portrait-face-gallery")
    gallery.locator("img").nth(len(faces) - 1).wait_for()
    assert gallery.locator("img").count() == len(faces) == 4
    assert "4 faces found" in page.locator("#portrait-face-chosen").inner_text()
    assert _value(page, "portrait-face") == "auto"

    gallery.locator("img").nth(2).click()
    _wait_value(page, "portrait-face", "e.value === '2'")
    assert "Face 2 of 4" in page.locator("#portrait-face-chosen").inner_text()

    preview = page.locator("#portrait-image-preview img")
    page.wait_for_function(
        "() => { const i = document.querySelector('#portrait-image-preview img'); return i && i.complete; }"
    )
    box = preview.bounding_box()
    x0, y0, x1, y1 = faces[0].bbox
    h, w = photo.shape[:2]
    preview.click(position={"x": (x0 + x1) / 2 / w * box["width"], "y": (y0 + y1) / 2 / h * box["height"]})
    _wait_value(page, "portrait-face", "e.value === '0'")
    assert "Face 0 of 4" in page.locator("#portrait-face-chosen").inner_text()
    page.screenshot(path=str(shots / "after_portrait_face_picker.png"), full_page=True)
    assert not _toasts(page), _toasts(page)
    page.locator("#portrait-image button[aria-label=Clear]").click()  # the next test uploads its own photo
    page.locator("#portrait-image input[type=file]").wait_for(state="attached")


def test_portrait_render_plays(page, shots, samples):
    _open_tab(page, "Talking Portrait")
    page.locator("#portrait-image input[type=file]").set_input_files(str(samples / "portrait.jpg"))
    page.wait_for_selector("#portrait-image-preview img")
    _wait_value(page, "portrait-face", "e.value === 'auto'")  # one face: the picker's gallery is gone again
    assert not page.locator("#portrait-face-gallery").is_visible()
    page.locator("#portrait-text textarea").fill("Hello there.")
    _field(page, "portrait-emotion").fill("happy")
    page.locator("#portrait-advanced").get_by_text("Advanced settings").click()
    steps = page.locator("#portrait-steps input[type=number]")
    steps.fill("2")
    steps.press("Tab")
    page.wait_for_timeout(300)
    assert steps.input_value() == "2"
    info = _render_and_play(page, "portrait-render", "portrait-video", "portrait", shots)
    assert (info["width"], info["height"]) == (256, 256) and info["duration"] > 0.5
    assert re.search(r"portrait_happy_seed0\.mp4$", _downloads(page, "portrait-download")[0])
    assert "happy 100 %" in page.locator("#portrait-emotion-reading").inner_text()


def test_dub_render_plays_and_reads_free_text(page, shots, samples):
    from affectstudio.video_io import probe_video

    _open_tab(page, "Dubbing")
    page.locator("#dub-video-in input[type=file]").set_input_files(str(samples / "silent_talk.mp4"))
    page.locator("#dub-text textarea").fill("I told you so, and nobody listened.")
    box = _field(page, "dub-emotion")
    box.fill("grumpy-ish")
    box.press("Tab")
    page.wait_for_function("() => document.querySelector('#dub-emotion-reading').innerText.includes('grumpy-ish →')")
    reading = page.locator("#dub-emotion-reading").inner_text()
    assert re.search(r"grumpy-ish → \w+ \d+ %", reading), reading
    info = _render_and_play(page, "dub-render", "dub-video-out", "dub", shots)
    assert abs(info["duration"] - probe_video(samples / "silent_talk.mp4").duration) < 0.1
    names = [Path(_file_path(h)).name for h in _downloads(page, "dub-files")]
    assert "dub_grumpy-ish_seed0.mp4" in names and "speech_grumpy-ish_seed0.wav" in names, names


def test_music_render_plays_with_stems(page, shots, samples):
    from affectstudio.video_io import probe_video

    _open_tab(page, "Music for Video")
    page.locator("#music-advanced").get_by_text("Advanced settings").click()
    assert _value(page, "music-tempo") == ""  # empty means automatic, and shows so
    page.locator("#music-style input").click()
    page.wait_for_selector("[role=option]")
    options = page.locator("[role=option]").all_inner_texts()
    assert options and all(o.strip() for o in options), options  # no blank choice
    page.keyboard.press("Escape")
    page.locator("#music-video-in input[type=file]").set_input_files(str(samples / "silent_talk.mp4"))
    info = _render_and_play(page, "music-render", "music-video-out", "music", shots)
    assert abs(info["duration"] - probe_video(samples / "silent_talk.mp4").duration) < 0.1
    names = [Path(_file_path(h)).name for h in _downloads(page, "music-files")]
    pattern = r"score_[A-G][b#]?-(major|minor)_\d+bpm\.mid"
    assert any(re.fullmatch(pattern, n) for n in names), names
    assert any(re.fullmatch(r"stems_.+bpm\.zip", n) for n in names), names
    assert re.search(r"(major|minor), \d+ bpm", page.locator("#music-facts").inner_text())


def test_scene_render_plays_with_voice_music_and_plot(page, shots, samples):
    _open_tab(page, "Scene")
    page.locator("#scene-image input[type=file]").set_input_files(str(samples / "portrait.jpg"))
    page.wait_for_selector("#scene-image-preview img")
    page.locator("#scene-text textarea").fill("I was calm. Now I am furious!")
    _field(page, "scene-emotion").fill("neutral@0; angry:0.9@1.5")
    page.locator("#scene-advanced").get_by_text("Advanced settings").click()
    page.locator("#scene-steps input[type=number]").fill("2")
    page.locator("#scene-steps input[type=number]").press("Tab")
    _render_and_play(page, "scene-render", "scene-video", "scene", shots)
    for elem in ("scene-voice", "scene-music"):
        page.wait_for_selector(f"#{elem} audio, #{elem} [data-testid=waveform-Voice]", state="attached")
    page.wait_for_selector("#scene-plot img")
    names = [Path(_file_path(h)).name for h in _downloads(page, "scene-files")]
    for name in ("scene_voice.wav", "scene_music.wav", "scene_emotion.png", "scene_music_stems.zip"):
        assert name in names, names
