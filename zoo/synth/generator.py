"""The parametric face image generator: parameters -> image, landmarks, visibility (Kortylewski et al. 2018/2019).

Per image: identity coefficients (shape α, colour γ; fixed per identity), expression β, pose (yaw, pitch, roll,
uniform in the configured ranges), 27 SH light coefficients from the light prior and a background. Everything
is a pure function of (seed, identity, k): the identity coefficients come from
``np.random.default_rng(SeedSequence(seed, spawn_key=(stream, identity)))`` and the image parameters from
``SeedSequence(seed, spawn_key=(stream, identity, k + 1))``, so any DataLoader worker or DDP rank renders the same sample.

Rendering: vertices v = shape(α, β); camera-space p = R(v - c) with c the mean of the instance's landmark
vertices; vertex normals of p; colours = SH Lambertian shading of the albedo (zoo.synth.illumination);
pinhole projection (zoo.synth.camera); framing "landmarks" (default) then maps the image plane by the
similarity u' = (S-1)/2 + a (u - b) that centres the box of this view's landmarks (b: its centre) with side
``face_scale``·S (the crops of the real datamodules: crop_scale 1.25 ↔ face_scale 0.8), framing "head" keeps the
fixed camera framed on the mean face (the head centred, as in the paper); numba z-buffer rasterisation over
the background (zoo.synth.render); landmarks with the contour convention and z-buffer visibility
(zoo.synth.landmarks).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from zoo.checks import check_choice, check_int, check_nonnegative, check_number, check_positive
from zoo.schemes import get_scheme
from zoo.synth.background import Backgrounds
from zoo.synth.camera import Camera, PoseRange, rotation_matrix
from zoo.synth.illumination import as_light, build_light_prior, shade
from zoo.synth.landmarks import MODES, inter_ocular, landmark_vertices, refine_contour, visibility
from zoo.synth.morphable import MorphableModel
from zoo.synth.render import render, vertex_normals

MIN_SIZE, MAX_SIZE = 16, 1024


@dataclass
class GeneratorConfig:
    """Everything that shapes the image distribution (see the module docstring)."""

    image_size: int = 96
    grayscale: bool = False
    scheme: str = "ibug68"
    landmark_mode: str = "contour"  # "contour" (300-W jaw convention) | "fixed"
    yaw: tuple[float, float] = (-90.0, 90.0)
    pitch: tuple[float, float] = (-30.0, 30.0)
    roll: tuple[float, float] = (-15.0, 15.0)
    light_prior: str = "gaussian"  # "gaussian" (built-in) | "empirical" (file of SH vectors)
    light_path: str | None = None
    light_scale: float = 1.0
    shape_scale: float = 1.0
    color_scale: float = 1.0
    expression_scale: float = 0.7
    background: str = "procedural"  # "procedural" | "folder" | "uniform"
    background_path: str | None = None
    framing: str = "landmarks"  # "landmarks": per-image landmark box centred | "head": fixed camera on the head
    face_scale: float = 0.8  # landmark box side / image side (0.8 = the real datamodules' crop_scale 1.25)
    camera_distance: float = 1000.0  # mm
    supersample: int = 1  # render at k×S and area-downsample (anti-aliasing)
    visibility_tol: float = 4.0  # mm
    backend: str = "numba"  # "numba" (CPU z-buffer, default) | "moderngl" (OpenGL via EGL, optional)

    def __post_init__(self) -> None:
        s = self.image_size
        self.image_size = check_int("image_size", int(s) if isinstance(s, np.integer) else s, MIN_SIZE, MAX_SIZE)
        check_choice("landmark_mode", self.landmark_mode, MODES)
        get_scheme(self.scheme)
        self.pose = PoseRange(tuple(self.yaw), tuple(self.pitch), tuple(self.roll))
        for key in ("light_scale", "shape_scale", "color_scale", "expression_scale", "visibility_tol"):
            check_nonnegative(key, getattr(self, key))
        check_int("supersample", self.supersample, 1, 4)
        check_choice("backend", self.backend, ("numba", "moderngl"))
        check_choice("framing", self.framing, ("landmarks", "head"))
        check_number("face_scale", self.face_scale, low=0.0, high=2.0, high_inclusive=True)
        check_positive("camera_distance", self.camera_distance)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("pose", None)
        return d


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """Independent stream for (seed, *key) via numpy SeedSequence spawn keys (key = stream, identity[, k + 1])."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key)))


class FaceGenerator:
    """Renders samples of ``model`` under ``config``; call ``generator(seed, identity, k)``."""

    def __init__(self, model: MorphableModel, config: GeneratorConfig | None = None, identity_cache: int = 64) -> None:
        self.model = model
        self.cfg = config or GeneratorConfig()
        self.light_prior = build_light_prior(self.cfg.light_prior, self.cfg.light_path, self.cfg.light_scale)
        ss = self.cfg.supersample
        self.backgrounds = Backgrounds(self.cfg.background, self.cfg.background_path, self.cfg.image_size * ss)
        self.lm_idx = model.landmark_indices(self.cfg.scheme)
        defined = self.lm_idx[self.lm_idx >= 0]
        if len(defined) < 2:
            raise ValueError(f"model {model.name!r} defines fewer than 2 landmarks of {self.cfg.scheme!r}")
        box = np.ptp(model.mean_shape[defined, :2], axis=0)
        self.camera = Camera.framing(self.cfg.image_size * ss, float(box.max()), self.cfg.face_scale,
                                     self.cfg.camera_distance)
        self.scheme = get_scheme(self.cfg.scheme)
        self._cache: OrderedDict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = identity_cache
        if self.cfg.backend == "moderngl":
            from zoo.synth.render_gl import GLRasterizer

            self._render = GLRasterizer()  # its GL context is created lazily in the rendering process
        else:
            self._render = render

    # ---- parameters -----------------------------------------------------------------------------------
    def identity_coefficients(self, seed: int, identity: int, stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
        return self.model.sample_identity(rng_for(seed, stream, identity), self.cfg.shape_scale, self.cfg.color_scale)

    def sample_params(self, seed: int, identity: int, k: int, stream: int = 0) -> dict[str, Any]:
        """All parameters of image k of ``identity``: shape, color, expression, yaw, pitch, roll, light, bg_seed.
        ``stream`` separates populations drawn with one seed (the datamodule: 0 train, 1 val, 2 test)."""
        shape, color = self.identity_coefficients(seed, identity, stream)
        rng = rng_for(seed, stream, identity, k + 1)
        yaw, pitch, roll = self.cfg.pose.sample(rng)
        return {"seed": int(seed), "stream": int(stream), "identity": int(identity), "k": int(k), "shape": shape,
                "color": color,
                "expression": self.model.sample_expression(rng, self.cfg.expression_scale),
                "yaw": yaw, "pitch": pitch, "roll": roll, "light": self.light_prior.sample(rng),
                "bg_seed": int(rng.integers(2 ** 63))}

    def _identity(self, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        key = (p.get("seed", -1), p.get("stream", 0), p.get("identity", -1))
        hit = self._cache.get(key) if key[2] >= 0 else None
        if hit is None:
            hit = (self.model.shape_instance(p["shape"]).ravel(), self.model.color_instance(p["color"]))
            if key[2] >= 0 and self._cache_size > 0:
                self._cache[key] = hit
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return hit

    # ---- rendering --------------------------------------------------------------------------------------
    def render(self, p: dict[str, Any], landmarks: bool = True) -> dict[str, Any]:
        """Render parameters ``p`` (from :meth:`sample_params`, or hand-made with the same keys) -> dict of numpy:
        image [S,S,C] float32 in [0,1], landmarks [L,2] (0-based px), visible [L] bool, mask [S,S] bool, and
        normalising distances (pixels): norm = ‖p36 - p45‖ in the image (300-W inter-ocular), norm_3d = the 3D
        outer-eye-corner distance × pixels per mm at the head centre (what the inter-ocular distance would be
        frontally: pose-independent), norm_box = √(w·h) of the landmark box.
        ``landmarks=False`` (the identity task): only image and mask, the same pixels, ~25 % faster (the visible
        jaw contour, visibility test and distances are not computed)."""
        m, cfg, ss = self.model, self.cfg, self.cfg.supersample
        flat, albedo = self._identity(p)
        verts = (flat + m.expression_offset(p["expression"])).reshape(-1, 3)
        defined = self.lm_idx[self.lm_idx >= 0]
        centre = verts[defined].mean(0)
        rot = rotation_matrix(p["yaw"], p["pitch"], p["roll"]).astype(np.float32)
        p_cam = (verts - centre) @ rot.T
        normals = vertex_normals(p_cam, m.triangles)
        colors = shade(albedo, normals, as_light(p["light"]))
        uv, depth = self.camera.project(p_cam)
        idx = landmark_vertices(m, cfg.scheme, cfg.landmark_mode, uv, rot)
        ok = idx >= 0
        zoom = 1.0
        if cfg.framing == "landmarks":  # similarity of the image plane: landmark box centred, side face_scale·S
            box = uv[idx[ok]]
            lo, hi = box.min(0), box.max(0)
            zoom = cfg.face_scale * self.camera.image_size / max(float((hi - lo).max()), 1e-6)
            uv = (self.camera.image_size - 1) / 2.0 + zoom * (uv - (lo + hi) / 2.0)
        bg = self.backgrounds.sample(np.random.default_rng(p["bg_seed"]))
        image, zbuf = self._render(uv, depth, colors, m.triangles, bg)
        if not landmarks:
            image, mask = self._finish(image, np.isfinite(zbuf))
            return {"image": image, "mask": mask}
        if cfg.landmark_mode == "contour" and cfg.scheme == "ibug68":  # the outline of what the camera sees
            idx = refine_contour(m, idx, uv, depth, zbuf, rot, cfg.visibility_tol)
        lm = np.zeros((len(idx), 2), np.float32)
        vis = np.zeros(len(idx), bool)
        lm[ok] = uv[idx[ok]]
        vis[ok] = visibility(uv[idx[ok]], depth[idx[ok]], zbuf, cfg.visibility_tol)
        image, mask = self._finish(image, np.isfinite(zbuf))
        if ss > 1:
            lm = (lm + 0.5) / ss - 0.5  # pixel-centre coordinates at the output resolution
        a, b = self.scheme.outer_eye_corners
        norm = inter_ocular(lm, (a, b)) if ok[a] and ok[b] else float("nan")
        # pose-independent alternatives: the 3D eye-corner distance in pixels at the head centre, and √(w·h) of
        # the landmark box
        px_per_mm = self.camera.focal / self.camera.distance * zoom / ss
        norm_3d = float(np.linalg.norm(verts[idx[a]] - verts[idx[b]])) * px_per_mm if ok[a] and ok[b] else float("nan")
        wh = np.ptp(lm[ok], axis=0)
        return {"image": image, "landmarks": lm, "visible": vis,
                "norm": np.float32(norm), "norm_3d": np.float32(norm_3d),
                "norm_box": np.float32(math.sqrt(max(float(wh[0] * wh[1]), 0.0))), "mask": mask}

    def _finish(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rendered frame at the output size: area-downsampled when supersampling, clipped to [0, 1], gray
        when configured (float32 [S,S,C] contiguous), and the face mask at that size."""
        cfg = self.cfg
        if cfg.supersample > 1:
            s = cfg.image_size
            image = cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask.astype(np.float32), (s, s), interpolation=cv2.INTER_AREA) > 0.5
        image = np.clip(image, 0.0, 1.0)
        if cfg.grayscale:
            image = (image @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        return np.ascontiguousarray(image, dtype=np.float32), mask

    def __call__(self, seed: int, identity: int, k: int, stream: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
        """(rendered dict, parameters) of image k of ``identity`` under ``seed``."""
        p = self.sample_params(seed, identity, k, stream)
        return self.render(p), p
