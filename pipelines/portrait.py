"""TalkingPortraitPipeline: one photo + speech (or a script) + an emotion → a lip-synced emotional video.

Read like diffusers' ``pipeline_dit.py``: components registered with ``register_modules``, ``check_inputs``,
numbered steps in ``__call__``, randomness only from ``generator``, a ``BaseOutput`` dataclass.

The ``AffectDiT`` generates face motion (articulation, expression action units, head pose — the channels in
``config.motion_channels``) at 25 fps from audio features and the emotion condition, in normalised units
``(motion - motion_mean) / motion_std``. Blinks and gaze are idle motion drawn here from the generator (at
``blink_rate``), not by the DiT. The jaw is then drawn toward the speech's loudness
(:meth:`TalkingPortraitPipeline.lip_sync`, ``lip_sync_strength``). ``PortraitRenderer`` then warps the reference
photo frame by frame.
"""

import collections
import functools
import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
from diffusers import SchedulerMixin
from diffusers.utils import BaseOutput

from affectstudio.conditioning.emotion import EmotionEmbedding, load_encoder
from affectstudio.conditioning.espeak import SPEECH_SAMPLE_RATE
from affectstudio.conditioning.face_choice import NOTES_LOGGER, FaceChoice, choose_face, parse_face
from affectstudio.conditioning.photo import load_photo
from affectstudio.conditioning.speech_features import audio_features, speech_loudness
from affectstudio.errors import InputError, InputTooLongError, NoSpeechError
from affectstudio.media import load_audio, resample
from affectstudio.models.dit import AffectDiT
from affectstudio.models.portrait import (
    GENERATED_CHANNELS,
    IDLE_CHANNELS,
    MOTION_CHANNELS,
    POSE_CHANNELS,
    MotionCodec,
    PortraitRenderer,
)
from affectstudio.pipelines.base import AffectPipeline
from affectstudio.video_io import write_video

SIZES = (256, 512, 0)
# How far the mouth is drawn toward the speech's loudness (lip_sync), chosen by measurement (the rendered frames'
# dlib lip sync, assets/talking_portrait/quality.json and closeup_eval.json): at 0.8 every face, framing and
# recording tried reached >= 0.7 (0.65: a 6 s close-up at 256 stayed at 0.66), the closed mouth in silence unchanged
LIP_SYNC_STRENGTH = 0.8
JAW, LIP_PRESS = MOTION_CHANNELS.index("jaw_open"), MOTION_CHANNELS.index("lip_press")
PREPARED_PHOTOS = 4  # prepared photos kept per pipeline (a 512² one holds ~40 MB of layers)
_PREPARED_LOCK = threading.Lock()


@functools.cache
def speech_pipeline():
    """The bundled emotional text-to-speech (``DubbingPipeline`` with ``video=None``), loaded once per process."""
    from affectstudio.pipelines.dubbing import DubbingPipeline

    pipe = DubbingPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    return pipe


GAZE_MODES = ("natural", "camera")
SQUARISH = (0.8, 1.25)  # width / height of a photo the face crop suits; others are pasted back by default


@dataclass
class TalkingPortraitOutput(BaseOutput):
    """``frames`` uint8 ``(t, h, w, 3)`` (``(b, t, h, w, 3)`` for a batch of emotions; ``None`` when streamed to
    ``output_path``), ``audio`` float32 mono at ``sample_rate``, ``motion`` ``(t, len(MOTION_CHANNELS))``
    (``(b, t, ...)`` for a batch), the ``emotion`` used, ``output_path`` when the video was written, and the ``face``
    animated (a :class:`~affectstudio.conditioning.face_choice.FaceChoice`: its number left to right, the count)."""

    frames: Optional[np.ndarray]
    audio: np.ndarray
    sample_rate: int
    fps: float
    motion: np.ndarray
    emotion: Union[EmotionEmbedding, list]
    output_path: Optional[Path] = None
    face: Optional[FaceChoice] = None

    def save(self, path: Union[str, Path]) -> Path:
        """Write the clip as an H.264/AAC mp4."""
        if Path(path).suffix.lower() != ".mp4":
            raise InputError(f"a talking portrait saves as .mp4, got {Path(path).name}")
        if self.frames is None:
            raise InputError("these frames were streamed to output_path and are not held in memory")
        if self.frames.ndim == 5:
            raise InputError("a batch holds several clips: save each, e.g. write_video(path, out.frames[i], ...)")
        return write_video(path, self.frames, self.fps, self.audio, self.sample_rate)


class TalkingPortraitPipeline(AffectPipeline):
    r"""Talking portrait generation.

    Components:
        dit (`AffectDiT`): motion generator over time, conditioned on audio features (content) and emotion.
        scheduler: a diffusers flow-matching scheduler (`FlowMatchEulerDiscreteScheduler` by default).
        codec (`MotionCodec`): motion channels ↔ face-mesh landmarks.
        renderer (`PortraitRenderer`): warps the reference photo to the landmarks, synthesises the mouth.
    """

    model_cpu_offload_seq = "dit"
    bundled_checkpoint = "talking_portrait"

    def __init__(
        self,
        dit: AffectDiT,
        scheduler: SchedulerMixin,
        codec: MotionCodec,
        renderer: PortraitRenderer,
        motion_channels: Optional[list] = None,
        motion_mean: Optional[list] = None,
        motion_std: Optional[list] = None,
        fps: float = 25.0,
        window: int = 250,
        overlap: int = 25,
        max_audio_seconds: float = 600.0,
    ):
        super().__init__()
        self.register_modules(dit=dit, scheduler=scheduler, codec=codec, renderer=renderer)
        channels = list(motion_channels) if motion_channels else GENERATED_CHANNELS[: dit.config.in_channels]
        unknown = [c for c in channels if c not in MOTION_CHANNELS]
        if unknown or len(channels) != dit.config.in_channels:
            raise ValueError(f"motion_channels {channels} must be {dit.config.in_channels} names from MOTION_CHANNELS")
        mean = list(motion_mean) if motion_mean else [0.0] * len(channels)
        std = list(motion_std) if motion_std else [1.0] * len(channels)
        self.register_to_config(
            motion_channels=channels,
            motion_mean=[float(m) for m in mean],
            motion_std=[float(s) for s in std],
            fps=float(fps),
            window=int(window),
            overlap=int(overlap),
            max_audio_seconds=float(max_audio_seconds),
        )

    # ------------------------------------------------------------------------------------------ inputs

    def check_inputs(
        self,
        image,
        audio,
        text,
        size,
        num_inference_steps,
        emotion_intensity,
        pose_scale,
        blink_rate,
        output_path,
        emotions,
        gaze="natural",
        face="auto",
        lip_sync_strength=LIP_SYNC_STRENGTH,
    ):
        if image is None:
            raise InputError("image is required: a portrait photo with one clearly visible face")
        if (audio is None) == (text is None):
            raise InputError("give exactly one of audio (speech to lip-sync) or text (a script to speak)")
        if size not in SIZES:
            raise InputError(f"size must be 256, 512 or 0 (the source crop), got {size}")
        self.check_common_inputs(num_inference_steps, emotion_intensity, output_path, (".mp4",))
        if pose_scale < 0 or blink_rate < 0:
            raise InputError("pose_scale and blink_rate must be ≥ 0")
        if gaze not in GAZE_MODES:
            raise InputError(f"gaze must be one of {', '.join(GAZE_MODES)}, got {gaze!r}")
        if not 0.0 <= lip_sync_strength <= 1.0:
            raise InputError(f"lip_sync_strength must be in [0, 1], got {lip_sync_strength}")
        if not isinstance(face, FaceChoice):  # a FaceChoice: the preflight already chose the face
            parse_face(face)
        if output_path is not None and len(emotions) > 1:
            raise InputError("output_path writes one clip: pass one emotion, or collect a batch with output_type='np'")

    def prepare_photo(self, image: np.ndarray, analysis, size: int, device, mode: str):
        """The renderer's per-photo preparation (framing, neutral, warp), cached on this pipeline — loaded once per
        process by the CLI, the studio and each batch worker — keyed by the photo's pixels, the face, the size, the
        framing and the device: a studio, a batch or a scene that renders the same photo again pays it once."""
        pixels = np.ascontiguousarray(image)
        key = (
            hashlib.blake2b(pixels.tobytes(), digest_size=16).digest(),
            pixels.shape,
            tuple(getattr(analysis, "bbox", ()) or ()),
            int(size),
            mode,
            str(device),
        )
        cache = self.__dict__.setdefault("_prepared_photos", collections.OrderedDict())
        with _PREPARED_LOCK:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        state = self.renderer.prepare(image, analysis, size=size, device=device, codec=self.codec, mode=mode)
        with _PREPARED_LOCK:
            cache[key] = state
            while len(cache) > PREPARED_PHOTOS:
                cache.popitem(last=False)
        return state

    def prepare_audio(
        self, audio, text, emotions: list, intensity: Optional[float], max_seconds: float, generator, voice=None
    ) -> tuple[np.ndarray, int]:
        """Speech at 24 kHz: the given audio, or the script spoken by the dubbing pipeline's emotional
        text-to-speech (the neural voice, with the first clip's emotion or curve); at most ``max_seconds`` long."""
        if text is None:
            return load_audio(audio, sample_rate=SPEECH_SAMPLE_RATE, max_seconds=max_seconds)
        gen = generator[0] if isinstance(generator, list) else generator
        speech = speech_pipeline()(
            video=None, text=text, emotion=emotions[0], emotion_intensity=intensity, generator=gen, voice=voice
        )
        wave = resample(speech.waveform, speech.sample_rate, SPEECH_SAMPLE_RATE)
        if wave.size / SPEECH_SAMPLE_RATE > max_seconds:
            raise InputTooLongError(
                f"the script takes {wave.size / SPEECH_SAMPLE_RATE:.1f} s to speak; the limit is "
                f"{max_seconds:.0f} s (raise it with max_audio_seconds / --max-seconds)"
            )
        return wave, SPEECH_SAMPLE_RATE

    def read_speech_emotion(self, wave: np.ndarray, sr: int) -> EmotionEmbedding:
        """With no emotion given: the speech encoder's reading of the audio (neutral if silent)."""
        try:
            return load_encoder("speech").encode((wave, sr))
        except NoSpeechError:
            return EmotionEmbedding.neutral()

    def idle_motion(
        self, num_frames: int, blink_rate: float, generator: Optional[torch.Generator], gaze: str = "natural"
    ) -> torch.Tensor:
        """Blinks (``blink_rate`` per minute, 0.1–0.3 s each) and — with ``gaze="natural"`` — slow gaze shifts;
        ``gaze="camera"`` holds the eyes on the photo's own gaze (the camera, for a photo that looks into it).
        ``(t, 3)``: blink, gaze_x, gaze_y."""
        fps = self.config.fps
        out = torch.zeros(num_frames, 3)
        rand = lambda *s: torch.rand(*s, generator=generator)  # noqa: E731
        t = float(rand(1)) * 2.0
        while blink_rate > 0 and t * fps < num_frames:
            dur = 0.1 + 0.2 * float(rand(1))
            start = int(t * fps)
            n = max(2, int(round(dur * fps)))
            phase = torch.linspace(0, 1, n)
            shape = torch.where(phase < 0.35, phase / 0.35, 1 - (phase - 0.35) / 0.65)  # fast close, slower open
            end = min(num_frames, start + n)
            out[start:end, 0] = torch.maximum(out[start:end, 0], shape[: end - start])
            t += -math.log(1 - float(rand(1)) * 0.999) * 60.0 / blink_rate + dur  # Poisson process
        t = 0.0
        while gaze == "natural" and t * fps < num_frames:  # fixations of 1–4 s, small saccades
            start, hold = int(t * fps), 1.0 + 3.0 * float(rand(1))
            out[start:, 1:] = (rand(2) - 0.5) * torch.tensor([0.3, 0.15])
            t += hold
        return out

    # -------------------------------------------------------------------------------------------- call

    @torch.no_grad()
    def __call__(
        self,
        image,
        audio=None,
        text: Optional[str] = None,
        emotion=None,
        emotion_intensity: Optional[float] = None,
        num_inference_steps: int = 10,
        audio_guidance_scale: float = 1.5,
        emotion_guidance_scale: float = 1.5,
        negative_emotion=None,
        lip_sync_strength: float = LIP_SYNC_STRENGTH,
        pose_scale: float = 1.0,
        blink_rate: float = 15.0,
        gaze: str = "natural",
        face: Union[str, int] = "auto",
        size: int = 256,
        paste_back: Optional[bool] = None,
        generator: Optional[Union[torch.Generator, list[torch.Generator]]] = None,
        callback_on_step_end: Optional[Callable[..., dict]] = None,
        output_type: str = "np",
        output_path: Optional[Union[str, Path]] = None,
        render_batch_size: int = 32,
        max_audio_seconds: Optional[float] = None,
        return_dict: bool = True,
        voice: Optional[str] = None,
    ):
        r"""Animate ``image``.

        Args:
            image: portrait photo (path, PIL image or uint8 array); ``face`` says which face is animated.
            audio: speech to lip-sync (path or ``(wave, sr)``); or ``text`` to speak (the dubbing pipeline's
                emotional text-to-speech, neural voice). Silent audio is valid: closed mouth, idle motion.
                voice: the preset that speaks ``text`` (``affectstudio voices``; None: the default, joe).
            emotion: a spec (label, ``label:intensity``, mix, free text, path to a speech/face reference), an
                ``EmotionEmbedding`` (a curve gives per-frame emotion), or a list of those for a batch of
                clips. ``None``: read from the speech.
            emotion_intensity: overrides the intensity of ``emotion`` (0..1).
            audio_guidance_scale / emotion_guidance_scale: separate classifier-free guidance scales; with
                ``emotion_guidance_scale > 1`` the emotion is pushed away from ``negative_emotion`` (default:
                its valence mirror).
            lip_sync_strength: how far the mouth is drawn from the DiT's motion toward the speech's loudness
                (:meth:`lip_sync`: the jaw opens with it, the lip press releases on loud frames): 0 = the DiT's
                mouth alone, 1 = the jaw follows the loudness alone (the DiT still sets how wide). Default 0.8,
                chosen by the measured lip sync of rendered frames.
            pose_scale: head-motion amplitude (0 = still head). blink_rate: blinks per minute (0 = none).
            gaze: ``"natural"`` (fixations and small saccades) or ``"camera"`` (eyes held on the photo's gaze).
            face: ``"auto"`` (the largest face; near-equal ones: the most central), ``"largest"``, ``"center"``,
                a :class:`~affectstudio.conditioning.face_choice.FaceChoice` already made for this image (the
                preflight's), or ``N``: the N-th face counted left to right from 0 (see
                :mod:`affectstudio.conditioning.face_choice`;
                its ``list_faces`` lists them for a picker). With several faces, which one is logged on the
                ``affectstudio.notes`` logger and kept in the output's ``face``.
            size: 256, 512, or 0 (the source crop's own size): the side of the rendered face square.
            paste_back: return the whole photo at its own size and aspect with the animated face composited
                back (LivePortrait-style) instead of the square face crop. ``None`` (default): paste back when
                the photo is not roughly square (video stills, wide or tall photos), crop otherwise.
            generator: ``torch.Generator`` (or one per clip of a batch) — the only source of randomness.
            callback_on_step_end: ``fn(pipe, step, timestep, kwargs) -> dict`` after each denoising step.
            output_type: ``"np"`` (frames in memory), ``"pt"`` (as a uint8 tensor) or ``"none"`` (only write
                ``output_path``).
            output_path: an .mp4 to stream frames into as they are rendered (memory stays flat).
            max_audio_seconds: longest speech accepted (default: ``config.max_audio_seconds``).
        """
        emotions = list(emotion) if isinstance(emotion, (list, tuple)) else [emotion]
        self.check_inputs(
            image,
            audio,
            text,
            size,
            num_inference_steps,
            emotion_intensity,
            pose_scale,
            blink_rate,
            output_path,
            emotions,
            gaze,
            face,
            lip_sync_strength,
        )
        self.check_generator(generator, len(emotions))
        self.check_output_type(output_type)
        device = self.dit.device
        fps = self.config.fps

        # 1. Emotion specs parsed first (a bad label fails before any media work), then the face: analysis,
        #    estimated neutral and render state.
        emotions = [self.parse_emotion(e, emotion_intensity) for e in emotions]
        # loads the image; errors name the file and count the faces (a FaceChoice: the preflight's, not analysed again)
        choice = face if isinstance(face, FaceChoice) else choose_face(image, face)
        analysis = choice.face
        if choice.count > 1:
            logging.getLogger(NOTES_LOGGER).info(choice.describe())
        image = load_photo(image)  # as displayed: EXIF orientation, greyscale/CMYK/16-bit/alpha to RGB
        if paste_back is None:
            h, w = image.shape[:2]
            paste_back = not SQUARISH[0] <= w / h <= SQUARISH[1]
        state = self.prepare_photo(image, analysis, size, device, "paste_back" if paste_back else "crop")

        # 2. Speech and its features at the video frame rate.
        limit = self.config.max_audio_seconds if max_audio_seconds is None else float(max_audio_seconds)
        wave, sr = self.prepare_audio(audio, text, emotions, emotion_intensity, limit, generator, voice)
        content = torch.from_numpy(audio_features(wave, sr, fps=fps))  # (t, F)
        num_frames = content.shape[0]

        # 3. Emotion conditions, one per clip (curves at the frame rate; none given: read from the speech).
        embs = [
            self.resolve_emotion(
                e, emotion_intensity, num_frames, fps, fallback=lambda: self.read_speech_emotion(wave, sr)
            )
            for e in emotions
        ]
        cond, negs = self.emotion_conditions(embs, num_frames, emotion_guidance_scale, negative_emotion, fps)
        batch = len(embs)

        # 4. Motion: DiT sampling in overlapping windows, then idle motion and pose scaling.
        latents = self.denoise(
            self.dit,
            (batch, num_frames, self.dit.config.in_channels),
            {"audio": content[None].expand(batch, -1, -1)},
            cond,
            negative_emotion=negs,
            guidance_scales={"content": audio_guidance_scale, "emotion": emotion_guidance_scale},
            num_inference_steps=num_inference_steps,
            generator=generator,
            callback_on_step_end=callback_on_step_end,
            window=self.config.window,
            overlap=self.config.overlap,
        )  # (b, t, c) normalised
        motion = self.assemble_motion(latents.float().cpu(), pose_scale, blink_rate, generator, gaze)  # (b, t, D)
        motion = self.lip_sync(motion, wave, sr, lip_sync_strength)

        # 5. Render in chunks; stream into the encoder when writing a file.
        frames = self.render(state, motion, output_path, wave, sr, keep=output_type != "none", chunk=render_batch_size)
        out_motion = motion[0].numpy() if batch == 1 else motion.numpy()
        out_frames = None if frames is None else (frames[0] if batch == 1 else frames)
        if out_frames is not None and output_type == "pt":
            out_frames = torch.from_numpy(out_frames)
        output = TalkingPortraitOutput(
            frames=out_frames,
            audio=wave,
            sample_rate=sr,
            fps=fps,
            motion=out_motion,
            emotion=embs[0] if batch == 1 else embs,
            output_path=Path(output_path) if output_path is not None else None,
            face=choice,
        )
        self.maybe_free_model_hooks()
        return output if return_dict else (output.frames, output.audio)

    def assemble_motion(
        self, latents: torch.Tensor, pose_scale: float, blink_rate: float, generator, gaze: str = "natural"
    ) -> torch.Tensor:
        """Denormalise the DiT's channels into the full motion vector and add idle motion; ``(b, t, D)``."""
        b, t, _ = latents.shape
        mean = torch.tensor(self.config.motion_mean)
        std = torch.tensor(self.config.motion_std)
        motion = torch.zeros(b, t, len(MOTION_CHANNELS))
        idx = [MOTION_CHANNELS.index(c) for c in self.config.motion_channels]
        motion[..., idx] = latents * std + mean
        gens = generator if isinstance(generator, list) else [generator] * b
        idle_idx = [MOTION_CHANNELS.index(c) for c in IDLE_CHANNELS]
        for i in range(b):
            motion[i][:, idle_idx] = self.idle_motion(t, blink_rate, gens[i], gaze)
        pose_idx = [MOTION_CHANNELS.index(c) for c in POSE_CHANNELS]
        motion[..., pose_idx] *= pose_scale
        return motion

    def lip_sync(self, motion: torch.Tensor, wave: np.ndarray, sr: int, strength: float = LIP_SYNC_STRENGTH):
        """Draw the mouth of ``motion`` (``(t, D)`` or ``(b, t, D)`` at ``config.fps``, as :meth:`assemble_motion`
        returns it) toward the speech's loudness ``L``
        (:func:`~affectstudio.conditioning.speech_features.speech_loudness`: 0 in pauses, near 1 on vowel nuclei,
        whatever the recording's gain):

        * ``jaw_open ← (1 - strength) · jaw + strength · amplitude · L``, ``amplitude`` the clip's own jaw at its
          widest (95th percentile over speech frames): the emotion and the DiT keep deciding how wide the mouth
          opens, the speech decides when;
        * ``lip_press ← lip_press · (1 - strength · L)``: lips pressed together silence the voice (p, b, m are
          quiet), so a loud frame releases the press in proportion; in pauses the DiT's closure stays.

        The sampled jaw alone follows the loudness only loosely (corr 0.74-0.88) and its lip press closes the mouth
        on loud frames; the blend keeps the DiT's coarticulation and every other channel. Returns a new tensor;
        ``strength=0`` returns ``motion`` unchanged.
        """
        if strength <= 0:
            return motion
        loud = torch.from_numpy(speech_loudness(wave, sr, fps=self.config.fps))
        flat = motion[None] if motion.dim() == 2 else motion
        t = min(flat.shape[1], loud.numel())
        loud = loud[:t]
        speaking = loud > 0
        out = flat.clone()
        for clip in out:
            jaw = clip[:t, JAW]
            amplitude = torch.quantile(jaw[speaking], 0.95).clamp(min=0.0) if speaking.any() else jaw.new_zeros(())
            clip[:t, JAW] = (1 - strength) * jaw + strength * amplitude * loud
            clip[:t, LIP_PRESS] *= 1 - strength * loud
        return out[0] if motion.dim() == 2 else out

    def render(self, state, motion: torch.Tensor, output_path, wave, sr, keep: bool, chunk: int):
        """Render ``motion (b, t, D)``; frames are written to ``output_path`` as they come (one clip) or kept."""
        b, t, _ = motion.shape
        device = state.device
        kept: Optional[list] = [] if keep else None
        writer = self.stream_to(output_path, self.config.fps, audio=wave, sample_rate=sr)
        with writer, self.progress_bar(total=t * b) as bar:
            for i in range(b):
                clip = []
                for s in range(0, t, chunk):
                    frames = self.renderer.render(state, motion=motion[i, s : s + chunk].to(device))
                    if output_path is not None:
                        writer.write(frames)
                    if keep:
                        clip.append(frames)
                    bar.update(frames.shape[0])
                if kept is not None:
                    kept.append(np.concatenate(clip))
        return None if kept is None else np.stack(kept)
