"""VideoMusicPipeline: a video (+ optional emotion, style, tempo, key) → a score that follows its mood over
time and lands its changes on the cuts; audio, MIDI and stems.

Steps: (1) cheap input checks; (2) video analysis (cuts, motion, colour, faces, speech —
:mod:`affectstudio.conditioning.video`); (3) the emotion curve, per second (the user's spec or curve
overrides the video's); (4) the structure plan (tempo, bar lines on the cuts, key, per-bar density and
loudness — :mod:`affectstudio.models.music.planner`); (5) per-bar rolls (chords, melody pitch classes,
register, rhythm) sampled by the Music ``AffectDiT`` conditioned on the plan and the emotion curve
(:mod:`affectstudio.models.music.codec`); without a DiT, rule-based progressions; (6) the arranger writes a
multi-track MIDI score with instruments from the style; (7) FluidSynth renders stems, which are mixed to
−14 LUFS with ducking under the clip's speech and a fade-out; (8) outputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Union

import numpy as np
import torch
from diffusers import SchedulerMixin
from diffusers.utils import BaseOutput

from affectstudio.conditioning.emotion import EmotionEmbedding
from affectstudio.conditioning.video import VideoAnalysis, analyze_video
from affectstudio.errors import InputError, MissingFileError
from affectstudio.media import atomic_path, load_audio, write_wav
from affectstudio.models.dit import AffectDiT
from affectstudio.models.music.arranger import Arranger, chords_from_plan
from affectstudio.models.music.codec import BAR_CHANNELS, decode_bars, plan_features
from affectstudio.models.music.mix import master
from affectstudio.models.music.planner import MusicPlan, plan_structure
from affectstudio.models.music.styles import StylePreset, match_style, style_for_emotion
from affectstudio.models.music.synth import SAMPLE_RATE, check_soundfont, render_parts
from affectstudio.models.music.theory import parse_key
from affectstudio.pipelines.base import AffectPipeline
from affectstudio.video_io import mux_audio, probe_video, write_video

if TYPE_CHECKING:
    import pretty_midi

EMOTION_FPS = 1.0  # the emotion curve is per second
MIN_SECONDS = 1.0  # shorter clips have no room for a bar of music


@dataclass
class VideoMusicOutput(BaseOutput):
    """``waveform`` float32 mono at ``sample_rate`` (exactly the video's duration), the ``midi`` score
    (``pretty_midi.PrettyMIDI``), the per-second ``emotion_curve``, detected ``cut_times``, the base
    ``tempo`` (bpm) and ``key`` ("A minor"), the structure ``plan``, per-part ``stems`` and stage timings."""

    waveform: np.ndarray
    sample_rate: int
    midi: "pretty_midi.PrettyMIDI"
    emotion_curve: EmotionEmbedding
    cut_times: np.ndarray
    tempo: float
    key: str
    plan: Optional[MusicPlan] = None
    stems: dict = field(default_factory=dict)
    style: str = ""
    chords: list = field(default_factory=list)  # chord symbol per bar ("Am", "G7", …)
    video_path: Optional[Path] = None
    timings: dict = field(default_factory=dict)

    def save(self, path: Union[str, Path], video: Union[str, Path, None] = None) -> Path:
        """Write by extension: ``.wav`` (the score), ``.mid`` (MIDI), ``.png`` (valence/arousal over time with
        cuts and bar lines), ``.mp4`` (the video with its own sound and the score mixed under it)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".wav":
            return write_wav(path, self.waveform, self.sample_rate)
        if suffix in (".mid", ".midi"):
            with atomic_path(path) as tmp:
                self.midi.write(str(tmp))
            return path
        if suffix == ".png":
            from affectstudio.pipelines.music_plot import plot_score

            return plot_score(self, path)
        if suffix == ".mp4":
            src = Path(video) if video is not None else self.video_path
            if src is None:
                raise InputError("saving an mp4 needs the source video (pass video=...)")
            return mux_audio(src, self.soundtrack(src), self.sample_rate, path)
        raise InputError(f"cannot save music as {suffix or 'a file without extension'}: use .mp4, .wav, .mid or .png")

    def soundtrack(self, video) -> np.ndarray:
        """The video's own audio (if any) with the score mixed under it, at ``sample_rate``."""
        track = self.waveform.copy()
        if probe_video(video).has_audio:
            own, _ = load_audio(video, sample_rate=self.sample_rate)
            n = min(len(own), len(track))
            track[:n] += own[:n]
        return track

    def save_stems(self, folder: Union[str, Path]) -> list[Path]:
        folder = Path(folder)
        return [write_wav(folder / f"{name}.wav", wave, self.sample_rate) for name, wave in self.stems.items()]


class VideoMusicPipeline(AffectPipeline):
    r"""Music for video.

    Components:
        dit (`AffectDiT`, optional): per-bar roll generator (48 channels, content stream ``bars`` of 16 plan
            features, per-bar emotion curve). ``None``: rule-based harmony.
        scheduler: a diffusers flow-matching scheduler.
    """

    model_cpu_offload_seq = "dit"
    bundled_checkpoint = "video_music"
    _optional_components = ["dit", "scheduler"]

    def __init__(
        self,
        dit: Optional[AffectDiT] = None,
        scheduler: Optional[SchedulerMixin] = None,
        analysis_fps: float = 4.0,
        max_video_seconds: float = 600.0,
    ):
        super().__init__()
        self.register_modules(dit=dit, scheduler=scheduler)
        self.register_to_config(analysis_fps=float(analysis_fps), max_video_seconds=float(max_video_seconds))

    # ------------------------------------------------------------------------------------------ inputs

    def check_inputs(self, video, duration, tempo, key, soundfont, num_inference_steps, emotion_intensity, output_path):
        if video is None:
            raise InputError("video is required")
        if isinstance(video, (str, Path)) and not Path(video).is_file():
            raise MissingFileError(f"video file not found: {video}")
        self.check_common_inputs(num_inference_steps, emotion_intensity, output_path, (".mp4", ".wav", ".mid", ".midi"))
        if duration is not None and not float(duration) > 0:
            raise InputError(f"duration must be > 0 seconds, got {duration}")
        if tempo is not None and not 40 <= float(tempo) <= 240:
            raise InputError(f"tempo must be between 40 and 240 bpm, got {tempo}")
        if key is not None:
            parse_key(key)
        if soundfont is not None:
            check_soundfont(soundfont)

    def _video_path(self, video, video_fps: float, tmpdir: Path) -> Path:
        if isinstance(video, (str, Path)):
            return Path(video)
        frames = np.asarray(video)
        if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise InputError(f"video frames must be uint8 (t, h, w, 3) with t ≥ 1, got shape {frames.shape}")
        return write_video(tmpdir / "input.mp4", frames.astype(np.uint8), video_fps)

    # --------------------------------------------------------------------------------------- emotion

    def emotion_curve(self, analysis: VideoAnalysis, duration: float, emotion, intensity) -> EmotionEmbedding:
        """Per-second curve: the user's emotion (static, curve, or spec) overrides the video's."""
        n = max(1, int(np.ceil(duration * EMOTION_FPS)))
        if emotion is None:
            curve = analysis.emotion_curve(EMOTION_FPS)
            curve = curve if curve.num_frames == n else curve.resample(n)
            return curve if intensity is None else curve.with_intensity(intensity)
        emb = self.resolve_emotion(emotion, intensity, n, EMOTION_FPS)
        return emb if emb.is_curve else emb.resample(n)

    # -------------------------------------------------------------------------------------- DiT rolls

    def generate_rolls(
        self,
        plan: MusicPlan,
        curve: EmotionEmbedding,
        num_inference_steps: int,
        generator,
        callback_on_step_end,
        guidance_scale: float = 2.0,
    ) -> Optional[dict]:
        if self.dit is None or self.scheduler is None:
            return None
        n = plan.num_bars
        phrase = np.zeros(n)
        for i in range(1, n):
            phrase[i] = 0 if plan.section[i] != plan.section[i - 1] else phrase[i - 1] + 1
        feats = plan_features(
            plan.density,
            plan.loudness,
            plan.bar_tempo,
            plan.bar_beats,
            plan.cut_bar,
            np.r_[True, plan.section[1:] != plan.section[:-1]],
            phrase,
            [m == "minor" for m in plan.mode],
            plan.valence,
            plan.arousal,
            (plan.bar_starts / max(plan.duration, 1e-6)),
        )
        mid = np.minimum(0.5 * (plan.bar_starts + plan.bar_ends), plan.duration - 1e-3)
        idx = np.clip((mid * EMOTION_FPS).astype(int), 0, curve.probs.shape[0] - 1)
        intensity = np.asarray(curve.intensity)  # (t,): the curve is per second
        bar_emotion = EmotionEmbedding(probs=curve.probs[idx], vad=curve.vad[idx], intensity=intensity[idx])
        emotion = bar_emotion.as_condition()[None]  # (1, n, 12)
        content = {"bars": torch.from_numpy(feats)[None]}
        threads = torch.get_num_threads()
        if self.dit.device.type == "cpu":  # a tiny model on ~30 tokens: more threads only contend (10× slower)
            torch.set_num_threads(1)
        try:
            y = self._sample(n, content, emotion, num_inference_steps, generator, callback_on_step_end, guidance_scale)
        finally:
            torch.set_num_threads(threads)
        return decode_bars(y[0].float().cpu().numpy(), plan.mode)

    def _sample(self, n, content, emotion, num_inference_steps, generator, callback_on_step_end, guidance_scale):
        """The DiT's per-bar rolls ``(1, n, 48)``: windows of 64 bars, content and emotion guidance."""
        return self.denoise(
            self.dit,
            (1, n, BAR_CHANNELS),
            content,
            emotion,
            guidance_scales={"content": guidance_scale, "emotion": guidance_scale},
            num_inference_steps=num_inference_steps,
            generator=generator,
            callback_on_step_end=callback_on_step_end,
            window=64,
            overlap=8,
        )

    # -------------------------------------------------------------------------------------------- call

    @torch.no_grad()
    def __call__(
        self,
        video,
        emotion=None,
        style: Optional[str] = None,
        duration: Optional[float] = None,
        tempo: Optional[float] = None,
        key: Optional[str] = None,
        soundfont: Optional[Union[str, Path]] = None,
        emotion_intensity: Optional[float] = None,
        num_inference_steps: int = 8,
        guidance_scale: float = 2.0,
        generator: Optional[torch.Generator] = None,
        callback_on_step_end: Optional[Callable[..., dict]] = None,
        output_path: Optional[Union[str, Path]] = None,
        video_fps: float = 25.0,
        stems: bool = False,
        output_type: str = "np",
        return_dict: bool = True,
    ):
        r"""Score ``video``.

        Args:
            video: a path (mp4/mov/mkv/webm…) or frames ``uint8 (t, h, w, 3)`` at ``video_fps``.
            emotion: overrides the emotion read from the video — a spec, an ``EmotionEmbedding``, or a curve
                (``'calm@0; fearful:0.9@20'``); ``emotion_intensity`` overrides its intensity.
            style: free text matched to an instrumentation preset ("sad piano", "epic trailer", "synthwave").
            duration: seconds of music (default: the video's duration).
            tempo: bpm (bar lines are still fitted to the cuts, within ±10 %). key: "A minor", "Eb", "F#m".
            soundfont: a .sf2/.sf3 General MIDI SoundFont (default: the best installed one).
            generator: ``torch.Generator``, the only source of randomness (harmony, melody, humanisation).
            callback_on_step_end: ``fn(pipe, step, timestep, kwargs) -> dict`` after each DiT step.
            output_path: write ``.mp4`` (video + score), ``.wav`` or ``.mid``.
            stems: keep per-part waveforms in ``output.stems``.
            output_type: ``"np"`` (``waveform`` a float32 array) or ``"pt"`` (a float32 tensor).
            return_dict: ``False`` returns ``(waveform, sample_rate, midi)``.
        """
        import tempfile

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        # 1. cheap checks (no decoding, no model)
        self.check_inputs(video, duration, tempo, key, soundfont, num_inference_steps, emotion_intensity, output_path)
        self.check_output_type(output_type, ("np", "pt"))
        parsed_emotion = self.parse_emotion(emotion, emotion_intensity)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
        rng = np.random.default_rng(seed)
        with tempfile.TemporaryDirectory() as td:
            path = self._video_path(video, video_fps, Path(td))
            # 2. video analysis
            analysis = analyze_video(
                path, analysis_fps=self.config.analysis_fps, max_seconds=self.config.max_video_seconds
            )
            timings["analysis_s"] = time.perf_counter() - t0
            length = float(duration) if duration is not None else analysis.duration
            if length < MIN_SECONDS:
                raise InputError(f"the video is {length:.2f} s long: music needs at least {MIN_SECONDS:.0f} s")
            # 3. emotion curve
            t = time.perf_counter()
            curve = self.emotion_curve(
                analysis, length, parsed_emotion if parsed_emotion is not None else None, emotion_intensity
            )
            # 4. plan
            sec = np.arange(max(1, int(np.ceil(length)))) + 0.5
            motion = np.interp(sec, analysis.times, analysis.motion) if len(analysis.times) else None
            plan = plan_structure(
                length,
                analysis.cut_times[analysis.cut_times < length],
                curve,
                EMOTION_FPS,
                motion=motion,
                tempo=tempo,
                key=key,
                rng=rng,
            )
            timings["plan_s"] = time.perf_counter() - t
            # 5. per-bar rolls
            t = time.perf_counter()
            rolls = self.generate_rolls(
                plan, curve, num_inference_steps, generator, callback_on_step_end, guidance_scale
            )
            timings["dit_s"] = time.perf_counter() - t
            # 6. arrangement
            t = time.perf_counter()
            preset = self.pick_style(style, curve)
            chords = rolls["chords"] if rolls else chords_from_plan(plan, rng)
            if rolls:
                chords = self.cadence(chords, plan)
            arranger = Arranger(
                plan,
                chords,
                preset,
                rng,
                melody_weights=rolls["melody_weights"] if rolls else None,
                register=rolls["register"] if rolls else None,
                onsets=rolls["onsets"] if rolls else None,
            )
            midi = arranger.arrange()
            timings["arrange_s"] = time.perf_counter() - t
            # 7. render + master
            t = time.perf_counter()
            parts = render_parts(midi, soundfont)
            timings["render_s"] = time.perf_counter() - t
            t = time.perf_counter()
            speech = analysis.speech if analysis.speech.size else None
            mid = 0.5 * (plan.bar_starts + plan.bar_ends)
            dynamics = (mid, 18.0 * (plan.loudness - plan.loudness.mean()))  # loudness targets: 0.1 → 1.8 dB
            wave, stem_waves = master(parts, SAMPLE_RATE, length, speech, dynamics=dynamics)
            timings["master_s"] = time.perf_counter() - t
            out = VideoMusicOutput(
                waveform=wave,
                sample_rate=SAMPLE_RATE,
                midi=midi,
                emotion_curve=curve,
                cut_times=analysis.cut_times,
                tempo=float(plan.tempo),
                key=plan.key.name,
                plan=plan,
                stems=stem_waves if stems else {},
                style=preset.name,
                chords=[c.symbol(arranger.key_at(i)) for i, c in enumerate(chords)],
                video_path=Path(video) if isinstance(video, (str, Path)) else None,
                timings=timings,
            )
            # 8. outputs
            if output_path is not None:
                t = time.perf_counter()
                out.save(output_path, video=path)
                timings["write_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0
        if output_type == "pt":
            out["waveform"] = torch.from_numpy(out.waveform)
        return out if return_dict else (out.waveform, out.sample_rate, out.midi)

    @staticmethod
    def pick_style(style: Optional[str], curve: EmotionEmbedding) -> StylePreset:
        if style is not None and style.strip():
            return match_style(style)[0]
        return style_for_emotion(float(np.mean(curve.valence)), float(np.mean(curve.arousal)))

    @staticmethod
    def cadence(chords: list, plan: MusicPlan) -> list:
        """Where the music ends on the video's end, close on dominant → tonic."""
        from affectstudio.models.music.theory import Chord

        chords = list(chords)
        if len(chords) >= 3 and plan.end_time <= plan.duration + 1e-3:
            minor = plan.mode[-1] == "minor"
            chords[-2] = Chord(7, "maj" if minor else "dom7")
            chords[-1] = Chord(0, "min" if minor else "maj")
        return chords
