"""Old import path of the landmark figures, which now live beside their metrics in
:mod:`zoo.metrics.landmarks` (``ced_figure``, ``validation_figure``, ``sample_figure``)."""
from zoo.metrics.landmarks import ced_figure, sample_figure, validation_figure  # noqa: F401

__all__ = ["ced_figure", "sample_figure", "validation_figure"]
