"""FACS couplings of the portrait's expression channels: the actions that come together in a prototype expression,
added beyond the photo's own before the warp (:meth:`.renderer.PortraitRenderer.couple_actions` applies them with the
renderer's config), and the soft limits that keep a dropped jaw and raised brows on the face."""

from __future__ import annotations

import torch

from .channels import channel_indices


def couple_actions(motion: torch.Tensor, reference: torch.Tensor, cfg) -> torch.Tensor:
    """``motion (b, D)`` with the actions that come together in a prototype expression (FACS/EMFACS) added beyond
    the photo's own (``reference (D,)``; ``cfg``: the renderer's config): a smile (AU12) parts the lips (AU25);
    surprise's brow and lid raise (AU2 with AU5) drops the jaw (AU26) into a rounded, unspread mouth (the "o" of
    surprise, not a grin);
    anger's lip tightener (AU23) presses the lips (AU24); sadness's oblique brow and lowered corners (AU1
    with AU15) lower the lids and the gaze (EMFACS sadness with AU43 partial and AU64); the inner-brow raiser
    and the brow lowerer pull the brow heads against each other (AU1 with AU4: the oblique brow of sadness
    and fear lowers less than a frown). Single actions stay as they are (angry's AU5 alone opens no jaw;
    speech's lips stay as the DiT made them).

    Eyes never open wider than the photo shows them (the warp cannot invent an eyeball it never saw):
    lids stay at least as low as the photo's own (``blink``), and the lid raiser fades on lowered lids."""
    names = ["AU1", "AU2", "AU4", "AU5", "AU12", "AU15", "AU23", "jaw_open", "lip_round", "lip_spread"]
    names += ["lip_press", "lips_part", "blink", "gaze_y"]
    i = dict(zip(names, channel_indices(names)))
    ref = reference.to(motion)

    def beyond(*aus: str) -> torch.Tensor:  # the joint action (weakest of the set) beyond the photo's own
        now = torch.stack([motion[:, i[a]] for a in aus]).amin(0)
        was = torch.stack([ref[i[a]] for a in aus]).amin(0).clamp_min(0)
        return (now - was).clamp(0, 1.2)

    out = motion.clone()
    out[:, i["lips_part"]] += cfg.smile_part * beyond("AU12")
    surprise = beyond("AU2", "AU5")
    out[:, i["jaw_open"]] += cfg.surprise_jaw * surprise
    out[:, i["lip_round"]] += cfg.surprise_round * surprise
    out[:, i["lip_spread"]] *= (1 - surprise).clamp_min(0)
    out[:, i["lip_press"]] += cfg.anger_press * beyond("AU23")
    sad = beyond("AU1", "AU15")
    out[:, i["blink"]] += cfg.sad_lids * sad
    out[:, i["gaze_y"]] += cfg.sad_gaze * sad
    out[:, i["AU4"]] -= cfg.brow_relief * beyond("AU1", "AU4")
    ref_blink = ref[i["blink"]].clamp(0, 1)
    out[:, i["blink"]] = torch.maximum(out[:, i["blink"]], ref_blink)
    # a jaw dropped past the widest speech opening drags the chin over the neck, brows raised past ~0.9 leave
    # their old position showing: both ease off softly (speech and everyday expressions stay below the knees)
    out[:, i["jaw_open"]] = soft_limit(out[:, i["jaw_open"]], cfg.jaw_knee, cfg.jaw_limit)
    for au in ("AU1", "AU2"):
        out[:, i[au]] = soft_limit(out[:, i[au]], cfg.brow_knee, cfg.brow_limit)
    room = (1 - ref_blink / 0.35).clamp(0, 1)  # lids already lowered by a third: no lid raise left
    au5 = motion[:, i["AU5"]]
    out[:, i["AU5"]] = torch.minimum(au5, ref[i["AU5"]]) + (au5 - ref[i["AU5"]]).clamp_min(0) * room
    return out


def soft_limit(x: torch.Tensor, knee: float, limit: float) -> torch.Tensor:
    """``x`` unchanged up to ``knee``, then easing (tanh) toward ``limit`` and never past it."""
    span = max(limit - knee, 1e-6)
    return torch.where(x > knee, knee + span * torch.tanh((x - knee) / span), x)
