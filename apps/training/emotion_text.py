"""Train / evaluate the text emotion head (:class:`TextEmotionEncoder`).

    python -m affectstudio.apps.training.emotion_text                 # train on configs/emotion_text_train.tsv,
                                                                    # save to runs/emotion_text
    python -m affectstudio.apps.training.emotion_text --cv 5          # k-fold accuracy on the training set only
    python -m affectstudio.apps.training.emotion_text --evaluate      # held-out metrics + zero-shot baseline (JSON)

Seeded and CPU-only (about 30 s including the MiniLM load); training and --cv run torch on one thread, so
results do not depend on the machine's core count. Hyper-parameters and features (the 15 lexicon cues, the
prototype similarities) were chosen by 5-fold cross-validation on the training sentences only; the held-out
file is only ever used by ``--evaluate``.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from affectstudio.conditioning.emotion.embedding import EMOTIONS, VAD_ANCHORS
from affectstudio.conditioning.emotion.text import (
    BUNDLED_NAME,
    LEXICON_DIM,
    TextEmotionEncoder,
    lexicon_features,
)
from affectstudio.errors import InputError

TRAIN_FILE = "emotion_text_train.tsv"

# Zero-shot baseline: three prototype sentences per label, cosine similarity in MiniLM space.
PROTOTYPES: dict[str, tuple[str, str, str]] = {
    "neutral": (
        "This is a plain statement of fact.",
        "I feel nothing in particular about it.",
        "An ordinary, unemotional remark about everyday things.",
    ),
    "happy": ("I feel happy and joyful.", "This is wonderful, it makes me smile.", "What a delightful, cheerful day."),
    "sad": (
        "I feel sad and miserable.",
        "This is heartbreaking, I want to cry.",
        "A lonely, sorrowful feeling of loss.",
    ),
    "angry": (
        "I feel angry and furious.",
        "This is outrageous, I'm so mad.",
        "Shouting in rage at someone who wronged me.",
    ),
    "fearful": (
        "I feel scared and afraid.",
        "This is terrifying, I'm trembling.",
        "Anxious dread that something terrible will happen.",
    ),
    "disgusted": (
        "I feel disgusted and sick.",
        "This is gross and revolting.",
        "A foul, rotten smell that makes me want to vomit.",
    ),
    "surprised": (
        "I feel surprised and astonished.",
        "Wow, I did not expect that at all!",
        "A sudden, amazing and unexpected turn of events.",
    ),
    "contempt": (
        "I feel contempt and disdain.",
        "They are pathetic and beneath me.",
        "A scornful sneer at someone I look down on.",
    ),
}

DEFAULTS: dict[str, float] = dict(
    hidden_dim=256,
    epochs=300,
    lr=3e-3,
    weight_decay=1e-1,
    noise=0.03,
    label_smoothing=0.05,
    ensemble_size=5,
    lexicon_dim=LEXICON_DIM,
    num_prototypes=3,
)


def read_tsv(path: str | Path | resources.abc.Traversable) -> tuple[list[str], list[int]]:
    """label<TAB>sentence lines ('#' comments and blank lines skipped) → (sentences, label indices)."""
    texts, labels = [], []
    for n, line in enumerate(Path(str(path)).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        label, sep, text = line.partition("\t")
        if not sep or label not in EMOTIONS or not text.strip():
            raise InputError(f"{path}:{n}: expected 'label<TAB>sentence' with a label from {EMOTIONS}")
        texts.append(text.strip())
        labels.append(EMOTIONS.index(label))
    return texts, labels


def train_file() -> Path:
    return Path(str(resources.files("affectstudio.configs") / TRAIN_FILE))


def heldout_file() -> Path:
    """tests/data/emotion_text_heldout.tsv of a source checkout (not shipped in the wheel)."""
    here = Path(str(resources.files("affectstudio.configs"))).parent
    return here / "tests" / "data" / "emotion_text_heldout.tsv"


def fit_head(
    emb: torch.Tensor,
    lex: torch.Tensor,
    labels: torch.Tensor,
    seed: int = 0,
    hidden_dim: int = int(DEFAULTS["hidden_dim"]),
    epochs: int = int(DEFAULTS["epochs"]),
    lr: float = DEFAULTS["lr"],
    weight_decay: float = DEFAULTS["weight_decay"],
    noise: float = DEFAULTS["noise"],
    label_smoothing: float = DEFAULTS["label_smoothing"],
    ensemble_size: int = int(DEFAULTS["ensemble_size"]),
    lexicon_dim: int = int(DEFAULTS["lexicon_dim"]),
    num_prototypes: int = int(DEFAULTS["num_prototypes"]),
) -> TextEmotionEncoder:
    """Full-batch AdamW on precomputed features; every random draw comes from one seeded Generator.

    ``lexicon_dim`` uses the first cues of :data:`LEXICON_FEATURES`; ``num_prototypes`` (0 or 3) adds the mean
    cosine similarity to each label's :data:`PROTOTYPES` sentences as 8 more standardised inputs."""
    g = torch.Generator().manual_seed(seed)
    lex = lex[:, :lexicon_dim]
    model = TextEmotionEncoder(
        embed_dim=emb.shape[1],
        lexicon_dim=lexicon_dim,
        hidden_dim=hidden_dim,
        ensemble_size=ensemble_size,
        num_prototypes=num_prototypes,
    )
    for layer in model.members.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight, generator=g)
            torch.nn.init.zeros_(layer.bias)
    model.lex_mean.copy_(lex.mean(0))
    model.lex_std.copy_(lex.std(0).clamp_min(1e-3))
    if num_prototypes:
        model.prototypes.copy_(prototype_embeddings(num_prototypes))
        sim = model.prototype_similarity(emb)
        model.proto_mean.copy_(sim.mean(0))
        model.proto_std.copy_(sim.std(0).clamp_min(1e-3))
    x = model.head_input(emb, lex)  # (n, 384 + lexicon_dim [+ 8])
    # class-balanced loss so a label with fewer sentences is not under-predicted
    counts = torch.bincount(labels, minlength=len(EMOTIONS)).float()
    class_weight = counts.sum() / (len(EMOTIONS) * counts.clamp_min(1))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        xin = x + noise * torch.randn(x.shape, generator=g)
        logits = model.member_logits(xin)  # (k, n, 8): every member is trained on its own loss
        loss = sum(F.cross_entropy(lg, labels, weight=class_weight, label_smoothing=label_smoothing) for lg in logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


_PROTO_CACHE: dict[int, torch.Tensor] = {}


def prototype_embeddings(k: int = 3) -> torch.Tensor:
    """(8 * k, 384) MiniLM embeddings of the first k prototype sentences of each label, label-major."""
    if k not in _PROTO_CACHE:
        protos = [s for e in EMOTIONS for s in PROTOTYPES[e][:k]]
        _PROTO_CACHE[k] = torch.from_numpy(TextEmotionEncoder.sentence_embeddings(protos))
    return _PROTO_CACHE[k]


def features(texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    emb = torch.from_numpy(TextEmotionEncoder.sentence_embeddings(texts))  # (n, 384)
    lex = torch.from_numpy(lexicon_features(texts))  # (n, LEXICON_DIM)
    return emb, lex


def cross_validate(k: int = 5, seed: int = 0, train_path: str | Path | None = None, **hparams) -> float:
    texts, labels = read_tsv(train_path or train_file())
    emb, lex = features(texts)
    y = torch.tensor(labels)
    perm = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))
    folds = perm.chunk(k)
    correct = 0
    for i, test_idx in enumerate(folds):
        train_idx = torch.cat([f for j, f in enumerate(folds) if j != i])
        model = fit_head(emb[train_idx], lex[train_idx], y[train_idx], seed=seed, **hparams)
        with torch.no_grad():
            pred = model(model.head_input(emb[test_idx], lex[test_idx])).argmax(-1)
        correct += int((pred == y[test_idx]).sum())
    return correct / len(texts)


def train(out_dir: str | Path | None = None, seed: int = 0, train_path: str | Path | None = None, **hparams) -> Path:
    texts, labels = read_tsv(train_path or train_file())
    emb, lex = features(texts)
    model = fit_head(emb, lex, torch.tensor(labels), seed=seed, **hparams)
    out = Path(out_dir) if out_dir else Path("runs") / BUNDLED_NAME
    model.save_pretrained(out)
    return out


def valence_sign_accuracy(valences: Sequence[float], labels: Sequence[int]) -> float:
    """Share of non-neutral sentences whose predicted valence has the sign of their label's anchor."""
    pairs = [(v, VAD_ANCHORS[EMOTIONS[y]][0]) for v, y in zip(valences, labels) if EMOTIONS[y] != "neutral"]
    return float(np.mean([np.sign(v) == np.sign(a) for v, a in pairs]))


def zero_shot_accuracy(texts: Sequence[str], labels: Sequence[int]) -> float:
    protos = [s for e in EMOTIONS for s in PROTOTYPES[e]]
    p = TextEmotionEncoder.sentence_embeddings(protos).reshape(len(EMOTIONS), 3, -1)  # (8, 3, 384)
    q = TextEmotionEncoder.sentence_embeddings(texts)  # (n, 384)
    sim = np.einsum("nd,ekd->nek", q, p).mean(-1)  # (n, 8) mean cosine to each label's prototypes
    return float(np.mean(sim.argmax(-1) == np.asarray(labels)))


def evaluate(model_path: str | Path | None = None, heldout: str | Path | None = None) -> dict:
    path = Path(heldout) if heldout else heldout_file()
    texts, labels = read_tsv(path)
    t0 = time.perf_counter()
    encoder = TextEmotionEncoder.from_pretrained(model_path)
    encoder.encode(texts[:2])  # loads MiniLM + VADER once
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = encoder.encode(texts)
    per_sentence_ms = 1000 * (time.perf_counter() - t0) / len(texts)
    pred = [EMOTIONS.index(e.label) for e in out]
    acc = float(np.mean(np.asarray(pred) == np.asarray(labels)))
    per_label = {e: float(np.mean([p == y for p, y in zip(pred, labels) if y == i])) for i, e in enumerate(EMOTIONS)}
    return {
        "heldout_file": str(path),
        "n": len(texts),
        "top1_accuracy": acc,
        "valence_sign_accuracy": valence_sign_accuracy([e.valence for e in out], labels),
        "zero_shot_top1_accuracy": zero_shot_accuracy(texts, labels),
        "per_label_accuracy": per_label,
        "ms_per_sentence_batched": per_sentence_ms,
        "load_s": load_s,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="affectstudio train emotion-text",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--output",
        "-o",
        type=Path,
        default=None,
        help="output folder (default: runs/emotion_text under the current directory)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--train",
        type=Path,
        default=None,
        help="training TSV, label<TAB>sentence (default: the bundled configs/emotion_text_train.tsv)",
    )
    ap.add_argument("--cv", type=int, default=0, metavar="K", help="only report K-fold accuracy on the training set")
    ap.add_argument("--evaluate", action="store_true", help="print held-out metrics of a trained head as JSON")
    ap.add_argument("--model", type=Path, default=None, help="head to evaluate (default: the bundled one)")
    ap.add_argument("--heldout", type=Path, default=None, help="held-out TSV (default: tests/data/...)")
    for name, value in DEFAULTS.items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = ap.parse_args(argv)
    hparams = {name: getattr(args, name) for name in DEFAULTS}
    if not args.evaluate:
        torch.set_num_threads(1)  # deterministic across machines, and faster than 2 contended threads
    if args.evaluate:
        print(json.dumps(evaluate(args.model, args.heldout), indent=2))
    elif args.cv:
        acc = cross_validate(args.cv, args.seed, args.train, **hparams)
        print(json.dumps({"cv_folds": args.cv, "cv_accuracy": acc, **hparams}))
    else:
        t0 = time.perf_counter()
        out = train(args.output, args.seed, args.train, **hparams)
        print(json.dumps({"saved": str(out), "seconds": round(time.perf_counter() - t0, 1), **hparams}))


if __name__ == "__main__":
    main()
