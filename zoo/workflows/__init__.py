"""Multi-stage training workflows built on :func:`zoo.run.train` (e.g. :mod:`zoo.workflows.priming`)."""
