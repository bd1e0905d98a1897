"""The studio in a real browser: Debian's chromium driven by the ``playwright`` package (``executable_path``; a
browser download is not possible here). Opens every tab, reads the emotion of a sentence in the Emotion Lab, builds
a curve, renders a tiny talking portrait and checks that the video element plays. Screenshots go to a temporary
folder (and to ``$AFFECTSTUDIO_SCREENSHOTS`` when set). Skipped only when chromium or playwright is absent
(``scripts/setup.sh`` installs both)."""

import os
import shutil
import socket
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

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is absent (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api")


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
        pg.goto(studio_url, wait_until="networkidle")
        yield pg
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("screens")
    yield folder
    extra = os.environ.get("AFFECTSTUDIO_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy(png, Path(extra) / png.name)


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(300)


def _value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def _wait_value(page, elem_id: str, condition: str) -> None:
    page.wait_for_function(
        f"() => {{ const e = document.querySelector('#{elem_id} textarea, #{elem_id} input');"
        f" return e && {condition}; }}"
    )


def test_every_tab_opens(page, shots):
    names = ["Talking Portrait", "Dubbing", "Music for Video", "Emotion Lab", "Scene", "Batch"]
    assert [t.inner_text().strip() for t in page.get_by_role("tab").all()] == names
    for name in names:
        _open_tab(page, name)
        page.screenshot(path=str(shots / f"tab_{name.lower().replace(' ', '_')}.png"), full_page=True)
        assert page.locator(".error, .toast-body.error").count() == 0


def test_emotion_lab_reads_a_sentence_and_builds_a_curve(page, shots):
    _open_tab(page, "Emotion Lab")
    page.locator("#lab-text textarea").fill("We won the final and the whole street was dancing!")
    page.locator("#lab-read").click()
    _wait_value(page, "lab-read-spec", "e.value.length > 0")
    assert _value(page, "lab-read-spec") == "happy"
    assert "happy" in page.locator("#lab-probs").inner_text()
    page.get_by_role("button", name="Build curve").click()
    _wait_value(page, "lab-curve-spec", "e.value.includes('@')")
    assert _value(page, "lab-curve-spec") == "neutral@0; happy:0.8@1.5; angry:0.8@3.5"
    page.get_by_role("button", name="Use this curve in the generator tabs").click()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "emotion_lab_result.png"), full_page=True)
    _open_tab(page, "Talking Portrait")
    assert _value(page, "portrait-emotion") == "neutral@0; happy:0.8@1.5; angry:0.8@3.5"


def test_tiny_portrait_render_plays(page, shots):
    from affectstudio.assets import asset_path

    _open_tab(page, "Talking Portrait")
    page.locator("#portrait-image input[type=file]").set_input_files(str(asset_path("samples", "portrait.jpg")))
    page.locator("#portrait-text textarea").fill("Hello there.")
    page.locator("#portrait-emotion textarea, #portrait-emotion input").first.fill("happy")
    page.locator("#portrait-advanced").get_by_text("Advanced settings").click()
    steps = page.locator("#portrait-steps input[type=number]")
    steps.fill("2")
    steps.press("Tab")
    page.wait_for_timeout(300)
    assert steps.input_value() == "2"
    page.locator("#portrait-render").click()
    page.wait_for_function(
        "() => document.querySelector('#portrait-video video') || "
        "document.querySelector('[data-testid=\"toast-body\"]')",
        timeout=240_000,
    )
    toasts = page.locator("[data-testid=toast-body]")
    assert toasts.count() == 0, toasts.first.inner_text()
    page.wait_for_function(
        "() => { const v = document.querySelector('#portrait-video video');"
        " return v && v.readyState >= 2 && v.duration > 0.5; }",
        timeout=60_000,
    )
    page.evaluate(
        "() => { const v = document.querySelector('#portrait-video video'); v.muted = true; return v.play(); }"
    )
    page.wait_for_function("() => document.querySelector('#portrait-video video').currentTime > 0.3", timeout=30_000)
    size = page.evaluate(
        "() => { const v = document.querySelector('#portrait-video video');"
        " return [v.videoWidth, v.videoHeight, v.duration]; }"
    )
    assert size[0] == 256 and size[1] == 256 and size[2] > 0.5
    page.screenshot(path=str(shots / "portrait_result.png"), full_page=True)
