"""Visual re-dub (``affectstudio dub --redraw-face``, pipelines/redub.py, models/portrait/composite.py): the
compositor's transform, mask, colour match and seams; tracks over time; pass-through frames; speech placement; the
CLI's errors; one slow end-to-end run."""

import numpy as np
import pytest

from affectstudio.errors import InputTooLongError
from affectstudio.models.portrait.composite import (
    CompositeSettings,
    apply_transform,
    blend_mask,
    composite_frame,
    fade_weights,
    match_colour,
    seam_ratio,
    similarity,
    smooth_track,
)

SETTINGS = CompositeSettings()


@pytest.fixture(scope="module")
def astronaut():
    """The astronaut photo (512²) and its mediapipe mesh."""
    pytest.importorskip("mediapipe")
    skdata = pytest.importorskip("skimage.data")
    from affectstudio.conditioning.face import analyze_face

    img = skdata.astronaut()
    return img, analyze_face(img).landmarks


def test_similarity_recovers_a_known_transform(astronaut):
    _, lm = astronaut
    a, s, t = 0.3, 1.7, np.array([12.0, -40.0])
    m = np.array([[s * np.cos(a), -s * np.sin(a), t[0]], [s * np.sin(a), s * np.cos(a), t[1]]])
    moved = apply_transform(m, lm)
    est = similarity(lm, moved)
    assert np.allclose(est, m, atol=1e-6)
    # batched, and z scales with the similarity
    assert similarity(np.stack([lm, lm]), np.stack([moved, lm])).shape == (2, 2, 3)
    assert np.allclose(moved[:, 2], lm[:, 2] * s, atol=1e-4)


def test_mask_covers_mouth_and_brows_keeps_eyes(astronaut):
    img, lm = astronaut
    mask, ring, (x0, y0, x1, y1) = blend_mask(lm, lm, img.shape[:2], SETTINGS)
    at = lambda p: mask[int(round(p[1])) - y0, int(round(p[0])) - x0]  # noqa: E731
    mouth = lm[[13, 14], :2].mean(0)
    assert at(mouth) > 0.99 and at(lm[152, :2] - (0, 5)) > 0.9  # mouth, chin
    assert at(lm[105, :2]) > 0.9 and at(lm[334, :2]) > 0.9  # both brows
    assert at(lm[468, :2]) < 0.05 and at(lm[473, :2]) < 0.05  # both irises: the frame's own eyes
    assert mask[0, 0] < 0.01 and mask[-1, -1] < 0.01  # corners of the working box
    assert ring.any() and not ring[int(mouth[1]) - y0, int(mouth[0]) - x0]
    # a render whose chin dropped: the union covers the lower chin too
    low = lm.copy()
    low[:, 1] += np.where(lm[:, 1] > mouth[1], 12.0, 0.0)
    mask2, _, (a0, b0, _, _) = blend_mask(lm, low, img.shape[:2], SETTINGS)
    chin = low[152, :2] - (0, 3)
    assert mask2[int(chin[1]) - b0, int(chin[0]) - a0] > 0.9


def test_colour_match_removes_a_lighting_change_but_not_structure(astronaut):
    img, lm = astronaut
    mask, ring, (x0, y0, x1, y1) = blend_mask(lm, lm, img.shape[:2], SETTINGS)
    region = img[y0:y1, x0:x1].astype(np.float32)
    brighter = np.clip(region + 25.0, 0, 255)
    fixed = match_colour(brighter, region, ring, 100.0, SETTINGS)
    inside = mask > 0.9
    before = np.abs(brighter - region)[inside].mean()
    after = np.abs(fixed - region)[inside].mean()
    assert before > 20 and after < 5, (before, after)
    # with no ring there is nothing to measure: the render is left as it is
    assert np.array_equal(match_colour(brighter, region, np.zeros_like(ring), 100.0, SETTINGS), brighter)


def test_composite_has_no_seam_where_a_naive_paste_has_one(astronaut):
    img, lm = astronaut
    render = np.clip(img.astype(np.int16) + 30, 0, 255).astype(np.uint8)  # same face, other lighting
    out = composite_frame(img, render, np.array([[1.0, 0, 0], [0, 1.0, 0]]), lm, lm, SETTINGS)
    mask, _, box = blend_mask(lm, lm, img.shape[:2], SETTINGS)
    x0, y0, x1, y1 = box
    naive = img.copy()
    hard = mask[..., None] > 0.5
    naive[y0:y1, x0:x1] = np.where(hard, render[y0:y1, x0:x1], img[y0:y1, x0:x1])
    assert seam_ratio(out, img, mask, box) < 1.05  # a feathered blend without the colour match: 1.11
    assert seam_ratio(naive, img, mask, box) > 1.3
    # outside the working box nothing changes
    keep = np.ones(img.shape[:2], bool)
    keep[y0:y1, x0:x1] = False
    assert np.array_equal(out[keep], img[keep])


def test_the_frames_fine_detail_returns_where_the_face_did_not_move(astronaut):
    """A render that lost the skin's fine texture (blurred) gets the frame's back where its landmarks lie on the
    frame's; where the face moved (the render's landmarks 0.3 iod away) the frame's detail is not copied in (it
    would ghost the old mouth)."""
    import cv2

    from affectstudio.models.portrait.composite import interocular

    img, lm = astronaut
    blurred = cv2.GaussianBlur(img, (0, 0), 2.5)
    ident = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    mask, _, (x0, y0, x1, y1) = blend_mask(lm, lm, img.shape[:2], SETTINGS)
    inside = mask > 0.9

    def fine_energy(frame):
        f = frame[y0:y1, x0:x1].astype(np.float32).mean(-1)
        return float(np.abs(f - cv2.GaussianBlur(f, (0, 0), 2.0))[inside].mean())

    off = CompositeSettings(detail_reach=0.0)
    plain = composite_frame(img, blurred, ident, lm, lm, off)
    sharp = composite_frame(img, blurred, ident, lm, lm, SETTINGS)
    assert fine_energy(sharp) > 0.8 * fine_energy(img) and fine_energy(plain) < 0.5 * fine_energy(img)
    moved = lm.copy()
    moved[:, 1] += 0.3 * interocular(lm)  # the render's face sits elsewhere: nothing is still
    far = composite_frame(img, blurred, ident, lm, moved, SETTINGS)
    assert abs(fine_energy(far) - fine_energy(composite_frame(img, blurred, ident, lm, moved, off))) < 0.05


def test_frames_without_the_face_pass_through(astronaut):
    img, lm = astronaut
    render = np.zeros_like(img)
    same = composite_frame(img, render, np.array([[1.0, 0, 0], [0, 1.0, 0]]), lm, lm, SETTINGS, weight=0.0)
    assert same is img
    from affectstudio.conditioning.face_track import FaceTracker

    blank = np.full((128, 128, 3), 90, np.uint8)
    with FaceTracker() as tracker:
        assert tracker(blank) is None  # no face: the caller writes the frame unchanged
        found = tracker(img)
        assert found is not None and np.abs(found[:, :2] - lm[:, :2]).mean() < 4.0
        tracker.cut()
        assert tracker(blank) is None and tracker.choice is None
    with FaceTracker(face=3) as tracker:  # a face number this frame does not have: passed through
        assert tracker(img) is None


def test_tracks_smooth_within_shots_and_fade_where_lost():
    t = np.arange(12, dtype=np.float64)
    track = np.stack([t, np.ones(12)], 1)[:, None, :]  # (12, 1, 2)
    track[5] = np.nan
    shots = np.array([0] * 8 + [1] * 4)
    out = smooth_track(track, shots, sigma=1.0)
    assert np.isnan(out[5]).all() and np.allclose(out[:, 0, 1][~np.isnan(out[:, 0, 1])], 1.0)
    run = out[[6, 7], 0, 0]  # the run 6-7 ends at the cut: smoothed inside itself, not pulled toward 8
    assert 6.0 < run[0] < run[1] < 7.0 and abs(run.mean() - 6.5) < 1e-5
    assert np.allclose(out[8:, 0, 0].mean(), 9.5, atol=1e-6)
    w = fade_weights(~np.isnan(track[:, 0, 0]), shots, frames=3)
    assert w[5] == 0 and 0 < w[4] < w[3] < 1 and w[0] == 1 and w[8] == 1


def test_place_speech_bounds_the_script_by_the_video():
    from affectstudio.pipelines.redub import place_speech

    sr = 1000
    speech = np.r_[np.zeros(200), np.ones(2000) * 0.5, np.zeros(300)].astype(np.float32)  # 2 s of sound
    out, start = place_speech(speech, sr, 3.0)
    assert out.size == 3000 and np.flatnonzero(out)[0] == 300 and np.count_nonzero(out) == 2000
    assert start == pytest.approx(0.1)  # the speech's time 0 (0.2 s of its own silence before the sound) at 0.1 s
    short, start = place_speech(speech, sr, 2.2)
    assert np.flatnonzero(short)[0] == 100 and start == pytest.approx(-0.1)  # a short video: less lead
    with pytest.raises(InputTooLongError, match=r"takes 2\.0 s .* video lasts 1\.5 s"):
        place_speech(speech, sr, 1.5)


def test_a_curve_lands_on_the_face_when_the_voice_speaks_it():
    """The voice speaks a curve's keyframes at speech times; the face, drawn on the video's timeline where the speech
    starts ``offset`` s in, gets the same keyframe at ``offset`` + its time."""
    from affectstudio.pipelines.redub import MOTION_FPS, generate_motion

    seen = {}

    class Pipe:  # records the emotion the DiT is conditioned on, stops before sampling
        def emotion_conditions(self, embs, n, *_):
            seen["probs"] = embs[0].probs
            raise StopIteration

    wave = np.zeros(16000 * 3, np.float32)
    with pytest.raises(StopIteration):
        generate_motion(Pipe(), wave, 16000, "neutral@0; happy@1", None, 75, curve_offset=0.6)
    from affectstudio.conditioning.emotion.embedding import EMOTIONS

    happy = seen["probs"][:, EMOTIONS.index("happy")]
    t = np.arange(len(happy)) / MOTION_FPS
    assert happy[t <= 0.6].max() < 0.2 and happy[np.abs(t - 1.6) < 0.02].min() > 0.9
    assert 0.3 < happy[28] < 0.7 and t[28] == pytest.approx(1.12)  # about halfway between the keyframes


def test_cli_redraw_errors(capsys, tmp_path):
    from affectstudio.apps.cli import main
    from affectstudio.assets import asset_path

    clip = str(asset_path("samples", "silent_talk.mp4"))
    for extra, match in ((["--face", "zz"], "face must be"), (["--face", "-1"], "count from 0")):
        with pytest.raises(SystemExit) as exc:
            main(["dub", "--video", clip, "--text", "hi", "--redraw-face", *extra, "-o", str(tmp_path / "o.mp4")])
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and match in err[0], err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_redraw_end_to_end(tmp_path):
    """2 s of the bundled clip (256²) re-dubbed: same frames and length, the mouth changed, the background kept."""
    import torch

    from affectstudio.assets import asset_path
    from affectstudio.pipelines.dubbing import DubbingPipeline
    from affectstudio.video_io import probe_video, read_video, write_video

    frames, fps = read_video(asset_path("samples", "silent_talk.mp4"), max_frames=60)
    clip = write_video(tmp_path / "clip.mp4", frames, fps)
    src, _ = read_video(clip)
    out_path = tmp_path / "redub.mp4"
    out = DubbingPipeline.from_pretrained()(
        video=str(clip),
        text="Open the door.",
        emotion="happy",
        redraw_face=True,
        output_path=str(out_path),
        generator=torch.Generator().manual_seed(0),
    )
    info = probe_video(out_path, count_frames=True)
    assert info.num_frames == 60 and info.has_audio and out.redraw.redrawn == 60 and out.redraw.shots == 1
    got, _ = read_video(out_path)
    diff = np.abs(got.astype(np.int16) - src.astype(np.int16)).mean(-1)  # (t, h, w)
    mouth = diff[:, 150:175, 110:150].mean()
    corner = diff[:, :40, :40].mean()
    assert mouth > 4.0 * max(corner, 0.5), (mouth, corner)
    with pytest.raises(InputTooLongError, match="video lasts"):
        DubbingPipeline.from_pretrained()(
            video=str(clip),
            text="This script is much too long to be spoken in the two seconds this little clip lasts.",
            redraw_face=True,
            output_path=str(tmp_path / "long.mp4"),
        )
    assert not (tmp_path / "long.mp4").exists()
