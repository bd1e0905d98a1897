"""Talking-portrait motion space and renderer (one concern a module).

* :mod:`.channels` — the named motion channels (articulation, FACS action units, blink, gaze, head pose);
* :mod:`.mesh` — named groups and points of the 478-point mediapipe face mesh;
* :mod:`.geometry` — the face-normalised frame, rotations, rigid fits, interpolation, blur;
* :mod:`.templates` — FACS displacement templates on a face's own neutral mesh;
* :mod:`.codec` — ``MotionCodec``: motion ↔ landmarks (decode, least-squares fit, neutral estimation);
* :mod:`.warp`, :mod:`.textures`, :mod:`.mouth`, :mod:`.renderer` — ``PortraitRenderer``.

Saved pipelines name this package (``affectstudio.models.portrait``) in ``model_index.json``; the classes
report it as their module so saves keep naming it, and diffusers finds ``ModelMixin`` here to load them.
"""

from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  (diffusers' loader looks it up here)

from .channels import (
    CHANNEL_ALIASES,
    EXPRESSION_CHANNELS,
    GENERATED_CHANNELS,
    IDLE_CHANNELS,
    MOTION_CHANNELS,
    MOTION_DIM,
    NUM_EXPRESSION,
    POSE_CHANNELS,
    channel_index,
    channel_indices,
)
from .codec import MotionCodec
from .geometry import FaceFrame
from .mesh import (
    CHIN,
    FACE_OVAL,
    LEFT_BROW,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    LEFT_IRIS,
    LIPS_LOWER_INNER,
    LIPS_LOWER_OUTER,
    LIPS_LOWER_SEMI_INNER,
    LIPS_LOWER_SEMI_OUTER,
    LIPS_UPPER_INNER,
    LIPS_UPPER_OUTER,
    LIPS_UPPER_SEMI_INNER,
    LIPS_UPPER_SEMI_OUTER,
    MESH_GROUPS,
    NOSE_TIP,
    NUM_LANDMARKS,
    RIGHT_BROW,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
    RIGHT_IRIS,
    STABLE_POINTS,
    landmarks_of,
)
from .renderer import MODES, PortraitRenderer, PortraitState

for _cls in (MotionCodec, PortraitRenderer):
    _cls.__module__ = __name__  # the stable path saved checkpoints name
del _cls

__all__ = [
    "CHANNEL_ALIASES",
    "CHIN",
    "EXPRESSION_CHANNELS",
    "FACE_OVAL",
    "FaceFrame",
    "GENERATED_CHANNELS",
    "IDLE_CHANNELS",
    "LEFT_BROW",
    "LEFT_EYE_LOWER",
    "LEFT_EYE_UPPER",
    "LEFT_IRIS",
    "LIPS_LOWER_INNER",
    "LIPS_LOWER_OUTER",
    "LIPS_LOWER_SEMI_INNER",
    "LIPS_LOWER_SEMI_OUTER",
    "LIPS_UPPER_INNER",
    "LIPS_UPPER_OUTER",
    "LIPS_UPPER_SEMI_INNER",
    "LIPS_UPPER_SEMI_OUTER",
    "MESH_GROUPS",
    "MODES",
    "MOTION_CHANNELS",
    "MOTION_DIM",
    "MotionCodec",
    "NOSE_TIP",
    "NUM_EXPRESSION",
    "NUM_LANDMARKS",
    "POSE_CHANNELS",
    "PortraitRenderer",
    "PortraitState",
    "RIGHT_BROW",
    "RIGHT_EYE_LOWER",
    "RIGHT_EYE_UPPER",
    "RIGHT_IRIS",
    "STABLE_POINTS",
    "channel_index",
    "channel_indices",
    "landmarks_of",
]
