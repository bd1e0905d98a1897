"""The one flow trainer (apps/training/flow.py) on a generator it has never seen: two content streams and a speaker
vector, random data, a few steps, resumed, then sampled with per-axis guidance (the README's "Adding a generator")."""

import json

import torch

from affectstudio.apps.training.flow import train_flow
from affectstudio.models.dit import AffectDiT
from affectstudio.models.flow import make_scheduler, sample_windowed


class RandomData:
    """x0 follows the 'notes' stream (per frame) scaled by the mean of the 'bars' stream; emotion per clip."""

    def sample(self, batch_size, generator):
        notes = torch.randn(batch_size, 24, 3, generator=generator)
        bars = torch.rand(batch_size, 6, 2, generator=generator)
        x0 = notes[..., :2] * bars.mean(1, keepdim=True)
        return {
            "x0": x0,
            "content": {"notes": notes, "bars": bars},
            "emotion": torch.rand(batch_size, 12, generator=generator),
            "speaker": torch.randn(batch_size, 4, generator=generator),
        }


def _model():
    torch.manual_seed(0)
    return AffectDiT.from_preset(
        "tiny",
        in_channels=2,
        content_streams={"notes": 3, "bars": 2},
        aligned_streams=["notes"],
        speaker_dim=4,
        hidden_size=32,
        depth=2,
        num_heads=2,
    )


def test_train_resume_and_sample(tmp_path):
    recipe = {"steps": 6, "batch_size": 4, "log_every": 2, "checkpoint_every": 3, "warmup_steps": 1}
    first = train_flow(_model(), RandomData(), recipe, tmp_path, progress=False, log=lambda s: None, until=3)
    assert (tmp_path / "train_state.pt").exists() and [c["step"] for c in first.curve] == [2]
    assert not (tmp_path / "loss_curve.png").exists()
    logs = []
    resumed = train_flow(_model(), RandomData(), recipe, tmp_path, progress=False, log=logs.append)
    assert logs and "resuming from step 3" in logs[0]
    assert [c["step"] for c in resumed.curve] == [2, 4, 6]
    assert (tmp_path / "loss_curve.png").exists()
    assert [json.loads(line)["step"] for line in (tmp_path / "loss_log.jsonl").read_text().splitlines()] == [2, 4, 6]

    fresh = train_flow(_model(), RandomData(), recipe, tmp_path / "fresh", progress=False, log=lambda s: None)
    for a, b in zip(fresh.model.parameters(), resumed.model.parameters()):  # resuming = never stopping
        torch.testing.assert_close(a, b)

    g = torch.Generator().manual_seed(0)
    batch = RandomData().sample(2, g)
    out = sample_windowed(
        resumed.model,
        make_scheduler(),
        (2, 40, 2),
        batch["content"],
        batch["emotion"],
        speaker=batch["speaker"],
        guidance_scales={"content": 2.0, "emotion": 1.5, "speaker": 1.2},
        window=24,
        overlap=6,
        num_inference_steps=4,
        generator=g,
    )
    assert out.shape == (2, 40, 2) and torch.isfinite(out).all()
