"""zoo: a PyTorch Lightning model zoo for face analysis with plug-in losses."""
