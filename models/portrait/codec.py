"""``MotionCodec``: the portrait's per-frame motion vector (:mod:`.channels`) ↔ 478-point face-mesh landmarks.

Every expression channel owns a displacement template (:mod:`.templates`) built on the reference face's own
neutral mesh in the face-normalised frame (:mod:`.geometry`), so ``decode`` is linear in the expression
coefficients; the head pose is a rigid rotation about ``head_center``; ``fit`` inverts ``decode`` by least
squares (Gauss-Newton on expression, rotation and translation).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange

from affectstudio.errors import InputError

from .channels import CHANNEL_ALIASES, EXPRESSION_CHANNELS, MOTION_CHANNELS, MOTION_DIM
from .geometry import FaceFrame, angles_from_matrix, kabsch, rotation_matrix
from .mesh import (
    LIPS_LOWER_INNER,
    LIPS_UPPER_INNER,
    LOWER_LID_L,
    LOWER_LID_R,
    LOWER_LIP_INNER,
    MOUTH_CORNER_L,
    MOUTH_CORNER_R,
    NUM_LANDMARKS,
    UPPER_LID_L,
    UPPER_LID_R,
    UPPER_LIP_INNER,
    landmarks_of,
)
from .templates import expression_templates


class MotionCodec(ModelMixin, ConfigMixin):
    """Named per-frame face motion <-> 478-point landmarks (weightless; saved inside the pipeline).

    ``decode(motion (t, D), neutral (478, 3)) -> (t, 478, 3)`` pixel landmarks;
    ``fit(landmarks (t, 478, 3), neutral) -> motion (t, D)`` by least squares after removing rigid pose;
    ``estimate_neutral(analysis) -> (neutral (478, 3), reference_motion (D,))``.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        channels: list[str] | None = None,
        head_center: tuple[float, float, float] = (0.0, 0.7, 1.3),
        fit_ridge: float = 1e-6,
        neutral_corner_lift: float = -0.01,
        neutral_mouth_width: float = 0.82,
    ):
        super().__init__()
        self.channels = list(channels) if channels is not None else list(MOTION_CHANNELS)
        if self.channels != MOTION_CHANNELS:
            raise InputError(f"MotionCodec channels must be {MOTION_CHANNELS}")
        # no learned weights; one persistent scalar so save_pretrained writes a (tiny) weights file and
        # from_pretrained finds one
        self.register_buffer("format_version", torch.ones(1))

    # -------------------------------------------------------------------------------------------- channels
    @property
    def dim(self) -> int:
        return MOTION_DIM

    @staticmethod
    def index(name: str) -> int:
        return MOTION_CHANNELS.index(name)

    def from_named(self, values: dict | list[dict], device=None) -> torch.Tensor:
        """{"AU12": 0.8, "jaw_open": 0.3, ...} (or a list of them, one per frame) -> (D,) or (t, D).

        FACS numbers and viseme keys are accepted through ``CHANNEL_ALIASES`` (AU26 -> jaw_open, AU43 ->
        blink, AU14 -> both sides, lip_closed -> lip_press, ...). Unknown names are an error.
        """
        single = isinstance(values, dict)
        rows: list[dict] = [values] if isinstance(values, dict) else list(values)
        out = torch.zeros(len(rows), MOTION_DIM, device=device)
        for i, row in enumerate(rows):
            for name, v in row.items():
                targets = [name] if name in MOTION_CHANNELS else CHANNEL_ALIASES.get(name)
                if targets is None:
                    raise InputError(f"unknown motion channel {name!r}; known: {MOTION_CHANNELS}")
                for t in targets:
                    out[i, self.index(t)] += float(v)
        return out[0] if single else out

    # ------------------------------------------------------------------------------------------- templates
    def templates(self, neutral_norm: torch.Tensor) -> torch.Tensor:
        """Displacement templates on a neutral face in the normalised frame: (478, 3) -> (E, 478, 3)."""
        return expression_templates(neutral_norm)

    # -------------------------------------------------------------------------------------------- decoding
    def _pose_apply(self, pts: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """Rigid rotation about the head centre in the normalised frame. pts (t, n, 3), pose (t, 3)."""
        c = torch.tensor(self.config.head_center, dtype=pts.dtype, device=pts.device)
        rot = rotation_matrix(pose[:, 0], pose[:, 1], pose[:, 2])  # (t, 3, 3)
        return torch.einsum("tij,tnj->tni", rot, pts - c) + c

    def decode_norm(
        self, motion: torch.Tensor, neutral_norm: torch.Tensor, templates: torch.Tensor | None = None
    ) -> torch.Tensor:
        """motion (t, D), neutral_norm (478, 3) -> (t, 478, 3) in the normalised frame."""
        tmpl = self.templates(neutral_norm) if templates is None else templates
        e = len(EXPRESSION_CHANNELS)
        pts = neutral_norm + torch.einsum("te,enk->tnk", motion[:, :e], tmpl)
        return self._pose_apply(pts, motion[:, e:])

    def decode(self, motion: torch.Tensor, neutral_landmarks) -> torch.Tensor:
        """motion (t, D) or (D,), neutral landmarks (478, 3) pixels -> (t, 478, 3) pixels (same device)."""
        motion = torch.as_tensor(motion, dtype=torch.float32)
        single = motion.ndim == 1
        motion = motion.reshape(-1, MOTION_DIM)
        neutral = torch.as_tensor(neutral_landmarks, dtype=torch.float32, device=motion.device)
        frame = FaceFrame.from_landmarks(neutral)
        out = frame.to_pixels(self.decode_norm(motion, frame.to_norm(neutral)))
        return out[0] if single else out

    # ---------------------------------------------------------------------------------------------- fitting
    @torch.no_grad()
    def fit(self, landmarks, neutral_landmarks, iterations: int = 6) -> torch.Tensor:
        """Least-squares motion from landmarks (t, 478, 3) (pixels) given the neutral (478, 3) -> (t, D).

        Alternates: rigid pose (Kabsch on the residual after the current expression) and linear least
        squares of the expression templates on the un-rotated landmarks (x, y weighted 1, z 0.3). Head
        translation is not a motion channel and is absorbed.
        """
        lm = torch.as_tensor(landmarks, dtype=torch.float32)
        single = lm.ndim == 2
        lm = lm.reshape(-1, NUM_LANDMARKS, 3)
        neutral = torch.as_tensor(neutral_landmarks, dtype=torch.float32, device=lm.device)
        frame = FaceFrame.from_landmarks(neutral)
        n0 = frame.to_norm(neutral)
        obs = frame.to_norm(lm)  # (t, n, 3)
        tmpl = self.templates(n0)  # (E, n, 3)
        e = tmpl.shape[0]
        w = torch.tensor([1.0, 1.0, 0.3], device=lm.device)
        a = rearrange(tmpl * w, "e n k -> (n k) e")
        ata = a.T @ a + self.config.fit_ridge * torch.eye(e, device=lm.device)
        solve = torch.linalg.solve(ata, a.T)  # (E, n*3)
        c = torch.tensor(self.config.head_center, device=lm.device)
        t_n = lm.shape[0]
        # Gauss-Newton on (expression, small rotation, translation), starting from Kabsch on the neutral
        rot = kabsch(n0.expand_as(obs), obs)
        trans = (obs - (torch.einsum("tij,nj->tni", rot, n0 - c) + c)).mean(1, keepdim=True)
        q = n0 - c
        gens = torch.stack(
            [torch.cross(torch.eye(3, device=lm.device)[i].expand_as(q), q, dim=-1) for i in range(3)]
        )  # (3, n, 3): d/domega of omega x q
        shifts = torch.eye(3, device=lm.device)[:, None, :].expand(3, NUM_LANDMARKS, 3)
        full = torch.cat([tmpl, gens, shifts]) * w  # (E+6, n, 3)
        a = rearrange(full, "e n k -> (n k) e")
        ata = a.T @ a + self.config.fit_ridge * torch.eye(e + 6, device=lm.device)
        solve = torch.linalg.solve(ata, a.T)  # (E+6, n*3)
        coef = torch.zeros(t_n, e, device=lm.device)
        for _ in range(iterations):
            unrot = torch.einsum("tji,tnj->tni", rot, obs - trans - c) + c  # R^T (x - t - c) + c
            x = torch.einsum("em,tm->te", solve, rearrange((unrot - n0) * w, "t n k -> t (n k)"))
            coef = x[:, :e]
            omega, dt = x[:, e : e + 3], x[:, e + 3 :]
            ang = omega.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            kx = torch.zeros(t_n, 3, 3, device=lm.device)
            k = omega / ang
            kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
            kx = kx - kx.transpose(1, 2)
            s_, c_ = torch.sin(ang)[..., None], torch.cos(ang)[..., None]
            d_rot = torch.eye(3, device=lm.device) + s_ * kx + (1 - c_) * kx @ kx  # Rodrigues
            rot = rot @ d_rot
            trans = trans + torch.einsum("tij,tj->ti", rot, dt)[:, None]
        pose = angles_from_matrix(rot)
        motion = torch.cat([coef, pose], -1)
        return motion[0] if single else motion

    # --------------------------------------------------------------------------------------- neutral pose
    def measure(self, landmarks) -> dict[str, float]:
        """Geometric estimates (in channel units) of the expression a single face shows, from population norms.

        Covers what matters for removing a photo's own expression: jaw/lip opening, smile (AU12 from corner
        lift and mouth width, AU6 from cheek/lower-lid lift taken as half of AU12), blink.
        """
        lm = torch.as_tensor(landmarks_of(landmarks))
        lip_up, lip_lo, corners = UPPER_LIP_INNER, LOWER_LIP_INNER, [MOUTH_CORNER_R, MOUTH_CORNER_L]
        frame = FaceFrame.from_landmarks(lm)
        p = frame.to_norm(lm)
        tm = self.templates(p)
        gi = EXPRESSION_CHANNELS.index
        gap = float(p[lip_lo, 1] - p[lip_up, 1])
        d_gap = float(tm[gi("jaw_open"), lip_lo, 1] - tm[gi("jaw_open"), lip_up, 1])
        centre_y = float(p[[lip_up, lip_lo], 1].mean())
        lift = centre_y - float(p[corners, 1].mean())
        d_lift = -float(tm[gi("AU12"), corners, 1].mean() - tm[gi("AU12"), [lip_up, lip_lo], 1].mean())
        width = float(p[MOUTH_CORNER_L, 0] - p[MOUTH_CORNER_R, 0])
        d_width = float(tm[gi("AU12"), MOUTH_CORNER_L, 0] - tm[gi("AU12"), MOUTH_CORNER_R, 0])
        au12 = 0.5 * (lift - self.config.neutral_corner_lift) / d_lift
        au12 += 0.5 * (width - self.config.neutral_mouth_width) / d_width
        au12 = float(np.clip(au12, 0.0, 1.5))
        opening = []
        for up, lo in ((UPPER_LID_R, LOWER_LID_R), (UPPER_LID_L, LOWER_LID_L)):
            opening.append(float(p[lo, 1] - p[up, 1]))
        eye_open = sum(opening) / 2
        blink = float(np.clip(1 - eye_open / 0.11, 0.0, 1.0)) if eye_open < 0.11 else 0.0
        d_part = float(tm[gi("lips_part"), lip_lo, 1] - tm[gi("lips_part"), lip_up, 1])
        excess = max(gap - 0.01, 0.0)
        part = min(excess * 0.5 / d_part, 1.5)  # a parted photo mouth: half lips, half jaw
        return {
            "lips_part": part,
            "jaw_open": float(np.clip((excess - part * d_part) / d_gap, 0.0, 1.5)),
            "AU12": au12,
            "AU6": 0.5 * au12,
            "blink": blink,
        }

    @torch.no_grad()
    def estimate_neutral(self, analysis, action_units: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference landmarks -> (neutral (478, 3) pixels, reference_motion (D,)).

        The photo's own expression (``action_units`` if given, in channel units or FACS names, else
        :meth:`measure`) is subtracted through the templates and the lips are closed, so emotion offsets
        start from an estimated neutral; ``reference_motion`` is then fitted so that
        ``decode(reference_motion, neutral)`` reproduces the photo.
        """
        lm = torch.as_tensor(landmarks_of(analysis))
        units = self.measure(lm) if action_units is None else dict(action_units)
        coef = self.from_named(units)[: len(EXPRESSION_CHANNELS)]
        frame = FaceFrame.from_landmarks(lm)
        ref_n = frame.to_norm(lm)
        neutral_n = ref_n.clone()
        for _ in range(20):  # damped fixed point: neutral = ref - sum_k c_k T_k(neutral)
            tm = self.templates(neutral_n)
            neutral_n = 0.65 * neutral_n + 0.35 * (ref_n - torch.einsum("e,enk->nk", coef, tm))
        # close whatever gap remains between the inner lips (and lips that opened without the jaw)
        ui, li = torch.tensor(LIPS_UPPER_INNER[1:-1]), torch.tensor(LIPS_LOWER_INNER[1:-1])
        half = ((neutral_n[li, 1] - neutral_n[ui, 1]) / 2).clamp_min(0)
        neutral_n[ui, 1] += half
        neutral_n[li, 1] -= half
        neutral = frame.to_pixels(neutral_n)
        # by construction decode(reference_motion, neutral) ~ reference (renderers add the small residual);
        # the neutral's own eye frame can differ slightly from the photo's, so the pose is fitted.
        ref_motion = torch.zeros(MOTION_DIM)
        ref_motion[: len(EXPRESSION_CHANNELS)] = coef
        pose = self.fit(lm, neutral)[len(EXPRESSION_CHANNELS) :]
        ref_motion[len(EXPRESSION_CHANNELS) :] = pose
        return neutral, ref_motion
