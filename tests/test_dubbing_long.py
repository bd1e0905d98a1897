"""Long scripts (issue 16 item 1, issue 17): text-to-speech in groups of whole sentences so memory stays flat."""

from types import SimpleNamespace

import numpy as np
import pytest

from affectstudio.models.dubbing.timeline import LONG_TEXT_CHARS, join_speech, sentence_chunks


def test_sentence_chunks_keep_whole_sentences_under_the_limit():
    text = " ".join(f"This is sentence number {i}, which says a few words." for i in range(40))
    chunks = sentence_chunks(text)
    assert len(chunks) > 1 and all(len(c) <= LONG_TEXT_CHARS for c in chunks)
    assert " ".join(chunks) == text and all(c.endswith(".") for c in chunks)
    assert sentence_chunks("Short. Text!") == ["Short. Text!"]
    long_sentence = "word " * 200 + "end."
    assert sentence_chunks(long_sentence) == [" ".join(long_sentence.split())]  # a long sentence stays whole


def test_join_speech_shifts_times():
    def part(n, k):
        return SimpleNamespace(
            waveform=np.ones(n, np.float32), sample_rate=100, phonemes=["a"] * k, durations=np.full(k, 0.1),
            token_times=np.stack([np.arange(k) * 0.1, np.arange(k) * 0.1 + 0.1], 1), timings={"synthesis": 1.0},
            emotion=None,
        )  # fmt: skip

    joined = join_speech([part(150, 2), part(50, 3)])
    assert joined["waveform"].size == 200 and len(joined["phonemes"]) == 5
    assert joined["token_times"][2, 0] == pytest.approx(1.5) and joined["timings"]["synthesis"] == 2.0


@pytest.mark.slow
def test_long_tts_is_spoken_in_chunks():
    import torch

    from affectstudio.pipelines.dubbing import DubbingPipeline

    pipe = DubbingPipeline.from_pretrained()
    text = " ".join(["The river ran quietly past the old mill."] * 12)  # 491 characters: two chunks
    out = pipe(video=None, text=text, emotion="happy", generator=torch.Generator().manual_seed(0))
    assert len(sentence_chunks(text)) == 2
    assert out.token_times.shape[0] == len(out.phonemes) and np.all(np.diff(out.token_times[:, 0]) >= -1e-6)
    assert out.duration > 20 and np.abs(out.waveform).max() > 0.05
