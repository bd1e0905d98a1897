"""The dubbing model: voices (Piper VITS, espeak-ng fallback), the reference-voice match, emotional prosody and
placing a voice on a timeline. The prosody DiT itself is :class:`affectstudio.models.dit.AffectDiT`."""
