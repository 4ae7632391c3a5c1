"""ComfyUI entry point of the One4D node pack.

ComfyUI imports this file as a package from ``custom_nodes/<pack folder>``. The nodes are imported
relatively (ComfyUI has its own top-level ``nodes`` module), and the ``one4d`` library next to this file is
made importable when it is not installed (a plain clone into custom_nodes): the pack folder is appended
to ``sys.path`` (never prepended, so its ``nodes`` package cannot shadow ComfyUI's).
"""
import os
import sys

try:
    import one4d  # noqa: F401  (installed with pip, or already on the path)
except ImportError:
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after ComfyUI's own folders

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
