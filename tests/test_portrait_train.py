"""Talking-portrait data engine and trainer: determinism, articulation rules, shapes, a short training run, the
real-data folder parser on fake MEAD / CREMA-D layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from affectstudio.apps.evaluation.portrait_eval import load_trained
from affectstudio.apps.training.flow import heldout_loss
from affectstudio.apps.training.portrait import (
    WindowSampler,
    build_real_dataset,
    parse_video_folder,
    save_outputs,
    train,
)
from affectstudio.apps.training.portrait_data import (
    DIT_CHANNELS,
    FPS,
    articulation_track,
    build_dataset,
    make_clip,
    random_sentence,
)
from affectstudio.conditioning.espeak import Phoneme, synthesize
from affectstudio.conditioning.speech_features import FEATURE_DIM
from affectstudio.models.portrait import MOTION_CHANNELS

JAW, PRESS = 0, 3  # articulation_track columns


def test_dit_channels_are_motion_channels_without_idle_ones():
    assert set(DIT_CHANNELS) <= set(MOTION_CHANNELS)
    assert not {"blink", "gaze_x", "gaze_y"} & set(DIT_CHANNELS)
    assert list(DIT_CHANNELS) == [c for c in MOTION_CHANNELS if c in DIT_CHANNELS]  # same order


def test_sentences_vary_and_are_seeded():
    a = [random_sentence(np.random.default_rng(s)) for s in range(30)]
    b = [random_sentence(np.random.default_rng(s)) for s in range(30)]
    assert a == b
    assert len(set(a)) > 20


def test_clip_shapes_and_determinism():
    c1, c2, c3 = make_clip(11), make_clip(11), make_clip(12)
    t = c1["content"].shape[0]
    assert t >= 100
    assert c1["content"].shape == (t, FEATURE_DIM)
    assert c1["motion"].shape == (t, len(DIT_CHANNELS))
    assert c1["emotion"].shape == (t, 12) and c1["speech"].shape == (t,)
    assert np.isfinite(c1["motion"]).all() and np.isfinite(c1["content"]).all()
    # same seed: same text, voice, emotion; espeak-ng jitters its output by a few samples between calls in one
    # process, so audio-derived arrays agree up to that jitter
    assert c1["meta"] == c2["meta"]
    assert np.array_equal(c1["emotion"], c2["emotion"])
    n = min(len(c1["motion"]), len(c2["motion"]))
    assert np.abs(c1["motion"][:n] - c2["motion"][:n]).mean() < 5e-3
    assert np.abs(c1["content"][:n] - c2["content"][:n]).mean() < 5e-2
    assert c1["meta"]["text"] != c3["meta"]["text"] or c1["meta"]["voice"] != c3["meta"]["voice"]


def _ph(spec):
    return [Phoneme(s, a, b) for s, a, b in spec]


def test_articulation_closed_in_silence_bilabials_closed_vowels_open():
    ph = _ph(
        [("_", 0.0, 1.0), ("m", 1.0, 1.08), ("a", 1.08, 1.30), ("p", 1.30, 1.38), ("a", 1.38, 1.60), ("_", 1.60, 3.0)]
    )
    art = articulation_track(ph, 75)
    centres = (np.arange(75) + 0.5) / FPS
    silent = (centres < 0.8) | (centres > 1.9)
    assert art[silent, JAW].max() < 0.02
    for a, b in ((1.0, 1.08), (1.30, 1.38)):  # bilabial frames: lips pressed, jaw shut
        k = int((a + b) / 2 * FPS)
        assert art[k, PRESS] == 1.0 and art[k, JAW] <= 0.03
    vowel = (centres > 1.12) & (centres < 1.26)
    assert art[vowel, JAW].max() > 0.4


def test_articulation_on_espeak_timings():
    syn = synthesize("Bob might pump my map.", "en-us", rate_wpm=170)
    t = int(np.ceil(syn.duration * FPS))
    art = articulation_track(syn.phonemes, t)
    bil = [p for p in syn.phonemes if p.viseme == "PP"]
    assert len(bil) >= 5
    for p in bil:
        k = min(t - 1, int((p.start + p.end) / 2 * FPS))
        assert art[k, PRESS] == 1.0 and art[k, JAW] <= 0.03, p
    assert art[:, JAW].max() > 0.3
    loud = articulation_track(syn.phonemes, t, loudness=np.full(t, 1.2))
    quiet = articulation_track(syn.phonemes, t, loudness=np.full(t, 0.1))
    assert loud[:, JAW].sum() > 1.5 * quiet[:, JAW].sum()


def test_emotion_drives_expression_channels():
    au12, au15 = DIT_CHANNELS.index("AU12"), DIT_CHANNELS.index("AU15")
    happy, sad = [], []
    for seed in range(40):
        c = make_clip(seed)
        probs = c["emotion"][:, :8].mean(0)
        if probs[1] > 0.9:
            happy.append(c["motion"][:, au12].mean())
        if probs[2] > 0.9:
            sad.append(c["motion"][:, au15].mean())
    assert happy and sad
    assert min(happy) > 0.2 and min(sad) > 0.2


@pytest.fixture(scope="module")
def tiny_data():
    return build_dataset(4, seed=3, workers=1, log_every=0)


def test_build_dataset_layout(tiny_data):
    off = tiny_data["offsets"]
    assert off[0] == 0 and off[-1] == tiny_data["content"].shape[0] == tiny_data["motion"].shape[0]
    assert len(tiny_data["meta"]) == 4 and (np.diff(off) >= 100).all()


def _cfg(**kw):
    cfg = dict(
        preset="tiny",
        seed=0,
        window=50,
        batch_size=4,
        steps=10,
        lr=3e-3,
        warmup_steps=1,
        min_lr_ratio=0.5,
        ema_decay=0.0,
        log_every=1,
        p_drop_content=0.0,
        p_drop_emotion=0.0,
        std_floor=0.02,
        grad_clip=1.0,
        pipeline_window=50,
        pipeline_overlap=10,
    )
    cfg.update(kw)
    return cfg


@pytest.mark.slow
def test_short_training_reduces_loss_and_saves(tiny_data, tmp_path):
    from affectstudio.conditioning.speech_features import FEATURE_DIM as F
    from affectstudio.models.dit import AffectDiT

    cfg = _cfg()
    res = train(cfg, tiny_data, output_dir=tmp_path / "run", log=lambda s: None)
    sampler = WindowSampler(tiny_data, res["mean"], res["std"], 50)
    init = AffectDiT.from_preset("tiny", in_channels=len(DIT_CHANNELS), content_streams={"audio": F})
    before = heldout_loss(init, sampler, 2, 8, seed=5)
    after = heldout_loss(res["model"], sampler, 2, 8, seed=5)
    curve = res["result"].curve
    assert len(curve) == 10 and all(np.isfinite(c["loss"]) for c in curve)
    assert after < 0.9 * before
    assert (tmp_path / "run" / "train_state.pt").exists() and (tmp_path / "run" / "loss_log.jsonl").exists()
    save_outputs(tmp_path, res, cfg, "test data", ["--steps", "10"], log=lambda s: None)
    assert (tmp_path / "TRAINING.md").exists() and (tmp_path / "loss_curve.png").exists()
    assert len(json.loads((tmp_path / "loss_curve.json").read_text())) == 10
    dit, mean, std, stats = load_trained(tmp_path)
    assert stats["motion_channels"] == list(DIT_CHANNELS)
    np.testing.assert_allclose(mean, res["mean"], rtol=1e-6)
    b = sampler.sample(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        y1 = dit(b["x0"], 500.0, b["content"], b["emotion"]).sample
        y2 = res["model"].float()(b["x0"], 500.0, b["content"], b["emotion"]).sample
    torch.testing.assert_close(y1, y2, atol=2e-2, rtol=2e-2)  # saved in float16


def test_parse_fake_mead_and_cremad_layouts(tmp_path):
    files = [
        "M003/video/front/happy/level_3/001.mp4",
        "M003/video/front/fear/level_1/002.mp4",
        "M003/video/left_30/sad/level_2/001.mp4",  # not frontal: ignored
        "W009/video/front/contempt/level_2/010.mp4",
        "crema/1001_DFA_ANG_XX.flv",
        "crema/1002_IEO_SAD_HI.mp4",
        "crema/1003_TIE_HAP_LO.mp4",
        "crema/notes.txt",
    ]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    items = {str(i.path.relative_to(tmp_path)): i for i in parse_video_folder(tmp_path)}
    assert set(items) == {f for f in files if "left_30" not in f and f.endswith((".mp4", ".flv"))}
    assert items["M003/video/front/happy/level_3/001.mp4"].emotion == "happy"
    assert items["M003/video/front/happy/level_3/001.mp4"].intensity == pytest.approx(1.0)
    assert items["M003/video/front/fear/level_1/002.mp4"].emotion == "fearful"
    assert items["M003/video/front/fear/level_1/002.mp4"].intensity == pytest.approx(1 / 3)
    assert items["W009/video/front/contempt/level_2/010.mp4"].speaker == "W009"
    assert items["crema/1001_DFA_ANG_XX.flv"].emotion == "angry"
    assert items["crema/1002_IEO_SAD_HI.mp4"].intensity == pytest.approx(1.0)
    assert items["crema/1003_TIE_HAP_LO.mp4"].emotion == "happy"


def test_parse_empty_folder_is_an_input_error(tmp_path):
    from affectstudio.errors import InputError

    with pytest.raises(InputError):
        parse_video_folder(tmp_path)


def _fake_talking_video(path, seconds=1.0, fps=25):
    """The astronaut's face with its jaw region pulled down and up (image warp), plus an espeak wav."""
    from scipy.ndimage import map_coordinates
    from skimage import data
    from skimage.transform import resize

    from affectstudio.video_io import write_video

    img = (resize(data.astronaut()[20:276, 130:386], (192, 192)) * 255).astype(np.uint8)
    n = int(seconds * fps)
    yy, xx = np.mgrid[0:192, 0:192].astype(np.float32)
    frames = []
    for i in range(n):
        a = 6.0 * max(0.0, np.sin(i / n * 2 * np.pi * 3))  # jaw drop in pixels
        w = np.clip((yy - 95) / 25, 0, 1) * np.exp(-(((xx - 96) / 40) ** 2))
        src_y = yy - a * w
        frames.append(
            np.stack([map_coordinates(img[..., c], [src_y, xx], order=1, mode="nearest") for c in range(3)], -1)
        )
    speech = synthesize("Hello, my name is Bob.", "en-us")
    write_video(
        path,
        np.stack(frames),
        fps,
        audio=speech.wave[: int(seconds * speech.sample_rate)],
        sample_rate=speech.sample_rate,
    )


def test_real_data_mode_end_to_end(tmp_path):
    mead = tmp_path / "data" / "M003" / "video" / "front" / "happy" / "level_2" / "001.mp4"
    crema = tmp_path / "data" / "1001_DFA_SAD_HI.mp4"
    mead.parent.mkdir(parents=True)
    _fake_talking_video(mead)
    _fake_talking_video(crema)
    data = build_real_dataset(tmp_path / "data")
    assert len(data["meta"]) == 2
    t = data["content"].shape[0]
    assert data["motion"].shape == (t, len(DIT_CHANNELS)) and data["emotion"].shape == (t, 12)
    assert np.isfinite(data["motion"]).all()
    jaw = data["motion"][: data["offsets"][1], DIT_CHANNELS.index("jaw_open")]
    assert jaw.max() - jaw.min() > 0.05  # the warped jaw is measured
    labels = {m["emotion"] for m in data["meta"]}
    assert labels == {"happy", "sad"}
    res = train(_cfg(steps=2, window=20, batch_size=2), data, output_dir=tmp_path / "run", log=lambda s: None)
    assert all(np.isfinite(c["loss"]) for c in res["result"].curve)
