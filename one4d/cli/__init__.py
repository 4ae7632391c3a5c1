"""The ``one4d`` command line: ``bench`` (and the run/train/eval commands registered by their modules).

Each sub-command lives in the module that owns the work; this file only wires them together.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Callable

from ..errors import One4DInputError

# suite name -> "module:function" returning a flat dict of figures
BENCH_SUITES: dict[str, str] = {
    "dlc": "one4d.bench.dlc:dlc_benchmarks",
    "geometry": "one4d.bench.geometry:geometry_benchmarks",
    "preview": "one4d.bench.preview:bench_widget",
}

# sub-command name -> "module:function" taking the sub-parser and returning the handler
COMMANDS: dict[str, str] = {
    "run": "one4d.cli.run:add_parser",
    "train": "one4d.training.stages:add_parser",
    "eval": "one4d.evaluation.suite:add_parser",
}


def _resolve(spec: str) -> Callable | None:
    module, func = spec.split(":")
    try:
        return getattr(importlib.import_module(module), func)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def _format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def bench(args: argparse.Namespace) -> int:
    """Run the benchmark suites; print a table (stderr when --json) and the JSON object on stdout."""
    wanted = args.only.split(",") if args.only else list(BENCH_SUITES)
    unknown = [w for w in wanted if w not in BENCH_SUITES]
    if unknown:
        raise One4DInputError(f"unknown benchmark suite {unknown[0]!r}; choose from {', '.join(BENCH_SUITES)}.")
    results: dict[str, object] = {}
    for name in wanted:
        fn = _resolve(BENCH_SUITES[name])
        if fn is None:
            continue
        results.update(fn())
    table = sys.stderr if args.json else sys.stdout
    width = max((len(k) for k in results), default=10)
    print(f"{'figure':<{width}}  value", file=table)
    for key, value in results.items():
        print(f"{key:<{width}}  {_format_value(value)}", file=table)
    if args.json:
        print(json.dumps(results))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="one4d", description="One4D: 4D generation and reconstruction.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bench", help="speed and memory benchmarks (table, and JSON with --json)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    p.add_argument("--only", default="", help=f"comma-separated suites: {', '.join(BENCH_SUITES)}")
    p.set_defaults(handler=bench)
    for name, spec in COMMANDS.items():
        add = _resolve(spec)
        if add is not None:
            add(sub.add_parser(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except One4DInputError as exc:
        print(f"one4d {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"one4d {args.command}: interrupted; no partial output was kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
