"""Image decoding: grayscale/RGB conversion and errors naming corrupt or truncated files."""
import cv2
import numpy as np
import pytest

from zoo.io.images import check_image, read_image


def test_gray_and_rgb(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "r.png"), bgr)
    rgb = read_image(tmp_path / "r.png")
    assert rgb.shape == (4, 5, 3) and (rgb[..., 0] == 200).all() and (rgb[..., 2] == 0).all()
    gray = read_image(tmp_path / "r.png", grayscale=True)
    assert gray.shape == (4, 5) and abs(int(gray[0, 0]) - round(0.299 * 200)) <= 1
    cv2.imwrite(str(tmp_path / "g.png"), np.full((3, 3), 77, np.uint8))  # single-channel file
    assert read_image(tmp_path / "g.png").shape == (3, 3, 3)
    assert check_image(tmp_path / "g.png") == (3, 3)  # too small for 1/8 reduced decoding: full decode


def test_corrupt_truncated_missing(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"bad\.jpg: cannot decode"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(ValueError, match=r"bad\.jpg"):
        check_image(tmp_path / "bad.jpg")
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    for n in (len(buf) // 2, len(buf) - 2):  # half a file; only the end-of-image marker missing
        (tmp_path / "cut.jpg").write_bytes(buf.tobytes()[:n])
        with pytest.raises(ValueError, match=r"cut\.jpg: (truncated JPEG|cannot decode)"):
            read_image(tmp_path / "cut.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.png"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")
