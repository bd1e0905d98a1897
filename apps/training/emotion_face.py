"""Calibrate the face emotion encoder (writes ``assets/emotion_face``).

What this does, honestly: there is no labelled expression dataset offline, so the encoder is calibrated on
*synthetic* action-unit vectors sampled from :data:`EMFACS_PROTOTYPES` — random intensity, per-AU jitter,
one-sided contempt, plus the measurement noise and co-activations that the mediapipe geometry shows on the
few real faces on hand (spurious AU activations up to ~0.45 on neutral faces; broad smiles also raising
AU5/9/10/14/25/26; speech opening the mouth). Real faces are used only to *report* predictions afterwards.

    python -m affectstudio.apps.training.emotion_face [--output DIR] [--steps N] [--seed S] [IMAGE ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from affectstudio.conditioning.emotion.embedding import EMOTIONS
from affectstudio.conditioning.emotion.face import FaceEmotionEncoder
from affectstudio.conditioning.emotion.facs import EMFACS_PROTOTYPES, ENCODER_FEATURES, UNILATERAL
from affectstudio.conditioning.face import analyze_faces
from affectstudio.conditioning.face_features import ACTION_UNITS, measure_action_units

_AU = {a: i for i, a in enumerate(ACTION_UNITS)}


def _u(g: torch.Generator, n: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def sample_aus(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic ``(n, F)`` encoder features and ``(n,)`` labels (indices into EMOTIONS)."""
    g = generator
    labels = torch.randint(len(EMOTIONS), (n,), generator=g)
    k = _u(g, n, 0.25, 1.0)  # expression intensity
    right = torch.zeros(n, len(ACTION_UNITS))
    left = torch.zeros(n, len(ACTION_UNITS))
    for ei, emo in enumerate(EMOTIONS):
        rows = labels == ei
        m = int(rows.sum())
        for au, w in EMFACS_PROTOTYPES[emo].items():
            jit = (1 + 0.3 * torch.randn(m, generator=g)).clamp(0.3, 1.6)
            val = k[rows] * w * jit
            side = UNILATERAL.get(emo, {}).get(au)
            if side is None:
                right[rows, _AU[au]] = val
                left[rows, _AU[au]] = val * (1 + 0.15 * torch.randn(m, generator=g))
            else:  # one side only, either side of the face
                flip = torch.rand(m, generator=g) < 0.5
                right[rows, _AU[au]] = torch.where(flip, 0.0, val)
                left[rows, _AU[au]] = torch.where(flip, val, 0.0)
    # co-activations measured on real broad smiles (astronaut, t1.jpg): upper lip/nose/dimpler/open mouth
    happy = (labels == EMOTIONS.index("happy")) & (torch.rand(n, generator=g) < 0.7)
    for au, hi in (("AU5", 0.6), ("AU9", 0.6), ("AU10", 1.0), ("AU14", 1.0), ("AU25", 1.0), ("AU26", 1.0)):
        add = happy * k * _u(g, n, 0, hi)
        right[:, _AU[au]] += add
        left[:, _AU[au]] += add
    # speech: the mouth opens whatever the emotion
    talk = torch.rand(n, generator=g) < 0.4
    for au, lo, hi in (("AU25", 0.3, 1.0), ("AU26", 0.0, 0.6)):
        add = talk * _u(g, n, lo, hi)
        right[:, _AU[au]] += add
        left[:, _AU[au]] += add
    # geometry measurement noise / idiosyncratic faces: sparse spurious activations
    spur = (torch.rand(n, len(ACTION_UNITS), generator=g) < 0.25) * 0.45 * torch.rand(n, len(ACTION_UNITS), generator=g)
    right, left = (right + spur).clamp(0, 1), (left + spur).clamp(0, 1)
    mean = 0.5 * (right + left)
    asym = [
        (right[:, _AU[a.split("_")[0]]] - left[:, _AU[a.split("_")[0]]]).abs() + 0.1 * torch.randn(n, generator=g).abs()
        for a in ENCODER_FEATURES
        if a.endswith("_asym")
    ]
    feats = torch.cat([mean, torch.stack(asym, -1).clamp(0, 1)], dim=-1)
    return feats, labels


def calibrate(steps: int = 1500, seed: int = 0, batch: int = 512) -> FaceEmotionEncoder:
    torch.manual_seed(seed)  # initialisation of the head's hidden layer
    model = FaceEmotionEncoder()
    g = torch.Generator().manual_seed(seed)
    x, y = sample_aus(60_000, g)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    for step in range(steps):
        idx = torch.randint(len(x), (batch,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx], label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == steps - 1:
            print(f"step {step:5d} loss {loss.item():.3f}")
    xv, yv = sample_aus(8_000, torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        acc = (model(xv).argmax(-1) == yv).float().mean().item()
    print(f"synthetic held-out accuracy {acc:.3f}")
    return model.eval()


def report(model: FaceEmotionEncoder, images: list[str]) -> None:
    from skimage.data import astronaut

    sources = [("skimage astronaut", astronaut())] + [(p, p) for p in images]
    for name, src in sources:
        for i, face in enumerate(analyze_faces(src)):
            probs = model.probs_from_aus(measure_action_units(face.landmarks))
            top = np.argsort(-probs)[:3]
            pose = np.round(face.head_pose(), 0)
            print(
                f"{name} face {i} bbox={face.bbox} pose={pose.tolist()}: "
                + ", ".join(f"{EMOTIONS[j]} {probs[j]:.2f}" for j in top)
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", help="extra photos to report predictions on (not used to fit)")
    ap.add_argument(
        "--output",
        "-o",
        default="runs/emotion_face",
        help="output folder (default: runs/emotion_face under the "
        "current directory; copy it over assets/emotion_face to replace the bundled one)",
    )
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    model = calibrate(args.steps, args.seed)
    out = Path(args.output)
    model.save_pretrained(out)
    print(f"saved {out}")
    report(model, args.images)


if __name__ == "__main__":
    main()
