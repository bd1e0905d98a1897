"""AffectDiT and flow matching: shapes, adaLN-Zero init, presets, named content streams, speaker input,
save/load, determinism, training, per-axis guidance, schedulers, RoPE, windows."""

import math

import pytest
import torch

from affectstudio.models.dit import (
    AFFECT_DIT_PRESETS,
    AffectDiT,
    AffectDiTOutput,
    apply_rotary,
    generator_presets,
    rotary_cos_sin,
)
from affectstudio.models.flow import (
    SCHEDULER_NAMES,
    flow_matching_loss,
    guided_velocity,
    make_scheduler,
    plan_windows,
    sample,
    sample_windowed,
)

IN, CD = 6, 5  # frame channels, content features
NO_DROP = {"content": 0.0, "emotion": 0.0}


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models train faster on one thread (no OpenMP hand-off per op, no spinning on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(**kw) -> AffectDiT:
    torch.manual_seed(0)
    cfg = dict(in_channels=IN, content_streams={"audio": CD}, hidden_size=32, depth=2, num_heads=2, mlp_ratio=2.0)
    cfg.update(kw)
    return AffectDiT(**cfg)


def _perturb(model: AffectDiT, seed: int = 0, std: float = 0.05) -> AffectDiT:
    """Make every weight (also the zero-initialised ones) non-trivial, deterministically."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return model


def _inputs(b=2, n=17, m=17, curve=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, IN, generator=g)
    content = {"audio": torch.randn(b, m, CD, generator=g)}
    emotion = torch.rand(b, n, 12, generator=g) if curve else torch.rand(b, 12, generator=g)
    return x, content, emotion


@pytest.mark.parametrize("curve", [False, True])
@pytest.mark.parametrize("m", [17, 9])
def test_output_shapes(curve, m):
    model = _perturb(_model())
    x, content, emotion = _inputs(m=m, curve=curve)
    out = model(x, torch.tensor([10.0, 900.0]), content, emotion)
    assert isinstance(out, AffectDiTOutput)
    assert out.sample.shape == (2, 17, IN)
    assert torch.isfinite(out.sample).all()
    (tup,) = model(x, 500.0, content, emotion, return_dict=False)
    assert tup.shape == (2, 17, IN)
    assert _model(out_channels=3)(x, 1.0, content, emotion).sample.shape == (2, 17, 3)


def test_curve_emotion_acts_per_frame():
    model = _perturb(_model())
    x, content, _ = _inputs(b=1)
    curve = torch.zeros(1, 17, 12)
    curve2 = curve.clone()
    curve2[:, 10:, 1] = 1.0  # change the emotion of the last frames only
    y1 = model(x, 300.0, content, curve).sample
    y2 = model(x, 300.0, content, curve2).sample
    assert not torch.allclose(y1[:, 10:], y2[:, 10:])
    # earlier frames only change through attention, so much less than the frames whose emotion changed
    assert (y1[:, :10] - y2[:, :10]).abs().mean() < (y1[:, 10:] - y2[:, 10:]).abs().mean()


def test_zero_output_at_init():
    model = _model()
    x, content, emotion = _inputs(curve=True)
    out = model(x, 700.0, content, emotion).sample
    assert torch.equal(out, torch.zeros_like(out))


def test_presets():
    assert {"tiny", "base", "large"} <= set(AFFECT_DIT_PRESETS)
    tiny = AffectDiT.from_preset("tiny", in_channels=24, content_streams={"audio": 90})
    assert tiny.config.hidden_size == AFFECT_DIT_PRESETS["tiny"]["hidden_size"]
    assert tiny.config.in_channels == 24 and tiny.out_channels == 24
    assert AffectDiT.from_preset("tiny", in_channels=4, content_streams={"a": 3}, depth=1).config.depth == 1
    with pytest.raises(ValueError, match="unknown AffectDiT preset"):
        AffectDiT.from_preset("huge", in_channels=4)


@pytest.mark.parametrize("name", ["portrait", "dubbing", "music"])
def test_generator_presets_equal_shipped_configs(name):
    """A generator preset's defaults are exactly its configs/presets/<name>.yaml (over the size preset)."""
    assert name in generator_presets()
    from importlib import resources

    import yaml

    shipped = yaml.safe_load(resources.files("affectstudio.configs").joinpath("presets", f"{name}.yaml").read_text())
    size = AFFECT_DIT_PRESETS[shipped.pop("size", "tiny")]
    model = AffectDiT.from_preset(name, depth=1)  # overrides win
    assert model.config.depth == 1
    for key, value in {**size, **shipped}.items():
        if key != "depth":
            assert model.config[key] == value, key


@pytest.mark.parametrize(
    "preset, folder",
    [("portrait", "talking_portrait/dit"), ("dubbing", "dubbing/prosody_dit"), ("music", "video_music/dit")],
)
def test_generator_preset_matches_its_bundled_checkpoint(preset, folder):
    import json

    from affectstudio.assets import asset_path

    bundled = json.loads((asset_path(*folder.split("/")) / "config.json").read_text())
    config = AffectDiT.from_preset(preset).config
    for key in ("in_channels", "content_streams", "hidden_size", "depth", "num_heads", "speaker_dim"):
        assert config[key] == bundled[key], key


def test_named_streams_each_have_a_projector_and_are_all_read():
    model = _perturb(
        AffectDiT(
            in_channels=3,
            content_streams={"phonemes": 5, "lips": 2},
            aligned_streams=["lips"],
            hidden_size=32,
            depth=1,
            num_heads=2,
        )
    )
    assert set(model.content_projectors) == {"phonemes", "lips"}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 10, 3, generator=g)
    content = {"phonemes": torch.randn(1, 7, 5, generator=g), "lips": torch.randn(1, 10, 2, generator=g)}
    emotion = torch.rand(1, 12, generator=g)
    base = model(x, 100.0, content, emotion).sample
    for name in content:  # changing either stream changes the output
        other = dict(content, **{name: content[name] + 1.0})
        assert not torch.allclose(model(x, 100.0, other, emotion).sample, base)
    with pytest.raises(ValueError, match="streams"):
        model(x, 100.0, {"phonemes": content["phonemes"]}, emotion)
    with pytest.raises(ValueError, match="aligned_streams"):
        AffectDiT(in_channels=3, content_streams={"a": 2}, aligned_streams=["b"])


def test_speaker_vector_conditions_and_guides():
    model = _perturb(
        AffectDiT(in_channels=3, content_streams={"c": 4}, speaker_dim=6, hidden_size=32, depth=1, num_heads=2)
    )
    g = torch.Generator().manual_seed(1)
    x, content, emotion = torch.randn(2, 8, 3, generator=g), {"c": torch.randn(2, 8, 4, generator=g)}, torch.rand(2, 12)
    spk = torch.randn(2, 6, generator=g)
    t = torch.tensor([300.0, 300.0])
    yes = torch.tensor([True, True])
    with torch.no_grad():
        with_spk = model(x, t, content, emotion, speaker=spk).sample
        null_spk = model(x, t, content, emotion, speaker=spk, drop_speaker=yes).sample
        assert not torch.allclose(with_spk, null_spk)
        assert torch.allclose(model(x, t, content, emotion).sample, null_spk, atol=1e-6)  # no speaker = null token
        guided = guided_velocity(model, x, t, content, emotion, speaker=spk, guidance_scales={"speaker": 2.0})
        assert torch.allclose(guided, null_spk + 2.0 * (with_spk - null_spk), atol=1e-5)
        with pytest.raises(ValueError, match="guidance axes"):
            guided_velocity(model, x, t, content, emotion, guidance_scales={"style": 2.0})
    with pytest.raises(ValueError, match="speaker"):
        _model()(
            x[..., :IN] if IN <= 3 else torch.randn(2, 8, IN), t, {"audio": torch.randn(2, 8, CD)}, emotion, speaker=spk
        )


def test_save_load_roundtrip(tmp_path):
    model = _perturb(_model(), seed=3)
    model.save_pretrained(tmp_path / "dit")
    loaded = AffectDiT.from_pretrained(tmp_path / "dit")
    public = lambda cfg: {k: v for k, v in cfg.items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.config) == public(model.config)
    x, content, emotion = _inputs(curve=True)
    with torch.no_grad():
        a = model(x, 250.0, content, emotion).sample
        b = loaded(x, 250.0, content, emotion).sample
    assert torch.equal(a, b)
    assert torch.equal(loaded.null_emotion, model.null_emotion)


def test_loss_deterministic_with_generator():
    model = _perturb(_model())
    x, content, emotion = _inputs()
    losses = [
        flow_matching_loss(model, x, content, emotion, generator=torch.Generator().manual_seed(s)).item()
        for s in (7, 7, 8)
    ]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]
    uniform = flow_matching_loss(
        model, x, content, emotion, generator=torch.Generator().manual_seed(7), sigma_sampling="uniform"
    )
    assert torch.isfinite(uniform)
    with pytest.raises(ValueError):
        flow_matching_loss(model, x, content, emotion, sigma_sampling="cosine")


def test_overfit_one_batch():
    model = _model()
    x, content, emotion = _inputs(b=4, n=12, m=12)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)

    def eval_loss():  # same σ and noise draws every time
        with torch.no_grad():
            return flow_matching_loss(
                model, x, content, emotion, generator=torch.Generator().manual_seed(123), p_drop=NO_DROP
            ).item()

    before = eval_loss()
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        loss = flow_matching_loss(model, x, content, emotion, generator=g, p_drop=NO_DROP)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.35 * before, (before, after)


def test_drop_masks_change_output_after_training_step():
    model = _model()
    x, content, emotion = _inputs()
    t = torch.tensor([400.0, 400.0])
    yes, no = torch.tensor([True, True]), torch.tensor([False, False])
    # at init the output is zero whatever is dropped
    assert torch.equal(model(x, t, content, emotion, drop_emotion=yes).sample, model(x, t, content, emotion).sample)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        loss = flow_matching_loss(model, x, content, emotion, generator=g, p_drop={"content": 0.5, "emotion": 0.5})
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        full = model(x, t, content, emotion, drop_content=no, drop_emotion=no).sample
        assert torch.equal(full, model(x, t, content, emotion).sample)
        no_emotion = model(x, t, content, emotion, drop_emotion=yes).sample
        no_content = model(x, t, content, emotion, drop_content=yes).sample
        # a per-sample mask touches only its own sample
        mixed = model(x, t, content, emotion, drop_content=torch.tensor([True, False])).sample
    assert not torch.allclose(full, no_emotion)
    assert not torch.allclose(full, no_content)
    assert torch.allclose(mixed[0], no_content[0], atol=1e-6) and torch.allclose(mixed[1], full[1], atol=1e-6)


def test_guidance_unit_scales_equal_conditional():
    model = _perturb(_model())
    x, content, emotion = _inputs()
    t = torch.tensor([600.0, 600.0])
    with torch.no_grad():
        plain = model(x, t, content, emotion).sample
        assert torch.equal(guided_velocity(model, x, t, content, emotion), plain)


@pytest.mark.parametrize("negative", [False, True])
def test_guidance_formula_matches_separate_branches(negative):
    model = _perturb(_model())
    x, content, emotion = _inputs(curve=True)
    neg = torch.rand(2, 12, generator=torch.Generator().manual_seed(5)) if negative else None
    t = torch.tensor([600.0, 600.0])
    yes = torch.tensor([True, True])
    s_c, s_e = 2.0, 3.5
    with torch.no_grad():
        v_u = model(x, t, content, emotion, drop_content=yes, drop_emotion=yes).sample
        if negative:
            v_c = model(x, t, content, neg).sample
        else:
            v_c = model(x, t, content, emotion, drop_emotion=yes).sample
        v_f = model(x, t, content, emotion).sample
        guided = guided_velocity(model, x, t, content, emotion, neg, guidance_scales={"content": s_c, "emotion": s_e})
        only_emotion = guided_velocity(model, x, t, content, emotion, neg, guidance_scales={"emotion": s_e})
    assert torch.allclose(guided, v_u + s_c * (v_c - v_u) + s_e * (v_f - v_c), atol=1e-5)
    assert torch.allclose(only_emotion, v_c + s_e * (v_f - v_c), atol=1e-5)
    assert not torch.allclose(guided, v_f)


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_every_scheduler_samples_deterministically(name):
    model = _perturb(_model(), std=0.1)
    _, content, emotion = _inputs()
    scheduler = make_scheduler(name)
    runs = [
        sample(
            model,
            scheduler,
            (2, 17, IN),
            content,
            emotion,
            num_inference_steps=6,
            generator=torch.Generator().manual_seed(s),
            guidance_scales={"content": 1.5, "emotion": 2.0},
        )
        for s in (0, 0, 1)
    ]
    assert runs[0].shape == (2, 17, IN)
    assert torch.isfinite(runs[0]).all()
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])


def test_sample_callback_and_prefix():
    model = _perturb(_model(), std=0.1)
    _, content, emotion = _inputs(b=1)
    seen = []

    def cb(mdl, i, t, kwargs):
        seen.append(i)
        return {"latents": kwargs["latents"]}

    prefix = torch.randn(1, 5, IN, generator=torch.Generator().manual_seed(9))
    out = sample(
        model,
        make_scheduler("flow_euler"),
        (1, 17, IN),
        content,
        emotion,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(0),
        prefix=prefix,
        callback_on_step_end=cb,
    )
    assert seen == [0, 1, 2, 3]
    free = sample(
        model,
        make_scheduler("flow_euler"),
        (1, 17, IN),
        content,
        emotion,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(0),
    )
    # the constrained head ends near the prefix (exactly: prefix noised to the last σ, plus one Euler step)
    assert (out[:, :5] - prefix).abs().mean() < (free[:, :5] - prefix).abs().mean()
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_scheduler("pndm")


def test_rope_is_relative_and_model_runs_past_training_length():
    # RoPE: q·k depends only on the position difference
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16, generator=g), torch.randn(1, 1, 1, 16, generator=g)

    def score(pq, pk):
        cq = rotary_cos_sin(torch.tensor([pq]), 16, 10000.0, torch.float32)
        ck = rotary_cos_sin(torch.tensor([pk]), 16, 10000.0, torch.float32)
        return (apply_rotary(q, *cq) * apply_rotary(k, *ck)).sum()

    assert torch.allclose(score(3.0, 1.0), score(503.0, 501.0), atol=1e-3)
    assert not torch.allclose(score(3.0, 1.0), score(3.0, 2.0), atol=1e-3)

    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, content, emotion = _inputs(n=16, m=16)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        loss = flow_matching_loss(model, x, content, emotion, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    xl, cl, el = _inputs(n=300, m=150, curve=True)
    with torch.no_grad():
        out = model(xl, 500.0, cl, el).sample
    assert out.shape == (2, 300, IN) and torch.isfinite(out).all()
    assert out.abs().sum() > 0


def test_plan_windows():
    assert plan_windows(10, 16, 4) == [(0, 10)]
    wins = plan_windows(100, 30, 10)
    assert wins[0][0] == 0 and wins[-1][1] == 100
    assert all(e - s == 30 for s, e in wins)
    for (s0, e0), (s1, e1) in zip(wins, wins[1:]):
        assert e0 - s1 >= 10 and s1 > s0 and e1 > e0  # overlap at least `overlap`, always advancing
    assert plan_windows(50, 30, 10) == [(0, 30), (20, 50)]
    for bad in [(10, 5, 5), (10, 0, 0), (0, 5, 1)]:
        with pytest.raises(ValueError):
            plan_windows(*bad)


def test_windowed_deterministic_and_covers_input():
    model = _perturb(_model(), std=0.1)
    _, content, emotion = _inputs(b=1, n=50, m=25, curve=True)
    kw = dict(window=20, overlap=6, num_inference_steps=3)
    a = sample_windowed(
        model, make_scheduler("dpm"), (1, 50, IN), content, emotion, generator=torch.Generator().manual_seed(0), **kw
    )
    b = sample_windowed(
        model, make_scheduler("dpm"), (1, 50, IN), content, emotion, generator=torch.Generator().manual_seed(0), **kw
    )
    assert a.shape == (1, 50, IN) and torch.isfinite(a).all()
    assert torch.equal(a, b)


OMEGA = 2 * math.pi / 12  # one cycle every 12 frames


def _sinusoids(g, b, n):
    """Smooth 2-channel signals (sin, cos) with a random phase: only continuity ties windows together."""
    phase = torch.rand(b, 1, generator=g) * 2 * math.pi
    angle = phase + OMEGA * torch.arange(n)[None]
    return torch.stack([angle.sin(), angle.cos()], -1)  # (b, n, 2)


@pytest.mark.slow
def test_windowed_seams_are_continuous():
    torch.manual_seed(0)
    model = AffectDiT(in_channels=2, content_streams={"c": 1}, hidden_size=32, depth=2, num_heads=2, mlp_ratio=2.0)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    win, ov, b, n = 16, 6, 8, 80
    for _ in range(400):
        x0 = _sinusoids(g, 16, win)
        loss = flow_matching_loss(
            model, x0, {"c": torch.zeros(16, win, 1)}, torch.zeros(16, 12), generator=g, p_drop=NO_DROP
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    content, emotion = {"c": torch.zeros(b, n, 1)}, torch.zeros(b, 12)
    out = sample_windowed(
        model,
        make_scheduler("flow_euler"),
        (b, n, 2),
        content,
        emotion,
        window=win,
        overlap=ov,
        num_inference_steps=10,
        generator=torch.Generator().manual_seed(2),
    )
    step = (out[:, 1:] - out[:, :-1]).norm(dim=-1)  # (b, n - 1) frame-to-frame differences
    seams = [s for s, _ in plan_windows(n, win, ov)[1:]]
    seam_step = torch.stack([step[:, s - 1 : s + 1].amax(1) for s in seams], 1)  # around each seam
    # naive: independent windows, concatenated
    gen = torch.Generator().manual_seed(2)
    parts = [
        sample(
            model,
            make_scheduler("flow_euler"),
            (b, win, 2),
            {"c": content["c"][:, :win]},
            emotion,
            num_inference_steps=10,
            generator=gen,
        )
        for _ in range(5)
    ]
    naive = torch.cat(parts, 1)
    naive_step = (naive[:, 1:] - naive[:, :-1]).norm(dim=-1)
    naive_seam = naive_step[:, [win - 1, 2 * win - 1, 3 * win - 1, 4 * win - 1]]
    # seams no larger than typical frame-to-frame differences; the naive concatenation jumps
    assert seam_step.mean() <= step.quantile(0.9), (seam_step.mean(), step.quantile(0.9))
    assert naive_seam.mean() > 1.5 * seam_step.mean(), (naive_seam.mean(), seam_step.mean())
