"""Image decoding with OpenCV: one place that turns a file into a uint8 array or a ValueError naming it.

``read_image`` decodes with ``cv2.IMREAD_COLOR`` (grayscale and palette files become 3-channel BGR,
16-bit files are scaled to 8 bit by OpenCV) and returns either a [H, W] grayscale array
(``cv2.COLOR_BGR2GRAY``: Y = 0.299 R + 0.587 G + 0.114 B) or an [H, W, 3] RGB array.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _decode(path: Path, flags: int) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    # np.fromfile + imdecode also handles non-ASCII paths, which cv2.imread does not on every platform.
    buf = np.fromfile(str(path), dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, flags) if buf.size else None
    except cv2.error:
        if flags != cv2.IMREAD_REDUCED_GRAYSCALE_8:
            raise ValueError(f"{path}: OpenCV failed to decode the image") from None
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)  # reduced decoding fails on images smaller than 8 px
    if img is None or img.size == 0:
        raise ValueError(f"{path}: cannot decode image (corrupt, truncated or not an image; {buf.size} bytes); "
                         f"expected a file OpenCV reads ({', '.join(IMAGE_SUFFIXES)})")
    # libjpeg decodes a truncated JPEG into a partly grey image with only a console warning: refuse it.
    if buf[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in buf[-4096:].tobytes():
        raise ValueError(f"{path}: truncated JPEG (no end-of-image marker FFD9 near the end of the file)")
    return img


def read_image(path: str | os.PathLike, grayscale: bool = False) -> np.ndarray:
    """Decode ``path`` into uint8 [H, W] (grayscale) or [H, W, 3] (RGB).

    Raises FileNotFoundError when the file is absent and ValueError naming the file when OpenCV cannot
    decode it (corrupt, truncated header, not an image) or it is empty.
    """
    img = _decode(Path(path), cv2.IMREAD_COLOR)
    if grayscale:
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def check_image(path: str | os.PathLike) -> tuple[int, int]:
    """Cheap decodability check (JPEGs decode at 1/8 scale): (height, width) of the reduced image.

    Used at setup by ``on_bad_sample: skip`` so unreadable files are removed before the dataset is indexed.
    Raises like :func:`read_image`.
    """
    img = _decode(Path(path), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    return int(img.shape[0]), int(img.shape[1])


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file header (Pillow; no pixel decoding), else by decoding with OpenCV.

    FileNotFoundError when absent, ValueError naming the file when neither can read it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except (UnidentifiedImageError, OSError, ValueError):
        img = _decode(path, cv2.IMREAD_UNCHANGED)
        return int(img.shape[1]), int(img.shape[0])
