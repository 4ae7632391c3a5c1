"""The ``one4d`` command line (also ``python -m one4d``): one module per subcommand.

A subcommand whose optional dependency is missing is still listed; running it prints what to install.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import One4DInputError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("one4d.cli.run", "generate or reconstruct a 4D clip: video, pointmaps, point cloud, cameras, preview"),
    "eval": ("one4d.cli.eval", "evaluate a model on the held-out procedural suite"),
    "train": ("one4d.cli.train", "train the embedded-size model, stage by stage"),
    "bench": ("one4d.cli.bench", "speed and memory benchmarks (table, and JSON with --json)"),
}


def _unavailable(name: str, missing: str):
    def handler(_args: argparse.Namespace) -> int:
        raise One4DInputError(f"'one4d {name}' needs the Python package '{missing}': pip install {missing}")

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="one4d", description="One4D: 4D generation and reconstruction.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, summary) in COMMANDS.items():
        try:
            add = importlib.import_module(module).add_parser
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] == "one4d":
                raise
            p = sub.add_parser(name, help=f"{summary} (unavailable: pip install {exc.name})")
            p.set_defaults(handler=_unavailable(name, exc.name))
            continue
        add(sub.add_parser(name, help=summary))
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
