"""What every AffectStudio pipeline shares: :class:`AffectPipeline`, a diffusers ``DiffusionPipeline`` base.

* ``from_pretrained()`` with no argument loads the bundled checkpoint ``assets/<bundled_checkpoint>`` offline,
  without diffusers' component-loading bar (a CLI error stays one line);
* input checks every generator needs (:meth:`check_common_inputs`) raising typed :class:`InputError`;
* emotion from any spec — label, mix, free text, reference file, ``EmotionEmbedding``, keyframe curve — to a
  per-frame condition, plus the negative embedding for guidance (:meth:`resolve_emotion`,
  :meth:`emotion_conditions`);
* :meth:`denoise`: windowed flow sampling with one progress bar and ``callback_on_step_end`` counted across
  windows (``step`` runs ``0 .. windows·steps − 1``; ``kwargs["window_index"]`` names the window);
* randomness only from ``generator`` (one, or one per clip of a batch: :meth:`check_generator`); ``None`` draws
  from torch's global generator, as in diffusers;
* ``output_type`` (:data:`OUTPUT_TYPES`: ``"np"``, ``"pt"``, ``"none"`` where a pipeline streams to a file;
  :meth:`check_output_type`) and ``return_dict`` (``False``: the output's fields as a tuple);
* progress through :meth:`progress_bar`, the pipelines' own hook: diffusers' bar, or inside
  :func:`~affectstudio.pipelines.progress.report_progress` a callback ``fn(stage, done, total)``;
* ``save_pretrained`` → plain ``DiffusionPipeline.from_pretrained(folder)`` loads it back: every concrete pipeline
  class registers its name in the ``diffusers`` namespace, where diffusers resolves ``model_index.json``'s
  ``_class_name`` (:meth:`__init_subclass__`);
* :meth:`stream_to`: the atomic mp4 writer a pipeline streams frames into, so memory stays flat (ffmpeg encodes
  in its own process, so encoding overlaps generation);
* CUDA: sampling runs under bf16 autocast on a GPU (:meth:`denoise`), and :meth:`enable_compile` compiles the
  DiT with ``torch.compile`` (behind a flag: compiling costs seconds to minutes once per shape).

A generator pipeline subclasses it, registers its modules, and writes ``check_inputs`` and ``__call__`` as
numbered steps that call these helpers (``pipelines/portrait.py`` is the worked example).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from diffusers import DiffusionPipeline

from affectstudio.conditioning.emotion import EmotionCurve, EmotionEmbedding, parse_emotion_spec
from affectstudio.errors import InputError
from affectstudio.models.flow import plan_windows, sample_windowed
from affectstudio.pipelines.progress import reporting_bar
from affectstudio.video_io import VideoWriter

__all__ = ["AffectPipeline", "OUTPUT_TYPES", "quiet_loading"]

OUTPUT_TYPES = ("np", "pt", "none")  # numpy arrays, torch tensors, nothing held (written to output_path only)

EmotionInput = Any  # a spec string / Path / mapping, an EmotionEmbedding, an EmotionCurve, or None


@contextlib.contextmanager
def quiet_loading():
    """Hide diffusers' "Loading pipeline components" bar; sampling and rendering keep their progress bars."""
    from diffusers.utils import logging as dlogging

    was_enabled = dlogging.is_progress_bar_enabled()
    dlogging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            dlogging.enable_progress_bar()


class AffectPipeline(DiffusionPipeline):
    """Base of ``TalkingPortraitPipeline``, ``DubbingPipeline`` and ``VideoMusicPipeline``."""

    bundled_checkpoint: ClassVar[str | None] = None  # folder under affectstudio/assets

    def __init_subclass__(cls, **kwargs):
        """Register the class in the ``diffusers`` namespace, where ``DiffusionPipeline.from_pretrained`` looks up
        ``model_index.json``'s ``_class_name``: a saved pipeline loads back through the plain diffusers call (in any
        process that has imported the pipeline, e.g. through ``affectstudio.pipelines``)."""
        super().__init_subclass__(**kwargs)
        import diffusers

        existing = vars(diffusers).get(cls.__name__)  # never a diffusers class of the same name
        if existing is None or (isinstance(existing, type) and issubclass(existing, AffectPipeline)):
            setattr(diffusers, cls.__name__, cls)

    def progress_bar(self, iterable=None, total=None):
        """diffusers' bar, or inside :func:`~affectstudio.pipelines.progress.report_progress` (this thread) a counter
        that reports to its callback and prints nothing."""
        bar = reporting_bar(iterable=iterable, total=total)
        return bar if bar is not None else super().progress_bar(iterable=iterable, total=total)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path | None = None, **kwargs):
        """With no path, load the bundled default checkpoint (offline); otherwise diffusers' loader, quietly."""
        if pretrained_model_name_or_path is None:
            if cls.bundled_checkpoint is None:
                raise ValueError(f"{cls.__name__} has no bundled checkpoint: pass a path")
            from affectstudio.assets import asset_path

            pretrained_model_name_or_path = asset_path(cls.bundled_checkpoint)
            kwargs.setdefault("local_files_only", True)
        with quiet_loading():
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    # -------------------------------------------------------------------------------------------- inputs

    @staticmethod
    def check_common_inputs(
        num_inference_steps: int,
        emotion_intensity: float | None = None,
        output_path: str | Path | None = None,
        output_suffixes: Sequence[str] = (".mp4",),
    ) -> None:
        """Checks every generator shares: steps, intensity, the output file's type."""
        if not 1 <= int(num_inference_steps) <= 200:
            raise InputError(f"num_inference_steps must be in 1..200, got {num_inference_steps}")
        if emotion_intensity is not None and not 0.0 <= float(emotion_intensity) <= 1.0:
            raise InputError(f"emotion intensity must be in [0, 1], got {emotion_intensity}")
        if output_path is not None and Path(output_path).suffix.lower() not in output_suffixes:
            raise InputError(f"output must be a {' or '.join(output_suffixes)} file, got {output_path}")

    @staticmethod
    def check_output_type(output_type: str, allowed: Sequence[str] = OUTPUT_TYPES) -> None:
        if output_type not in allowed:
            raise InputError(f"output_type must be one of {', '.join(map(repr, allowed))}, got {output_type!r}")

    @staticmethod
    def check_generator(generator, batch: int) -> None:
        if isinstance(generator, list) and len(generator) != batch:
            raise InputError(f"got {len(generator)} generators for {batch} clips")

    # ------------------------------------------------------------------------------------------- emotion

    @staticmethod
    def parse_emotion(emotion: EmotionInput, intensity: float | None = None) -> EmotionEmbedding | EmotionCurve | None:
        """Parse a spec early (before any heavy work) so a bad one fails fast; ``None`` stays ``None``."""
        return None if emotion is None else parse_emotion_spec(emotion, intensity=intensity)

    @staticmethod
    def resolve_emotion(
        emotion: EmotionInput,
        intensity: float | None,
        num_frames: int,
        fps: float,
        fallback: Callable[[], EmotionEmbedding] | None = None,
    ) -> EmotionEmbedding:
        """The emotion a clip of ``num_frames`` at ``fps`` is conditioned on.

        A curve (keyframes in seconds) becomes one state per frame; a static spec stays static; ``None`` calls
        ``fallback()`` (e.g. the speech encoder's reading) or gives neutral. ``intensity`` overrides.
        """
        if emotion is None:
            emb = fallback() if fallback is not None else EmotionEmbedding.neutral()
            return emb if intensity is None else emb.with_intensity(intensity)
        parsed = parse_emotion_spec(emotion, intensity=intensity)
        return parsed.at_frames(num_frames, fps) if isinstance(parsed, EmotionCurve) else parsed

    @staticmethod
    def emotion_conditions(
        embs: Sequence[EmotionEmbedding],
        num_frames: int,
        emotion_guidance_scale: float,
        negative_emotion: EmotionInput = None,
        fps: float = 25.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-frame conditions ``(b, t, 12)`` and, when emotion guidance is on, the negatives ``(b, t, 12)``:
        ``negative_emotion`` when given, else each emotion's valence mirror."""
        cond = torch.stack([e.as_condition(num_frames) for e in embs])  # (b, t, 12)
        if emotion_guidance_scale == 1.0:
            return cond, None
        if negative_emotion is not None:
            neg = AffectPipeline.resolve_emotion(negative_emotion, None, num_frames, fps)
            negs = [neg] * len(embs)
        else:
            negs = [e.mirror() for e in embs]
        return cond, torch.stack([n.as_condition(num_frames) for n in negs])

    # ------------------------------------------------------------------------------------------ sampling

    def denoise(
        self,
        dit,
        shape: Sequence[int],
        content: Mapping[str, torch.Tensor],
        emotion: torch.Tensor,
        negative_emotion: torch.Tensor | None = None,
        speaker: torch.Tensor | None = None,
        guidance_scales: Mapping[str, float] | None = None,
        num_inference_steps: int = 10,
        generator=None,
        callback_on_step_end: Callable[..., dict] | None = None,
        window: int = 250,
        overlap: int = 25,
    ) -> torch.Tensor:
        """Sample ``shape = (b, n, c)`` from ``dit`` with ``self.scheduler`` in overlapping windows.

        One progress bar over every window's steps; ``callback_on_step_end(self, step, timestep, kwargs)`` gets
        the step counted across windows and may replace ``kwargs["latents"]``.
        """
        device, dtype = dit.device, dit.dtype
        windows = len(plan_windows(int(shape[1]), window, overlap))
        with self.progress_bar(total=windows * num_inference_steps) as bar:

            def on_step(model, i, t, kwargs):
                bar.update()
                if callback_on_step_end is not None:
                    step = kwargs["window_index"] * num_inference_steps + i
                    kwargs.update(callback_on_step_end(self, step, t, kwargs) or {})
                return kwargs

            autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
            with autocast:
                return sample_windowed(
                    dit,
                    self.scheduler,
                    tuple(shape),
                    {k: v.to(device, dtype) for k, v in content.items()},
                    emotion.to(device, dtype),
                    window=window,
                    overlap=overlap,
                    negative_emotion=None if negative_emotion is None else negative_emotion.to(device, dtype),
                    speaker=None if speaker is None else speaker.to(device, dtype),
                    guidance_scales=guidance_scales,
                    num_inference_steps=num_inference_steps,
                    generator=generator,
                    callback_on_step_end=on_step,
                )

    def enable_compile(self, **compile_kwargs) -> "AffectPipeline":
        """Compile every AffectDiT component with ``torch.compile`` (in place; ``mode=...`` etc. are passed on)."""
        from affectstudio.models.dit import AffectDiT

        for component in self.components.values():
            if isinstance(component, AffectDiT):
                component.compile(**compile_kwargs)
        return self

    # -------------------------------------------------------------------------------------------- output

    @staticmethod
    def stream_to(output_path: str | Path | None, fps: float, audio=None, sample_rate: int | None = None):
        """An atomic mp4 writer for ``output_path`` (frames are written as they are made), or a no-op context."""
        if output_path is None:
            return contextlib.nullcontext()
        return VideoWriter(output_path, fps, audio=audio, sample_rate=sample_rate)
