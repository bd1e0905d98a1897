"""The contract every AffectStudio pipeline keeps, as a test mixin (in the spirit of diffusers'
``PipelineTesterMixin``; docs/architecture.md, "The pipeline contract").

A test class mixes in :class:`PipelineContract` and says how to build a tiny seeded pipeline and cheap inputs; the
mixin checks: save → plain ``DiffusionPipeline.from_pretrained`` → identical bytes; the same generator seed twice →
identical bytes, another seed → different ones; ``return_dict=False`` → the same values as a tuple; ``output_type``
``"pt"`` → the same values as a tensor, an unknown one → ``InputError``; ``callback_on_step_end`` called once per
denoising step, counted across windows, and progress reported through the pipeline's own hook (one report per
update, every bar complete); ``.save()`` of the output; a batch equal to single runs where the pipeline batches;
bad inputs → the typed error named.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

from affectstudio.errors import InputError
from affectstudio.pipelines.progress import report_progress


def as_bytes(value) -> bytes:
    if isinstance(value, torch.Tensor):
        value = value.numpy()
    return np.ascontiguousarray(value).tobytes()


class PipelineContract:
    pipeline_class: ClassVar[type]
    output_field: ClassVar[str]  # the output's main field, first in the tuple
    save_suffixes: ClassVar[tuple[str, ...]]  # what ``output.save`` writes without further arguments
    steps: ClassVar[int] = 2  # num_inference_steps in make_inputs: callbacks expected per call (one window)

    # ----------------------------------------------------------------------------------- provided by the test

    def make_pipeline(self):
        raise NotImplementedError

    def make_inputs(self, seed: int = 0) -> dict[str, Any]:
        """Cheap inputs with ``generator=torch.Generator().manual_seed(seed)`` and ``num_inference_steps=steps``."""
        raise NotImplementedError

    def bad_inputs(self) -> list[tuple[dict[str, Any], type[Exception]]]:
        """``(overrides of make_inputs(), the typed error they raise)``."""
        raise NotImplementedError

    def batch_inputs(self, seeds: list[int]) -> dict[str, Any] | None:
        """Inputs for a batch of ``len(seeds)`` clips whose ``i``-th equals ``make_inputs(seeds[i])`` (``None``: the
        pipeline has no batch)."""
        return None

    def single_of_batch(self, seed: int, index: int) -> dict[str, Any]:
        return self.make_inputs(seed)

    # ------------------------------------------------------------------------------------------- fixtures

    @pytest.fixture(scope="class")
    def pipe(self):
        pipe = self.make_pipeline()
        pipe.set_progress_bar_config(disable=True)
        return pipe

    @pytest.fixture(scope="class")
    def reference(self, pipe):
        return pipe(**self.make_inputs(0))

    def main(self, output) -> bytes:
        return as_bytes(getattr(output, self.output_field))

    # ---------------------------------------------------------------------------------------------- tests

    def test_same_seed_same_bytes_other_seed_other_bytes(self, pipe, reference):
        assert self.main(pipe(**self.make_inputs(0))) == self.main(reference)
        assert self.main(pipe(**self.make_inputs(1))) != self.main(reference)

    def test_save_then_plain_diffusers_load_gives_identical_output(self, pipe, reference, tmp_path):
        pipe.save_pretrained(tmp_path / "saved")
        loaded = DiffusionPipeline.from_pretrained(tmp_path / "saved")
        assert type(loaded) is self.pipeline_class
        loaded.set_progress_bar_config(disable=True)
        assert self.main(loaded(**self.make_inputs(0))) == self.main(reference)

    def test_tuple_output_matches_dict(self, pipe, reference):
        out = pipe(**self.make_inputs(0), return_dict=False)
        assert isinstance(out, tuple)
        assert as_bytes(out[0]) == self.main(reference)

    def test_output_type_pt_and_unknown(self, pipe, reference):
        out = pipe(**self.make_inputs(0), output_type="pt")
        value = getattr(out, self.output_field)
        assert isinstance(value, torch.Tensor)
        assert as_bytes(value) == self.main(reference)
        with pytest.raises(InputError, match="output_type"):
            pipe(**self.make_inputs(0), output_type="latent-ish")

    def test_callbacks_counted_and_progress_through_the_pipelines_hook(self, pipe, reference):
        steps, reports = [], []

        def on_step(p, i, t, kwargs):
            assert p is pipe and "latents" in kwargs
            steps.append(i)
            return {}

        with report_progress(lambda stage, done, total: reports.append((stage, done, total))):
            out = pipe(**self.make_inputs(0), callback_on_step_end=on_step)
        assert steps == list(range(self.steps))
        assert self.main(out) == self.main(reference)  # a callback that changes nothing changes nothing
        stages = sorted({s for s, _, _ in reports})
        assert stages == list(range(1, len(stages) + 1)) and stages
        finals = {s: (d, t) for s, d, t in reports}
        assert all(d == t for d, t in finals.values()), finals
        assert (self.steps, self.steps) in finals.values()  # the sampling bar counts the callback's steps

    def test_output_saves(self, reference, tmp_path):
        for suffix in self.save_suffixes:
            path = reference.save(tmp_path / f"out{suffix}")
            assert path.stat().st_size > 0
        with pytest.raises(InputError):
            reference.save(tmp_path / "out.txt")

    def test_bad_inputs_raise_typed_errors(self, pipe):
        for overrides, error in self.bad_inputs():
            with pytest.raises(error):
                pipe(**{**self.make_inputs(0), **overrides})

    def test_batch_matches_single_runs(self, pipe):
        seeds = [3, 4]
        inputs = self.batch_inputs(seeds)
        if inputs is None:
            pytest.skip(f"{self.pipeline_class.__name__} makes one output per call")
        batch = getattr(pipe(**inputs), self.output_field)
        assert len(batch) == len(seeds)
        for i, seed in enumerate(seeds):
            single = getattr(pipe(**self.single_of_batch(seed, i)), self.output_field)
            assert np.abs(np.asarray(batch[i], np.float32) - np.asarray(single, np.float32)).max() <= 1
