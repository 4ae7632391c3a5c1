"""Cancellation and progress for the library's long loops, without ComfyUI.

Library code calls :func:`check_cancelled` between pieces of work (a frame, an optimizer step, a window)
and :func:`report` as pieces finish; :func:`track` does both around a loop. Whoever runs the library
installs the two callbacks for a block of code with :func:`progress_hook`: the ComfyUI nodes route them
to ComfyUI's Cancel button and progress bar (``nodes/comfy_bridge.py``), a script can pass a
``threading.Event``'s ``is_set``. Without a hook both are no-ops, so the CLI, training and tests behave as
before.

Decisions:
- The hook lives in a :class:`contextvars.ContextVar`: it is per thread (a hook installed by one ComfyUI
  worker is not seen by another thread) and nested installs restore the outer hook on exit. The callbacks
  themselves may be set from any thread (a timer, a server thread): they are only read here.
- A cancel raises :class:`one4d.errors.One4DInterrupted`, the one interruption type of the library (the
  sampler raises it too); the caller decides how to show it.
- Polls are cheap (a context lookup and one call), so loops poll per frame; work that cannot be split
  polls before and after.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

from .errors import One4DInterrupted

T = TypeVar("T")
Report = Callable[[str, int, int], None]


def _never() -> bool:
    """The default cancellation check: nothing cancels."""
    return False


def _silent(stage: str, done: int, total: int) -> None:
    """The default progress report: nobody listens."""


@dataclass(frozen=True)
class Hook:
    """``cancelled()`` says whether to stop; ``report(stage, done, total)`` hears progress."""

    cancelled: Callable[[], bool] = _never
    report: Report = _silent


_HOOK: ContextVar[Hook] = ContextVar("one4d_progress_hook", default=Hook())


@contextmanager
def progress_hook(cancelled: Optional[Callable[[], bool]] = None, report: Optional[Report] = None) -> Iterator[Hook]:
    """Install a cancellation check and/or a progress report for the library code run inside the block."""
    hook = Hook(cancelled or _never, report or _silent)
    token = _HOOK.set(hook)
    try:
        yield hook
    finally:
        _HOOK.reset(token)


def cancelled() -> bool:
    """True when the installed hook asks the running work to stop."""
    return bool(_HOOK.get().cancelled())


def check_cancelled(stage: str) -> None:
    """Raise :class:`One4DInterrupted` naming ``stage`` when the installed hook asks to stop."""
    if cancelled():
        raise One4DInterrupted(f"stopped by the user ({stage})")


def report(stage: str, done: int, total: int) -> None:
    """Tell the installed hook that ``done`` of ``total`` pieces of ``stage`` are finished."""
    _HOOK.get().report(stage, int(done), int(total))


def track(stage: str, items: Sequence[T]) -> Iterator[T]:
    """Each of ``items`` after a cancellation check, reporting progress as each one is done."""
    total = len(items)
    for done, item in enumerate(items):
        check_cancelled(stage)
        yield item
        report(stage, done + 1, total)


def chunks(total: int, size: int) -> list[slice]:
    """``range(total)`` as consecutive slices of at most ``size`` (the pieces between two polls)."""
    return [slice(lo, min(lo + size, total)) for lo in range(0, total, max(1, size))]


@contextmanager
def per_call(module: Any, stage: str, total: int) -> Iterator[None]:
    """Poll and report each time a torch ``module`` runs (a forward pre-hook): e.g. once per latent frame in
    the Wan VAE decoder, which diffusers calls frame by frame."""
    calls = 0

    def before_forward(_module: Any, _args: Any) -> None:
        nonlocal calls
        check_cancelled(stage)
        report(stage, min(calls, total), total)
        calls += 1

    handle = module.register_forward_pre_hook(before_forward)
    try:
        yield
    finally:
        handle.remove()
    report(stage, total, total)

