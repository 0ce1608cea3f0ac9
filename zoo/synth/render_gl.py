"""Optional OpenGL rasteriser (moderngl; EGL headless context: llvmpipe on CPU, the GPU where there is one).

Same inputs and outputs as :func:`zoo.synth.render.render`: vertices at pixel positions uv (0-based pixel-centre
convention: NDC x = 2(u + 0.5)/W - 1, y = 1 - 2(v + 0.5)/H), depth mapped linearly to the depth buffer between
the frame's nearest and farthest vertex (w = 1, so depth and colours are interpolated affinely in screen space,
exactly like the numba backend), back faces culled (counter-clockwise front faces), per-vertex colours.
The depth buffer is read back and mapped to the input's depth units (+inf where nothing was drawn).

The GL context is created lazily in the process that renders, so every DataLoader worker makes its own. A
context made before ``fork`` breaks the children (Mesa's EGL segfaults there, even for a new context): render
nothing with this backend in the main process before the workers start (the synthetic datamodule does not), or
use ``multiprocessing_context="spawn"``; a forked copy of a rasteriser that already holds a context raises.
Importing ``triton`` (torch imports it lazily) after Mesa's llvmpipe is loaded segfaults (two LLVMs), so the
context creation imports triton first when it is installed. Needs ``pip install
moderngl`` and an EGL driver (Mesa). On this project's 2-core CPU machine the numba backend is faster
(benchmarks/synth_throughput.py); this backend is for machines with a GPU.
"""
from __future__ import annotations

import os

import numpy as np

_VS = """
#version 330
uniform vec2 size;
uniform vec2 drange;
in vec2 in_uv;
in float in_depth;
in vec3 in_color;
out vec3 v_color;
void main() {
    float z = (in_depth - drange.x) / (drange.y - drange.x) * 2.0 - 1.0;
    gl_Position = vec4(2.0 * (in_uv.x + 0.5) / size.x - 1.0, 1.0 - 2.0 * (in_uv.y + 0.5) / size.y, z, 1.0);
    v_color = in_color;
}
"""
_FS = """
#version 330
in vec3 v_color;
out vec4 f_color;
void main() { f_color = vec4(v_color, 1.0); }
"""


class GLRasterizer:
    """Callable like :func:`zoo.synth.render.render` (3 colour channels)."""

    def __init__(self, backend: str | None = "egl") -> None:
        self.backend = backend
        self._pid: int | None = None
        self._ctx = self._prog = self._fbo = None
        self._size: tuple[int, int] | None = None

    def __getstate__(self) -> dict:
        return {"backend": self.backend, "_pid": None, "_ctx": None, "_prog": None, "_fbo": None, "_size": None}

    def _context(self, h: int, w: int):
        if self._ctx is not None and self._pid != os.getpid():
            raise RuntimeError(
                f"GLRasterizer: this process ({os.getpid()}) was forked from process {self._pid} after that one "
                f"created an OpenGL context; EGL drivers crash in such children. Do not render in the main process "
                f"before starting DataLoader workers, or use multiprocessing_context='spawn'.")
        if self._ctx is None:
            try:
                import moderngl
            except ImportError as e:
                raise ImportError("render backend 'moderngl' needs `pip install moderngl` (and an EGL driver)") from e
            try:  # triton (pulled in by torch later) must load its LLVM before Mesa's llvmpipe, else it segfaults
                import triton  # noqa: F401
            except Exception:  # noqa: BLE001 - absent or broken triton: nothing to order
                pass
            kw = {"backend": self.backend} if self.backend else {}
            self._ctx = moderngl.create_standalone_context(**kw)
            self._prog = self._ctx.program(vertex_shader=_VS, fragment_shader=_FS)
            self._pid, self._size, self._fbo = os.getpid(), None, None
        if self._size != (h, w):
            ctx = self._ctx
            self._fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((w, h), components=4, dtype="f4")],
                                        depth_attachment=ctx.depth_renderbuffer((w, h)))
            self._size = (h, w)
        return self._ctx

    def __call__(self, uv: np.ndarray, depth: np.ndarray, colors: np.ndarray, tris: np.ndarray,
                 background: np.ndarray, cull: bool = True) -> tuple[np.ndarray, np.ndarray]:
        import moderngl

        h, w = background.shape[:2]
        ctx = self._context(h, w)
        d0, d1 = float(depth.min()) - 1.0, float(depth.max()) + 1.0
        self._prog["size"].value = (float(w), float(h))
        self._prog["drange"].value = (d0, d1)
        data = np.concatenate([uv.astype("f4"), depth.astype("f4")[:, None], colors.astype("f4")], 1)
        vbo = ctx.buffer(np.ascontiguousarray(data).tobytes())
        ibo = ctx.buffer(np.ascontiguousarray(tris, dtype="i4").tobytes())
        vao = ctx.vertex_array(self._prog, [(vbo, "2f 1f 3f", "in_uv", "in_depth", "in_color")], index_buffer=ibo)
        try:
            self._fbo.use()
            ctx.viewport = (0, 0, w, h)
            ctx.enable(moderngl.DEPTH_TEST)
            if cull:
                ctx.enable(moderngl.CULL_FACE)
                ctx.front_face = "ccw"
            else:
                ctx.disable(moderngl.CULL_FACE)
            self._fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            vao.render(moderngl.TRIANGLES)
            rgba = np.frombuffer(self._fbo.read(components=4, dtype="f4"), dtype="f4").reshape(h, w, 4)[::-1]
            z = np.frombuffer(self._fbo.read(components=1, attachment=-1, dtype="f4"), dtype="f4").reshape(h, w)[::-1]
        finally:
            vao.release()
            vbo.release()
            ibo.release()
        drawn = rgba[..., 3] > 0.5
        image = np.array(background, dtype=np.float32, copy=True)
        image[drawn] = rgba[drawn, :image.shape[2]]
        zbuf = np.where(drawn, d0 + z * (d1 - d0), np.inf).astype(np.float32)
        return image, zbuf
