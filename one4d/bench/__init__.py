"""Benchmarks: each suite is a function returning a flat dict of figures; ``one4d bench`` prints them as a
table and JSON. A suite that cannot run on this machine raises :class:`SuiteUnavailable`, and is reported
as skipped with the reason and the install hint while the other suites still run.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

# suite name -> "module:function" returning a flat dict of figures
SUITES: dict[str, str] = {
    "dlc": "one4d.bench.dlc:dlc_benchmarks",
    "geometry": "one4d.bench.geometry:geometry_benchmarks",
    "preview": "one4d.bench.preview:bench_widget",
    "long_video": "one4d.bench.long_video:long_video_benchmarks",
    "data": "one4d.bench.data:data_benchmarks",
    "memory": "one4d.bench.memory:memory_table",
}


class SuiteUnavailable(RuntimeError):
    """A benchmark suite cannot run here; ``reason`` says what is missing and ``hint`` how to install it."""

    def __init__(self, reason: str, hint: str):
        super().__init__(f"{reason}; {hint}")
        self.reason, self.hint = reason, hint


def suite_function(spec: str) -> Callable[[], dict[str, Any]]:
    """The function named by a ``module:function`` spec."""
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def run_suites(names: list[str], suites: dict[str, str] | None = None) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Run the named suites; returns ``(figures, skipped)`` with ``skipped[name] = {"reason", "hint"}``."""
    suites = SUITES if suites is None else suites
    figures: dict[str, Any] = {}
    skipped: dict[str, dict[str, str]] = {}
    for name in names:
        try:
            figures.update(suite_function(suites[name])())
        except SuiteUnavailable as exc:
            skipped[name] = {"reason": exc.reason, "hint": exc.hint}
        except ModuleNotFoundError as exc:
            skipped[name] = {"reason": f"needs the Python package '{exc.name}'", "hint": f"pip install {exc.name}"}
    return figures, skipped
