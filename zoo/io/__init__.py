"""Readers and writers for the file formats of the field (300-W .pts, ...); no Lightning imports."""
