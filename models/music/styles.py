"""Instrumentation presets and how a free-text ``style`` picks one.

A preset names General MIDI programs for the arranger's five parts (pad/chords, arpeggio, bass, melody,
drums) and how each part plays. ``style`` text is matched to the presets' descriptions through the text
emotion encoder's sentence model (MiniLM, cosine similarity; keyword overlap when that model is not
installed). With no style, the emotion picks the preset (:func:`style_for_emotion`). Any text is accepted:
an unknown style simply gets the nearest preset.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from affectstudio.errors import DependencyError


@dataclass(frozen=True)
class StylePreset:
    name: str
    description: str
    pad: int  # GM program of the chord part
    arp: int | None  # arpeggio / comping part (None: no such part)
    bass: int
    melody: int
    drums: bool = True
    drum_kit: int = 0  # GM drum kit program (bank 128)
    pad_style: str = "sustain"  # "sustain" (held chords) or "comp" (rhythmic chords)
    melody_octave: int = 5  # middle octave of the melody (MIDI octave, C5 = 72)
    swing: float = 0.0  # 0..0.33 of an eighth
    drum_scale: float = 1.0  # drum loudness


PRESETS: tuple[StylePreset, ...] = (
    StylePreset(
        "cinematic",
        "cinematic orchestral film score with strings, horns and harp, emotional and sweeping",
        pad=48,
        arp=46,
        bass=43,
        melody=60,
        drums=True,
        drum_kit=48,
        drum_scale=0.8,
    ),
    StylePreset(
        "piano",
        "soft solo piano, intimate, gentle and reflective, minimal ambient",
        pad=89,
        arp=0,
        bass=32,
        melody=0,
        drums=False,
        pad_style="sustain",
        melody_octave=5,
    ),
    StylePreset(
        "pop",
        "upbeat pop song with piano, electric bass and drums, bright and catchy",
        pad=0,
        arp=27,
        bass=33,
        melody=80,
        drums=True,
        pad_style="comp",
        melody_octave=5,
    ),
    StylePreset(
        "electronic",
        "electronic synthwave with synth pads, synth bass, arpeggiator and drum machine",
        pad=89,
        arp=81,
        bass=38,
        melody=81,
        drums=True,
        drum_kit=24,
        melody_octave=5,
    ),
    StylePreset(
        "folk",
        "acoustic folk with fingerpicked guitar, flute and upright bass, warm and rustic",
        pad=48,
        arp=25,
        bass=32,
        melody=73,
        drums=True,
        drum_kit=0,
        drum_scale=0.6,
        melody_octave=5,
    ),
    StylePreset(
        "jazz",
        "jazz lounge with electric piano, vibraphone, walking bass and brushed drums, smoky",
        pad=4,
        arp=None,
        bass=32,
        melody=11,
        drums=True,
        drum_kit=40,
        pad_style="comp",
        swing=0.25,
        drum_scale=0.7,
    ),
    StylePreset(
        "suspense",
        "dark suspense thriller or horror, low strings, tremolo, choir and ominous percussion",
        pad=49,
        arp=45,
        bass=42,
        melody=52,
        drums=True,
        drum_kit=48,
        melody_octave=4,
        drum_scale=0.7,
    ),
    StylePreset(
        "playful",
        "playful cartoon comedy with pizzicato strings, clarinet, marimba and tuba, whimsical",
        pad=48,
        arp=12,
        bass=58,
        melody=71,
        drums=True,
        drum_kit=0,
        melody_octave=5,
        drum_scale=0.6,
    ),
    StylePreset(
        "epic",
        "epic trailer, huge brass, choir, timpani and big drums, heroic and powerful",
        pad=48,
        arp=61,
        bass=43,
        melody=61,
        drums=True,
        drum_kit=48,
        melody_octave=5,
        drum_scale=1.1,
    ),
    StylePreset(
        "lofi",
        "lofi hip hop beat, mellow electric piano, soft bass and laid-back swung drums, chill",
        pad=4,
        arp=None,
        bass=33,
        melody=11,
        drums=True,
        drum_kit=0,
        pad_style="comp",
        swing=0.2,
        drum_scale=0.8,
    ),
)
PRESET_NAMES = tuple(p.name for p in PRESETS)


def get_preset(name: str) -> StylePreset:
    return PRESETS[PRESET_NAMES.index(name)]


def style_for_emotion(valence: float, arousal: float) -> StylePreset:
    """Default instrumentation when no style is given: the emotion's quadrant."""
    if valence >= 0.15:
        return get_preset("pop" if arousal > 0.25 else ("playful" if arousal > 0.0 else "piano"))
    if valence <= -0.15:
        return get_preset("suspense" if arousal > 0.2 else "piano")
    return get_preset("cinematic" if arousal > 0.1 else "piano")


@functools.lru_cache(maxsize=1)
def _preset_embeddings():
    from affectstudio.conditioning.emotion.text import load_sentence_model

    model = load_sentence_model()
    texts = [f"{p.name}: {p.description}" for p in PRESETS]
    return model, np.asarray(model.encode(texts, normalize_embeddings=True), np.float32)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def match_style(text: str) -> tuple[StylePreset, float]:
    """The preset nearest to free text (cosine similarity of sentence embeddings), with its similarity."""
    words = _words(text)
    for p in PRESETS:  # a preset named outright wins
        if p.name in words:
            return p, 1.0
    try:
        model, emb = _preset_embeddings()
    except (ImportError, OSError, DependencyError):  # no sentence model installed: keyword overlap instead
        scores = [len(words & _words(p.description)) for p in PRESETS]
        i = int(np.argmax(scores))
        return PRESETS[i], float(scores[i]) / max(1, len(words))
    q = np.asarray(model.encode([text], normalize_embeddings=True), np.float32)[0]
    sims = emb @ q
    i = int(np.argmax(sims))
    return PRESETS[i], float(sims[i])
