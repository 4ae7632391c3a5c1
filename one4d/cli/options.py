"""Options shared by the subcommands that sample: steps, guidance, shift, scheduler and seed.

Unset options take the model kind's declared defaults (:mod:`one4d.defaults`), so ``one4d run`` and
``one4d eval`` sample like the nodes and the example workflows do.
"""
from __future__ import annotations

import argparse

from ..defaults import DEFAULTS, SCHEDULERS, ModelDefaults
from ..request import check_sampling
from ..sampling import SamplerSettings


def _per_kind(name: str) -> str:
    return ", ".join(f"{d.kind}: {getattr(d, name)}" for d in DEFAULTS.values())


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    """--steps, --guidance, --shift, --scheduler, --seed."""
    p.add_argument("--steps", type=int, default=None, help=f"denoising steps (default per model kind: {_per_kind('steps')})")
    p.add_argument("--guidance", type=float, default=None,
                   help=f"classifier-free guidance, 1 = none (default per model kind: {_per_kind('guidance')})")
    p.add_argument("--shift", type=float, default=None, help=f"flow-matching timestep shift (default: {_per_kind('shift')})")
    p.add_argument("--scheduler", default=None, choices=SCHEDULERS, help=f"sampler (default: {_per_kind('scheduler')})")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise")


def sampling_settings(args: argparse.Namespace, defaults: ModelDefaults) -> SamplerSettings:
    """The sampler settings of the command line, unset ones from ``defaults``, checked."""
    pick = lambda value, default: default if value is None else value  # noqa: E731
    settings = SamplerSettings(pick(args.steps, defaults.steps), pick(args.guidance, defaults.guidance),
                               pick(args.shift, defaults.shift), pick(args.scheduler, defaults.scheduler), args.seed)
    check_sampling(settings.steps, settings.guidance, settings.shift, settings.scheduler)
    return settings
