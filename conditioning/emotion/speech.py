"""Speech emotion encoder: prosodic / eGeMAPS features → a small head → an :class:`EmotionEmbedding`.

Features (96 per clip, 16 kHz): openSMILE's eGeMAPSv02 Functionals (88: F0, loudness, spectral balance,
jitter/shimmer, formants, rate of loudness peaks and voiced segments) plus 8 of our own from
:mod:`affectstudio.conditioning.espeak` (F0 median / 10–90 % range / spread in semitones, voiced and
active fractions, level and dynamic range of active frames, syllable-rate proxy). The head predicts 8
category logits, valence/arousal/dominance and intensity.

What it can and cannot do: the bundled head is trained on espeak-ng speech rendered with the emotional
prosody presets over many voices, rates and pitches (plus augmented and pyworld-resynthesised real
recordings), so it reads *prosody*: arousal (rate, loudness, pitch level and range, vocal effort) is its
strong axis. Valence and the categories that differ mainly in voice quality (disgust, contempt vs sad,
happy vs surprised) are weak — treat those outputs as a prior, not a measurement. A single clip carries
no speaker baseline, so a naturally high-pitched or loud voice reads somewhat more aroused; pass
``speaker_reference=`` (calm speech of the same speaker) to normalise against it.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn as nn
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config

from affectstudio.assets import asset_path

from ...errors import DependencyError, NoSpeechError
from ...media import load_audio
from ..speech_features import estimate_f0, frame_rms, speech_activity
from .embedding import EMOTIONS, NUM_EMOTIONS, EmotionEmbedding

__all__ = ["SpeechEmotionEncoder", "speech_emotion_features", "FEATURE_NAMES", "NUM_FEATURES", "FEATURE_SAMPLE_RATE"]

FEATURE_SAMPLE_RATE = 16000
_OWN_FEATURES = (
    "f0_median_st",
    "f0_range_st",
    "f0_std_st",
    "voiced_fraction",
    "active_fraction",
    "active_level_db",
    "dynamic_range_db",
    "syllable_rate",
)
_N_EGEMAPS = 88
NUM_FEATURES = _N_EGEMAPS + len(_OWN_FEATURES)
# speaker-dependent features that `speaker_reference` normalisation subtracts (levels, not movements)
_BASELINE_FEATURES = ("f0_median_st", "active_level_db")
_MIN_ACTIVE_SECONDS = 0.2

_smile = None


def _opensmile():
    global _smile
    if _smile is None:
        try:
            import opensmile
        except ImportError as e:
            raise DependencyError("opensmile is not installed: pip install 'affectstudio[speech]'") from e
        _smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
        )
    return _smile


def _egemaps_names() -> list[str]:
    return list(_opensmile().feature_names)


FEATURE_NAMES: tuple[str, ...] = ()  # filled lazily by feature_names()


def feature_names() -> tuple[str, ...]:
    global FEATURE_NAMES
    if not FEATURE_NAMES:
        FEATURE_NAMES = tuple(_egemaps_names()) + _OWN_FEATURES
    return FEATURE_NAMES


def _source_name(audio) -> str:
    return str(audio) if isinstance(audio, (str, os.PathLike)) else "the given audio"


def _load(audio, sample_rate: int | None) -> tuple[np.ndarray, str]:
    if isinstance(audio, np.ndarray) and sample_rate is not None:
        audio = (audio, sample_rate)
    wave, _ = load_audio(audio, sample_rate=FEATURE_SAMPLE_RATE)
    return wave, _source_name(audio)


def _check_speech(wave: np.ndarray, name: str) -> np.ndarray:
    active = speech_activity(wave, FEATURE_SAMPLE_RATE, fps=50.0)
    if active.sum() / 50.0 < _MIN_ACTIVE_SECONDS:
        raise NoSpeechError(f"no speech found in {name}: the audio is silent or holds no speech-like sound")
    return active


def speech_emotion_features(wave: np.ndarray, check: bool = True, name: str = "the given audio") -> np.ndarray:
    """``(NUM_FEATURES,)`` float32 features of a 16 kHz mono wave (raises NoSpeechError when ``check`` and
    there is no speech)."""
    wave = np.asarray(wave, dtype=np.float32)
    active = _check_speech(wave, name) if check else speech_activity(wave, FEATURE_SAMPLE_RATE, fps=50.0)
    eg = _opensmile().process_signal(wave, FEATURE_SAMPLE_RATE).to_numpy(dtype=np.float32).reshape(-1)  # (88,)
    f0, voiced = estimate_f0(wave, FEATURE_SAMPLE_RATE, fps=50.0)
    st = 12 * np.log2(f0[voiced] / 27.5) if voiced.sum() >= 3 else np.zeros(1, dtype=np.float32)
    db = 20 * np.log10(frame_rms(wave, FEATURE_SAMPLE_RATE, fps=50.0, win=0.04) + 1e-6)
    act_db = db[active] if active.any() else db
    # syllable-rate proxy: peaks of the smoothed active-frame envelope per active second
    env = np.convolve(db, np.ones(5) / 5, mode="same")
    peaks = (env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) & active[1:-1] & (env[1:-1] > np.median(act_db) - 6)
    own = np.array(
        [
            np.median(st),
            np.percentile(st, 90) - np.percentile(st, 10),
            np.std(st),
            voiced.mean(),
            active.mean(),
            np.mean(act_db),
            np.percentile(act_db, 95) - np.percentile(act_db, 10),
            peaks.sum() / max(active.sum() / 50.0, 0.2),
        ],
        dtype=np.float32,
    )
    out = np.concatenate([eg, own]).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class SpeechEmotionEncoder(ModelMixin, ConfigMixin):
    """eGeMAPS + prosody features → MLP → 8 emotion logits, VAD (tanh) and intensity (sigmoid).

    Feature standardisation (``feature_mean`` / ``feature_std``) is stored with the weights.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, num_features: int = NUM_FEATURES, hidden_dim: int = 64, dropout: float = 0.1):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(num_features))
        self.register_buffer("feature_std", torch.ones(num_features))
        self.net = nn.Sequential(
            nn.Linear(num_features, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
        )
        self.emotion_head = nn.Linear(hidden_dim, NUM_EMOTIONS)
        self.vad_head = nn.Linear(hidden_dim, 3)
        self.intensity_head = nn.Linear(hidden_dim, 1)

    # ------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None = None, **kwargs):
        """``None`` loads the bundled head from ``affectstudio.assets/emotion_speech`` (offline)."""
        if pretrained_model_name_or_path is not None:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        return super().from_pretrained(str(asset_path("emotion_speech")), **kwargs)

    # ------------------------------------------------------------------------------------- forward
    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (features - self.feature_mean) / self.feature_std  # (b, F)
        h = self.net(torch.clamp(x, -8.0, 8.0))  # (b, hidden)
        return {
            "logits": self.emotion_head(h),  # (b, 8)
            "vad": torch.tanh(self.vad_head(h)),  # (b, 3)
            "intensity": torch.sigmoid(self.intensity_head(h)).squeeze(-1),  # (b,)
        }

    @torch.no_grad()
    def _predict(self, feats: np.ndarray, curve: bool = False) -> EmotionEmbedding:
        was = self.training
        self.eval()
        x = torch.as_tensor(np.atleast_2d(feats), dtype=self.feature_mean.dtype, device=self.feature_mean.device)
        out = self(x)
        self.train(was)
        probs = torch.softmax(out["logits"], -1).cpu().numpy().astype(np.float32)
        vad = out["vad"].cpu().numpy().astype(np.float32)
        inten = out["intensity"].cpu().numpy().astype(np.float32)
        if not curve:
            return EmotionEmbedding(probs=probs[0], vad=vad[0], intensity=float(inten[0]))
        return EmotionEmbedding(probs=probs, vad=vad, intensity=inten)

    def _normalise(self, feats: np.ndarray, speaker_reference, sample_rate) -> np.ndarray:
        if speaker_reference is None:
            return feats
        ref_wave, ref_name = _load(speaker_reference, sample_rate)
        ref = speech_emotion_features(ref_wave, name=ref_name)
        names = feature_names()
        mean = self.feature_mean.cpu().numpy()
        out = feats.copy()
        for n in _BASELINE_FEATURES:  # move this speaker's baseline to the training population's
            i = names.index(n)
            out[..., i] = feats[..., i] - ref[i] + mean[i]
        return out

    # ------------------------------------------------------------------------------------- public
    def encode(self, audio, sample_rate: int | None = None, speaker_reference=None) -> EmotionEmbedding:
        """Emotion of a speech clip: a path (wav/flac/mp3/m4a/mp4), a ``(wave, sr)`` tuple, or an array with
        ``sample_rate``. Raises NoSpeechError on silence, MediaDecodeError on unreadable files."""
        wave, name = _load(audio, sample_rate)
        feats = speech_emotion_features(wave, name=name)
        return self._predict(self._normalise(feats, speaker_reference, sample_rate))

    def encode_curve(
        self, audio, sample_rate: int | None = None, window: float = 2.0, hop: float = 1.0, speaker_reference=None
    ) -> EmotionEmbedding:
        """Per-``hop`` emotion curve from ``window``-second windows centred every ``hop`` seconds
        (``ceil(duration / hop)`` states). Windows without speech are neutral at intensity 0."""
        wave, name = _load(audio, sample_rate)
        _check_speech(wave, name)
        sr = FEATURE_SAMPLE_RATE
        n = max(1, math.ceil(wave.size / sr / hop - 1e-9))
        rows, speech = [], []
        for i in range(n):
            c = (i + 0.5) * hop * sr
            a, b = int(max(0, c - window * sr / 2)), int(min(wave.size, c + window * sr / 2))
            seg = wave[a:b]
            act = speech_activity(seg, sr, fps=50.0) if seg.size else np.zeros(0, bool)
            ok = act.sum() / 50.0 >= _MIN_ACTIVE_SECONDS
            speech.append(ok)
            rows.append(speech_emotion_features(seg, check=False) if ok else np.zeros(NUM_FEATURES, np.float32))
        feats = self._normalise(np.stack(rows), speaker_reference, sample_rate)
        emb = self._predict(feats, curve=True)
        probs, vad, inten = emb.probs.copy(), emb.vad.copy(), np.asarray(emb.intensity).copy()
        silent = ~np.array(speech)
        probs[silent] = np.eye(NUM_EMOTIONS, dtype=np.float32)[EMOTIONS.index("neutral")]
        vad[silent] = 0.0
        inten[silent] = 0.0
        return EmotionEmbedding(probs=probs, vad=vad, intensity=inten.astype(np.float32))
