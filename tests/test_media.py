import subprocess

import numpy as np
import pytest
from PIL import Image

from affectstudio import media, video_io
from affectstudio.errors import InputError, InputTooLongError, MediaDecodeError, MissingFileError


def _frames(t=10, h=64, w=48):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (h + w)], -1).astype(np.uint8)  # smooth
    return np.stack([np.roll(base, i, axis=1) for i in range(t)])


def test_load_image_forms(tmp_path):
    arr = _frames(1)[0]
    Image.fromarray(arr).save(tmp_path / "a.png")
    assert np.array_equal(media.load_image(tmp_path / "a.png"), arr)
    assert np.array_equal(media.load_image(Image.fromarray(arr)), arr)
    assert media.load_image(arr[..., 0]).shape == (64, 48, 3)  # grey → RGB
    assert media.load_image(arr.astype(np.float32) / 255.0).dtype == np.uint8


def test_load_image_errors(tmp_path):
    with pytest.raises(MissingFileError):
        media.load_image(tmp_path / "nope.png")
    (tmp_path / "bad.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(MediaDecodeError):
        media.load_image(tmp_path / "bad.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MediaDecodeError):
        media.load_image(tmp_path / "empty.png")


def test_wav_round_trip_and_resample(tmp_path):
    sr = 16000
    wave = (0.5 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
    media.write_wav(tmp_path / "a.wav", wave, sr)
    back, sr2 = media.load_audio(tmp_path / "a.wav")
    assert sr2 == sr and np.abs(back - wave).max() < 1e-3
    up, sr3 = media.load_audio((wave, sr), sample_rate=24000)
    assert sr3 == 24000 and abs(len(up) - 24000) <= 1
    with pytest.raises(InputTooLongError):
        media.load_audio((wave, sr), max_seconds=0.5)
    with pytest.raises(InputError):
        media.load_audio(wave)  # an array needs its rate


def test_audio_errors(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(MediaDecodeError):
        media.load_audio(tmp_path / "x.wav")
    with pytest.raises(MissingFileError):
        media.load_audio(tmp_path / "missing.mp3")
    with pytest.raises(MediaDecodeError):
        media.load_audio((np.zeros(0, np.float32), 16000))


def test_video_round_trip_with_audio(tmp_path):
    frames, sr = _frames(25), 24000
    wave = (0.99 * np.sin(2 * np.pi * 300 * np.arange(int(0.6 * sr)) / sr)).astype(np.float32)  # shorter than video
    out = video_io.write_video(tmp_path / "v.mp4", frames, 25, wave, sr)
    info = video_io.probe_video(out)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (48, 64, 25, True)
    assert abs(info.fps - 25) < 1e-6
    back, fps = video_io.read_video(out)
    assert back.shape == frames.shape and np.abs(back.astype(int) - frames).mean() < 8  # lossy H.264
    audio, asr = media.load_audio(out)
    assert asr == sr and abs(len(audio) - sr) < sr * 0.01  # padded to the video's 1.0 s
    assert np.abs(audio).max() < 0.95  # AAC headroom: no clipping on decode


def test_odd_size_and_mux(tmp_path):
    out = video_io.write_video(tmp_path / "odd.mp4", _frames(5, 31, 33), 25)
    assert video_io.probe_video(out).width == 34
    muxed = video_io.mux_audio(out, np.zeros(100, np.float32), 16000, tmp_path / "m.mp4")
    assert video_io.probe_video(muxed).has_audio


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        with video_io.VideoWriter(tmp_path / "x.mp4", 25) as w:
            w.write(_frames(3))
            raise ValueError("renderer crashed")
    with pytest.raises(InputError):
        with video_io.VideoWriter(tmp_path / "y.mp4", 25) as w:
            w.write(np.zeros((2, 8, 8), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_probe_header_and_counted(tmp_path):
    """The header probe reports the container (a longer audio track included) and the upright frame size;
    count_frames=True reports the video stream's own length; the reader scales and decimates while decoding."""
    video = video_io.write_video(tmp_path / "v.mp4", _frames(25), 25)
    longer = tmp_path / "longer.mp4"  # 1 s of video, 1.5 s of audio, stored rotated by 90°
    cmd = [media.ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(video), "-f", "lavfi"]
    subprocess.run([*cmd, "-i", "sine=d=1.5", "-c:v", "copy", "-c:a", "aac", str(longer)], check=True)
    head, counted = video_io.probe_video(longer), video_io.probe_video(longer, count_frames=True)
    assert (head.width, head.height, head.has_audio) == (64, 48, True) and abs(head.duration - 1.5) < 0.05
    assert (counted.num_frames, counted.duration) == (25, 1.0) and (counted.width, counted.height) == (64, 48)
    assert video_io.read_video(longer)[0].shape == (25, 48, 64, 3)
    small = np.stack(list(video_io.iter_video_frames(video, size=(24, 32), fps=12.5, fps_round="down", fast=True)))
    assert small.shape[1:] == (32, 24, 3) and len(small) in (12, 13)  # 1 s at 12.5 fps


def test_corrupt_video(tmp_path):
    (tmp_path / "c.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(MediaDecodeError):
        video_io.probe_video(tmp_path / "c.mp4")


def test_true_peak_in_blocks_equals_the_whole_track():
    from scipy.signal import resample_poly

    from affectstudio.media import true_peak

    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(5000) * 0.2).astype(np.float32)
    wave[999:1001] = (0.95, -0.95)  # an inter-sample peak straddling a block edge
    whole = float(np.abs(resample_poly(wave, 4, 1)).max())
    assert true_peak(wave, block=1000) == pytest.approx(whole, rel=1e-6)
    assert whole > 0.95  # the oversampled peak is above the sample peak
