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

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
from diffusers import SchedulerMixin
from diffusers.utils import BaseOutput

from affectstudio.conditioning.alignment import LipAlignment, align_to_lips
from affectstudio.conditioning.emotion import EmotionCurve
from affectstudio.conditioning.espeak import SPEECH_SAMPLE_RATE
from affectstudio.conditioning.face_choice import NOTES_LOGGER
from affectstudio.conditioning.lips import LipActivity, analyze_lips
from affectstudio.conditioning.phonemes import (
    PhonemeSequence,
    check_script,
    phoneme_features,
    phonemize,
    resolve_language,
)
from affectstudio.errors import InputError, InputTooLongError, NoSpeechError
from affectstudio.media import load_audio, write_wav
from affectstudio.models.dit import AffectDiT
from affectstudio.models.dubbing.espeak import EspeakVoice
from affectstudio.models.dubbing.piper import PiperVoice
from affectstudio.models.dubbing.prosody import emotion_targets, neutral_median_f0
from affectstudio.models.dubbing.reference import match_speaker, speaker_profile
from affectstudio.models.dubbing.timeline import (
    active_rms_db,
    apply_targets,
    finish,
    join_speech,
    sentence_chunks,
    speak_free,
    speak_segments,
)
from affectstudio.models.dubbing.voices import design_voice, nearest_preset, voice_preset
from affectstudio.pipelines.base import AffectPipeline
from affectstudio.video_io import mux_audio, probe_video

__all__ = ["DubbingPipeline", "DubbingOutput"]

_PROSODY_FPS = 25.0
X0_SCALE = (0.3, 0.25, 6.0, 5.0)  # Prosody DiT channels: duration log-ratio, F0 change (octaves), energy dB, tilt dB


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
    redraw: Optional[object] = None  # redraw_face=True: the pipelines.redub.RedrawResult (frames redrawn, shots, ...)

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
        prosody_dit (`AffectDiT`, optional): per-phoneme duration residuals and frame-level F0 / energy / tilt
            changes from the phonemes and the (per-frame) emotion; None: the literature table alone.
        scheduler: the flow-matching scheduler the DiT samples with.
    """

    bundled_checkpoint = "dubbing"

    _optional_components = ["prosody_dit", "scheduler"]

    def __init__(
        self,
        voice: PiperVoice,
        fallback_voice: EspeakVoice,
        prosody_dit: Optional[AffectDiT],
        scheduler: Optional[SchedulerMixin],
        max_video_seconds: float = 600.0,
        max_rate: float = 1.9,
        x0_scale: Optional[list] = None,
        window: int = 250,
        overlap: int = 25,
    ):
        super().__init__()
        self.register_modules(voice=voice, fallback_voice=fallback_voice, prosody_dit=prosody_dit, scheduler=scheduler)
        self.register_to_config(
            max_video_seconds=float(max_video_seconds),
            max_rate=float(max_rate),
            x0_scale=[float(v) for v in (x0_scale or X0_SCALE)],
            window=int(window),
            overlap=int(overlap),
        )

    # ------------------------------------------------------------------------------------------ inputs

    def check_inputs(self, video, text, language, emotion_intensity, reference_audio, output_path):
        if text is None or not str(text).strip():
            raise InputError("the script is empty: give the words to speak")
        resolve_language(language)
        suffixes = (".mp4", ".wav") if video is not None else (".wav",)
        self.check_common_inputs(1, emotion_intensity, output_path, suffixes)
        if video is not None:
            info = probe_video(video, count_frames=True)  # missing / corrupt → typed error before any heavy work
            if info.duration > self.config.max_video_seconds:
                raise InputTooLongError(
                    f"the video lasts {info.duration:.0f} s; the limit is {self.config.max_video_seconds:.0f} s"
                )
        # a script that cannot fit (the clip, or the longest speech) is refused before any model runs (issue 16)
        check_script(text, info.duration if video is not None else self.config.max_video_seconds, language)

    def select_voice(self, seq: PhonemeSequence, voice_model: Optional[str] = None, voice: Optional[str] = None):
        """The voice that speaks ``seq``: a Piper ``voice_model`` file; else the neural voice when it speaks the
        language (a ``voice`` preset is designed from it after the prosody); else espeak-ng in the preset's
        gender."""
        if voice_model is not None:
            return PiperVoice(model_path=str(voice_model), language=seq.language)
        if self.voice.supports(seq):
            return self.voice
        variant = voice_preset(voice).espeak_variant if voice is not None else self.fallback_voice.config.variant
        if variant == self.fallback_voice.config.variant:
            return self.fallback_voice
        return EspeakVoice(variant=variant, rate_wpm=self.fallback_voice.config.rate_wpm)

    # ------------------------------------------------------------------------------------------ call

    @torch.no_grad()
    def __call__(
        self,
        video=None,
        text: Optional[str] = None,
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
        prosody: str = "auto",
        voice: Optional[str] = None,
        output_type: str = "np",
        return_dict: bool = True,
        redraw_face: bool = False,
        face: Union[str, int] = "auto",
    ):
        r"""Speak ``text`` timed to the lips of ``video`` (or as plain TTS when ``video`` is None).

        Args:
            video: path of a clip with one visible face, or None for text-to-speech.
            text: the script. language: ``en`` (neural voice), ``es``, ``fr``, ``de``, … (espeak-ng).
            emotion: label, ``label:intensity``, mix, free text, reference file, ``EmotionEmbedding`` or a curve
                (``'neutral@0; angry@3'``); None is neutral. emotion_intensity: overrides the spec's, in [0, 1].
            reference_audio: a recording of the target speaker (pitch level, formants and spectral envelope are
                matched; see models/dubbing/reference.py).
            voice_model: a Piper ``.onnx`` (with ``.onnx.json`` beside it) to speak with instead of joe.
            voice: a voice preset (``affectstudio voices``: ``joe`` male, the default; ``jess`` female); other
                languages speak through espeak-ng in the preset's gender.
            generator: ``torch.Generator``, the only source of randomness (the voice's noise, the prosody model);
                ``None`` draws from torch's global generator. ``seed=`` is deprecated: it is
                ``generator=torch.Generator().manual_seed(seed)``.
            num_inference_steps / emotion_guidance_scale: Prosody DiT sampling; a scale above 1 pushes away from
                the mirror emotion (intensity beyond the data). prosody: ``"auto"`` (the DiT when the checkpoint
                has one) or ``"rules"`` (the literature table alone).
            output_path: ``.mp4`` (muxed into the clip) or ``.wav``.
            output_type: ``"np"`` (``waveform`` a float32 array) or ``"pt"`` (a float32 tensor).
            return_dict: ``False`` returns ``(waveform, sample_rate)``.
            redraw_face: speak the script at a natural rate (bounded by the video's length) and re-animate the
                speaker's mouth and expression on every frame to it and the emotion (:mod:`.redub`); needs an ``.mp4``
                ``output_path``. face: which face is redrawn (``"auto"``, ``"largest"``, ``"center"`` or N, counted
                left to right from 0, as the portrait's ``face``).
        """
        if seed is not None:
            warnings.warn(
                "DubbingPipeline(seed=) is deprecated: pass generator=torch.Generator().manual_seed(seed)",
                FutureWarning,
                stacklevel=2,
            )
            generator, seed = torch.Generator().manual_seed(int(seed)), None
        self.check_output_type(output_type, ("np", "pt"))
        call = {k: v for k, v in locals().items() if k != "self"}  # this call's arguments (the chunked path)
        if redraw_face:
            from affectstudio.pipelines.redub import redub

            return redub(
                self,
                video,
                text,  # type: ignore[arg-type]  # checked by the speech call
                output_path,
                face=face,
                emotion=emotion,
                emotion_intensity=emotion_intensity,
                reference_audio=reference_audio,
                language=language,
                num_inference_steps=num_inference_steps,
                emotion_guidance_scale=emotion_guidance_scale,
                generator=generator,
                callback_on_step_end=callback_on_step_end,
                voice_model=voice_model,
                seed=seed,
                prosody=prosody,
                voice=voice,
            )
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        # 1. check inputs, cheap things first
        self.check_inputs(video, text, language, emotion_intensity, reference_audio, output_path)
        parsed = self.parse_emotion(emotion, emotion_intensity)
        assert text is not None  # check_inputs raised otherwise
        chunks = sentence_chunks(str(text)) if video is None and not isinstance(parsed, EmotionCurve) else []
        if len(chunks) > 1:  # a long script: sentence groups one after another, so memory stays flat (issue 16)
            one = {**call, "emotion": parsed, "output_path": None, "output_type": "np", "return_dict": True}
            result = DubbingOutput(**join_speech([self(**{**one, "text": chunk}) for chunk in chunks]))
            if output_path is not None:
                result.output_path = result.save(output_path)
            if output_type == "pt":
                result["waveform"] = torch.from_numpy(result.waveform)
            return result if return_dict else (result.waveform, result.sample_rate)
        seq = phonemize(text, language)
        ref = self.reference_profile(reference_audio) if reference_audio is not None else None
        if voice_model is not None and voice is not None:
            raise InputError("give a voice preset (voice=) or a Piper model (voice_model=), not both")
        # the preset: the user's; with a reference and no preset, the one nearest the reference's pitch
        preset = voice_preset(voice) if voice is not None else nearest_preset(ref.median_f0) if ref else None
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))  # the voice's noise
        speaker = self.select_voice(seq, voice_model, voice)
        natural = speaker.natural_durations(seq, seed=seed)
        timings["text"] = time.perf_counter() - t0

        # 2. lips → alignment (dubbing) or the voice's own timing reshaped by the emotion (TTS)
        lips = alignment = None
        if video is not None:
            t = time.perf_counter()
            lips = analyze_lips(video, max_seconds=self.config.max_video_seconds)
            timings["lip_analysis"] = time.perf_counter() - t
            t = time.perf_counter()
            alignment = align_to_lips(seq, natural, lips, max_rate=self.config.max_rate)
            if alignment.silent_lips > max(0.3, 0.05 * alignment.lip_active):
                logging.getLogger(NOTES_LOGGER).info(
                    f"the script is short for the clip: the lips move for {alignment.lip_active:.1f} s and "
                    f"{alignment.silent_lips:.1f} s of that stays silent (a longer script fills it)"
                )
            total = alignment.total
            timings["alignment"] = time.perf_counter() - t
        else:
            total = float(natural.sum()) + 0.4

        # 3. emotion → per-frame prosody targets (the literature table), and the Prosody DiT's sample
        num_frames = max(1, int(np.ceil(total * _PROSODY_FPS)))
        emb = self.resolve_emotion(parsed, None if parsed is not None else emotion_intensity, num_frames, _PROSODY_FPS)
        probs = np.atleast_2d(emb.probs)
        inten = np.atleast_1d(np.asarray(emb.intensity, dtype=np.float64))
        if probs.shape[0] == 1:
            probs, inten = np.repeat(probs, num_frames, 0), np.repeat(inten[:1], num_frames)
        targets = emotion_targets(probs, inten)  # {name: (num_frames,)}
        frame_times = (np.arange(num_frames) + 0.5) / _PROSODY_FPS
        if alignment is not None:
            pre_times = alignment.token_times()
        else:
            ends = np.cumsum(natural)
            pre_times = np.stack([ends - natural, ends], axis=1)
        use_dit = self.prosody_dit is not None and prosody != "rules"
        residual = None
        if use_dit:
            t = time.perf_counter()
            residual = self.sample_prosody(
                seq,
                pre_times,
                emb,
                num_frames,
                emotion_guidance_scale,
                num_inference_steps,
                generator,
                callback_on_step_end,
            )
            timings["dit"] = time.perf_counter() - t

        # 4. speak: exact durations per phoneme
        t = time.perf_counter()
        noise = float(np.mean(targets["noise"]))
        dur_res = self.token_values(residual[:, 0], pre_times, len(seq)) if residual is not None else None
        if alignment is not None:
            durations = alignment.durations.copy()
            if dur_res is not None:  # reshape inside each phrase; the phrase keeps its lip span
                for seg in alignment.segments:
                    d = durations[seg.token_start : seg.token_end] * np.exp(
                        dur_res[seg.token_start : seg.token_end] - 0.0
                    )
                    durations[seg.token_start : seg.token_end] = d * (seg.duration / max(d.sum(), 1e-9))
            wave, sr, token_times = speak_segments(speaker, seq, alignment.segments, durations, total, noise, seed)
        else:
            if dur_res is not None:
                scales = np.exp(dur_res)
            else:
                mid = pre_times.mean(axis=1)
                scales = 1.0 / np.interp(mid, frame_times, targets["rate"])
            wave, sr, token_times = speak_free(speaker, seq, scales, noise, seed)
            durations = token_times[:, 1] - token_times[:, 0]
        timings["synthesis"] = time.perf_counter() - t

        # 5. prosody on the spoken timeline: F0 (PSOLA), energy, tilt; level; 24 kHz
        t = time.perf_counter()
        if not np.any(np.abs(wave) > 0):
            raise NoSpeechError("the voice produced no sound for this script")
        base_db = active_rms_db(wave, sr)
        design = preset if preset is not None and preset.designed and speaker is self.voice else None
        scale = design.f0_scale if design is not None else 1.0
        own = speaker_profile(wave, sr) if ref is not None else None
        ref_ratio = (
            1.0 if ref is None or own is None else float(np.clip(ref.median_f0 / own.median_f0 / scale, 0.6, 2.2))
        )
        floor_hz = 0.8 * neutral_median_f0(wave, sr)  # sad lowers pitch, never into creak (issue 17)
        out_n = max(2, int(np.ceil(wave.size / sr * _PROSODY_FPS)))
        out_times = (np.arange(out_n) + 0.5) / _PROSODY_FPS
        if residual is not None:
            shaped_targets = self.to_output_timeline(residual, pre_times, token_times, out_times)
            applied = {
                "f0": np.full(out_n, ref_ratio),
                "range": np.ones(out_n),
                "energy": shaped_targets[:, 2],
                "tilt": shaped_targets[:, 3],
            }
            shaped = apply_targets(wave, sr, out_times, applied, f0_offset=shaped_targets[:, 1], f0_floor=floor_hz)
        else:
            at = (
                out_times
                if alignment is not None
                else self.to_output_timeline(None, pre_times, token_times, out_times, values_at_frames=False)[:, 0]
            )
            applied = {k: np.interp(at, frame_times, v) for k, v in targets.items()}
            applied["f0"] = applied["f0"] * ref_ratio
            shaped = apply_targets(wave, sr, out_times, applied, f0_floor=floor_hz)
        if design is not None:
            shaped = design_voice(shaped, sr, design)
        if ref is not None and own is not None:
            shaped = match_speaker(shaped, sr, speaker_profile(shaped, sr) if design is not None else own, ref)
        out = finish(shaped, sr, SPEECH_SAMPLE_RATE, reference_db=base_db)
        if alignment is not None:
            n = int(round(total * SPEECH_SAMPLE_RATE))
            out = np.pad(out, (0, max(0, n - out.size)))[:n]
        timings["prosody"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0

        result = DubbingOutput(
            waveform=out,
            sample_rate=SPEECH_SAMPLE_RATE,
            phonemes=seq.symbols,
            durations=np.asarray(durations),
            token_times=token_times,
            emotion=emb,
            lips=lips,
            alignment=alignment,
            video=None if video is None else str(video),
            timings=timings,
        )
        if output_path is not None:
            result.output_path = result.save(output_path)
        if output_type == "pt":
            result["waveform"] = torch.from_numpy(result.waveform)
        return result if return_dict else (result.waveform, result.sample_rate)

    # ------------------------------------------------------------------------------------------ prosody DiT

    def sample_prosody(self, seq, token_times, emb, num_frames, guidance, steps, generator, callback) -> np.ndarray:
        """The Prosody DiT's ``(num_frames, 4)`` sample in natural units on the pre-prosody timeline."""
        feats, _ = phoneme_features(
            seq, np.diff(token_times, axis=1)[:, 0], _PROSODY_FPS, num_frames, token_times=token_times
        )
        cond, neg = self.emotion_conditions([emb], num_frames, guidance)
        threads = torch.get_num_threads()
        if self.prosody_dit.device.type == "cpu":  # a 1.8M-parameter model: a thread pool costs more than it gives
            torch.set_num_threads(1)
        try:
            x = self._denoise_prosody(feats, cond, neg, guidance, steps, generator, callback)
        finally:
            torch.set_num_threads(threads)
        return x[0].float().cpu().numpy() * np.asarray(self.config.x0_scale, dtype=np.float32)

    def _denoise_prosody(self, feats, cond, neg, guidance, steps, generator, callback) -> torch.Tensor:
        return self.denoise(
            self.prosody_dit,
            (1, feats.shape[0], 4),
            {"phonemes": torch.from_numpy(feats)[None]},
            cond,
            neg,
            guidance_scales={"content": 1.0, "emotion": guidance},
            num_inference_steps=steps,
            generator=generator,
            callback_on_step_end=callback,
            window=self.config.window,
            overlap=self.config.overlap,
        )

    @staticmethod
    def token_values(values: np.ndarray, token_times: np.ndarray, n_tokens: int) -> np.ndarray:
        """Mean of a per-frame value over each token's frames (0 for tokens shorter than a frame)."""
        t = (np.arange(values.size) + 0.5) / _PROSODY_FPS
        out = np.zeros(n_tokens)
        for i, (a, b) in enumerate(token_times):
            m = (t >= a) & (t < b)
            out[i] = values[m].mean() if m.any() else 0.0
        return out

    @staticmethod
    def to_output_timeline(
        values: Optional[np.ndarray],
        pre_times: np.ndarray,
        out_token_times: np.ndarray,
        out_times: np.ndarray,
        values_at_frames: bool = True,
    ) -> np.ndarray:
        """Carry per-frame ``values (n, c)`` from the pre-prosody token timeline to the spoken one, each frame to
        the same relative place inside its token; outside tokens the nearest value holds. With
        ``values_at_frames=False`` returns, per output time, the matching pre-prosody time."""
        s_out, e_out = out_token_times[:, 0], out_token_times[:, 1]
        k = np.clip(np.searchsorted(e_out, out_times, side="right"), 0, len(s_out) - 1)
        r = np.clip((out_times - s_out[k]) / np.maximum(e_out[k] - s_out[k], 1e-6), 0.0, 1.0)
        pre = pre_times[k, 0] + r * (pre_times[k, 1] - pre_times[k, 0])
        before, after = out_times < s_out[0], out_times >= e_out[-1]
        pre = np.where(before, pre_times[0, 0] - (s_out[0] - out_times), pre)
        pre = np.where(after, pre_times[-1, 1] + (out_times - e_out[-1]), pre)
        if not values_at_frames:
            return pre[:, None]
        assert values is not None  # only the time mapping (values_at_frames=False) takes None
        t_in = (np.arange(values.shape[0]) + 0.5) / _PROSODY_FPS
        return np.stack([np.interp(pre, t_in, values[:, c]) for c in range(values.shape[1])], axis=1)

    # ------------------------------------------------------------------------------------------ reference

    def reference_profile(self, reference_audio):
        """Pitch, formants and spectrum of the reference speaker (:class:`NoSpeechError` when it has no speech)."""
        wave, sr = load_audio(reference_audio, sample_rate=22050, max_seconds=120)
        return speaker_profile(wave, sr)
