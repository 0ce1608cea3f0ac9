"""The optional moderngl backend agrees with the numba rasteriser (skipped without moderngl / an EGL driver)."""
import numpy as np
import pytest

from zoo.synth.builtin import builtin_model
from zoo.synth.generator import FaceGenerator, GeneratorConfig


@pytest.fixture(scope="module")
def gl_gen():
    pytest.importorskip("moderngl")
    gen = FaceGenerator(builtin_model(), GeneratorConfig(image_size=96, backend="moderngl"))
    try:
        gen(0, 0, 0)
    except Exception as e:  # no EGL driver / no GL 3.3 on this machine
        pytest.skip(f"no usable OpenGL context: {e}")
    return gen


def test_backends_agree(gl_gen):
    cpu = FaceGenerator(builtin_model(), GeneratorConfig(image_size=96))
    for i in range(4):
        a, _ = cpu(3, i, 0)
        b, _ = gl_gen(3, i, 0)
        inter = (a["mask"] & b["mask"]).sum()
        union = (a["mask"] | b["mask"]).sum()
        assert inter / union > 0.98
        both = a["mask"] & b["mask"]
        assert np.abs(a["image"] - b["image"])[both].mean() < 0.01
        np.testing.assert_array_equal(a["landmarks"], b["landmarks"])  # landmarks come from the mesh, not pixels
        assert (a["visible"] == b["visible"]).mean() >= 0.95


@pytest.mark.slow  # spawned workers re-import torch and rebuild the model: ~15 s
def test_gl_contexts_per_dataloader_worker(gl_gen):
    import torch
    from torch.utils.data import DataLoader

    from zoo.datamodules.synthetic import SyntheticFaceDataset

    cfg = GeneratorConfig(image_size=48, backend="moderngl", grayscale=True)
    ds = SyntheticFaceDataset("landmarks", "builtin", cfg, seed=0, num_identities=4, images_per_identity=1)
    first = ds[0]["image"]  # this process now holds GL contexts: workers must be spawned, not forked
    loader = DataLoader(ds, batch_size=2, num_workers=2, multiprocessing_context="spawn")
    images = torch.cat([b["image"] for b in loader])
    torch.testing.assert_close(images[0], first)
    # a forked copy of a rasteriser holding a context refuses to render instead of crashing
    import os

    from zoo.synth.render_gl import GLRasterizer

    r = GLRasterizer()
    r._ctx, r._pid = object(), os.getpid() + 1
    with pytest.raises(RuntimeError, match="forked"):
        r._context(8, 8)
