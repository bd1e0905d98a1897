"""Music components: theory tables, planner (cuts on downbeats), arranger, styles, rendering, mastering."""

import numpy as np
import pytest

from affectstudio.conditioning.emotion import EmotionEmbedding
from affectstudio.errors import InputError, MissingFileError
from affectstudio.models.music.arranger import PART_NAMES, Arranger, chords_from_plan
from affectstudio.models.music.mix import CEILING_DB, gain_curve, integrated_loudness, master
from affectstudio.models.music.planner import fit_bars, plan_structure
from affectstudio.models.music.styles import PRESETS, get_preset, match_style, style_for_emotion
from affectstudio.models.music.theory import Chord, Key, chord_from_chroma, estimate_key, parse_key


def test_parse_key():
    assert parse_key("C") == Key(0, "major")
    assert parse_key("A minor") == Key(9, "minor")
    assert parse_key("F#m") == Key(6, "minor")
    assert parse_key("Eb major") == Key(3, "major")
    assert parse_key("bbm") == Key(10, "minor")
    with pytest.raises(InputError):
        parse_key("H")


def test_chord_from_chroma_and_key_estimate():
    chroma = np.zeros(12)
    chroma[[9, 0, 4]] = 1  # A C E in C major = vi
    assert chord_from_chroma(chroma, "major") == Chord(9, "min")
    scale = np.zeros(12)
    scale[[0, 2, 4, 5, 7, 9, 11]] = 1
    scale[[0, 4, 7]] += 2
    assert estimate_key(scale)[0] == Key(0, "major")


@pytest.mark.parametrize("seed", range(5))
def test_every_anchored_cut_is_a_downbeat(seed):
    rng = np.random.default_rng(seed)
    duration = 30.0
    cuts = np.sort(rng.uniform(1, 29, 6))
    bpm = float(rng.uniform(70, 140))
    beats, bars, anchored, skipped = fit_bars(duration, cuts, bpm)
    starts = np.array([b[0] for b in bars])
    assert len(anchored) + len(skipped) == len(cuts)
    for c in anchored:
        assert np.min(np.abs(starts - c)) < 1e-6
    tempos = np.array([b[3] for b in bars])
    assert np.all(np.abs(tempos / bpm - 1) < 0.5)
    assert all(b[2] in (2, 3, 4) or len(bars) == 1 for b in bars[:-1])


def test_plan_follows_emotion_and_overrides():
    happy = EmotionEmbedding.from_label("happy").resample(20)
    sad = EmotionEmbedding.from_label("sad").resample(20)
    ph, ps = plan_structure(20.0, [5.0, 12.0], happy), plan_structure(20.0, [5.0, 12.0], sad)
    assert ph.key.mode == "major" and ps.key.mode == "minor"
    assert ph.tempo > ps.tempo + 20
    assert ph.density.mean() > ps.density.mean() and ph.loudness.mean() > ps.loudness.mean()
    assert ph.cut_bar.sum() == 2 and ph.section.max() >= 2
    forced = plan_structure(20.0, [5.0], sad, tempo=120, key="D major")
    assert forced.key == Key(2, "major") and abs(forced.tempo - 120) < 1e-6
    with pytest.raises(InputError):
        plan_structure(0.0, [], happy)


def test_curve_raises_density_and_loudness_over_time():
    calm, tense = EmotionEmbedding.from_label("neutral", 0.3), EmotionEmbedding.from_label("fearful", 1.0)
    curve = EmotionEmbedding.curve([calm, tense], 30)
    plan = plan_structure(30.0, [], curve)
    half = plan.num_bars // 2
    assert plan.density[half:].mean() > plan.density[:half].mean() + 0.1
    assert plan.loudness[half:].mean() > plan.loudness[:half].mean() + 0.1


def test_arranger_writes_every_part_with_the_tempo_map():
    plan = plan_structure(
        16.0, [4.0, 9.5], EmotionEmbedding.from_label("happy").resample(16), rng=np.random.default_rng(0)
    )
    rng = np.random.default_rng(0)
    pm = Arranger(plan, chords_from_plan(plan, rng), get_preset("pop"), rng).arrange()
    names = {i.name for i in pm.instruments}
    assert names == set(PART_NAMES)
    downbeats = pm.get_downbeats()
    for c in plan.anchored_cuts:
        assert np.min(np.abs(downbeats - c)) < 0.01
    drums = next(i for i in pm.instruments if i.is_drum)
    onsets = np.array([n.start for n in drums.notes])
    for c in plan.anchored_cuts:
        assert np.min(np.abs(onsets - c)) < 0.01  # crash + kick on the cut
    melody = next(i for i in pm.instruments if i.name == "melody")
    pitches = np.array([n.pitch for n in melody.notes])
    assert 48 <= pitches.min() and pitches.max() <= 96
    runs = np.max(np.diff(np.flatnonzero(np.diff(np.r_[-1, pitches, -1]) != 0)))
    assert runs <= 4  # no stuck notes


def test_styles():
    assert match_style("jazz please")[0].name == "jazz"
    assert style_for_emotion(0.8, 0.5).name == "pop"
    assert style_for_emotion(-0.6, -0.3).name == "piano"
    assert len({p.name for p in PRESETS}) == len(PRESETS)


def test_mastering_hits_target_and_ceiling():
    sr, dur = 44100, 6.0
    t = np.arange(int(sr * 7)) / sr
    stems = {
        "a": (0.05 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
        "b": (0.9 * (np.sin(2 * np.pi * 3 * t) > 0.99) * np.sin(2 * np.pi * 880 * t)).astype(np.float32),
    }
    speech = np.zeros(int(dur * 25), bool)
    speech[50:100] = True
    mix, out = master(stems, sr, dur, speech)
    assert len(mix) == int(dur * sr)
    assert abs(integrated_loudness(mix, sr) + 14) < 1.0
    from scipy.signal import resample_poly

    assert 20 * np.log10(np.abs(resample_poly(mix, 4, 1)).max()) <= CEILING_DB + 0.3
    assert np.allclose(sum(out.values()), mix, atol=1e-3)
    g = gain_curve(int(dur * sr), sr, speech)
    assert g[int(3.0 * sr)] < 0.5 < g[int(1.0 * sr)]


def test_soundfont_checks(tmp_path):
    from affectstudio.models.music.synth import check_soundfont, load_soundfont

    with pytest.raises(MissingFileError):
        check_soundfont(tmp_path / "none.sf2")
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont at all")
    with pytest.raises(InputError, match="not a SoundFont"):
        check_soundfont(bad)
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\x10\x00\x00\x00sfbk" + b"\0" * 32)
    with pytest.raises(InputError):
        load_soundfont(fake)


def test_render_parts_stems():
    import pretty_midi

    from affectstudio.models.music.synth import render_parts

    pm = pretty_midi.PrettyMIDI()
    for name, prog, drum in (("pad", 48, False), ("drums", 0, True)):
        inst = pretty_midi.Instrument(prog, is_drum=drum, name=name)
        inst.notes = [pretty_midi.Note(90, 60 if not drum else 36, s, s + 0.4) for s in (0.0, 0.5, 1.0)]
        pm.instruments.append(inst)
    stems = render_parts(pm)
    assert set(stems) == {"pad", "drums"}
    assert len({len(v) for v in stems.values()}) == 1
    assert all(np.abs(v).max() > 1e-3 for v in stems.values())
