"""Quick evaluation of a trained talking-portrait DiT
(``python -m affectstudio.apps.evaluation.portrait_eval DIR [--wav WAV ...]``): lip sync on
real recordings and held-out synthetic clips (the project's one lip-sync evaluator, on the lip gap decoded from
generated motion), and the expression channels per emotion. Rendered-frame evaluation with independent models
is :mod:`affectstudio.apps.evaluation.quality`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from affectstudio.apps.training.portrait_data import DIT_CHANNELS, FPS
from affectstudio.errors import InputError


def load_trained(folder: str | Path):
    """``(AffectDiT float32, mean (C,), std (C,), stats)`` from a training output folder."""
    from affectstudio.models.dit import AffectDiT

    folder = Path(folder)
    stats = json.loads((folder / "motion_stats.json").read_text())
    if list(stats["motion_channels"]) != list(DIT_CHANNELS):
        raise InputError(f"{folder} was trained on other channels: {stats['motion_channels']}")
    dit = AffectDiT.from_pretrained(str(folder / "dit"), torch_dtype=torch.float32).eval()
    return dit, np.asarray(stats["motion_mean"], np.float32), np.asarray(stats["motion_std"], np.float32), stats


@torch.no_grad()
def generate_motion(
    dit,
    mean,
    std,
    wave,
    sr,
    emotion="neutral",
    intensity=1.0,
    steps=10,
    seed=0,
    audio_guidance=1.5,
    emotion_guidance=1.5,
    window=100,
    overlap=20,
) -> np.ndarray:
    """Sample DiT motion ``(t, C)`` (denormalised, DIT_CHANNELS order) for speech, as the pipeline does."""
    from affectstudio.conditioning.emotion.embedding import EmotionEmbedding
    from affectstudio.conditioning.speech_features import audio_features
    from affectstudio.models.flow import make_scheduler, sample_windowed

    content = {"audio": torch.from_numpy(audio_features(wave, sr, fps=FPS))[None]}  # (1, t, F)
    t = content["audio"].shape[1]
    emb = EmotionEmbedding.from_label(emotion, intensity)
    cond = emb.as_condition(t)[None]
    neg = emb.mirror().as_condition(t)[None] if emotion_guidance != 1.0 else None
    x = sample_windowed(
        dit,
        make_scheduler("flow_euler"),
        (1, t, len(DIT_CHANNELS)),
        content,
        cond,
        window=window,
        overlap=overlap,
        negative_emotion=neg,
        guidance_scales={"content": audio_guidance, "emotion": emotion_guidance},
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
    )
    return x[0].numpy() * std + mean


def lip_gap(motion: np.ndarray, neutral_landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap ``(t,)`` in inter-ocular units of the mesh decoded from DiT motion on ``neutral_landmarks``."""
    from affectstudio.conditioning.face import KEYPOINTS, interocular
    from affectstudio.models.portrait import MOTION_CHANNELS, MotionCodec

    full = torch.zeros(motion.shape[0], len(MOTION_CHANNELS))
    full[:, [MOTION_CHANNELS.index(c) for c in DIT_CHANNELS]] = torch.from_numpy(motion).float()
    lm = MotionCodec().decode(full, neutral_landmarks).numpy()  # (t, 478, 3) pixels
    up, lo = KEYPOINTS["upper_lip_inner"], KEYPOINTS["lower_lip_inner"]
    return (lm[:, lo, 1] - lm[:, up, 1]) / interocular(neutral_landmarks)


def lipsync_report(dit, mean, std, wave, sr, neutral_landmarks: np.ndarray, **kw) -> dict:
    """The project's one lip-sync evaluator (:func:`affectstudio.apps.evaluation.metrics.lipsync_metrics`) on the
    inner-lip gap decoded from generated motion — forward speech and time-reversed speech (control)."""
    from affectstudio.apps.evaluation.metrics import lipsync_metrics, rms_envelope

    gap = lip_gap(generate_motion(dit, mean, std, wave, sr, **kw), neutral_landmarks)
    gap_rev = lip_gap(generate_motion(dit, mean, std, wave[::-1].copy(), sr, **kw), neutral_landmarks)
    env = rms_envelope(wave, sr, num_frames=len(gap), fps=FPS)
    return lipsync_metrics(
        gap, gap_rev, env, reference_gap=float(lip_gap(np.zeros((1, len(DIT_CHANNELS))), neutral_landmarks)[0])
    )


def emotion_report(dit, mean, std, wave, sr, emotions=("neutral", "happy", "sad", "angry", "surprised"), **kw) -> dict:
    """Mean of the expression channels over a clip for each emotion condition."""
    keys = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU12", "AU15", "AU23", "pitch")
    out = {}
    for e in emotions:
        m = generate_motion(dit, mean, std, wave, sr, emotion=e, **kw)
        out[e] = {k: round(float(m[:, DIT_CHANNELS.index(k)].mean()), 3) for k in keys}
    return out


def _append_eval(folder: Path, report: dict, argv: list[str]) -> None:
    """Replace the ``## Evaluation`` section of ``folder/TRAINING.md`` with ``report``."""
    md = folder / "TRAINING.md"
    text = md.read_text().split("\n## Evaluation")[0].rstrip() + "\n" if md.exists() else ""
    lines = [
        "",
        "## Evaluation",
        "",
        f"Command: `affectstudio train portrait {' '.join(argv)}` (full numbers: eval.json). "
        "Motion sampled with 10 flow-Euler steps, audio/emotion guidance 1.5, seed 0, neutral emotion.",
        "",
        "| speech | corr(jaw_open, envelope) | reversed-speech control | corr(lip gap, envelope) | control | "
        "jaw_open speech / silence |",
        "|---|---|---|---|---|---|",
    ]
    rows = dict(report["real"])
    rows["synthetic held-out (mean)"] = report["synthetic"]
    for name, r in rows.items():
        gap = (
            f"{r['gap_corr_envelope']:.2f} | {r['gap_corr_reversed_control']:.2f}"
            if "gap_corr_envelope" in r
            else "– | –"
        )
        lines.append(
            f"| {name} | {r['corr_envelope']:.2f} | {r['corr_reversed_control']:.2f} | {gap} | "
            f"{r['jaw_speech_mean']:.3f} / {r['jaw_silence_mean']:.3f} |"
        )
    if "emotion" in report:
        keys = list(next(iter(report["emotion"].values())))
        lines += [
            "",
            "Mean expression channels on the first real recording per emotion condition (intensity 1):",
            "",
            "| emotion | " + " | ".join(keys) + " |",
            "|---" * (len(keys) + 1) + "|",
        ]
        for e, v in report["emotion"].items():
            lines.append(f"| {e} | " + " | ".join(f"{v[k]:.2f}" for k in keys) + " |")
    md.write_text(text + "\n".join(lines) + "\n")


def evaluate(folder: str | Path, wavs: list[str], heldout_clips: int = 8, heldout_seed: int = 1) -> dict:
    """Lip-sync on real recordings (``wavs``) and on held-out synthetic clips; emotion response."""
    from affectstudio.apps.training.portrait_data import make_clip
    from affectstudio.conditioning.espeak import SPEECH_SAMPLE_RATE
    from affectstudio.conditioning.face import analyze_face
    from affectstudio.media import load_audio
    from affectstudio.models.portrait import MotionCodec

    dit, mean, std, stats = load_trained(folder)
    kw = {"window": stats["window"], "overlap": stats["overlap"]}
    report: dict = {"real": {}, "synthetic": {}}
    from skimage import data as skdata

    # a real photo's estimated neutral mesh, for the decoded lip gap
    neutral = MotionCodec().estimate_neutral(analyze_face(skdata.astronaut()))[0].numpy()
    for w in wavs:
        wave, sr = load_audio(w, sample_rate=SPEECH_SAMPLE_RATE)
        report["real"][Path(w).name] = lipsync_report(dit, mean, std, wave, sr, neutral_landmarks=neutral, **kw)
        print(Path(w).name, json.dumps(report["real"][Path(w).name]), flush=True)
    j = DIT_CHANNELS.index("jaw_open")
    rows = []
    for i in range(heldout_clips):
        c = make_clip(heldout_seed * 1_000_003 + i)
        r = lipsync_report(dit, mean, std, c["wave"], SPEECH_SAMPLE_RATE, neutral, **kw)
        jaw = generate_motion(dit, mean, std, c["wave"], SPEECH_SAMPLE_RATE, **kw)[:, j]
        n = min(len(jaw), len(c["motion"]))
        r["corr_target_jaw"] = float(np.corrcoef(jaw[:n], c["motion"][:n, j])[0, 1])
        rows.append(r)
    report["synthetic"] = {
        k: float(np.nanmean([r[k] for r in rows])) for k in rows[0] if isinstance(rows[0][k], (int, float))
    }
    print("synthetic held-out (mean of", heldout_clips, "clips)", json.dumps(report["synthetic"]), flush=True)
    if wavs:
        wave, sr = load_audio(wavs[0], sample_rate=SPEECH_SAMPLE_RATE)
        report["emotion"] = emotion_report(dit, mean, std, wave[: sr * 12], sr, **kw)
        for e, v in report["emotion"].items():
            print(f"{e:10s}", json.dumps(v), flush=True)
    return report


def main(argv: list[str] | None = None) -> dict:
    """``python -m affectstudio.apps.evaluation.portrait_eval DIR [--wav WAV ...]``: evaluate a trained output
    folder (lip sync, emotion), write ``DIR/eval.json`` and append the summary to its TRAINING.md."""
    import argparse
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m affectstudio.apps.evaluation.portrait_eval", description=main.__doc__)
    ap.add_argument("folder", help="a trained output folder (affectstudio train portrait -o DIR)")
    ap.add_argument("--wav", nargs="*", default=[], help="real speech recordings, never used in training")
    args = ap.parse_args(argv)
    report = evaluate(args.folder, args.wav)
    (Path(args.folder) / "eval.json").write_text(json.dumps(report, indent=1))
    _append_eval(Path(args.folder), report, argv)
    return {"output": Path(args.folder), "report": report}


if __name__ == "__main__":
    main()
