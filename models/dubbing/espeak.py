"""espeak-ng fallback voice for languages no bundled neural voice covers, with word-level timing control.

espeak-ng (through :func:`affectstudio.conditioning.espeak.synthesize`) reports word start/end samples;
a phrase is rendered as one utterance and then time-warped piecewise linearly so every word lasts its
target (the sum of its phonemes' target durations), with Praat's PSOLA (``Manipulation`` + ``DurationTier``),
which keeps the pitch. Timing inside a word follows espeak's own rhythm.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from affectstudio.conditioning.espeak import SPEECH_SAMPLE_RATE, synthesize
from affectstudio.conditioning.phonemes import PhonemeSequence

__all__ = ["EspeakVoice"]


def _token_weights(seq: PhonemeSequence, start: int, end: int) -> np.ndarray:
    w = np.zeros(end - start)
    for i in range(start, end):
        t = seq.tokens[i]
        w[i - start] = (
            1.6 if t.kind == "vowel" else 1.0 if t.kind == "consonant" else 0.3 if t.kind == "modifier" else 0.0
        )
    return w


class EspeakVoice(ModelMixin, ConfigMixin):
    """espeak-ng voice (any language espeak-ng speaks); ``variant`` picks its speaker (``m3``, ``f2``, …)."""

    @register_to_config
    def __init__(self, variant: str = "m3", rate_wpm: float = 165.0):
        super().__init__()
        self.register_buffer("format_version", torch.ones(1))  # a weightless component still saves a file

    sample_rate = SPEECH_SAMPLE_RATE

    def _speak(self, text: str, seq: PhonemeSequence, rate: float = 1.0):
        voice = f"{seq.voice}+{self.config.variant}" if self.config.variant else seq.voice
        return synthesize(text, voice=voice, rate_wpm=self.config.rate_wpm * rate)

    def _word_spans(self, seq: PhonemeSequence, start: int, end: int):
        """Word indices of tokens ``[start, end)`` and the token ranges of each."""
        groups: dict[int, list[int]] = {}
        for i in range(start, end):
            if seq.tokens[i].word >= 0:
                groups.setdefault(seq.tokens[i].word, []).append(i)
        return groups

    def natural_durations(self, seq: PhonemeSequence, seed: int = 0) -> np.ndarray:
        """Seconds per token: each spoken word's espeak duration spread over its phonemes (vowels weigh
        more), the silences between words on the space/pause tokens."""
        out = np.zeros(len(seq))
        for a, b in seq.phrases():
            synth = self._speak(seq.word_text(a, b), seq)
            groups = self._word_spans(seq, a, b)
            if len(synth.words) == len(groups):
                times = [(s, e) for _, s, e in synth.words]
            else:  # espeak split a token differently: spread the phrase evenly by phoneme weight
                w = _token_weights(seq, a, b)
                out[a:b] = w / max(w.sum(), 1e-9) * synth.duration
                continue
            prev_end = times[0][0]
            for (_w, idx), (s, e) in zip(groups.items(), times):
                w = _token_weights(seq, idx[0], idx[-1] + 1)
                out[idx[0] : idx[-1] + 1] = w / max(w.sum(), 1e-9) * max(e - s, 0.02)
                gap = [k for k in range(a, idx[0]) if seq.tokens[k].kind in ("space", "pause")]
                if gap:
                    out[gap[-1]] += max(s - prev_end, 0.0)
                prev_end = e
        return out

    def render_timed(
        self, seq: PhonemeSequence, start: int, end: int, durations: np.ndarray, rate: float = 1.0
    ) -> np.ndarray:
        """Tokens ``[start, end)`` spoken so that each word lasts the sum of its tokens' ``durations`` (s);
        returns the 24 kHz wave, ``durations.sum()`` seconds long."""
        import parselmouth
        from parselmouth.praat import call

        text = seq.word_text(start, end)
        target_total = float(np.sum(durations))
        n_out = int(round(target_total * self.sample_rate))
        if not text.strip() or n_out <= 0:
            return np.zeros(max(n_out, 0), dtype=np.float32)
        synth = self._speak(text, seq, rate)
        sr = synth.sample_rate
        groups = self._word_spans(seq, start, end)
        # source and target boundaries (s): phrase start, each word's start and end, phrase end
        src, dst = [0.0], [0.0]
        if len(synth.words) == len(groups):
            cum = np.concatenate([[0.0], np.cumsum(durations)])
            for (_w, idx), (_, s, e) in zip(groups.items(), synth.words):
                ts, te = cum[idx[0] - start], cum[idx[-1] + 1 - start]
                if s > src[-1] + 1e-3 and ts > dst[-1] + 1e-3:
                    src.append(s)
                    dst.append(ts)
                if e > src[-1] + 1e-3 and te > dst[-1] + 1e-3:
                    src.append(e)
                    dst.append(te)
        if synth.duration > src[-1] + 1e-3:
            src.append(synth.duration)
            dst.append(max(target_total, dst[-1] + 1e-3))
        src_a, dst_a = np.asarray(src), np.asarray(dst)
        snd = parselmouth.Sound(synth.wave.astype(np.float64), sr)
        manip = call(snd, "To Manipulation", 0.01, 60, 500)
        tier = call("Create DurationTier", "warp", 0.0, synth.duration)
        for k in range(len(src_a) - 1):
            ratio = (dst_a[k + 1] - dst_a[k]) / max(src_a[k + 1] - src_a[k], 1e-4)
            ratio = float(np.clip(ratio, 0.25, 4.0))
            call(tier, "Add point", float(src_a[k]) + 1e-4, ratio)
            call(tier, "Add point", float(src_a[k + 1]) - 1e-4, ratio)
        call([manip, tier], "Replace duration tier")
        wave = call(manip, "Get resynthesis (overlap-add)").values[0].astype(np.float32)
        out = np.zeros(n_out, dtype=np.float32)
        out[: min(n_out, wave.size)] = wave[:n_out]
        return out

    def render_free(self, seq: PhonemeSequence, rate: float = 1.0) -> np.ndarray:
        """The whole sequence at espeak's own pace (times ``rate``), phrase by phrase."""
        parts = []
        for a, b in seq.phrases():
            parts.append(self._speak(seq.word_text(a, b), seq, rate).wave)
            parts.append(np.zeros(int(0.12 * self.sample_rate), dtype=np.float32))
        return np.concatenate(parts).astype(np.float32)
