"""Backbone factory: seed-002 net shapes, timm names, registry, bad names."""
import pytest
import torch
from torch import nn

from zoo.models.backbones import Fuhl2019Net, ResidualBlock, create_backbone, register_backbone, registered_backbones
from zoo.models.heads import LandmarkHead


def test_fuhl2019_shapes_and_layout():
    net = create_backbone("fuhl2019", in_chans=1)
    assert isinstance(net, Fuhl2019Net)
    x = torch.randn(2, 1, 96, 96)
    f = net(x)
    assert f.shape == (2, net.num_features) == (2, 256 * 3 * 3)
    # Fig. 3: initial conv, max pool, three residual blocks of 64/128/256 channels
    blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
    assert [b.conv2[0].out_channels for b in blocks] == [64, 128, 256]
    assert any(isinstance(m, nn.MaxPool2d) for m in net.stem)
    # BN + ReLU after every conv of the main path
    for b in blocks:
        for seq in (b.conv1, b.conv2):
            assert [type(m) for m in seq] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    # other input sizes: adaptive pooling keeps the feature size
    assert net(torch.randn(2, 1, 64, 64)).shape == (2, net.num_features)


@pytest.mark.parametrize("validation,k", [(True, 3), (False, 2)])
def test_head_outputs_3L_or_2L(validation, k):
    head = LandmarkHead(100, num_landmarks=68, hidden=32, validation=validation)
    assert head.fc2.out_features == k * 68
    off, val = head(torch.randn(4, 100))
    assert off.shape == (4, 68, 2)
    assert (val is None) == (not validation)
    if validation:
        assert val.shape == (4, 68)


def test_timm_backbone_by_name():
    net = create_backbone("resnet18", in_chans=1)
    assert net.num_features == 512
    assert net(torch.randn(2, 1, 64, 64)).shape == (2, 512)


def test_timm_backbone_with_a_pre_logits_layer_reports_its_output_size():
    net = create_backbone("mobilenetv3_small_050", in_chans=1)  # conv_head after pooling: 1024 outputs, not 288
    out = net(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, net.num_features) == (2, 1024)


def test_unknown_backbone_lists_choices():
    with pytest.raises(ValueError) as e:
        create_backbone("no_such_net_xyz")
    msg = str(e.value)
    assert "no_such_net_xyz" in msg and "fuhl2019" in msg and "timm" in msg


@pytest.fixture
def clean_registry():
    """Restore the global backbone registry after the test (registrations must not leak into other tests)."""
    from zoo.models import backbones

    saved = dict(backbones._REGISTRY)
    yield
    backbones._REGISTRY.clear()
    backbones._REGISTRY.update(saved)


def test_register_backbone(clean_registry):
    before = set(registered_backbones())

    class Tiny(nn.Module):
        def __init__(self, in_chans=1, width=4):
            super().__init__()
            self.conv = nn.Conv2d(in_chans, width, 3)
            self.num_features = width

        def forward(self, x):
            return self.conv(x).mean((2, 3))

    register_backbone("test_tiny_net", Tiny)
    assert set(registered_backbones()) == before | {"test_tiny_net"}
    torch.manual_seed(0)
    net = create_backbone("test_tiny_net", in_chans=3, width=5)
    x = torch.randn(1, 3, 8, 8)
    # the registered factory is what create_backbone builds: same output as the conv computed by hand
    want = torch.nn.functional.conv2d(x, net.conv.weight, net.conv.bias).mean((2, 3))
    torch.testing.assert_close(net(x), want)

    class Other(Tiny):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_backbone("test_tiny_net", Other)


def test_registry_is_clean_after_registering():
    assert "test_tiny_net" not in registered_backbones()
