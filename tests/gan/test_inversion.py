from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.gan.align import align_faces
from zoo.gan.inversion import Inverter, Latent, mean_image, psnr, ssim


def _real_crops(G, folder, n, start=0):
    from conftest import shared_path
    from zoo.io.images import read_image
    from zoo.io.pts import read_pts

    pts = sorted(shared_path(folder).glob("*.pts"))[start:start + n]
    ims = [read_image(p.with_suffix(".jpg")) for p in pts]
    return align_faces(ims, np.stack([read_pts(p) for p in pts]), generator=G).crops


def test_psnr_hand_computed_and_ssim_matches_torchmetrics():
    a = torch.zeros(2, 3, 16, 16)
    b = a.clone()
    b[0] += 0.2                               # 0.1 on the [0, 1] scale everywhere -> 20 dB
    assert psnr(a, b)[0].item() == pytest.approx(20.0, abs=1e-4)
    tm = pytest.importorskip("torchmetrics.functional")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 64, 64, generator=g) * 2 - 1
    y = (x + 0.3 * torch.randn(4, 3, 64, 64, generator=g)).clamp(-1, 1)
    ref = tm.structural_similarity_index_measure((y + 1) / 2, (x + 1) / 2, data_range=1.0, reduction="none")
    assert torch.allclose(ssim(y, x), ref, atol=2e-3), (ssim(y, x), ref)


@pytest.fixture(scope="module")
def small_inverter(G, tmp_path_factory):
    # a quick encoder (a few seconds of CPU); the default fit_encoder() settings are used by the slow test
    return Inverter(G, cache_dir=tmp_path_factory.mktemp("enc")).fit_encoder(steps=100, pool=256, batch_size=32)


def test_inversion_beats_mean_z_on_real_crops(G, small_inverter):
    crops = _real_crops(G, "afw_68", 8)
    base = psnr(mean_image(G, n=200).expand_as(crops), crops).mean().item()   # the average generated face
    lat = small_inverter.invert(crops, batch_size=8, refine_steps=20)
    q = small_inverter.last_quality
    with torch.no_grad():
        rec = G.decode(lat)
    measured = psnr(rec, crops).mean().item()
    assert measured == pytest.approx(q["psnr"], abs=1e-3)       # reported quality is what decode gives
    assert measured > base + 6.0, (measured, base)     # measured: about +12 dB
    assert lat.z.shape == (8, 100) and lat.residual.shape == (8, 512, 4, 4)


def test_encoder_cache_and_generator_check(G, small_inverter, tmp_path):
    p = small_inverter.save(tmp_path / "enc.pt")
    inv2 = Inverter.load(p, G)
    x = G(G.sample_z(4, seed=1)).detach()
    assert torch.allclose(inv2.encode(x), small_inverter.encode(x))
    blob = torch.load(p, weights_only=True)
    blob["weights_hash"] = "f" * 16
    torch.save(blob, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="retrain"):
        Inverter.load(tmp_path / "other.pt", G)


def test_bad_input(G, small_inverter):
    with pytest.raises(ValueError, match="fit_encoder"):
        Inverter(G, cache_dir=False).invert(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="crops"):
        small_inverter.invert(torch.zeros(1, 3, 32, 32))
    lat = Latent.cat([Latent(torch.zeros(2, 100), torch.zeros(2, 512, 4, 4)), Latent(torch.ones(1, 100), torch.ones(1, 512, 4, 4))])
    assert len(lat) == 3 and lat[2].z.sum() == 100


@pytest.mark.slow
def test_default_inverter_quality_on_afw_and_helen(G):
    """Default encoder (cached under ~/.cache/zoo/gan) + 60 refinement steps on 32 afw and 32 helen crops."""
    crops = torch.cat([_real_crops(G, "afw_68", 32), _real_crops(G, "helen_train_68", 32)])
    inv = Inverter(G).fit_encoder()
    base = psnr(mean_image(G).expand_as(crops), crops).mean().item()
    inv.invert(crops, refine_steps=60)
    assert inv.last_quality["psnr"] > base + 6.0 and inv.last_quality["psnr"] > 24, (inv.last_quality, base)
