"""Dubbed speech fills the lips (issue 17): phrases spread over every span where the lips move, at 2-6 syllables a
second; a script too short leaves some lip activity silent and says how much; one too long is refused."""

import numpy as np
import pytest

from affectstudio.conditioning.alignment import align_to_lips, merge_spans
from affectstudio.conditioning.lips import LipActivity, lip_activity_from_opening, spans_from_mask
from affectstudio.conditioning.phonemes import phonemize
from affectstudio.errors import InputError


def _lips(spans, duration=9.0, fps=25.0, syllables_per_s=5.0):
    t = (np.arange(int(duration * fps)) + 0.5) / fps
    opening = np.full(t.size, 0.02)
    for a, b in spans:
        m = (t > a) & (t < b)
        opening[m] += 0.12 * np.abs(np.sin(np.pi * syllables_per_s * (t[m] - a)))
    active, peaks = lip_activity_from_opening(opening, fps)
    return LipActivity(opening=opening.astype(np.float32), active=active, fps=fps, duration=duration,
                       spans=spans_from_mask(active, fps), peaks=peaks)  # fmt: skip


def _natural(seq):
    """About 4.5 syllables a second, like the neural voice."""
    return np.array([0.0 if t.kind == "stress" else 0.03 if t.kind == "space" else 0.075 for t in seq.tokens])


def _iou(segments, spans, total, fps=100):
    t = (np.arange(int(total * fps)) + 0.5) / fps
    speech, lips = np.zeros(t.size, bool), np.zeros(t.size, bool)
    for s in segments:
        speech |= (t >= s.start) & (t < s.end)
    for a, b in spans:
        lips |= (t >= a) & (t < b)
    return (speech & lips).sum() / (speech | lips).sum()


def test_merge_spans_joins_brief_closures():
    assert merge_spans([(1.0, 1.8), (1.88, 4.0), (5.0, 8.0)]) == [(1.0, 4.0), (5.0, 8.0)]


def test_a_short_script_spreads_over_every_span():
    """The bundled clip's shape: lips move at 1.2-4.2 s and 5.0-8.0 s; nine words used to sit in the second span."""
    lips = _lips([(1.2, 4.2), (5.0, 8.0)])
    seq = phonemize("I never thought it would end like this today.")
    al = align_to_lips(seq, _natural(seq), lips)
    spans = [s for s in lips.spans if s[1] - s[0] >= 0.1]
    assert len(al.segments) == 2
    for seg, (a, b) in zip(al.segments, spans):
        assert a - 0.05 <= seg.start and seg.end <= b + 0.05  # each phrase inside its own span
    syllables = sum(t.kind == "vowel" for t in seq.tokens)
    rate = syllables / sum(s.duration for s in al.segments)
    assert 2.0 <= rate <= 6.0
    assert _iou(al.segments, spans, lips.duration) >= 0.8
    assert al.silent_lips == pytest.approx(al.lip_active - sum(s.duration for s in al.segments), abs=0.1)


def test_a_fitting_script_fills_the_lips_and_a_tiny_one_says_so():
    lips = _lips([(0.5, 3.0), (4.0, 7.5)])
    spans = [s for s in lips.spans if s[1] - s[0] >= 0.1]
    seq = phonemize("I never thought I would see the Earth from up here. It is so quiet, and so beautiful tonight.")
    al = align_to_lips(seq, _natural(seq), lips)
    assert _iou(al.segments, spans, lips.duration) >= 0.9 and al.silent_lips < 0.3
    short = phonemize("Oh no.")
    al = align_to_lips(short, _natural(short), lips)
    assert len(al.segments) == 1 and al.silent_lips > 4.0  # two words cannot fill six seconds: no drawl


def test_a_script_too_long_says_what_it_needs():
    lips = _lips([(1.0, 2.0)], duration=3.0)
    seq = phonemize("This is a very long script that cannot possibly be spoken in one second of moving lips.")
    with pytest.raises(InputError, match=r"needs about \d+\.\d s"):
        align_to_lips(seq, _natural(seq), lips)
