"""Errors the library raises for bad user input.

Every check on user-facing input raises :class:`One4DInputError` with a message that names the
input, what was expected and how to fix it, so callers (CLI, ComfyUI nodes) can show it as is.
"""
from __future__ import annotations


class One4DInputError(ValueError):
    """A user input (file, tensor, option) is invalid; the message says which and how to fix it."""
