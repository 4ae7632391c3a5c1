"""Errors the library raises: bad user input, and a cancel by the user.

Every check on user-facing input raises :class:`One4DInputError` with a message that names the
input, what was expected and how to fix it, so callers (CLI, ComfyUI nodes) can show it as is. A cancel
raises :class:`One4DInterrupted`, the library's one interruption type.
"""
from __future__ import annotations


class One4DInputError(ValueError):
    """A user input (file, tensor, option) is invalid; the message says which and how to fix it."""


class One4DInterrupted(RuntimeError):
    """The user stopped the work (a cancel seen by the sampler or by :mod:`one4d.progress`); nothing was written."""
