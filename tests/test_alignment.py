"""Text front end and the monotonic lip–phoneme aligner (conditioning/phonemes.py, conditioning/alignment.py)."""

import numpy as np
import pytest

from affectstudio.conditioning.alignment import align_to_lips, dtw_path, expected_opening
from affectstudio.conditioning.lips import LipActivity, lip_activity_from_opening, spans_from_mask
from affectstudio.conditioning.phonemes import phonemize
from affectstudio.errors import EmptyTextError, InputError


@pytest.mark.parametrize(
    "language,text,expect",
    [
        ("en", "Hello there, how are you?", "ð"),
        ("es", "Hola, ¿cómo estás?", "o"),
        ("fr", "Bonjour, ça va?", "ʒ"),
        ("de", "Guten Tag, wie geht es?", "ɡ"),
    ],
)
def test_phonemize_languages(language, text, expect):
    seq = phonemize(text, language)
    assert expect in seq.text
    kinds = {t.kind for t in seq.tokens}
    assert {"vowel", "consonant", "stress", "space", "pause"} <= kinds
    assert len(seq.phrases()) == 2 and seq.tokens[-1].kind == "pause"
    assert all(t.word >= 0 for t in seq.tokens if t.is_phone)
    assert seq.word_text(*seq.phrases()[0]).endswith(",")


def test_phonemize_stress_and_lip_classes():
    seq = phonemize("Bob met a baby.")
    stressed = [t for t in seq.tokens if t.kind == "vowel" and t.stress == 2]
    assert stressed
    assert [t.lip_class for t in seq.tokens if t.symbol == "b"][0] == "closed"
    assert seq.words == ["Bob", "met", "a", "baby"]


def test_phonemize_errors():
    with pytest.raises(EmptyTextError):
        phonemize("   ")
    with pytest.raises(EmptyTextError):
        phonemize("... !!")
    with pytest.raises(InputError, match="unsupported language"):
        phonemize("hello", "klingon")


def test_dtw_path_is_monotonic_and_complete():
    a = np.array([0, 1, 1, 0, 0, 1, 0], float)
    b = np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0], float)
    p = dtw_path(a, b)
    assert tuple(p[0]) == (0, 0) and tuple(p[-1]) == (a.size - 1, b.size - 1)
    assert np.all(np.diff(p, axis=0) >= 0)


def _lips(spans, duration=6.0, fps=25.0, syllables_per_s=6.0):
    t = (np.arange(int(duration * fps)) + 0.5) / fps
    opening = np.full(t.size, 0.02)
    for a, b in spans:
        m = (t > a) & (t < b)
        opening[m] += 0.12 * np.abs(np.sin(np.pi * syllables_per_s * (t[m] - a)))
    active, peaks = lip_activity_from_opening(opening, fps)
    return LipActivity(
        opening=opening.astype(np.float32),
        active=active,
        fps=fps,
        duration=duration,
        spans=spans_from_mask(active, fps),
        peaks=peaks,
    )


def test_alignment_fills_spans_and_cuts_at_punctuation():
    seq = phonemize("I never thought I would see it. It is so quiet here.")
    natural = np.array([0.0 if t.kind == "stress" else 0.03 if t.kind == "space" else 0.07 for t in seq.tokens])
    lips = _lips([(0.5, 2.5), (3.3, 5.5)])
    al = align_to_lips(seq, natural, lips)
    assert len(al.segments) == 2
    first = al.segments[0]
    assert seq.tokens[first.token_end - 1].symbol == "."  # the cut falls on the full stop
    for seg in al.segments:
        assert al.durations[seg.token_start : seg.token_end].sum() == pytest.approx(seg.duration, abs=1e-6)
        assert any(abs(seg.start - s) < 1e-6 for s, _ in lips.spans)
    assert al.total == lips.duration
    times = al.token_times()
    assert np.all(np.diff(times[:, 0]) >= -1e-9)  # monotonic
    speech = al.speech_mask(lips.fps, lips.num_frames)
    assert (speech & lips.active).sum() / max((speech | lips.active).sum(), 1) > 0.9


def test_vowels_land_on_openings():
    seq = phonemize("papa mama papa")
    natural = np.where([t.kind == "stress" for t in seq.tokens], 0.0, 0.08)
    lips = _lips([(1.0, 3.0)], duration=4.0, syllables_per_s=3.0)  # six openings for six syllables
    al = align_to_lips(seq, natural, lips)
    times = al.token_times()
    op = lips.normalized_opening()
    frame = lambda s: min(int(s * lips.fps), op.size - 1)  # noqa: E731
    vowel = np.mean([op[frame(times[i].mean())] for i, t in enumerate(seq.tokens) if t.kind == "vowel"])
    closed = np.mean([op[frame(times[i].mean())] for i, t in enumerate(seq.tokens) if t.lip_class == "closed"])
    assert vowel > closed + 0.2


def test_script_too_long_says_how_long_it_needs():
    seq = phonemize("word " * 60)
    natural = np.full(len(seq), 0.08)
    with pytest.raises(InputError, match=r"needs about \d+\.\d s"):
        align_to_lips(seq, natural, _lips([(1.0, 2.0)], duration=3.0))


def test_expected_opening_template():
    seq = phonemize("ma")
    tpl = expected_opening(seq, np.array([0.0, 0.1, 0.1]) if len(seq) == 3 else np.full(len(seq), 0.1), 100.0)
    assert tpl.min() == 0.0 and tpl.max() == 1.0
