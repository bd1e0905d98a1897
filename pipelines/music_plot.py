"""The picture of a score: valence and arousal over time, with the cuts, bar lines, sections and per-bar
density/loudness targets marked (people read this faster than numbers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectstudio.media import atomic_path


def plot_score(out, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    curve, plan = out.emotion_curve, out.plan
    t = (np.arange(curve.num_frames) + 0.5) / (curve.num_frames / plan.duration) if curve.is_curve else np.array([0.0])
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 5.5), dpi=100, sharex=True, height_ratios=(3, 2))
    ax.plot(t, curve.valence, color="tab:blue", lw=2, label="valence")
    ax.plot(t, curve.arousal, color="tab:red", lw=2, label="arousal")
    for b in plan.bar_starts:
        ax.axvline(b, color="0.85", lw=0.8, zorder=0)
        ax2.axvline(b, color="0.85", lw=0.8, zorder=0)
    for k, c in enumerate(out.cut_times):
        for a in (ax, ax2):
            a.axvline(c, color="k", lw=1.5, ls="--", label="cut" if k == 0 and a is ax else None)
    sec_starts = plan.bar_starts[np.r_[True, plan.section[1:] != plan.section[:-1]]]
    for s in sec_starts:
        ax.annotate("§", (s, 0.93), color="0.3", fontsize=9)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(
        ylim=(-1.05, 1.05),
        ylabel="emotion",
        title=f"{plan.key.name}, {plan.tempo:.0f} bpm, style {out.style}: emotion, cuts (dashed), bar lines (grey)",
    )
    ax.legend(loc="lower right", fontsize=8, ncol=3)
    edges = np.r_[plan.bar_starts, plan.bar_ends[-1]]
    ax2.stairs(plan.density, edges, color="tab:green", lw=2, label="density target")
    ax2.stairs(plan.loudness, edges, color="tab:purple", lw=2, label="loudness target")
    ax2.set(ylim=(0, 1.05), xlim=(0, plan.duration), xlabel="seconds", ylabel="per bar")
    ax2.legend(loc="lower right", fontsize=8, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
