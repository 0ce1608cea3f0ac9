"""Datamodules shared by all zoo models (real, 3DMM-synthetic, GAN-augmented) and their samplers."""
