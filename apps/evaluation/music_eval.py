"""Measure scores from the *rendered audio* (and the score's MIDI for the symbolic statistics).

    python -m affectstudio.apps.evaluation.music_eval [--out DIR] [--real VIDEO]

Makes synthetic clips with known cut times (bright/saturated/fast and dark/desaturated/slow), scores them
with the bundled pipeline, decodes the mp4s (AAC) and reports, per clip: duration error, integrated
loudness of the score, clipping after AAC decode, tempo (librosa beat tracker), key (Krumhansl–Schmuckler on
the audio's chroma), median distance cut → nearest strong onset, chroma change at cuts vs at other bar lines,
melody pitch-class entropy per bar and notes per beat (vs the corpus), inter-onset intervals of the audio,
and seed-to-seed difference; plus ``--emotion sad`` on the bright clip and a calm → tense curve (density
and loudness over time). Writes ``eval.json`` and the PNGs into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

CUTS = (3.2, 7.6, 12.0, 15.1, 20.4, 24.0)


def audio_metrics(wave: np.ndarray, sr: int, cuts, bar_starts) -> dict:
    import librosa
    from librosa.beat import beat_track
    from librosa.onset import onset_detect, onset_strength

    from affectstudio.models.music.theory import estimate_key

    y = librosa.resample(wave, orig_sr=sr, target_sr=22050)
    sr2 = 22050
    env = onset_strength(y=y, sr=sr2)
    tempo = float(np.atleast_1d(beat_track(onset_envelope=env, sr=sr2)[0])[0])
    onsets = onset_detect(onset_envelope=env, sr=sr2, units="time")
    strength = env[librosa.time_to_frames(onsets, sr=sr2)] if len(onsets) else np.zeros(0)
    strong = onsets[strength >= np.percentile(strength, 60)] if len(onsets) else onsets
    dist = [float(np.min(np.abs(strong - c))) for c in cuts] if len(strong) else []
    chroma = librosa.feature.chroma_cqt(y=y, sr=sr2)
    key, r = estimate_key(chroma.mean(1))
    fr = lambda t: librosa.time_to_frames(t, sr=sr2)  # noqa: E731

    def change(t):  # chroma distance 0.6 s before vs after t
        a = chroma[:, max(0, fr(t - 0.6)) : fr(t - 0.05)].mean(1)
        b = chroma[:, fr(t + 0.05) : fr(t + 0.6)].mean(1)
        return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))

    others = [b for b in bar_starts if all(abs(b - c) > 0.3 for c in cuts) and 0.7 < b < len(wave) / sr - 0.7]
    ioi = np.diff(onsets)
    return {
        "tempo_bpm": round(tempo, 1),
        "key": key.name,
        "key_r": round(r, 3),
        "cut_to_strong_onset_s": [round(d, 3) for d in dist],
        "cut_to_onset_median_s": round(float(np.median(dist)), 3) if dist else None,
        "chroma_change_at_cuts": round(float(np.mean([change(c) for c in cuts])), 3) if len(cuts) else None,
        "chroma_change_other_bars": round(float(np.mean([change(b) for b in others])), 3) if others else None,
        "ioi_median_s": round(float(np.median(ioi)), 3) if len(ioi) else None,
        "ioi_below_80ms": round(float(np.mean(ioi < 0.08)), 3) if len(ioi) else None,
    }


def midi_metrics(pm) -> dict:
    mel = next((i for i in pm.instruments if i.name == "melody"), None)
    if mel is None or not mel.notes:
        return {}
    downbeats = np.r_[pm.get_downbeats(), pm.get_end_time()]
    beats = pm.get_beats()
    ent, npb = [], []
    for a, b in zip(downbeats[:-1], downbeats[1:]):
        notes = [n for n in mel.notes if a <= n.start < b]
        nb = max(1, int(np.sum((beats >= a - 1e-6) & (beats < b - 1e-6))))
        if notes:
            h = np.zeros(12)
            for n in notes:
                h[n.pitch % 12] += n.end - n.start
            q = h / h.sum()
            ent.append(float(-(q[q > 0] * np.log2(q[q > 0])).sum()))
            npb.append(len(notes) / nb)
    pitches = np.array([n.pitch for n in mel.notes])
    repeats = np.max(np.diff(np.flatnonzero(np.diff(np.r_[-1, pitches, -1]) != 0)))
    return {
        "melody_pc_entropy_bar_p10_p50_p90": np.percentile(ent, [10, 50, 90]).round(2).tolist(),
        "melody_notes_per_beat_p10_p50_p90": np.percentile(npb, [10, 50, 90]).round(2).tolist(),
        "melody_longest_same_pitch_run": int(repeats),
    }


def evaluate(out_dir: Path, real: Path | None = None, steps: int = 8) -> dict:
    import torch

    from affectstudio.conditioning.video import synthetic_clip
    from affectstudio.media import load_audio
    from affectstudio.models.music.mix import integrated_loudness
    from affectstudio.pipelines.music import VideoMusicPipeline

    out_dir.mkdir(parents=True, exist_ok=True)
    clips = {
        "bright": synthetic_clip(out_dir / "bright.mp4", "bright", 28.0, CUTS, size=(320, 180), speech=(16, 21)),
        "dark": synthetic_clip(out_dir / "dark.mp4", "dark", 28.0, CUTS, size=(320, 180), seed=1),
    }
    if real is not None:
        clips["real"] = Path(real)
    pipe = VideoMusicPipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    runs: dict[str, dict[str, Any]] = {name: dict(video=path) for name, path in clips.items()}
    runs["bright_emotion_sad"] = dict(video=clips["bright"], emotion="sad")
    runs["bright_seed1"] = dict(video=clips["bright"], seed=1)
    runs["dark_calm_to_tense"] = dict(video=clips["dark"], emotion="neutral:0.3@0; fearful@26")
    report: dict[str, Any] = {}
    outs: dict = {}
    for name, kw in runs.items():
        seed = kw.pop("seed", 0)
        out = pipe(**kw, num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(seed))
        mp4 = out.save(out_dir / f"{name}.mp4", video=kw["video"])
        out.save(out_dir / f"{name}.wav")
        out.save(out_dir / f"{name}.png")
        out.save(out_dir / f"{name}.mid")
        decoded, sr = load_audio(mp4)
        from affectstudio.video_io import probe_video

        vid = probe_video(kw["video"], count_frames=True).duration  # the video stream (frames counted)
        cuts = out.plan.anchored_cuts
        r = {
            "style": out.style,
            "planned_tempo": round(out.tempo, 1),
            "planned_key": out.key,
            "video_s": round(vid, 3),
            "mp4_audio_s": round(len(decoded) / sr, 3),
            "score_lufs": round(integrated_loudness(out.waveform, out.sample_rate), 2),
            "mp4_peak_after_aac": round(float(np.abs(decoded).max()), 4),
            "mp4_clipped_samples": int(np.sum(np.abs(decoded) >= 0.999)),
            "cuts_detected": [round(float(c), 2) for c in out.cut_times],
            "timings_s": {k: round(v, 2) for k, v in out.timings.items()},
        }
        cut_bars = np.flatnonzero(out.plan.cut_bar)
        r["chord_change_at_cuts"] = f"{sum(out.chords[i] != out.chords[i - 1] for i in cut_bars)}/{len(cut_bars)}"
        r.update(audio_metrics(out.waveform, out.sample_rate, cuts, out.plan.bar_starts))
        r.update(midi_metrics(out.midi))
        n = len(out.waveform)
        thirds = np.array_split(out.waveform[: n - int(2.5 * out.sample_rate)], 3)
        r["rms_db_thirds"] = [round(float(20 * np.log10(np.sqrt(np.mean(t**2)) + 1e-9)), 1) for t in thirds]
        bars = np.array_split(np.arange(out.plan.num_bars), 3)
        r["plan_density_thirds"] = [round(float(out.plan.density[b].mean()), 2) for b in bars]
        report[name], outs[name] = r, out
    a, b = outs["bright"].waveform, outs["bright_seed1"].waveform
    report["seed_waveform_correlation"] = round(float(np.corrcoef(a, b)[0, 1]), 3)
    from affectstudio.apps.training.music_data import CACHE, corpus_statistics

    if CACHE.exists():
        import pickle

        with open(CACHE, "rb") as f:
            report["corpus"] = corpus_statistics(pickle.load(f))
    (out_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="music_eval")
    ap.add_argument("--real", help="also score a real video clip")
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args(argv)
    print(json.dumps(evaluate(Path(args.out), Path(args.real) if args.real else None, args.steps), indent=2))


if __name__ == "__main__":
    main()
