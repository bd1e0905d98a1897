"""Measure the dubbing Show items (evaluation only; needs the eval extra):

    .venv/bin/python -m affectstudio.apps.evaluation.dubbing_measure --prosody auto --out dubbing_eval.json

Per emotion at full intensity on English scripts (TTS): DNSMOS OVRL, Whisper tiny.en WER, mean F0, level, the
project's speech-emotion arousal; happy/sad F0 ratio; angry − neutral level; intensity sweeps; a calm → angry
curve phoneme by phoneme against neutral; dubbing of the bundled silent clip (duration error, IoU of voice
activity with the lip-active spans).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

SCRIPTS = [
    "I never thought I would see the Earth from up here. It is so quiet, and so beautiful.",
    "Please put the books back on the shelf before you leave the room.",
    "We found the old map in the attic, and nobody knows who drew it.",
    "The train to the coast was late again, so we walked along the river.",
]


def _level(w):
    x = w[np.abs(w) > 0.01]
    return float(20 * np.log10(np.sqrt(np.mean(x**2)))) if x.size else -120.0


def main(argv=None) -> None:  # pragma: no cover - evaluation entry point
    from affectstudio.apps.evaluation.dubbing_eval import dnsmos, speech_stats, transcribe, word_error_rate
    from affectstudio.assets import asset_path
    from affectstudio.conditioning.emotion import EMOTIONS, load_encoder
    from affectstudio.conditioning.lips import span_iou
    from affectstudio.conditioning.speech_features import speech_activity
    from affectstudio.pipelines.dubbing import DubbingPipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--prosody", default="auto")
    ap.add_argument("--pipeline", default=None, help="a saved DubbingPipeline folder (default: the bundled one)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--scripts", type=int, default=len(SCRIPTS))
    args = ap.parse_args(argv)
    pipe = DubbingPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    ser = load_encoder("speech")
    kw = {"prosody": args.prosody}
    rows, res = [], {"prosody": args.prosody, "dit": pipe.prosody_dit is not None}
    for e in EMOTIONS:
        for k, text in enumerate(SCRIPTS[: args.scripts]):
            out = pipe(video=None, text=text, emotion=e, generator=torch.Generator().manual_seed(k), **kw)
            w, sr = out.waveform, out.sample_rate
            hyp = transcribe(w, sr)
            rows.append(
                {
                    "emotion": e,
                    "script": k,
                    "ovrl": dnsmos(w, sr)["ovrl"],
                    "wer": word_error_rate(text, hyp),
                    "mean_f0": speech_stats(w, sr)["mean_f0"],
                    "level_db": _level(w),
                    "arousal": float(ser.encode((w, sr)).arousal),
                    "seconds": out.duration,
                    "hyp": hyp,
                }
            )
    per = {}
    for e in EMOTIONS:
        r = [x for x in rows if x["emotion"] == e]
        per[e] = {
            k: round(float(np.mean([x[k] for x in r])), 3)
            for k in ("ovrl", "wer", "mean_f0", "level_db", "arousal", "seconds")
        }
        per[e]["min_ovrl"] = round(min(x["ovrl"] for x in r), 3)
        per[e]["max_wer"] = round(max(x["wer"] for x in r), 3)
    res["per_emotion"] = per
    res["happy_sad_f0_ratio"] = round(per["happy"]["mean_f0"] / per["sad"]["mean_f0"], 3)
    res["angry_minus_neutral_db"] = round(per["angry"]["level_db"] - per["neutral"]["level_db"], 2)
    sweeps = {}
    for e in ("happy", "angry", "sad"):
        pts = []
        for a in (0.0, 0.25, 0.5, 0.75, 1.0):
            out = pipe(
                video=None,
                text=SCRIPTS[0],
                emotion=e,
                emotion_intensity=a,
                generator=torch.Generator().manual_seed(0),
                **kw,
            )
            pts.append(
                {
                    "intensity": a,
                    "mean_f0": round(speech_stats(out.waveform, 24000)["mean_f0"], 2),
                    "level_db": round(_level(out.waveform), 2),
                }
            )
        sweeps[e] = pts
    res["intensity_sweeps"] = sweeps
    # curve, phoneme by phoneme against neutral
    from affectstudio.models.dubbing.prosody import f0_track

    def tok(out):
        t, f0 = f0_track(out.waveform, 24000)
        f, r = [], []
        for a, b in out.token_times:
            m = (t >= a) & (t < b) & (f0 > 0)
            f.append(f0[m].mean() if m.any() else np.nan)
            seg = out.waveform[int(a * 24000) : max(int(b * 24000), int(a * 24000) + 1)]
            r.append(np.sqrt(np.mean(seg**2)) + 1e-9)
        return np.array(f), np.array(r)

    text = SCRIPTS[0] + " " + SCRIPTS[1]
    fc, rc = tok(
        pipe(video=None, text=text, emotion="neutral@0; angry@6", generator=torch.Generator().manual_seed(0), **kw)
    )
    fn, rn = tok(pipe(video=None, text=text, emotion="neutral", generator=torch.Generator().manual_seed(0), **kw))
    v = np.flatnonzero(np.isfinite(fc / fn))
    res["curve_calm_to_angry_thirds"] = [
        {
            "f0_ratio": round(float(np.exp(np.mean(np.log(fc[p] / fn[p])))), 3),
            "level_db": round(float(np.median(20 * np.log10(rc[p] / rn[p]))), 2),
        }
        for p in np.array_split(v, 3)
    ]
    clip = asset_path("samples", "silent_talk.mp4")
    script = asset_path("samples", "script.txt").read_text().strip()
    dub = []
    for e in ("neutral", "happy", "sad", "angry"):
        out = pipe(video=clip, text=script, emotion=e, generator=torch.Generator().manual_seed(0), **kw)
        act = speech_activity(out.waveform, out.sample_rate, out.lips.fps)
        dub.append(
            {
                "emotion": e,
                "duration_error_s": round(abs(out.duration - out.lips.duration), 4),
                "iou_voice_lips": round(span_iou(act, out.lips.active), 3),
                "ovrl": round(dnsmos(out.waveform, 24000)["ovrl"], 3),
                "wer": round(word_error_rate(script, transcribe(out.waveform, 24000)), 3),
            }
        )
    res["dubbing_clip"] = dub
    res["rows"] = rows
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":  # pragma: no cover
    main()
