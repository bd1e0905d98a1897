"""The shared pipeline contract (tests/pipeline_contract.py) on all three pipelines, with tiny seeded components
(the dubbing voice is the bundled Piper one: its ONNX graph is the component)."""

from __future__ import annotations

import atexit
import functools
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from affectstudio.errors import InputError, MissingFileError

sys.path.insert(0, str(Path(__file__).parent))  # the mixin beside this file (pytest runs with --import-mode=importlib)
from pipeline_contract import PipelineContract  # noqa: E402


def gen(seed: int) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(seed)


# ----------------------------------------------------------------------------------------------------- portrait


class TestPortraitContract(PipelineContract):
    output_field = "frames"
    save_suffixes = (".mp4",)

    @property
    def pipeline_class(self):
        from affectstudio.pipelines.portrait import TalkingPortraitPipeline

        return TalkingPortraitPipeline

    def make_pipeline(self):
        pytest.importorskip("mediapipe")
        from test_portrait_pipeline import tiny_pipeline

        return tiny_pipeline()

    @staticmethod
    def media():
        from PIL import Image
        from skimage import data

        from affectstudio.conditioning.espeak import SPEECH_SAMPLE_RATE

        image = np.asarray(Image.fromarray(data.astronaut()).resize((224, 224)))
        t = np.arange(int(0.6 * SPEECH_SAMPLE_RATE)) / SPEECH_SAMPLE_RATE
        wave = (0.3 * (np.sin(2 * np.pi * 4 * t) > 0) * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
        return image, (wave, SPEECH_SAMPLE_RATE)

    def make_inputs(self, seed=0):
        image, audio = self.media()
        return dict(
            image=image, audio=audio, emotion="happy", size=0, num_inference_steps=self.steps, generator=gen(seed)
        )

    def bad_inputs(self):
        return [({"size": 123}, InputError), ({"audio": None}, InputError), ({"gaze": "up"}, InputError)]

    def batch_inputs(self, seeds):
        return {**self.make_inputs(0), "emotion": ["happy", "sad"], "generator": [gen(s) for s in seeds]}

    def single_of_batch(self, seed, index):
        return {**self.make_inputs(seed), "emotion": ["happy", "sad"][index]}


# ------------------------------------------------------------------------------------------------------ dubbing


@pytest.mark.slow  # the bundled voice loads in ~15 s (its ONNX graph is edited on load)
class TestDubbingContract(PipelineContract):
    output_field = "waveform"
    save_suffixes = (".wav",)

    @property
    def pipeline_class(self):
        from affectstudio.pipelines.dubbing import DubbingPipeline

        return DubbingPipeline

    def make_pipeline(self):
        from affectstudio.models.dit import AffectDiT
        from affectstudio.models.flow import make_scheduler
        from affectstudio.pipelines.dubbing import DubbingPipeline

        bundled = DubbingPipeline.from_pretrained()
        torch.manual_seed(0)
        dit = bundled.prosody_dit
        tiny = AffectDiT(
            in_channels=dit.config.in_channels,
            content_streams=dict(dit.config.content_streams),
            hidden_size=32,
            depth=1,
            num_heads=2,
        )
        for p in tiny.parameters():
            torch.nn.init.normal_(p, std=0.05)
        return DubbingPipeline(bundled.voice, bundled.fallback_voice, tiny, make_scheduler())

    def make_inputs(self, seed=0):
        return dict(
            video=None, text="Hello there.", emotion="happy", num_inference_steps=self.steps, generator=gen(seed)
        )

    def bad_inputs(self):
        return [
            ({"text": "  "}, InputError),
            ({"emotion_intensity": 2.0}, InputError),
            ({"language": "xx"}, InputError),
        ]

    def test_seed_is_deprecated_for_generator(self, pipe, reference):
        inputs = {k: v for k, v in self.make_inputs(0).items() if k != "generator"}
        with pytest.warns(FutureWarning, match="generator"):
            out = pipe(**inputs, seed=0)
        assert out.waveform.tobytes() == reference.waveform.tobytes()


# -------------------------------------------------------------------------------------------------------- music


@functools.cache
def music_clip():
    """A 3 s synthetic clip with one cut, made once per test process (removed at exit)."""
    from affectstudio.conditioning.video import synthetic_clip

    folder = tempfile.mkdtemp(prefix="contract-")
    atexit.register(shutil.rmtree, folder, True)
    return synthetic_clip(f"{folder}/clip.mp4", "bright", 3.0, cut_times=(1.4,), size=(96, 64))


class TestMusicContract(PipelineContract):
    output_field = "waveform"
    save_suffixes = (".wav", ".mid", ".png", ".mp4")

    @property
    def pipeline_class(self):
        from affectstudio.pipelines.music import VideoMusicPipeline

        return VideoMusicPipeline

    def make_pipeline(self):
        from affectstudio.models.dit import AffectDiT
        from affectstudio.models.flow import make_scheduler
        from affectstudio.models.music.codec import BAR_CHANNELS, PLAN_CHANNELS
        from affectstudio.pipelines.music import VideoMusicPipeline

        torch.manual_seed(0)
        dit = AffectDiT.from_preset(
            "tiny",
            in_channels=BAR_CHANNELS,
            content_streams={"bars": PLAN_CHANNELS},
            hidden_size=32,
            depth=1,
            num_heads=2,
        )
        return VideoMusicPipeline(dit=dit, scheduler=make_scheduler())

    def make_inputs(self, seed=0):
        return dict(video=music_clip(), num_inference_steps=self.steps, generator=gen(seed))

    def bad_inputs(self):
        return [
            ({"video": "/nonexistent/clip.mp4"}, MissingFileError),
            ({"tempo": 500}, InputError),
            ({"key": "H#"}, InputError),
        ]

    def test_audio_identical_in_another_thread(self, pipe, reference):
        """The studio and batch workers render in their own threads (one render at a time per pipeline, as diffusers
        pipelines are not re-entrant): the score's audio does not depend on the thread (FluidSynth runs per thread)."""
        outs = []
        thread = threading.Thread(target=lambda: outs.append(pipe(**self.make_inputs(0)).waveform))
        thread.start()
        thread.join()
        assert outs and outs[0].tobytes() == reference.waveform.tobytes()


def test_progress_hook_reaches_the_callback_in_this_thread_only():
    """The pipelines' own progress hook (no import hook, no patching of diffusers): inside ``report_progress`` every
    bar reports ``(stage, done, total)``; another thread, and this one after the block, get diffusers' own bar."""
    from affectstudio.pipelines.base import AffectPipeline
    from affectstudio.pipelines.progress import ReportingBar, report_progress

    pipe = AffectPipeline()
    seen, other = [], []
    with report_progress(lambda *a: seen.append(a)):
        with pipe.progress_bar(total=3) as bar:
            for _ in range(3):
                bar.update()
        list(pipe.progress_bar(iterable=range(2)))
        t = threading.Thread(target=lambda: other.append(pipe.progress_bar(total=1)))
        t.start()
        t.join()
    assert seen[-1] == (2, 2, 2) and (1, 3, 3) in seen
    assert other and not isinstance(other[0], ReportingBar)
    assert not isinstance(pipe.progress_bar(total=1), ReportingBar)
    from diffusers import DiffusionPipeline

    assert "progress_bar" not in vars(DiffusionPipeline) or DiffusionPipeline.progress_bar.__module__.startswith(
        "diffusers"
    )


def test_a_portrait_job_analyses_the_face_once_and_decodes_the_audio_once(tmp_path, monkeypatch):
    """One pass over the media: the preflight's face analysis and decoded audio go to the pipeline (issue 19)."""
    pytest.importorskip("mediapipe")
    from affectstudio import media
    from affectstudio.apps.jobs.render import render_portrait
    from affectstudio.assets import asset_path
    from affectstudio.conditioning import face_choice
    from affectstudio.pipelines import portrait

    wave, sr = media.load_audio(asset_path("samples", "speech.wav"))
    speech = media.write_wav(tmp_path / "speech.wav", wave[: sr // 2], sr)
    faces, decodes = [], []

    def spy(module, name, log, counts=lambda *a, **k: True):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            if counts(*args, **kwargs):
                log.append(args[0] if args else None)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    from_file = lambda src, *a, **k: isinstance(src, (str, Path))  # noqa: E731  a decode, not a resample
    spy(face_choice, "choose_face", faces)
    spy(portrait, "choose_face", faces)
    spy(media, "load_audio", decodes, from_file)
    spy(portrait, "load_audio", decodes, from_file)
    out = render_portrait(
        image=asset_path("samples", "portrait.jpg"), audio=speech, output=tmp_path / "o.mp4", steps=1, device="cpu"
    )
    assert out.stat().st_size > 0
    assert len(faces) == 1, faces
    assert decodes == [speech], decodes
