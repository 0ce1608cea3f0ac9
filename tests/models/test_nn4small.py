"""FaceNet NN4-small (OpenFace nn4.small2) against the published architecture."""
from __future__ import annotations

import torch
from torch import nn

from zoo.models.backbones import create_backbone, registered_backbones
from zoo.models.nn4small import L2Pool2d, NN4Small

# OpenFace's model table lists nn4.small2 with 3,733,968 parameters: Torch convolutions carry a bias, and the
# net ends in Linear(736, 128). Ours has bias-free convolutions (BatchNorm follows each) and no linear layer.
OPENFACE_NN4_SMALL2_PARAMS = 3_733_968


def test_parameter_count_matches_openface():
    net = NN4Small(in_chans=3)
    ours = sum(p.numel() for p in net.parameters())
    conv_biases = sum(m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d))
    linear = 736 * 128 + 128
    assert ours + conv_biases + linear == OPENFACE_NN4_SMALL2_PARAMS


def test_inception_output_channels_and_sizes_at_96px():
    net = NN4Small(in_chans=3).eval()
    x = torch.randn(2, 3, 96, 96)
    shapes = []
    h = net.stem(x)
    assert h.shape[1:] == (192, 12, 12)
    for block in net.blocks:
        h = block(h)
        shapes.append(tuple(h.shape[1:]))
    # FaceNet NN4 / OpenFace nn4.small2: 3a 256, 3b 320, 3c 640 (/2), 4a 640, 4e 1024 (/2), 5a 736, 5b 736
    assert shapes == [(256, 12, 12), (320, 12, 12), (640, 6, 6), (640, 6, 6), (1024, 3, 3), (736, 3, 3), (736, 3, 3)]
    assert net(x).shape == (2, 736) and net.num_features == 736


def test_l2_pool_is_window_norm():
    x = torch.randn(1, 2, 5, 5)
    y = L2Pool2d(3, 1, 1, eps=0.0)(x)
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    ref = torch.empty_like(x)
    for i in range(5):
        for j in range(5):
            ref[:, :, i, j] = xp[:, :, i:i + 3, j:j + 3].pow(2).sum(dim=(2, 3)).sqrt()
    torch.testing.assert_close(y, ref)


def test_registered_and_gray_input():
    assert "nn4small" in registered_backbones()
    net = create_backbone("nn4small", in_chans=1)
    assert net(torch.randn(2, 1, 96, 96)).shape == (2, 736)


def test_facenet_embedding_is_128d_unit_norm():
    from zoo.models.embedding_head import EmbeddingHead
    from zoo.models.recognition import Embedder

    net = create_backbone("nn4small", in_chans=3)
    emb = Embedder(net, EmbeddingHead(net.num_features, 128, "linear", 0.0)).eval()
    e = emb(torch.randn(3, 3, 96, 96))
    assert e.shape == (3, 128)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
