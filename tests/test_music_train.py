"""`affectstudio train music` on a tiny folder of MIDI files, and the data engine's augmentations."""

import numpy as np
import pytest
import torch

from affectstudio.apps.training.music_data import MusicBarData, Piece, _swap_mode, extract_midi_folder, read_labels
from affectstudio.errors import InputError
from affectstudio.models.music.codec import BAR_CHANNELS, CHORD, MELODY, encode_bar


def _write_song(path, tonic: int, minor: bool, bars: int = 8, seed: int = 0):
    import pretty_midi

    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    mel, pad = pretty_midi.Instrument(73, name="melody"), pretty_midi.Instrument(0, name="pad")
    scale = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    beat = 0.6
    for b in range(bars):
        root = scale[[0, 3, 4, 0][b % 4]]
        third = scale[([0, 3, 4, 0][b % 4] + 2) % 7]
        for p in (48 + tonic + root, 60 + tonic + third, 60 + tonic + root + 7):
            pad.notes.append(pretty_midi.Note(70, p, b * 4 * beat, (b + 1) * 4 * beat))
        for k in range(4):
            mel.notes.append(
                pretty_midi.Note(90, 72 + tonic + scale[rng.integers(7)], (b * 4 + k) * beat, (b * 4 + k + 0.9) * beat)
            )
    pm.instruments += [mel, pad]
    pm.write(str(path))


@pytest.fixture
def midi_dir(tmp_path):
    d = tmp_path / "midi"
    d.mkdir()
    for i, (tonic, minor) in enumerate([(0, False), (9, True), (7, False)]):
        _write_song(d / f"song{i}.mid", tonic, minor, seed=i)
    (d / "labels.csv").write_text("file,emotion\nsong0.mid,happy\nsong1.mid,sad:0.8\n")
    return d


def test_extract_midi_folder(midi_dir):
    labels = read_labels(midi_dir / "labels.csv")
    pieces = extract_midi_folder(midi_dir, labels)
    assert len(pieces) == 3
    by = {p.name: p for p in pieces}
    assert not by["song0.mid"].minor and by["song1.mid"].minor
    assert by["song0.mid"].bars.shape[1] == BAR_CHANNELS
    assert by["song0.mid"].emotion()[0, 1] == pytest.approx(1.0)  # labelled happy
    assert by["song1.mid"].emotion()[:, 8].mean() < 0  # sad: negative valence
    assert by["song2.mid"].label is None
    # key-relative: the tonic chord of every song sits on pitch class 0
    assert all(p.bars[0, CHORD][0] > 0.5 for p in pieces)


def test_parallel_mode_swap():
    x = encode_bar([(60, 0, 4), (64, 0, 4), (67, 0, 4)], [(76, 0, 1), (71, 1, 1)])[None]
    y = _swap_mode(x, to_minor=True)
    assert y[0, CHORD][3] > 0.5 and y[0, CHORD][4] == 0  # E → Eb
    assert y[0, MELODY][10] > 0.5 and y[0, MELODY][11] == 0  # B → Bb


def test_data_module_shapes():
    rng = np.random.default_rng(0)
    pieces = [
        Piece(f"p{i}", rng.uniform(0, 1, (n, BAR_CHANNELS)).astype(np.float32), np.full(n, 4.0), i % 2 == 0, 100.0)
        for i, n in enumerate((5, 20))
    ]
    batch = MusicBarData(pieces, window=8).sample(4, torch.Generator().manual_seed(0))
    assert batch["x0"].shape == (4, 8, BAR_CHANNELS) and batch["content"]["bars"].shape == (4, 8, 16)
    assert batch["emotion"].shape == (4, 8, 12) and batch["mask"].dtype == torch.bool


@pytest.mark.slow
def test_train_music_on_a_tiny_folder(midi_dir, tmp_path):
    from affectstudio.apps.training.music import main
    from affectstudio.pipelines.music import VideoMusicPipeline

    out = tmp_path / "run"
    main(
        [
            "--data",
            str(midi_dir),
            "--labels",
            str(midi_dir / "labels.csv"),
            "--steps",
            "3",
            "--batch-size",
            "2",
            "--window",
            "4",
            "--output",
            str(out),
        ]
    )
    assert (out / "model_index.json").exists() and (out / "eval.json").exists()
    pipe = VideoMusicPipeline.from_pretrained(out)
    assert pipe.dit is not None and pipe.dit.config.in_channels == BAR_CHANNELS


def test_train_music_bad_folder(tmp_path):
    from affectstudio.apps.training.music import main

    with pytest.raises(InputError):
        main(["--data", str(tmp_path / "none"), "--output", str(tmp_path / "o")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        main(["--data", str(tmp_path / "empty"), "--output", str(tmp_path / "o")])
