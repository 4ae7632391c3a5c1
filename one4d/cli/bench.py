"""``one4d bench``: speed and memory benchmarks (:mod:`one4d.bench`); a table, and one JSON object with ``--json``.

Suites that cannot run here are listed under ``"skipped"`` in the JSON (and at the end of the table)
with the reason and the install hint.
"""
from __future__ import annotations

import argparse
import json
import sys

from .. import bench as suites
from ..errors import One4DInputError


def _format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def bench(args: argparse.Namespace) -> int:
    """Run the benchmark suites; print a table (stderr when --json) and the JSON object on stdout."""
    wanted = args.only.split(",") if args.only else list(suites.SUITES)
    unknown = [w for w in wanted if w not in suites.SUITES]
    if unknown:
        raise One4DInputError(f"unknown benchmark suite {unknown[0]!r}; choose from {', '.join(suites.SUITES)}.")
    results, skipped = suites.run_suites(wanted)
    table = sys.stderr if args.json else sys.stdout
    width = max((len(k) for k in results), default=10)
    print(f"{'figure':<{width}}  value", file=table)
    for key, value in results.items():
        print(f"{key:<{width}}  {_format_value(value)}", file=table)
    for name, why in skipped.items():
        print(f"suite {name} skipped: {why['reason']}; {why['hint']}", file=table)
    if args.json:
        print(json.dumps({**results, "skipped": skipped}))
    return 0


def add_parser(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.splitlines()[0]
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    p.add_argument("--only", default="", help=f"comma-separated suites: {', '.join(suites.SUITES)}")
    p.set_defaults(handler=bench)
