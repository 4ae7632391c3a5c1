"""Options shared by the subcommands that sample: steps, guidance, shift, scheduler, seed, and the refinement
of image-to-4D's given image.

Unset options take the model kind's declared defaults (:mod:`one4d.defaults`), so ``one4d run`` and
``one4d eval`` sample like the nodes and the example workflows do.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from ..defaults import DEFAULTS, SCHEDULERS, ModelDefaults
from ..errors import One4DInputError
from ..request import check_sampling
from ..sampling import SamplerSettings


def _per_kind(name: str) -> str:
    return ", ".join(f"{d.kind}: {getattr(d, name)}" for d in DEFAULTS.values())


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    """--steps, --guidance, --shift, --scheduler, --seed, --refine-steps."""
    p.add_argument("--steps", type=int, default=None, help=f"denoising steps (default per model kind: {_per_kind('steps')})")
    p.add_argument("--guidance", type=float, default=None,
                   help=f"classifier-free guidance, 1 = none (default per model kind: {_per_kind('guidance')})")
    p.add_argument("--shift", type=float, default=None, help=f"flow-matching timestep shift (default: {_per_kind('shift')})")
    p.add_argument("--scheduler", default=None, choices=SCHEDULERS, help=f"sampler (default: {_per_kind('scheduler')})")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise")
    p.add_argument("--refine-steps", type=int, default=None,
                   help="image to 4D: steps refining the given image's latents so that it comes back sharper, 0 = off "
                        f"(default per model kind: {_per_kind('refine_steps')})")


def sampling_settings(args: argparse.Namespace, defaults: ModelDefaults) -> SamplerSettings:
    """The sampler settings of the command line, unset ones from ``defaults``, checked."""
    pick = lambda value, default: default if value is None else value  # noqa: E731
    settings = SamplerSettings(pick(args.steps, defaults.steps), pick(args.guidance, defaults.guidance),
                               pick(args.shift, defaults.shift), pick(args.scheduler, defaults.scheduler), args.seed)
    check_sampling(settings.steps, settings.guidance, settings.shift, settings.scheduler)
    return settings


def request_defaults(args: argparse.Namespace, defaults: ModelDefaults) -> ModelDefaults:
    """The model kind's defaults with ``--refine-steps`` applied (a conditioning choice, read by
    :meth:`one4d.pipeline.One4DPipeline.condition`)."""
    if args.refine_steps is None:
        return defaults
    if not 0 <= args.refine_steps <= 1000:
        raise One4DInputError(f"--refine-steps {args.refine_steps} is out of range; give 0 (off) to 1000 (the embedded default is 25).")
    return replace(defaults, refine_steps=args.refine_steps)
