"""The one time-resampling function (conditioning/timeseries.py)."""

import numpy as np
import torch
import torch.nn.functional as F

from affectstudio.conditioning.timeseries import resample_frames


def test_matches_torch_linear_interpolation_both_ways():
    x = torch.randn(2, 37, 5, generator=torch.Generator().manual_seed(0))
    for n in (1, 10, 37, 50, 111):
        ref = F.interpolate(x.transpose(1, 2), size=n, mode="linear", align_corners=False).transpose(1, 2)
        got = resample_frames(x, n, dim=1)
        assert got.shape == (2, n, 5) and torch.allclose(got, ref, atol=1e-5)
        assert np.allclose(resample_frames(x.numpy(), n, dim=1), ref.numpy(), atol=1e-5)


def test_rates_keep_time_and_types():
    t30 = np.arange(90) / 30.0  # 3 s at 30 fps of a ramp in seconds, frame centres at (j + 0.5) / 30
    x = (t30 + 0.5 / 30).astype(np.float32)[:, None]
    y = resample_frames(x, 60, scale=30 / 25)  # 2.4 s at 25 fps: reads the same clock
    centres = (np.arange(60) + 0.5) / 25
    assert y.dtype == np.float32 and np.allclose(y[:, 0], centres, atol=1e-5)
    assert resample_frames(x, 90) is x  # identity
    ints = resample_frames(np.arange(4), 8)
    assert ints.dtype == np.float64 and ints[0] == 0 and ints[-1] == 3
