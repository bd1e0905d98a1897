"""Golden reference for the bundled talking portrait: refactors of the pipeline, the DiT or the renderer must not
change its output for the same seed.

The reference (``tests/data/portrait_golden.npz``) holds the motion, per-frame mean/std and 64×64 thumbnails of
three frames of a 2 s render of the bundled sample portrait. Regenerate it only when a change is meant to alter
the output (say by how much in the commit message)::

    .venv/bin/python tests/test_portrait_golden.py --regenerate
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("mediapipe")

GOLDEN = Path(__file__).parent / "data" / "portrait_golden.npz"
SECONDS = 2.0
THUMB_FRAMES = (0, 25, 49)


def render_reference() -> dict:
    from affectstudio.assets import asset_path
    from affectstudio.media import load_audio
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    samples = asset_path("samples")
    wave, sr = load_audio(samples / "speech.wav")
    wave = wave[: int(SECONDS * sr)]
    pipe = TalkingPortraitPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        image=samples / "portrait.jpg",
        audio=(wave, sr),
        emotion="happy",
        num_inference_steps=4,
        size=256,
        generator=torch.Generator("cpu").manual_seed(0),
        output_type="np",
    )
    frames = np.asarray(out.frames)
    flat = frames.reshape(frames.shape[0], -1, 3).astype(np.float64)
    idx = [i for i in THUMB_FRAMES if i < frames.shape[0]]
    thumbs = np.stack([np.asarray(Image.fromarray(frames[i]).resize((64, 64), Image.BILINEAR)) for i in idx])
    return {
        "motion": np.asarray(out.motion, np.float32),
        "frame_mean": flat.mean(1),
        "frame_std": flat.std(1),
        "thumb_index": np.asarray(idx),
        "thumbs": thumbs,
        "shape": np.asarray(frames.shape),
    }


@pytest.mark.slow
def test_bundled_portrait_matches_golden_reference():
    assert GOLDEN.exists(), f"missing {GOLDEN}: run `python {Path(__file__).name} --regenerate`"
    ref = dict(np.load(GOLDEN))
    got = render_reference()
    assert tuple(got["shape"]) == tuple(ref["shape"])
    np.testing.assert_allclose(got["motion"], ref["motion"], atol=1e-4, rtol=0)
    assert np.abs(got["frame_mean"] - ref["frame_mean"]).max() < 0.5
    assert np.abs(got["frame_std"] - ref["frame_std"]).max() < 0.5
    diff = np.abs(got["thumbs"].astype(np.float64) - ref["thumbs"].astype(np.float64))
    assert diff.mean() < 0.5, f"thumbnails differ by {diff.mean():.3f} on average (max {diff.max():.0f})"


if __name__ == "__main__":
    if "--regenerate" not in sys.argv:
        sys.exit("usage: python tests/test_portrait_golden.py --regenerate")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    ref = render_reference()
    np.savez_compressed(GOLDEN, **ref)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes): frames {tuple(ref['shape'])}")
