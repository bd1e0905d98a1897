"""Photos as people bring them, read the way a viewer shows them: the EXIF orientation of phone JPEGs applied,
greyscale and CMYK turned to RGB, 16-bit samples scaled (not clipped) to 8 bits, transparency composited over
white. :func:`load_photo` returns ``uint8`` RGB ``(h, w, 3)`` like :func:`affectstudio.media.load_image`, which it
defers to for everything else (missing files, undecodable data, arrays of other types)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from affectstudio.errors import MediaDecodeError
from affectstudio.media import ImageInput, load_image

BACKGROUND = 255  # transparent pixels show as white, as image viewers and browsers show them


def load_photo(src: ImageInput) -> np.ndarray:
    """Read a photo (path, PIL image or array) as ``uint8`` RGB ``(h, w, 3)`` as it is displayed (see module doc)."""
    if isinstance(src, (str, os.PathLike)):
        load_image(src)  # the project's errors for a missing or unreadable file
        try:
            with Image.open(src) as im:
                im.load()
                return pil_to_rgb(im)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise MediaDecodeError(f"cannot read image {src}: not a valid image file ({e})") from e
    if isinstance(src, Image.Image):
        return pil_to_rgb(src)
    if isinstance(src, np.ndarray):
        return array_to_rgb(src)
    return load_image(src)


def pil_to_rgb(im: Image.Image) -> np.ndarray:
    """A PIL image upright (EXIF orientation), 8-bit, alpha composited over white, as RGB uint8."""
    im = ImageOps.exif_transpose(im) or im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return array_to_rgb(np.asarray(im))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return array_to_rgb(np.asarray(im.convert("RGBA")))
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def array_to_rgb(arr: np.ndarray) -> np.ndarray:
    """An array photo as RGB uint8: 16-bit (and other integer) samples scaled by their type's range, floats in
    [0, 1] or [0, 255], a grey or grey+alpha or RGBA image composited over white."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] in (2, 4):
        colour, alpha = a[..., :-1], unit_scale(a[..., -1:])
        grey_or_rgb = unit_scale(colour) * alpha + BACKGROUND / 255.0 * (1 - alpha)
        return load_image(np.repeat(grey_or_rgb, 3, -1) if grey_or_rgb.shape[-1] == 1 else grey_or_rgb)
    if a.dtype != np.uint8 and np.issubdtype(a.dtype, np.integer):
        a = unit_scale(a)
    return load_image(a)


def unit_scale(a: np.ndarray) -> np.ndarray:
    """Samples as float32 in [0, 1]: integers by their type's range (8-bit 255, 16-bit 65535; a 32-bit image, as
    PIL opens 16-bit greyscale, by 65535), floats above 1 as 8-bit values."""
    if np.issubdtype(a.dtype, np.integer):
        top = 255.0 if a.dtype.itemsize == 1 else 65535.0
        return np.clip(a.astype(np.float32) / top, 0, 1)
    a = a.astype(np.float32)
    return np.clip(a / 255.0 if a.max(initial=0.0) > 1.0 else a, 0, 1)
