"""``PortraitRenderer``: a dense piecewise-affine warp of a reference portrait driven by face-mesh motion.

``prepare`` frames the face (:func:`affectstudio.conditioning.face_align.face_square`: inside the photo where the
face allows; a close-up or a face at an edge gets a square that runs past the photo, the outside covered by
:func:`~affectstudio.conditioning.face_align.padded_crop`), estimates its neutral with the codec, triangulates
mesh points + still anchors
(:mod:`.warp`) and builds the texture stack (:mod:`.textures`); ``render`` mixes each frame's texture in
reference space (folds and cheeks smoothed when a smile is taken off, brow furrows, smile shading: per-frame
weights of the stack's expression layers), warps it with one batched ``grid_sample`` and draws the mouth
(:mod:`.mouth`). Two framings: ``"crop"`` returns the square face crop at ``size``; ``"paste_back"`` returns
the whole photo at its own size and aspect with the animated face composited back through a feathered mask
(as LivePortrait does — the natural choice for video stills and wide photos).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange

from affectstudio.conditioning.face_align import face_square, padded_crop, paste_mask
from affectstudio.errors import InputError

from .channels import MOTION_DIM, NUM_EXPRESSION, channel_index, channel_indices, hold_mouth
from .codec import MotionCodec
from .coupling import couple_actions
from .geometry import FaceFrame, rigid_2d
from .mesh import (
    LIPS_LOWER_INNER,
    LIPS_LOWER_OUTER,
    LIPS_LOWER_SEMI_INNER,
    LIPS_UPPER_INNER,
    LIPS_UPPER_OUTER,
    LIPS_UPPER_SEMI_INNER,
    NUM_LANDMARKS,
    check_face_size,
    landmarks_of,
)
from .mouth import lip_profile, mouth_coords, mouth_frame, synth_mouth
from .textures import (
    CLOSED,
    PHOTO,
    expression_layers,
    layer_weights,
    lip_visibility,
    sample_colors,
    teeth_color,
    texture_stack,
)
from .warp import anchor_points, base_grid, grid_of, interpolation_matrix, invert_field, lip_aware_triangles, to_grid

MODES = ("crop", "paste_back")
NOTES_LOGGER = "affectstudio.notes"  # user-facing notes (conditioning.face_choice.NOTES_LOGGER), printed by the CLI


@dataclass
class PortraitState:
    """Everything ``render`` needs about one prepared portrait (tensors on one device)."""

    size: int  # side of the rendered face square in pixels
    image: torch.Tensor  # (3, s, s) float [0, 1] face square
    stack: (
        torch.Tensor
    )  # (1, 15, s, s) closed-mouth image, its blur, fold mask, photo, cheek delta, AU4 + smile shading
    layers: torch.Tensor  # (12, 3, h, w) the stack's expression layers over layer_box (textures.expression_layers)
    layer_box: tuple[int, int, int, int]  # y0, y1, x0, x1 in output pixels; outside it the texture is CLOSED
    crop_box: torch.Tensor  # (4,) x0, y0, side (source pixels), scale (output px / source px)
    reference_landmarks: torch.Tensor  # (478, 3) in output pixels
    neutral_landmarks: torch.Tensor  # (478, 3) in output pixels
    reference_motion: torch.Tensor  # (D,)
    residual: torch.Tensor  # (478, 3) the codec's fit residual of the photo, output pixels (see _fit_residual)
    lip_overlap: torch.Tensor  # (478, 3) inner-lip overlap taken out of the residual at rest (see _fit_residual)
    templates: torch.Tensor  # (E, 478, 3) of the neutral (normalised frame)
    anchors: torch.Tensor  # (A, 2) anchor positions, output pixels
    anchor_pose_weight: torch.Tensor  # (A,) how much of the head's rigid motion each anchor follows
    interp: torch.Tensor  # sparse (s*s, N) piecewise-linear vertex -> pixel matrix (CSR)
    triangles: torch.Tensor  # (T, 3) long, vertex indices (mesh points then anchors)
    mouth_roi: tuple[int, int, int, int]  # y0, y1, x0, x1 in output pixels
    ref_mouth: torch.Tensor  # (3, 11) reference inner-lip s, v_up, v_lo in its mouth frame
    ref_mouth_frame: torch.Tensor  # (2, 3) origin xy + axis xy + half-width
    teeth_color: torch.Tensor  # (3,)
    lip_color: torch.Tensor  # (3,)
    iod: float  # inter-ocular distance in output pixels
    codec: MotionCodec  # the codec that decodes motion for this portrait (the pipeline's saved one)
    mode: str = "crop"  # "crop" or "paste_back"
    photo: Optional[torch.Tensor] = None  # (h, w, 3) uint8, the whole photo (paste_back)
    paste_mask: Optional[torch.Tensor] = None  # (1, 1, side, side) feathered blend mask (paste_back)
    mouth_covered: bool = False  # the photo's lips are hidden (hand, microphone): lips held, no interior drawn

    def to(self, device) -> "PortraitState":
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v.to(device) if isinstance(v, torch.Tensor) else v
        return PortraitState(**kw)

    @property
    def device(self) -> torch.device:
        return self.image.device

    @property
    def frame_size(self) -> tuple[int, int]:
        """(h, w) of the frames ``render`` returns."""
        return (self.size, self.size) if self.photo is None else tuple(self.photo.shape[:2])


class PortraitRenderer(ModelMixin, ConfigMixin):
    """Dense piecewise-affine warp of a reference portrait driven by face-mesh motion (weightless).

    ``prepare(image, analysis, size, mode, codec)`` once per portrait, then ``render(state, landmarks_or_motion)``
    for batches of frames; the device follows the state (``state.to("cuda")``). Pass the pipeline's
    ``codec``; without one the renderer's default codec is used.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        crop_margin: float = 2.1,
        ring_scales: tuple[float, float] = (1.6, 2.3),
        ring_pose_weights: tuple[float, float] = (0.55, 0.0),
        border_anchors: int = 8,
        inverse_iterations: int = 2,  # unused: the fixed-point inversion it counted gave way to newton_steps
        fold_blur: float = 0.09,
        fold_strength: float = 0.9,
        cheek_strength: float = 0.8,
        furrow_strength: float = 0.35,
        brow_shadow: float = 0.6,
        crease_strength: float = 0.3,
        cheek_glow: float = 0.35,
        surprise_jaw: float = 0.5,
        surprise_round: float = 0.9,
        anger_press: float = 0.6,
        smile_part: float = 0.9,
        sad_lids: float = 0.4,
        sad_gaze: float = 0.4,
        brow_relief: float = 0.4,
        crop_shift: float = 0.04,
        paste_feather: float = 0.06,
        crop_min_scale: float = 1.3,
        jaw_knee: float = 0.6,
        jaw_limit: float = 0.85,
        brow_knee: float = 0.7,
        brow_limit: float = 0.9,
        min_face_px: float = 40.0,
        newton_steps: int = 3,
        min_lip_visibility: float = 0.1,  # a hand over the whole mouth: 0-0.06; pale lips in a compressed video: 0.12+
    ):
        super().__init__()
        self.codec = MotionCodec()  # default for standalone use; prepare(codec=...) takes the pipeline's

    # ----------------------------------------------------------------------------------------------- prepare
    @torch.no_grad()
    def prepare(
        self,
        image: np.ndarray,
        analysis,
        size: int = 256,
        action_units: dict | None = None,
        device: torch.device | str | None = None,
        mode: str = "crop",
        codec: MotionCodec | None = None,
        check_cover: bool = True,
    ) -> PortraitState:
        """Frame the face, estimate the neutral, triangulate and precompute the warp.

        ``size``: side of the rendered face square (256, 512, or 0 = the square's own size in the photo).
        ``mode="crop"`` renders that square; ``"paste_back"`` composites it back into the whole photo.
        ``check_cover``: hold the lips of a photo whose mouth is covered (off for a video's frame: pale,
        compressed lips read as covered, and the video shows the speaker's own mouth).
        """
        if size not in (0, 256, 512) and size < 64:
            raise InputError(f"size must be 256, 512, or 0 (source crop), got {size}")
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError("image must be an RGB uint8 array (h, w, 3)")
        codec = self.codec if codec is None else codec
        lm = landmarks_of(analysis)
        h, w = image.shape[:2]
        check_face_size(lm, self.config.min_face_px)
        # the face square: inside the photo where the face allows, else past its edges (mirrored, softened)
        x0, y0, side = face_square(
            lm,
            self.config.crop_margin,
            self.config.crop_shift,
            upright=False,
            image_size=(h, w),
            whole_pixels=True,
            min_scale=self.config.crop_min_scale,
        ).box()
        crop = padded_crop(image, x0, y0, side)
        out_size = side if size == 0 else int(size)
        scale = out_size / side
        img = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255
        if out_size != side:
            img = F.interpolate(img, size=(out_size, out_size), mode="bilinear", antialias=True, align_corners=False)
        img = img.clamp(0, 1)
        ref = torch.from_numpy(lm.copy())
        ref[:, 0] -= x0
        ref[:, 1] -= y0
        ref = ref * scale

        neutral, ref_motion = codec.estimate_neutral(ref.numpy(), action_units)
        frame = FaceFrame.from_landmarks(neutral)
        templates = codec.templates(frame.to_norm(neutral))
        iod = float(frame.scale)

        # anchors (rings outside the face oval, the crop border), then the triangulation on an opened-mouth
        # version so triangles respect the lips when the jaw drops
        s = out_size
        anchors, weights = anchor_points(
            ref, s, iod, self.config.ring_scales, self.config.ring_pose_weights, self.config.border_anchors
        )
        verts = torch.cat([ref[:, :2], anchors]).numpy().astype(np.float64)
        opened = ref_motion.clone()
        opened[codec.index("jaw_open")] += 0.8
        open_lm = codec.decode(opened, neutral)
        opening = (open_lm - codec.decode(ref_motion, neutral))[:, :2].numpy()
        tris = lip_aware_triangles(verts, opening, s)
        interp = interpolation_matrix(verts, tris, s)
        stack = texture_stack(img, ref, iod, self.config.fold_blur, self.config.brow_shadow, self.config.cheek_glow)
        layers, layer_box = expression_layers(stack)

        # mouth: ROI and reference inner-lip profile in its mouth frame
        mo, ax, hw = mouth_frame(ref[None, :, :2])
        ref_prof = lip_profile(ref[None, :, :2], mo, ax, hw)[0]  # (3, 11)
        lipc = sample_colors(
            img,
            ref[LIPS_LOWER_OUTER[2:-2] + LIPS_UPPER_OUTER[3:-3], :2] * 0.5
            + ref[LIPS_LOWER_INNER[2:-2] + LIPS_UPPER_INNER[3:-3], :2] * 0.5,
        )
        teeth = teeth_color(img, ref_prof, mo[0], ax[0], hw[0])
        covered = check_cover and lip_visibility(img, ref) < self.config.min_lip_visibility
        if covered:
            logging.getLogger(NOTES_LOGGER).info(
                "the mouth is covered in the photo (a hand or an object over the lips): the lips are not animated"
            )
        pts = ref[LIPS_UPPER_OUTER + LIPS_LOWER_OUTER, :2]
        rx0 = int(max(0, math.floor(float(pts[:, 0].min()) - 0.35 * iod)))
        rx1 = int(min(s, math.ceil(float(pts[:, 0].max()) + 0.35 * iod)))
        ry0 = int(max(0, math.floor(float(pts[:, 1].min()) - 0.3 * iod)))
        ry1 = int(min(s, math.ceil(float(pts[:, 1].max()) + 0.9 * iod)))

        paste = {}
        if mode == "paste_back":
            # no feather where the square reaches the photo's edge: nothing there to blend with
            open_sides = (y0 <= 0, y0 + side >= h, x0 <= 0, x0 + side >= w)
            paste = dict(
                photo=torch.from_numpy(np.array(image, copy=True)),
                paste_mask=torch.from_numpy(paste_mask(side, self.config.paste_feather, open_sides))[None, None],
            )
        state = PortraitState(
            size=s,
            image=img[0],
            stack=stack,
            layers=layers,
            layer_box=layer_box,
            crop_box=torch.tensor([x0, y0, side, scale], dtype=torch.float32),
            reference_landmarks=ref,
            neutral_landmarks=neutral,
            reference_motion=ref_motion,
            **self._fit_residual(codec, ref, neutral, templates, ref_motion),
            templates=templates,
            anchors=anchors,
            anchor_pose_weight=weights,
            interp=interp,
            triangles=torch.from_numpy(tris),
            mouth_roi=(ry0, ry1, rx0, rx1),
            ref_mouth=ref_prof,
            ref_mouth_frame=torch.cat([mo[0], ax[0], hw[0].view(1)]),
            teeth_color=teeth,
            lip_color=lipc,
            iod=iod,
            codec=codec,
            mode=mode,
            mouth_covered=covered,
            **paste,
        )
        return state if device is None else state.to(device)

    # ------------------------------------------------------------------------------------------------ motion
    @staticmethod
    def _decode_px(
        codec: MotionCodec, neutral: torch.Tensor, templates: torch.Tensor, motion: torch.Tensor
    ) -> torch.Tensor:
        """motion (b, D) -> landmarks (b, 478, 3) in output pixels, decoded on the neutral (no residual)."""
        frame = FaceFrame.from_landmarks(neutral)
        return frame.to_pixels(codec.decode_norm(motion, frame.to_norm(neutral), templates))

    def _fit_residual(
        self,
        codec: MotionCodec,
        ref: torch.Tensor,
        neutral: torch.Tensor,
        templates: torch.Tensor,
        ref_motion: torch.Tensor,
    ) -> dict:
        """What the codec misses of the photo, ``residual = ref - decode(ref_motion)`` (478, 3) pixels, added to
        every frame so the reference motion renders the photo itself. Where it would push the inner lips into
        each other at zero motion (the codec over-fitting an open smile), ``lip_overlap`` takes the overlap out of
        it, fully at a closed mouth and fading to none at the photo's own opening (:meth:`target_landmarks`):
        closed lips at rest part as soon as the jaw moves, instead of a dead zone that swallows small openings,
        and the photo's own mouth keeps its lips' thickness (no lips thinned, or thickened, at the reference)."""
        residual = ref - self._decode_px(codec, neutral, templates, ref_motion[None])[0]
        rest = neutral + residual  # zero motion
        up, lo = torch.tensor(LIPS_UPPER_INNER[1:-1]), torch.tensor(LIPS_LOWER_INNER[1:-1])
        half = ((rest[up, 1] - rest[lo, 1]) / 2).clamp_min(0)  # (9,) overlap / 2, pixels
        overlap = torch.zeros_like(residual)
        for rows, sign in (
            ((LIPS_UPPER_INNER, LIPS_UPPER_SEMI_INNER), -1.0),
            ((LIPS_LOWER_INNER, LIPS_LOWER_SEMI_INNER), 1.0),
        ):
            for row in rows:
                overlap[torch.tensor(row[1:-1]), 1] += sign * half
        return dict(residual=residual, lip_overlap=overlap)

    def target_landmarks(self, state: PortraitState, motion: torch.Tensor) -> torch.Tensor:
        """motion (b, D) -> target landmarks (b, 478, 3) in output pixels, with the reference's fit residual."""
        motion = self.couple_actions(motion, state.reference_motion)
        if state.mouth_covered:
            motion = hold_mouth(motion, state.reference_motion)
        # the overlap correction fades from a closed mouth (1) to the photo's own opening (0)
        opening = motion[:, channel_indices(["jaw_open", "lips_part"])].sum(1)
        own = float(state.reference_motion[channel_indices(["jaw_open", "lips_part"])].sum())
        fade = (1 - opening / own).clamp(0, 1) if own > 0.05 else torch.ones_like(opening)
        px = self._decode_px(state.codec, state.neutral_landmarks, state.templates, motion) + state.residual
        return px + fade.view(-1, 1, 1) * state.lip_overlap

    def couple_actions(self, motion: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """:func:`.coupling.couple_actions` with this renderer's config: prototype expressions' joint actions beyond
        the photo's own (``reference``), lids no wider than the photo's, jaw and brows eased off at their limits."""
        return couple_actions(motion, reference, self.config)

    # ------------------------------------------------------------------------------------------------ render
    @torch.no_grad()
    def render(self, state: PortraitState, landmarks=None, motion=None) -> np.ndarray:
        """Render frames from target landmarks (b, 478, 3) in output pixels, or motion (b, D) -> uint8
        ``(b, h, w, 3)``: the face square (``h = w = state.size``), or the whole photo in paste-back mode."""
        face = self.render_tensor(state, landmarks, motion)
        if state.mode == "paste_back":
            return self.paste(state, face).cpu().numpy()
        # rounded in place (the frames are ours) and without a clamp (render_tensor's are in [0, 1])
        return face.mul_(255).add_(0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    @torch.no_grad()
    def paste(self, state: PortraitState, face: torch.Tensor) -> torch.Tensor:
        """Composite rendered face squares ``(b, 3, s, s)`` float back into the photo: uint8 ``(b, h, w, 3)``."""
        assert state.photo is not None and state.paste_mask is not None  # prepare() sets both in paste_back mode
        x0, y0, side = (int(v) for v in state.crop_box[:3].tolist())
        if face.shape[-1] != side:
            face = F.interpolate(
                face, size=(side, side), mode="bilinear", antialias=side < face.shape[-1], align_corners=False
            )
        photo = state.photo  # (h, w, 3) uint8
        h, w = photo.shape[:2]
        # the part of the square inside the photo (it may run past the edges)
        px0, py0, px1, py1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
        fx0, fy0 = px0 - x0, py0 - y0
        face = face[:, :, fy0 : fy0 + py1 - py0, fx0 : fx0 + px1 - px0]
        m = state.paste_mask[:, :, fy0 : fy0 + py1 - py0, fx0 : fx0 + px1 - px0]
        region = photo[py0:py1, px0:px1].permute(2, 0, 1)[None].float() / 255
        mixed = ((face * m + region * (1 - m)) * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        out = photo[None].repeat(face.shape[0], 1, 1, 1)
        out[:, py0:py1, px0:px1] = mixed
        return out

    @torch.no_grad()
    def render_tensor(self, state: PortraitState, landmarks=None, motion=None) -> torch.Tensor:
        """The rendered face squares: float (b, 3, s, s) in [0, 1] on the state's device (see :meth:`render`)."""
        dev = state.device
        if (landmarks is None) == (motion is None):
            raise InputError("render needs exactly one of landmarks or motion")
        if motion is not None:
            motion = torch.as_tensor(motion, dtype=torch.float32, device=dev).reshape(-1, MOTION_DIM)
            q = self.target_landmarks(state, motion)
        else:
            q = torch.as_tensor(landmarks, dtype=torch.float32, device=dev).reshape(-1, NUM_LANDMARKS, 3)
            motion = state.codec.fit(q, state.neutral_landmarks)
            if state.mouth_covered:  # the lips held at the photo's: the landmarks' mouth motion taken out
                q = self.target_landmarks(state, motion)
        if state.mouth_covered:
            motion = hold_mouth(motion, state.reference_motion)
        au12, au6, au4, au1 = (motion[:, channel_index(c)] for c in ("AU12", "AU6", "AU4", "AU1"))
        b, s = q.shape[0], state.size
        ref = state.reference_landmarks

        # 1. vertex displacements: mesh points, then anchors following part of the head's rigid motion
        disp_mesh = q[..., :2] - ref[:, :2]  # (b, 478, 2)
        # the head's rigid motion alone (pose channels on the reference expression) drives the anchors
        e = NUM_EXPRESSION
        still = state.reference_motion.clone()
        still[e:] = 0
        posed = still.repeat(b, 1)
        posed[:, e:] = motion[:, e:]
        head = self.target_landmarks(state, torch.cat([still[None], posed]))
        rigid = rigid_2d(head[0, :, :2], head[1:, :, :2])  # (b, 2, 3) similarity
        anc = state.anchors
        anc_h = torch.cat([anc, torch.ones_like(anc[:, :1])], -1)  # (A, 3)
        anc_disp = (torch.einsum("bij,aj->bai", rigid, anc_h) - anc) * state.anchor_pose_weight[:, None]
        disp = torch.cat([disp_mesh, anc_disp], 1)  # (b, N, 2)

        # 2. dense forward displacement on the reference grid (one sparse matmul for all triangles/frames, written
        # channels first as grid_sample reads it), in grid_sample units (2 / s per pixel)
        field = rearrange(disp * (2.0 / s), "b n k -> (b k) n") @ state.interp.t()  # (b*2, s*s)
        field = rearrange(field, "(b k) (h w) -> b k h w", b=b, h=s)

        # 3. backward map: solve u + d(u) = x for each pixel x (grid_sample coordinates)
        base = rearrange(to_grid(base_grid(s, dev), s), "h w k -> k h w")  # pixel centres
        u = invert_field(field, base, self.config.newton_steps)

        # 4. each frame's texture, mixed in reference space (the blends' weights are scalars per frame and bilinear
        # sampling is linear: one 3-channel warp instead of a warp of every layer; see textures.expression_layers)
        # taking a smile off smooths the cheek folds toward the surrounding skin ...
        ref_au12 = state.reference_motion[channel_index("AU12")]
        drop = ((ref_au12 - au12) / ref_au12.clamp_min(0.3)).clamp(0, 1) * self.config.fold_strength
        # ... and flattens the raised cheeks' bulge as AU6 drops; AU4 furrows between the brows
        ref_au6 = state.reference_motion[channel_index("AU6")]
        drop6 = ((ref_au6 - au6) / ref_au6.clamp_min(0.3)).clamp(0, 1) * self.config.cheek_strength
        # AU1 lifting the brow heads stretches the glabella vertically: fewer vertical furrows in AU1+4
        frown = au4.clamp(0, 1.2) * (1 - 0.7 * au1.clamp(0, 1)) * self.config.furrow_strength
        # a smile beyond the photo's own deepens the nasolabial crease and lights the raised cheeks
        smile = (au12 - ref_au12).clamp(0, 1.2) * self.config.crease_strength
        y0, y1, x0, x1 = state.layer_box
        texture = state.stack[:, CLOSED].repeat(b, 1, 1, 1)
        mixed = torch.einsum("bl,lchw->bchw", layer_weights(drop, drop6, frown, smile), state.layers)
        texture[:, :, y0:y1, x0:x1] = mixed.clamp(0, 1)
        # a face cut by the crop's edge moves pixels in from past it: they are mirrored, never a smeared edge row
        frame = F.grid_sample(texture, grid_of(u), mode="bilinear", padding_mode="reflection", align_corners=False)

        if state.mouth_covered:  # the occluder stays as the photo shows it: no lips or mouth interior drawn on it
            return frame
        # 5. mouth interior: the photo's own pixels (teeth) and lips from the closed texture, rigid from the reference
        ry0, ry1, rx0, rx1 = state.mouth_roi
        mouth = mouth_coords(state, q[..., :2], base_grid(s, dev)[ry0:ry1, rx0:rx1])
        own_up = sample_px(state.stack[:, PHOTO], mouth["src_up"])
        own_lo = sample_px(state.stack[:, PHOTO], mouth["src_lo"])
        lip_tex = sample_px(state.stack[:, CLOSED], mouth["src_lip"])
        synth = synth_mouth(state, mouth, smile=(au12 - ref_au12).clamp(0, 1))
        # a smile taken off by a negative expression or surprise (AU15 corners down, AU4 brows, AU23 lips
        # tightened, AU2 brows raised) takes the photo's teeth with it (synthesised cavity); plain speech keeps them
        # (the lip-sync evaluator reads them)
        negative = torch.stack([motion[:, channel_index(c)] for c in ("AU15", "AU4", "AU23", "AU2")]).amax(0)
        negative = negative.clamp(0, 1)
        keep_teeth = (1 - drop / max(self.config.fold_strength, 1e-6) * negative).view(b, 1, 1, 1)
        w_up, w_lo = mouth["w_up"] * keep_teeth, mouth["w_lo"] * keep_teeth
        inside = w_up * own_up + w_lo * own_lo + (1 - w_up - w_lo) * synth
        alpha = mouth["alpha"]
        roi = frame[:, :, ry0:ry1, rx0:rx1].lerp(lip_tex, mouth["w_band"])
        roi = roi * (1 - mouth["seam"] * (1 - 0.75 * state.lip_color.to(dev).view(1, 3, 1, 1)))  # shaded seam
        frame[:, :, ry0:ry1, rx0:rx1] = roi.lerp(inside, alpha).clamp(0, 1)
        return frame  # in [0, 1]: the texture is, and bilinear sampling keeps it there


def sample_px(texture: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Bilinear samples ``(b, c, h, w)`` of one texture ``(1, c, s, s)`` at pixel coordinates ``(b, h, w, 2)``."""
    b, h = px.shape[:2]
    grid = to_grid(px, texture.shape[-1]).reshape(1, b * h, -1, 2)
    out = F.grid_sample(texture, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return rearrange(out, "1 c (b h) w -> b c h w", b=b)
