"""Head pose and pinhole camera of the synthetic face generator.

Coordinates (model and camera): x to the image right, y up, z towards the camera, millimetres. The head is
rotated about its centre ``c`` (the mean of its landmark vertices, so the face stays centred in the frame,
as in Kortylewski et al. 2018, Sec. III "We normalize the head position to be centered in the image frame"):

    p_cam = R(yaw, pitch, roll) (p - c),     R = Rz(roll) · Rx(pitch) · Ry(yaw)

with right-handed rotations in degrees: positive yaw turns the nose towards the image right (the subject looks
to their left), positive pitch turns the nose down, positive roll turns the head counter-clockwise on screen.
A pinhole camera on the +z axis at distance ``D`` looking at the origin with focal length ``f`` pixels maps

    u = (S - 1) / 2 + f · x / (D - z),      v = (S - 1) / 2 - f · y / (D - z),      depth = D - z

for an S×S image in 0-based pixel-centre coordinates (pixel (row i, column j) is centred on (u=j, v=i)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from zoo.checks import check_range_pair


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) Rx(pitch) Ry(yaw) for angles in degrees (float64 [3,3])."""
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    # Rx with positive pitch moving +z (the nose) towards -y (down)
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ rx @ ry


@dataclass(frozen=True)
class PoseRange:
    """Uniform head-pose distribution: yaw ∈ [yaw_min, yaw_max] etc., degrees (Kortylewski et al. 2019:
    yaw [-90, 90], pitch [-30, 30], roll [-15, 15]; the ``frontal`` bias preset limits yaw to [-35, 35])."""

    yaw: tuple[float, float] = (-90.0, 90.0)
    pitch: tuple[float, float] = (-30.0, 30.0)
    roll: tuple[float, float] = (-15.0, 15.0)

    def __post_init__(self) -> None:
        for name in ("yaw", "pitch", "roll"):
            pair = check_range_pair(f"pose.{name}", getattr(self, name), low=-180.0, high=180.0)
            object.__setattr__(self, name, pair)

    def sample(self, rng: np.random.Generator) -> tuple[float, float, float]:
        u = rng.random(3)
        return tuple(float(lo + (hi - lo) * x) for (lo, hi), x in zip((self.yaw, self.pitch, self.roll), u))


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: ``image_size`` S pixels, ``distance`` D mm to the head centre, ``focal`` f pixels."""

    image_size: int
    focal: float
    distance: float = 1000.0

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, (int, np.integer)) or self.image_size <= 0:
            raise ValueError(f"image_size must be a positive integer (pixels), got {self.image_size!r}")
        if not (self.focal > 0 and self.distance > 0):
            raise ValueError(f"camera focal ({self.focal}) and distance ({self.distance}) must be > 0")

    @classmethod
    def framing(cls, image_size: int, extent_mm: float, face_scale: float = 0.6, distance: float = 1000.0) -> "Camera":
        """Camera whose image shows an object of ``extent_mm`` at the head centre over ``face_scale`` of the width."""
        if not (0 < face_scale <= 2):
            raise ValueError(f"face_scale must be in (0, 2], got {face_scale}")
        if not isinstance(image_size, (int, np.integer)) or image_size <= 0:
            raise ValueError(f"image_size must be a positive integer (pixels), got {image_size!r}")
        return cls(int(image_size), face_scale * image_size * distance / extent_mm, distance)

    def project(self, p_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera-space points [N,3] -> (uv [N,2] pixels, depth [N]) per the module formula."""
        depth = self.distance - p_cam[:, 2]
        c = (self.image_size - 1) / 2.0
        uv = np.empty((p_cam.shape[0], 2), dtype=p_cam.dtype)
        uv[:, 0] = c + self.focal * p_cam[:, 0] / depth
        uv[:, 1] = c - self.focal * p_cam[:, 1] / depth
        return uv, depth
