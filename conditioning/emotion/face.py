"""Face emotion encoder: mediapipe mesh → FACS action units → emotion probabilities.

``logits = τ · (P x − ½‖P‖²) + b + MLP(x)``: the first term is nearest-prototype matching against
:data:`~affectstudio.conditioning.emotion.facs.EMFACS_PROTOTYPES` (an isotropic Gaussian per emotion, written
as a linear layer initialised from the table), the MLP is a small residual head whose output layer starts at
zero. The bundled weights (``assets/emotion_face``) are calibrated by ``apps/training/emotion_face.py`` on
synthetic AU vectors sampled from the prototypes with measurement noise; no labelled real faces were used.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from affectstudio.assets import asset_path
from affectstudio.conditioning.emotion.embedding import EMOTIONS, EmotionEmbedding
from affectstudio.conditioning.emotion.facs import ENCODER_FEATURES, encoder_features, prototype_matrix
from affectstudio.conditioning.face import analyze_face
from affectstudio.conditioning.face_features import measure_action_units
from affectstudio.media import ImageInput

BUNDLED = "emotion_face"


class FaceEmotionEncoder(ModelMixin, ConfigMixin):
    """Reads an emotion from a face photo or from mesh landmarks (e.g. rendered frames)."""

    @register_to_config
    def __init__(
        self,
        features: tuple[str, ...] = ENCODER_FEATURES,
        emotions: tuple[str, ...] = EMOTIONS,
        hidden_dim: int = 32,
        temperature: float = 4.0,
    ):
        super().__init__()
        features, emotions = tuple(features), tuple(emotions)
        protos = torch.from_numpy(prototype_matrix(emotions))  # (e, f)
        self.proto = nn.Linear(len(features), len(emotions))  # prototype matching, (b, f) -> (b, e)
        with torch.no_grad():
            self.proto.weight.copy_(temperature * protos)
            self.proto.bias.copy_(-0.5 * temperature * (protos**2).sum(-1))
        self.head = nn.Sequential(nn.Linear(len(features), hidden_dim), nn.GELU(), nn.Linear(hidden_dim, len(emotions)))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None = None, **kwargs):
        """``None`` loads the bundled calibration from ``affectstudio.assets/emotion_face`` (offline)."""
        if pretrained_model_name_or_path is None:
            pretrained_model_name_or_path = str(asset_path(BUNDLED))
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` (b, f) AU vector (:data:`ENCODER_FEATURES`) → logits (b, e)."""
        return self.proto(features) + self.head(features)

    @torch.no_grad()
    def probs_from_aus(self, aus: dict) -> np.ndarray:
        """A :func:`measure_action_units` dict → probabilities ``(8,)`` or ``(t, 8)``."""
        x = torch.from_numpy(encoder_features(aus)).to(self.dtype)
        single = x.ndim == 1
        logits = self(x[None] if single else x)  # (b, e)
        probs = logits.float().softmax(-1).cpu().numpy()
        return probs[0] if single else probs

    def encode_landmarks(self, landmarks: np.ndarray, neutral: np.ndarray | None = None) -> EmotionEmbedding:
        """Mesh ``(478, 3)`` → embedding; ``(t, 478, 3)`` → an emotion curve. ``neutral``: the same face at
        rest, when known (otherwise a population-typical neutral geometry is the reference)."""
        return EmotionEmbedding.from_probs(self.probs_from_aus(measure_action_units(landmarks, neutral=neutral)))

    def encode(self, image: ImageInput) -> EmotionEmbedding:
        """Photo (path, PIL, array) → embedding of its largest face. Raises NoFaceError / MediaDecodeError."""
        return self.encode_landmarks(analyze_face(image).landmarks)
