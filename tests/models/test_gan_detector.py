"""zoo.models.gan_detector registers the zoo landmark model as zoo.gan's "zoo:<ckpt>" detector."""
from __future__ import annotations

import pytest


def test_import_registers_zoo_prefix_and_checks_path(tmp_path):
    import zoo.models.gan_detector  # noqa: F401
    from zoo.gan import available_detectors, load_detector

    assert "zoo" in available_detectors()
    with pytest.raises(ValueError, match="checkpoint"):
        load_detector("zoo")
    with pytest.raises(ValueError, match="does not exist"):
        load_detector(f"zoo:{tmp_path / 'missing.ckpt'}")
