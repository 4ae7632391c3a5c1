"""One check of a generation request, used by the library, the CLI and the nodes alike.

Each error names the input and the fix: frame count (4k + 1, at most :data:`one4d.defaults.MAX_FRAMES`),
resolution (positive multiples of the model's size multiple, 16 for Wan2.1, up to
:data:`one4d.defaults.MAX_SIDE`), observed frame indices
(unique, inside the clip), steps, guidance, shift and scheduler (ranges in :mod:`one4d.defaults`).
"""
from __future__ import annotations

from typing import Sequence

from .backbone import WAN21, LatentGeometry
from .defaults import GUIDANCE_RANGE, MAX_FRAMES, MAX_SIDE, SCHEDULERS, SHIFT_RANGE, STEPS_RANGE
from .errors import One4DInputError
from .umc import validate_indices, validate_video_size


def check_video(num_frames: int, height: int, width: int, indices: Sequence[int] = (), geometry: LatentGeometry = WAN21) -> None:
    """Clip size and observed frames of a request, for a model of the given latent geometry."""
    if num_frames > MAX_FRAMES:
        raise One4DInputError(
            f"length {num_frames} is more than {MAX_FRAMES} frames, the longest clip one request can take; "
            f"use a length of at most {MAX_FRAMES} (4k+1)."
        )
    for name, value in (("height", height), ("width", width)):
        if value > MAX_SIDE:
            raise One4DInputError(f"{name} {value} is larger than {MAX_SIDE} pixels; use a smaller {name} (a multiple of {geometry.size_multiple}).")
    validate_video_size(num_frames, height, width, geometry)
    validate_indices(list(indices), num_frames)


def check_sampling(steps: int, guidance: float, shift: float, scheduler: str) -> None:
    """Sampler settings of a request."""
    if not STEPS_RANGE[0] <= steps <= STEPS_RANGE[1]:
        raise One4DInputError(f"steps {steps} is outside {STEPS_RANGE[0]}..{STEPS_RANGE[1]}; Wan uses 30 to 50, the embedded model 20 to 30.")
    if not GUIDANCE_RANGE[0] <= guidance <= GUIDANCE_RANGE[1]:
        raise One4DInputError(
            f"guidance {guidance:g} is outside {GUIDANCE_RANGE[0]:g}..{GUIDANCE_RANGE[1]:g}; 1 turns guidance off, the paper uses 6."
        )
    if not SHIFT_RANGE[0] <= shift <= SHIFT_RANGE[1]:
        raise One4DInputError(f"shift {shift:g} is outside {SHIFT_RANGE[0]:g}..{SHIFT_RANGE[1]:g}; Wan uses 3.0 at 480p, 5.0 at 720p.")
    if scheduler not in SCHEDULERS:
        raise One4DInputError(f"scheduler '{scheduler}' is unknown; choose one of {', '.join(SCHEDULERS)}.")


def check_request(num_frames: int, height: int, width: int, indices: Sequence[int], steps: int, guidance: float,
                  shift: float, scheduler: str, geometry: LatentGeometry = WAN21) -> None:
    """The whole request: clip, observed frames and sampler settings."""
    check_video(num_frames, height, width, indices, geometry)
    check_sampling(steps, guidance, shift, scheduler)
