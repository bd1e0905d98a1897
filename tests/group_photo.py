"""A group photo of package faces for the face-choice tests (tests/test_face_choice.py) and the studio's face
picker (tests/test_studio_browser.py)."""

import numpy as np


def _head(img, box, face_width, pad=0.7):
    import cv2

    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    crop = img[max(0, int(y0 - pad * h)) : int(y1 + 0.8 * pad * h), max(0, int(x0 - pad * w)) : int(x1 + pad * w)]
    s = face_width / w
    return cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def _lfw_head(i, side):
    import cv2
    from skimage import data

    grey = (data.lfw_subset()[i] * 255).astype(np.uint8)
    grey = cv2.copyMakeBorder(grey, 5, 5, 5, 5, cv2.BORDER_REPLICATE)  # the 25 px crops are cut at the chin
    return cv2.resize(np.stack([grey] * 3, -1), (side, side), interpolation=cv2.INTER_CUBIC)


def group_photo():
    """Four different people in a row on a grey wall (1109 x 400): Grace Hopper (matplotlib), Eileen Collins
    (scikit-image's astronaut) and two Labeled Faces in the Wild crops (scikit-image's lfw_subset), upscaled.
    Returns the photo and each person's tile ``(x0, x1)``."""
    import matplotlib.cbook as cbook
    from PIL import Image
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    heads = [
        _head(hopper, (164, 131, 357, 335), 120),  # face boxes measured once with analyze_face
        _head(data.astronaut(), (179, 69, 272, 178), 100),
        _lfw_head(0, 230),
        _lfw_head(3, 200),
    ]
    photo = np.full((400, 1109, 3), (170, 180, 190), np.uint8)
    tiles, x = [], 30
    for h in heads:
        y = (400 - h.shape[0]) // 2
        photo[y : y + h.shape[0], x : x + h.shape[1]] = h
        tiles.append((x, x + h.shape[1]))
        x += h.shape[1] + 30
    return photo, tiles
