"""zoo models: LightningModules (landmark regressor, recognition nets), their shared base, backbones and heads.

Import the modules you need (``from zoo.models.landmark import LandmarkRegressor``); this package initialiser is
empty so that importing one model never imports the others.
"""
