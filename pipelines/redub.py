"""Visual re-dub: new words and a new emotion on an existing talking video (``affectstudio dub --redraw-face``,
``DubbingPipeline(..., redraw_face=True)``; docs/cli.md).

The dubbing pipeline speaks the script at a natural rate (its text-to-speech path: voice, emotion or curve, reference
voice as usual), :func:`place_speech` puts it on the video's timeline (an :class:`InputTooLongError` when it needs
more time than the video has), and :func:`redraw_video` re-animates the speaker's mouth and expression on every frame:

1. **shots** — cuts from the content difference of consecutive thumbnails (:func:`shot_starts`, the music pipeline's
   :func:`~affectstudio.conditioning.video.detect_cuts`);
2. **tracking** — the chosen face (``face=``, as the portrait's) followed through every frame
   (:class:`~affectstudio.conditioning.face_track.FaceTracker`), landmarks smoothed over time; per shot the most
   frontal frame with the mouth closest to closed and the eyes open is the reference (:func:`reference_score`);
3. **motion** — the portrait pipeline's DiT on the new speech and emotion with a still head and no blinks;
4. **render and composite** (streamed, one shot's portrait preparation at a time) — the renderer prepares the shot's
   reference once (crop mode), renders each frame with the frame's own head pose (fitted from its landmarks by the
   motion codec) and the generated expression; the render is carried into the frame by a similarity of the stable
   landmarks, colour-matched and blended over the lower face and brows with the frame's own eyes kept
   (:mod:`affectstudio.models.portrait.composite`). Frames without the face pass through unchanged.

Memory stays flat in the video's length apart from the tracked landmarks (5.7 kB a frame) and one compressed
reference patch per shot: frames are decoded three times (cuts, tracking, compositing) and stream into the encoder.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from affectstudio.conditioning.face import NUM_LANDMARKS, head_pose_from_landmarks
from affectstudio.conditioning.face_choice import NOTES_LOGGER, FaceSpec, parse_face
from affectstudio.conditioning.face_track import FaceTracker, as_analysis
from affectstudio.conditioning.speech_features import audio_features
from affectstudio.conditioning.video import THUMB, detect_cuts
from affectstudio.errors import InputError, InputTooLongError, NoFaceError
from affectstudio.models.portrait import NUM_EXPRESSION, POSE_CHANNELS, channel_indices
from affectstudio.models.portrait.composite import (
    CompositeSettings,
    apply_transform,
    composite_frame,
    fade_weights,
    similarity,
    smooth_track,
)
from affectstudio.video_io import VideoInfo, VideoWriter, iter_video_frames, probe_video

SPEECH_LEAD = 0.3  # seconds of the video before the new speech starts (when the video has them to spare)
MOTION_FPS = 25.0  # the portrait DiT's rate; motion is interpolated to the video's own frame times
PATCH_SCALE = 3.0  # a shot's stored reference patch: this × the face's extent around it
REDUB_SIZES = (256, 512)


@functools.cache
def portrait_pipeline():
    """The bundled ``TalkingPortraitPipeline``, loaded once per process."""
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline

    pipe = TalkingPortraitPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def place_speech(
    wave: np.ndarray, sample_rate: int, video_seconds: float, lead: float = SPEECH_LEAD
) -> tuple[np.ndarray, float]:
    """The speech on the video's timeline: its voiced span after ``lead`` seconds (less when the video is short),
    padded to the video's length; and the video time (seconds) of the speech's own time 0 — where an emotion curve's
    keyframe times, which count from the start of the speech as the voice speaks them, begin for the face too.
    Speech longer than the video is an :class:`InputTooLongError` saying how long it needs."""
    wave = np.asarray(wave, dtype=np.float32)
    active = np.flatnonzero(np.abs(wave) > 1e-4)
    trimmed = int(active[0]) if active.size else 0
    if active.size:  # the voice's own leading/trailing silence does not count against the video
        wave = wave[active[0] : active[-1] + 1]
    need = wave.size / sample_rate
    if need > video_seconds:
        raise InputTooLongError(
            f"the script takes {need:.1f} s to speak at a natural rate; the video lasts {video_seconds:.1f} s: "
            "shorten the script or use a longer video"
        )
    n = int(round(video_seconds * sample_rate))
    start = int(round(min(lead, (video_seconds - need) / 2) * sample_rate))
    out = np.zeros(n, dtype=np.float32)
    out[start : start + wave.size] = wave[: n - start]
    return out, (start - trimmed) / sample_rate


# ------------------------------------------------------------------------------------------ shots and tracking


def shot_starts(video, info: VideoInfo) -> list[int]:
    """First frame of every shot (0 first): cuts from the HSV difference of consecutive thumbnails, as the music
    pipeline reads them (:func:`~affectstudio.conditioning.video.detect_cuts`)."""
    import cv2

    diffs, prev = [], None
    for frame in iter_video_frames(video, size=THUMB, fast=True, info=info):
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        if prev is None:
            diffs.append(0.0)
        else:
            h, s, v, _ = cv2.mean(cv2.absdiff(hsv, prev))
            diffs.append((h * 255.0 / 180.0 + s + v) / 3.0)
        prev = hsv
    cuts, _ = detect_cuts(np.asarray(diffs, np.float32), info.fps)
    return [0] + sorted({int(round(t * info.fps)) for t in cuts} - {0})


def reference_score(landmarks: np.ndarray) -> float:
    """Lower is a better reference frame: frontal (yaw, pitch), mouth closed (inner-lip gap), eyes open."""
    lm = np.asarray(landmarks, dtype=np.float64)
    yaw, pitch, _ = head_pose_from_landmarks(lm)
    iod = float(np.linalg.norm(lm[[263, 362], :2].mean(0) - lm[[33, 133], :2].mean(0)))
    gap = max(0.0, float(lm[14, 1] - lm[13, 1])) / max(iod, 1e-6)
    eyes = (float(lm[145, 1] - lm[159, 1]) + float(lm[374, 1] - lm[386, 1])) / 2 / max(iod, 1e-6)
    return (abs(float(yaw)) + abs(float(pitch))) / 15.0 + 12.0 * gap + 3.0 * max(0.0, 0.16 - eyes)


@dataclass
class Track:
    """The chosen face through a video: ``landmarks (t, 478, 3)`` (NaN where it is missing), the shot of each frame,
    and per shot its reference frame (index, PNG-compressed patch around the face, the patch's landmarks)."""

    landmarks: np.ndarray
    shots: np.ndarray
    references: dict = field(default_factory=dict)
    faces_seen: int = 0  # the most faces the chooser saw in a shot's first frame

    @property
    def found(self) -> np.ndarray:
        return np.isfinite(self.landmarks[:, 0, 0])


def _patch(frame: np.ndarray, lm: np.ndarray, size: int) -> tuple[bytes, np.ndarray]:
    """A square around the face (``PATCH_SCALE`` × its extent, inside the frame), scaled so the renderer's face
    square is about ``1.25 × size`` pixels at most; PNG bytes and the landmarks in its pixels."""
    import cv2

    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    c, ext = (lo + hi) / 2, float((hi - lo).max())
    h, w = frame.shape[:2]
    half = PATCH_SCALE * ext / 2
    x0, y0 = int(max(0, np.floor(c[0] - half))), int(max(0, np.floor(c[1] - half)))
    x1, y1 = int(min(w, np.ceil(c[0] + half))), int(min(h, np.ceil(c[1] + half)))
    patch = frame[y0:y1, x0:x1]
    pts = lm.astype(np.float64) - (x0, y0, 0)
    scale = min(1.0, 1.25 * size / max(2.1 * ext, 1.0))
    if scale < 1.0:
        patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        pts = pts * scale
    ok, png = cv2.imencode(".png", cv2.cvtColor(patch, cv2.COLOR_RGB2BGR))
    assert ok  # encoding a uint8 image to PNG in memory does not fail
    return png.tobytes(), pts.astype(np.float32)


def track_video(video, info: VideoInfo, face: FaceSpec = "auto", size: int = 256, smooth: float = 1.0) -> Track:
    """Shots, the chosen face's landmarks on every frame (smoothed over ``smooth`` frames) and each shot's reference
    frame. No face in any frame: :class:`NoFaceError`."""
    starts = set(shot_starts(video, info))
    lms: list[np.ndarray] = []
    shots: list[int] = []
    best: dict[int, tuple[float, int, np.ndarray, np.ndarray]] = {}
    shot = -1
    seen = 0
    with FaceTracker(face) as tracker:
        for i, frame in enumerate(iter_video_frames(video, info=info)):
            if i in starts:
                shot += 1
                tracker.cut()
            lm = tracker(frame)
            if tracker.choice is not None:
                seen = max(seen, tracker.choice.count)
            shots.append(shot)
            if lm is None:
                lms.append(np.full((NUM_LANDMARKS, 3), np.nan, np.float32))
                continue
            lms.append(lm)
            score = reference_score(lm)
            if shot not in best or score < best[shot][0]:
                best[shot] = (score, i, frame.copy(), lm)
    if not lms:
        raise InputError(f"video {video} has no decodable frames")
    track = Track(np.stack(lms), np.asarray(shots), faces_seen=seen)
    if not track.found.any():
        which = "the asked face" if isinstance(parse_face(face), int) else "a face"
        raise NoFaceError(f"no frame of {video} shows {which}: use a clip with one clearly visible face")
    track.landmarks = smooth_track(track.landmarks, track.shots, smooth)
    for s, (_, i, frame, _) in best.items():
        track.references[s] = (i, *_patch(frame, track.landmarks[i], size))
    return track


# ------------------------------------------------------------------------------------------ motion


def generate_motion(
    pipe, wave: np.ndarray, sr: int, emotion, emotion_intensity, num_frames: int, curve_offset: float = 0.0, **sampling
):
    """The portrait DiT's motion ``(n, D)`` at :data:`MOTION_FPS` for the placed speech: a still head, no blinks, eyes
    on the camera (the video keeps its own head motion, blinks and gaze). An emotion curve's keyframe times count
    from ``curve_offset`` seconds into the video (the speech's start, see :func:`place_speech`), as the voice's do."""
    from affectstudio.conditioning.emotion import EmotionCurve, parse_emotion_spec

    content = torch.from_numpy(audio_features(wave, sr, fps=MOTION_FPS))  # (n, F)
    n = content.shape[0]
    parsed = parse_emotion_spec(emotion, intensity=emotion_intensity) if emotion is not None else None
    if isinstance(parsed, EmotionCurve):
        emb = parsed.at_times(np.arange(n) / MOTION_FPS - curve_offset)
    else:
        emb = pipe.resolve_emotion(emotion, emotion_intensity, n, MOTION_FPS)  # None: neutral, as the voice
    guidance = sampling.pop("emotion_guidance_scale", 1.5)
    cond, negs = pipe.emotion_conditions([emb], n, guidance, sampling.pop("negative_emotion", None), MOTION_FPS)
    generator = sampling.get("generator")
    latents = pipe.denoise(
        pipe.dit,
        (1, n, pipe.dit.config.in_channels),
        {"audio": content[None]},
        cond,
        negative_emotion=negs,
        guidance_scales={"content": sampling.pop("audio_guidance_scale", 1.5), "emotion": guidance},
        window=pipe.config.window,
        overlap=pipe.config.overlap,
        **sampling,
    )
    motion = pipe.assemble_motion(latents.float().cpu(), 0.0, 0.0, generator, "camera")[0]  # (n, D)
    # the jaw drawn toward the speech's loudness, as the portrait pipeline does (its ``lip_sync_strength``)
    motion = pipe.lip_sync(motion, wave, sr)
    return motion, emb


def motion_at(motion: torch.Tensor, times: np.ndarray) -> torch.Tensor:
    """``motion (n, D)`` at :data:`MOTION_FPS` linearly interpolated at ``times`` (seconds) → ``(len(times), D)``."""
    x = np.clip(np.asarray(times, dtype=np.float64) * MOTION_FPS, 0, motion.shape[0] - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, motion.shape[0] - 1)
    a = torch.from_numpy((x - i0).astype(np.float32))[:, None]
    return motion[i0] * (1 - a) + motion[i1] * a


# ------------------------------------------------------------------------------------------ the redraw


@dataclass
class RedrawResult:
    """What :func:`redraw_video` did: frames written and redrawn, shots, the reference frame of each, the most faces
    seen at a shot's start, and seconds per stage."""

    frames: int
    redrawn: int
    shots: int
    references: list
    faces_seen: int
    timings: dict
    motion: Optional[np.ndarray] = None


class _Shot:
    """One shot's prepared portrait and per-frame poses (built when compositing reaches the shot)."""

    def __init__(self, pipe, track: Track, shot: int, size: int):
        import cv2

        ref_index, png, pts = track.references[shot]
        patch = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        self.state = pipe.renderer.prepare(  # no covered-mouth check: the video shows the speaker's mouth move
            patch, as_analysis(pts, patch.shape[:2]), size=size, mode="crop", codec=pipe.codec, check_cover=False
        )
        self.reference = ref_index
        idx = np.flatnonzero((track.shots == shot) & track.found)
        self.frames = idx
        ref_lm = self.state.reference_landmarks.numpy()
        lms = track.landmarks[idx]
        to_crop = similarity(lms, ref_lm[None])  # frame -> this shot's crop pixels
        in_crop = apply_transform(to_crop, lms).astype(np.float32)
        poses = []
        for s in range(0, len(idx), 256):  # the codec's fit, in blocks (memory flat on long shots)
            fit = pipe.codec.fit(torch.from_numpy(in_crop[s : s + 256]), self.state.neutral_landmarks)
            poses.append(fit[:, NUM_EXPRESSION:].numpy())
        pose = np.concatenate(poses) if poses else np.zeros((0, len(POSE_CHANNELS)), np.float32)
        self.pose = dict(zip(idx.tolist(), smooth_track(pose, np.zeros(len(pose)), 1.5)))


def redraw_video(
    video: Union[str, Path],
    wave: np.ndarray,
    sample_rate: int,
    output_path: Union[str, Path],
    emotion=None,
    emotion_intensity: Optional[float] = None,
    face: FaceSpec = "auto",
    pipe=None,
    size: int = 256,
    num_inference_steps: int = 10,
    audio_guidance_scale: float = 1.5,
    emotion_guidance_scale: float = 1.5,
    generator: Optional[torch.Generator] = None,
    callback_on_step_end=None,
    settings: Optional[CompositeSettings] = None,
    render_batch_size: int = 32,
    progress=None,
    curve_offset: float = 0.0,
    info: Optional[VideoInfo] = None,
) -> RedrawResult:
    """Re-animate the chosen face of ``video`` to ``wave`` (already on the video's timeline, see :func:`place_speech`)
    and ``emotion``, writing ``output_path`` (.mp4, the video's own frame rate, ``wave`` as its audio track).

    ``pipe``: a ``TalkingPortraitPipeline`` (default: the bundled one). ``face``: which face, as the portrait's.
    ``size``: side of the rendered face square (256 or 512). ``progress``: a diffusers progress-bar context factory
    ``progress(total=n)`` (the calling pipeline's ``progress_bar``). ``curve_offset``: the video time (seconds) an
    emotion curve's times count from — the speech's start, as :func:`place_speech` returns it. ``info``: the video's
    ``probe_video(video, count_frames=True)`` when the caller has it (else probed here)."""
    if size not in REDUB_SIZES:
        raise InputError(f"size must be 256 or 512 for a redrawn face, got {size}")
    parse_face(face)
    pipe = portrait_pipeline() if pipe is None else pipe
    settings = settings or CompositeSettings()
    timings: dict[str, float] = {}
    info = info if info is not None else probe_video(video, count_frames=True)

    t = time.perf_counter()
    track = track_video(video, info, face, size)
    timings["track"] = time.perf_counter() - t
    if track.faces_seen > 1:
        logging.getLogger(NOTES_LOGGER).info(
            f"redrawing one face of the {track.faces_seen} in the video (face={face}; numbered left to right from 0)"
        )

    t = time.perf_counter()
    motion, _ = generate_motion(
        pipe,
        wave,
        sample_rate,
        emotion,
        emotion_intensity,
        len(track.shots),
        curve_offset=curve_offset,
        num_inference_steps=num_inference_steps,
        audio_guidance_scale=audio_guidance_scale,
        emotion_guidance_scale=emotion_guidance_scale,
        generator=generator,
        callback_on_step_end=callback_on_step_end,
    )
    timings["motion"] = time.perf_counter() - t

    n = len(track.shots)
    weights = fade_weights(track.found, track.shots)
    frame_motion = motion_at(motion, np.arange(n) / info.fps)  # (t, D)
    pose_idx = channel_indices(POSE_CHANNELS)
    t = time.perf_counter()
    prep = 0.0
    redrawn = 0
    shot: Optional[_Shot] = None
    shot_id = -1
    pending: list[tuple[int, np.ndarray]] = []
    bar = progress(total=n) if progress is not None else _NoBar()
    with VideoWriter(output_path, info.fps, audio=wave, sample_rate=sample_rate) as writer, bar:

        def flush() -> None:
            nonlocal redrawn
            if not pending:
                return
            assert shot is not None
            idx = [i for i, _ in pending]
            m = frame_motion[idx].clone()
            m[:, pose_idx] = torch.from_numpy(np.stack([shot.pose[i] for i in idx])).float()
            crops = pipe.renderer.render(shot.state, motion=m)
            q = pipe.renderer.target_landmarks(shot.state, m.to(shot.state.device)).cpu().numpy()
            lms = track.landmarks[idx]
            to_frame = similarity(q, lms)
            for k, (i, frame) in enumerate(pending):
                out = composite_frame(frame, crops[k], to_frame[k], lms[k], q[k], settings, float(weights[i]))
                writer.write(out)
            redrawn += len(pending)
            bar.update(len(pending))
            pending.clear()

        for i, frame in enumerate(iter_video_frames(video, info=info)):
            if i >= n:
                break
            s = int(track.shots[i])
            if not track.found[i] or s not in track.references:
                flush()
                writer.write(frame)
                bar.update(1)
                continue
            if s != shot_id:
                flush()
                t_prep = time.perf_counter()
                shot, shot_id = _Shot(pipe, track, s, size), s
                prep += time.perf_counter() - t_prep
            pending.append((i, frame))
            if len(pending) >= render_batch_size:
                flush()
        flush()
    timings["prepare"] = prep
    timings["render_composite_encode"] = time.perf_counter() - t - prep
    return RedrawResult(
        frames=n,
        redrawn=redrawn,
        shots=int(track.shots.max()) + 1,
        references=[track.references[s][0] for s in sorted(track.references)],
        faces_seen=track.faces_seen,
        timings=timings,
        motion=motion.numpy(),
    )


def redub(dub, video, text: str, output_path, face: FaceSpec = "auto", size: int = 256, portrait=None, **speech):
    """``DubbingPipeline(..., redraw_face=True)``: the script spoken by ``dub`` at a natural rate (its text-to-speech
    path, with ``speech``'s voice, emotion and sampling keywords), placed on the video's timeline
    (:func:`place_speech`), and the video's face redrawn to it (:func:`redraw_video`) into ``output_path`` (.mp4).
    Returns the speech's ``DubbingOutput`` with ``waveform`` on the video's timeline, ``video`` and ``output_path``
    the new video, and ``redraw`` the :class:`RedrawResult`."""
    if video is None:
        raise InputError("redraw_face re-animates the face of a video: give video=")
    if output_path is None or Path(output_path).suffix.lower() != ".mp4":
        raise InputError("redraw_face writes a new video: give output_path ending in .mp4")
    if size not in REDUB_SIZES:
        raise InputError(f"size must be 256 or 512 for a redrawn face, got {size}")
    parse_face(face)
    info = probe_video(video, count_frames=True)  # a missing or corrupt video fails before the voice speaks
    if info.duration > dub.config.max_video_seconds:
        limit = dub.config.max_video_seconds
        raise InputTooLongError(f"the video lasts {info.duration:.0f} s; the limit is {limit:.0f} s")
    t = time.perf_counter()
    out = dub(video=None, text=text, **speech)
    wave, speech_start = place_speech(out.waveform, out.sample_rate, info.duration)
    out.timings["speech"] = time.perf_counter() - t
    result = redraw_video(
        video,
        wave,
        out.sample_rate,
        output_path,
        emotion=speech.get("emotion"),
        emotion_intensity=speech.get("emotion_intensity"),
        face=face,
        pipe=portrait,
        size=size,
        generator=speech.get("generator"),
        progress=dub.progress_bar,
        curve_offset=speech_start,
        info=info,
    )
    out.timings.update({f"redraw_{k}": v for k, v in result.timings.items()})
    out.waveform = wave
    out.video = str(output_path)
    out.output_path = Path(output_path)
    out.redraw = result
    return out


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def update(self, n: int = 1) -> None:
        return None
