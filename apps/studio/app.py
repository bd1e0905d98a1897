"""``affectstudio studio``: the Gradio app — Talking Portrait, Dubbing, Music for Video, Emotion Lab, Scene, Batch.

One ``gr.Blocks`` builder per tab (``apps/studio/<tab>.py``), like F5-TTS's ``infer_gradio.py``. Generator tabs
call the same one-function-per-job renderers as the CLI and batch (``apps.render``), which load each pipeline once
per process; a generator whose renderer has not landed in this build shows a note instead of a form. All renders
share one queue slot (the cached pipelines are not re-entrant); the Emotion Lab runs beside it. The server binds
127.0.0.1 unless ``--host`` says otherwise, and uploads are limited in size.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import gradio as gr

from affectstudio.apps.studio.common import not_available

MAX_UPLOAD = "200mb"

#: (tab title, task, renderer of the batch task, module with ``build_tab(examples_dir) -> dict``)
GENERATOR_TABS = (
    ("Talking Portrait", "portrait", "render_portrait", "affectstudio.apps.studio.portrait"),
    ("Dubbing", "dub", "render_dub", "affectstudio.apps.studio.dub"),
    ("Music for Video", "music", "render_music", "affectstudio.apps.studio.music"),
)
SCENE_TAB = ("Scene", "scene", "render_scene", "affectstudio.apps.studio.scene")


def _examples_dir() -> Path:
    from affectstudio.assets import asset_path

    return asset_path("samples")


def _configs_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("affectstudio.configs")))


def _generator_tab(title: str, task: str, renderer: str, module: str, examples: Path) -> dict:
    """Build a generator tab when its job's renderer exists (and its tab module), else a note."""
    from affectstudio.apps.jobs.batch_tasks import TASKS

    if TASKS[task].renderer() is None:
        not_available(title, task, renderer)
        return {}
    try:
        builder = importlib.import_module(module)
    except ModuleNotFoundError:
        not_available(title, task, renderer)
        return {}
    return builder.build_tab(examples) or {}


def build_studio() -> gr.Blocks:
    from affectstudio.apps.studio import batch as studio_batch
    from affectstudio.apps.studio import emotion as studio_emotion

    examples = _examples_dir()
    tabs: dict[str, dict] = {}
    with gr.Blocks(title="AffectStudio") as demo:
        gr.Markdown(
            "# AffectStudio\nOne emotion space steering a talking face, a voice and a score. "
            "Emotions are written the same way everywhere: `happy`, `sad:0.5`, `happy:0.6,surprised:0.4`, "
            "free text, or a curve `neutral@0; angry:0.8@3.5`."
        )
        with gr.Tabs() as main_tabs:
            for title, task, renderer, module in GENERATOR_TABS:
                with gr.Tab(title, id=task):
                    tabs[task] = _generator_tab(title, task, renderer, module, examples)
            with gr.Tab("Emotion Lab", id="lab"):
                lab = studio_emotion.build_tab(examples)
            with gr.Tab(SCENE_TAB[0], id=SCENE_TAB[1]):
                tabs[SCENE_TAB[1]] = _generator_tab(*SCENE_TAB, examples)
            with gr.Tab("Batch", id="batch"):
                studio_batch.build_tab(_configs_dir())
        _wire_sends(lab["sends"], tabs, main_tabs)
    return demo


def _wire_sends(sends, tabs: dict, main_tabs: gr.Tabs) -> None:
    """Each Lab result's "send to" buttons fill ONE generator tab's emotion box (with its reading) and open that
    tab; a button whose tab is not available in this build is hidden."""
    from affectstudio.apps.studio.common import emotion_reading

    for spec, buttons in sends:
        for task, button in buttons.items():
            target = tabs.get(task, {})
            if "emotion" not in target:
                button.visible = False
                continue

            def send(value, _task=task):
                from affectstudio.apps.studio.common import require

                require(bool((value or "").strip()), "Nothing to send yet: produce a result first.")
                return value, emotion_reading(value), gr.Tabs(selected=_task)

            button.click(send, [spec], [target["emotion"], target["reading"], main_tabs], concurrency_limit=4)


def launch(host: str = "127.0.0.1", port: int = 7860, prevent_thread_lock: bool = False):
    """Build the studio, turn the queue on and serve it (loopback by default)."""
    from affectstudio.assets import asset_path

    demo = build_studio()
    demo.queue(default_concurrency_limit=1, max_size=64)
    demo.launch(
        server_name=host,
        server_port=port,
        max_file_size=MAX_UPLOAD,
        show_error=True,
        allowed_paths=[str(asset_path("samples")), str(_configs_dir())],
        prevent_thread_lock=prevent_thread_lock,
        footer_links=["api", "settings"],
    )
    return demo


def main() -> None:
    launch()


if __name__ == "__main__":
    main()
