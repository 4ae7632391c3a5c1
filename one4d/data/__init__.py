"""Synthetic 4D data: procedural scenes (moving camera, textured room, moving objects) rendered analytically.

See :mod:`one4d.data.scenes` for the conventions and docs/data.md for an overview.
"""
from __future__ import annotations

from .scenes import (
    HELDOUT_SEEDS,
    TRAIN_SEEDS,
    Scene4D,
    check_training_seeds,
    render_dataset,
    render_scene,
    sample_scene,
)

__all__ = [
    "HELDOUT_SEEDS",
    "TRAIN_SEEDS",
    "Scene4D",
    "check_training_seeds",
    "render_dataset",
    "render_scene",
    "sample_scene",
]
