"""``affectstudio demo``: the showcase rendered from bundled assets only (no network, no user files):
emotion readings (JSON + a valence–arousal plot) and talking-portrait clips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from affectstudio.assets import asset_path


def emotion_showcase(output_dir: Path) -> Iterator[str]:
    """Read the emotion of the bundled sentences, speech sample and portrait; write JSON and a valence–arousal plot."""
    from affectstudio.apps.jobs.render import read_emotions
    from affectstudio.media import atomic_path

    sentences_file = asset_path("samples", "sentences.txt")
    sentences = [s for s in sentences_file.read_text().splitlines() if s.strip()]
    readings = [
        {"source": "text", "input": s, **e.to_dict()}
        for s, e in zip(sentences, read_emotions(text_file=sentences_file))
    ]
    speech = asset_path("samples", "speech.wav")
    readings.append({"source": "speech", "input": speech.name, **read_emotions(audio=speech)[0].to_dict()})
    face = asset_path("samples", "portrait.jpg")
    readings.append({"source": "face", "input": face.name, **read_emotions(image=face)[0].to_dict()})

    json_path = output_dir / "emotion.json"
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(readings, indent=2) + "\n")
    yield f"wrote {json_path} ({len(readings)} emotion readings: {len(sentences)} sentences, 1 speech clip, 1 face)"
    png_path = output_dir / "emotion_valence_arousal.png"
    plot_valence_arousal(readings, png_path)
    yield f"wrote {png_path}"


def plot_valence_arousal(readings: list[dict], path: Path) -> None:
    """Readings on the valence–arousal plane. Each point carries only its number; the inputs are listed beside
    the plane (a key), so labels never overlap however close the readings fall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from affectstudio.conditioning.emotion import VAD_ANCHORS
    from affectstudio.media import atomic_path

    fig, (ax, key) = plt.subplots(1, 2, figsize=(12, 7), dpi=100, gridspec_kw={"width_ratios": [7, 5]})
    ax.axhline(0, color="0.85", lw=1)
    ax.axvline(0, color="0.85", lw=1)
    anchors = {label: (v, a) for label, (v, a, _) in VAD_ANCHORS.items()}
    for label, (v, a) in anchors.items():
        ax.scatter(v, a, marker="x", color="0.6")
        # an anchor with a close neighbour to its right puts its label above-left, so the two never collide
        crowded = any(0 < v2 - v < 0.3 and abs(a2 - a) < 0.1 for v2, a2 in anchors.values())
        ax.annotate(
            label,
            (v, a),
            textcoords="offset points",
            xytext=(-4, 6) if crowded else (4, -11),
            ha="right" if crowded else "left",
            color="0.5",
            fontsize=9,
        )
    colors = {"text": "tab:blue", "speech": "tab:orange", "face": "tab:green", "portrait": "tab:red"}
    lines = []
    for i, r in enumerate(readings, start=1):
        color = colors.get(r["source"], "k")
        ax.scatter(
            r["valence"],
            r["arousal"],
            s=60 + 160 * r["intensity"],
            color=color,
            alpha=0.35,
            label=r["source"],
            edgecolors=color,
        )
        ax.text(r["valence"], r["arousal"], str(i), ha="center", va="center", fontsize=7, fontweight="bold")
        text = r["input"] if len(r["input"]) <= 44 else r["input"][:43] + "…"
        lines.append((f"{i:2d}. {text} → {r['label']}", color))
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="lower right")
    ax.set(
        xlim=(-1.1, 1.1),
        ylim=(-1.1, 1.1),
        xlabel="valence",
        ylabel="arousal",
        title="AffectStudio demo: emotion readings (size = intensity)",
    )
    key.axis("off")
    step = min(0.05, 0.95 / max(1, len(lines)))
    for j, (line, color) in enumerate(lines):
        key.text(
            0.0, 0.98 - j * step, line, color=color, fontsize=8, family="monospace", va="top", transform=key.transAxes
        )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


DEMO_EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")


def portrait_showcase(output_dir: Path) -> Iterator[str]:
    """The bundled portrait animated three ways: by the bundled speech (emotion read from the voice), by the
    bundled script (spoken by the neural voice, emotion from its text), and side by side in five emotions."""
    import torch

    from affectstudio.conditioning.emotion import load_encoder
    from affectstudio.pipelines.portrait import TalkingPortraitPipeline
    from affectstudio.video_io import write_video

    image, speech = asset_path("samples", "portrait.jpg"), asset_path("samples", "speech.wav")
    script = asset_path("samples", "script.txt").read_text().strip()
    pipe = TalkingPortraitPipeline.from_pretrained()
    seed = lambda: torch.Generator("cpu").manual_seed(0)  # noqa: E731

    path = output_dir / "portrait_speech.mp4"
    out = pipe(image=image, audio=speech, generator=seed(), output_path=path, output_type="none")
    yield f"wrote {path} (speech.wav lip-synced; emotion read from the voice: {out.emotion.describe()})"

    path = output_dir / "portrait_script.mp4"
    emotion = load_encoder("text").encode(script)
    # the bundled portrait is a woman: she speaks with the female preset (the user chooses; nothing guesses from faces)
    out = pipe(
        image=image, text=script, emotion=emotion, generator=seed(), output_path=path, output_type="none", voice="jess"
    )
    yield f"wrote {path} (script.txt spoken by the voice jess; emotion read from the text: {emotion.describe()})"

    path = output_dir / "portrait_emotions.mp4"
    out = pipe(image=image, audio=speech, emotion=list(DEMO_EMOTIONS), generator=[seed() for _ in DEMO_EMOTIONS])
    tiled = np.concatenate(list(out.frames), axis=2)  # (b, t, h, w, 3) → (t, h, b*w, 3), left to right
    write_video(path, tiled, out.fps, out.audio, out.sample_rate)
    yield f"wrote {path} (the same speech, left to right: {', '.join(DEMO_EMOTIONS)})"


def music_showcase(output_dir: Path) -> Iterator[str]:
    """Music for video on two clips made here with known cuts (no bundled video): bright, saturated and fast vs
    dark, desaturated and slow; each as mp4 + MIDI + a plot of the emotion curve with cuts and bar lines. The
    bright clip also carries speech-like sound, so the score ducks under it."""
    import torch

    from affectstudio.conditioning.video import synthetic_clip
    from affectstudio.pipelines.music import VideoMusicPipeline

    pipe = VideoMusicPipeline.from_pretrained()
    cuts = (3.0, 6.5, 10.0, 14.2)
    for mood in ("bright", "dark"):
        clip = synthetic_clip(
            output_dir / f"music_{mood}_input.mp4",
            mood,
            18.0,
            cut_times=cuts,
            size=(480, 270),
            speech=(7.0, 10.0) if mood == "bright" else None,
            seed=0 if mood == "bright" else 1,
        )
        out = pipe(clip, generator=torch.Generator("cpu").manual_seed(0))
        for suffix in (".mp4", ".mid", ".png"):
            out.save(output_dir / f"music_{mood}{suffix}", video=clip)
        yield (
            f"wrote {output_dir / f'music_{mood}.mp4'} (+ .mid, .png): {out.key}, {out.tempo:.0f} bpm, style "
            f"{out.style}, cuts at {', '.join(f'{c:.1f}' for c in out.cut_times)} s"
        )


def dubbing_showcase(output_dir: Path) -> Iterator[str]:
    """The bundled silent talking clip dubbed with the sample script in three emotions (speech timed to its lips),
    plus emotional text-to-speech of the same script rising from calm to angry."""
    import torch

    from affectstudio.pipelines.dubbing import DubbingPipeline

    pipe = DubbingPipeline.from_pretrained()
    clip, script = asset_path("samples", "silent_talk.mp4"), asset_path("samples", "script.txt").read_text().strip()
    for emotion in ("happy", "sad", "angry"):
        out = pipe(video=clip, text=script, emotion=emotion, generator=torch.Generator().manual_seed(0))
        out.save(output_dir / f"dub_{emotion}.mp4")
        phrases = len(out.alignment.segments)
        yield f"wrote {output_dir / f'dub_{emotion}.mp4'} ({emotion}; speech in {phrases} phrases on the lips)"
    out = pipe(video=None, text=script, emotion="neutral@0; angry@3.5", generator=torch.Generator().manual_seed(0))
    out.save(output_dir / "tts_calm_to_angry.wav")
    yield f"wrote {output_dir / 'tts_calm_to_angry.wav'} ({out.duration:.1f} s, calm rising to angry)"


def run_demo(output_dir: Path) -> Iterator[str]:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    yield from emotion_showcase(output_dir)
    yield from portrait_showcase(output_dir)
    yield from music_showcase(output_dir)
    yield from dubbing_showcase(output_dir)
    from affectstudio.apps.jobs.scene import scene_showcase

    yield from scene_showcase(output_dir)  # the closing clip: one curve steers face, voice and score
    yield f"demo finished: outputs are in {output_dir.resolve()}"
