"""One4D: unified 4D generation and reconstruction (RGB + pointmap video) on a Wan2.1-Fun InP backbone.

The library never imports ComfyUI; the node pack in ``nodes/`` is a thin adapter over it.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import One4DInputError

__all__ = ["One4DInputError", "__version__"]
