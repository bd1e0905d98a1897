"""DubbingPipeline: a silent clip + a script + an emotion → natural speech timed to the lips, muxed into the clip.

With ``video=None`` it is emotional text-to-speech (the talking portrait's ``text=`` input can use it).

Steps: the script → IPA phonemes (espeak-ng); the voice's own per-phoneme durations; lip activity from the
video (face mesh) and the monotonic lip–phoneme aligner → per-phoneme durations that fill the lip-active
spans (total = the clip); per-frame emotion (label, mix, text, reference, or a curve) → prosody targets
(F0 level and range, rate, energy, tilt); the Prosody DiT (when the checkpoint has one) adds per-phoneme
duration residuals and frame-level F0/energy offsets; the neural voice (Piper joe for English, espeak-ng for
other languages) speaks each phrase with exact durations; PSOLA and gain envelopes apply the prosody.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
from diffusers.utils import BaseOutput

from affectstudio.conditioning.alignment import LipAlignment, align_to_lips
from affectstudio.conditioning.lips import LipActivity, analyze_lips
from affectstudio.conditioning.phonemes import PhonemeSequence, phonemize, resolve_language
from affectstudio.conditioning.speech import SPEECH_SAMPLE_RATE
from affectstudio.errors import InputError, InputTooLongError, NoSpeechError
from affectstudio.media import load_audio, mux_audio, probe_video, write_wav
from affectstudio.models.prosody import emotion_targets
from affectstudio.models.voice import PiperVoice
from affectstudio.models.voice_espeak import EspeakVoice
from affectstudio.models.voice_timeline import active_rms_db, apply_targets, finish, speak_free, speak_segments
from affectstudio.pipelines.base import AffectPipeline

__all__ = ["DubbingPipeline", "DubbingOutput"]

_PROSODY_FPS = 25.0


@dataclass
class DubbingOutput(BaseOutput):
    """``waveform`` float32 mono at ``sample_rate`` (24 kHz); ``phonemes`` (IPA tokens) with ``durations`` (s)
    and ``token_times`` ``(n, 2)`` s in the output; the ``lips`` analysis and ``alignment`` (dubbing only);
    ``timings`` seconds per stage; ``video`` the source clip; ``output_path`` when written."""

    waveform: np.ndarray
    sample_rate: int
    phonemes: list
    durations: np.ndarray
    token_times: np.ndarray
    emotion: object = None
    lips: Optional[LipActivity] = None
    alignment: Optional[LipAlignment] = None
    video: Optional[str] = None
    timings: dict = field(default_factory=dict)
    output_path: Optional[Path] = None

    @property
    def duration(self) -> float:
        return self.waveform.size / self.sample_rate

    def save(self, path: Union[str, Path]) -> Path:
        """``.wav``: the speech alone; ``.mp4``: the source clip with the speech as its audio track."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".wav":
            return write_wav(path, self.waveform, self.sample_rate)
        if suffix == ".mp4":
            if self.video is None:
                raise InputError("this speech was made without a video (text-to-speech): save it as .wav")
            return mux_audio(self.video, self.waveform, self.sample_rate, path)
        raise InputError(f"save as .wav or .mp4, got {path.name}")


class DubbingPipeline(AffectPipeline):
    r"""Emotional dubbing and text-to-speech.

    Components:
        voice (`PiperVoice`): the neural English voice (Piper joe, ONNX) with per-phoneme durations.
        fallback_voice (`EspeakVoice`): espeak-ng for languages the neural voice does not speak.
    """

    bundled_checkpoint = "dubbing"

    def __init__(self, voice: PiperVoice, fallback_voice: EspeakVoice, max_video_seconds: float = 600.0,
                 max_rate: float = 1.9):  # fmt: skip
        super().__init__()
        self.register_modules(voice=voice, fallback_voice=fallback_voice)
        self.register_to_config(max_video_seconds=float(max_video_seconds), max_rate=float(max_rate))

    # ------------------------------------------------------------------------------------------ inputs

    def check_inputs(self, video, text, language, emotion_intensity, reference_audio, output_path):
        if text is None or not str(text).strip():
            raise InputError("the script is empty: give the words to speak")
        resolve_language(language)
        suffixes = (".mp4", ".wav") if video is not None else (".wav",)
        self.check_common_inputs(1, emotion_intensity, output_path, suffixes)
        if video is not None:
            info = probe_video(video)  # missing / corrupt → typed error before any heavy work
            if info.duration > self.config.max_video_seconds:
                raise InputTooLongError(f"the video lasts {info.duration:.0f} s; the limit is {self.config.max_video_seconds:.0f} s")

    def select_voice(self, seq: PhonemeSequence, voice_model: Optional[str] = None):
        if voice_model is not None:
            return PiperVoice(model_path=str(voice_model), language=seq.language)
        return self.voice if self.voice.supports(seq) else self.fallback_voice

    # ------------------------------------------------------------------------------------------ call

    @torch.no_grad()
    def __call__(
        self,
        video=None,
        text: str = None,
        emotion=None,
        emotion_intensity: Optional[float] = None,
        reference_audio=None,
        language: str = "en",
        num_inference_steps: int = 8,
        emotion_guidance_scale: float = 1.0,
        generator: Optional[torch.Generator] = None,
        callback_on_step_end: Optional[Callable] = None,
        output_path: Optional[Union[str, Path]] = None,
        voice_model: Optional[str] = None,
        seed: Optional[int] = None,
    ) -> DubbingOutput:
        r"""Speak ``text`` timed to the lips of ``video`` (or as plain TTS when ``video`` is None).

        Args:
            video: path of a clip with one visible face, or None for text-to-speech.
            text: the script. language: ``en`` (neural voice), ``es``, ``fr``, ``de``, … (espeak-ng).
            emotion: label, ``label:intensity``, mix, free text, reference file, ``EmotionEmbedding`` or a curve
                (``'neutral@0; angry@3'``); None is neutral. emotion_intensity: overrides the spec's, in [0, 1].
            reference_audio: a recording of the target speaker (its pitch level is matched).
            voice_model: a Piper ``.onnx`` (with ``.onnx.json`` beside it) to speak with instead of joe.
            generator / seed: randomness of the voice (its noise) and of the prosody model.
            output_path: ``.mp4`` (muxed into the clip) or ``.wav``.
        """
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        # 1. check inputs, cheap things first
        self.check_inputs(video, text, language, emotion_intensity, reference_audio, output_path)
        parsed = self.parse_emotion(emotion, emotion_intensity)
        seq = phonemize(text, language)
        ref = self.reference_pitch(reference_audio) if reference_audio is not None else None
        seed = int(seed) if seed is not None else (int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else 0)
        voice = self.select_voice(seq, voice_model)
        natural = voice.natural_durations(seq, seed=seed)
        timings["text"] = time.perf_counter() - t0

        # 2. lips → alignment (dubbing) or the voice's own timing reshaped by the emotion (TTS)
        lips = alignment = None
        if video is not None:
            t = time.perf_counter()
            lips = analyze_lips(video, max_seconds=self.config.max_video_seconds)
            timings["lip_analysis"] = time.perf_counter() - t
            t = time.perf_counter()
            alignment = align_to_lips(seq, natural, lips, max_rate=self.config.max_rate)
            total = alignment.total
            timings["alignment"] = time.perf_counter() - t
        else:
            total = float(natural.sum()) + 0.4

        # 3. emotion → per-frame prosody targets
        num_frames = max(1, int(np.ceil(total * _PROSODY_FPS)))
        emb = self.resolve_emotion(parsed, None if parsed is not None else emotion_intensity, num_frames, _PROSODY_FPS)
        probs = np.atleast_2d(emb.probs)
        inten = np.atleast_1d(np.asarray(emb.intensity, dtype=np.float64))
        if probs.shape[0] == 1:
            probs, inten = np.repeat(probs, num_frames, 0), np.repeat(inten[:1], num_frames)
        targets = emotion_targets(probs, inten)  # {name: (num_frames,)}
        frame_times = (np.arange(num_frames) + 0.5) / _PROSODY_FPS
        if ref is not None:
            targets["f0"] = targets["f0"] * ref
        if callback_on_step_end is not None:
            callback_on_step_end(self, 0, 0, {"targets": targets})

        # 4. speak: exact durations per phoneme
        t = time.perf_counter()
        noise = float(np.mean(targets["noise"]))
        if alignment is not None:
            wave, sr, token_times = speak_segments(voice, seq, alignment.segments, alignment.durations, total, noise, seed)
            durations = alignment.durations
        else:
            rate_at = lambda s: np.interp(s, frame_times, targets["rate"])  # noqa: E731
            mid = np.cumsum(natural) - natural / 2
            scales = 1.0 / rate_at(mid)
            wave, sr, token_times = speak_free(voice, seq, scales, noise, seed)
            durations = token_times[:, 1] - token_times[:, 0]
            n_out = wave.size / sr
            grid = np.linspace(0, n_out, max(2, int(n_out * _PROSODY_FPS)))
            targets = {k: np.interp(grid, frame_times * (n_out / total), v) for k, v in targets.items()}
            frame_times = grid
        timings["synthesis"] = time.perf_counter() - t

        # 5. prosody: F0 (PSOLA), energy, tilt; level; 24 kHz
        t = time.perf_counter()
        base_db = active_rms_db(wave, sr)
        if not np.any(np.abs(wave) > 0):
            raise NoSpeechError("the voice produced no sound for this script")
        shaped = apply_targets(wave, sr, frame_times, targets)
        out = finish(shaped, sr, SPEECH_SAMPLE_RATE, reference_db=base_db)
        if alignment is not None:
            n = int(round(total * SPEECH_SAMPLE_RATE))
            out = np.pad(out, (0, max(0, n - out.size)))[:n]
        timings["prosody"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0

        result = DubbingOutput(
            waveform=out, sample_rate=SPEECH_SAMPLE_RATE, phonemes=seq.symbols, durations=np.asarray(durations),
            token_times=token_times, emotion=emb, lips=lips, alignment=alignment,
            video=None if video is None else str(video), timings=timings,
        )  # fmt: skip
        if output_path is not None:
            result.output_path = result.save(output_path)
        return result

    # ------------------------------------------------------------------------------------------ reference

    def reference_pitch(self, reference_audio) -> float:
        """F0 ratio that moves the voice's median pitch to the reference speaker's (clipped to 0.6–2.2).
        Raises :class:`NoSpeechError` when the reference has no voiced speech."""
        from affectstudio.models.prosody import f0_track

        wave, sr = load_audio(reference_audio, sample_rate=16000, max_seconds=120)
        _, f0 = f0_track(wave, sr)
        voiced = f0[f0 > 0]
        if voiced.size < 20 or float(np.sqrt(np.mean(wave**2))) < 1e-3:
            raise NoSpeechError("the reference voice has no speech in it: give a recording of the speaker talking")
        own = 95.0  # joe's median F0 (Hz), measured on its neutral renderings
        return float(np.clip(np.median(voiced) / own, 0.6, 2.2))
