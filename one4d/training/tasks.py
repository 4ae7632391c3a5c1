"""The task mix of One4D training: which frames each training clip observes.

The paper's mix is 0.35 / 0.30 / 0.35 (single image / sparse / full video, section 5); here it is scaled
to make room for a 0.10 text-only share so that text-to-4D is trained too. Sparse tasks keep the first,
last and evenly spaced frames at a ratio drawn log-uniformly in :data:`SPARSE_RATIO_RANGE`, the range of
sparsities the paper evaluates (on a 17-frame clip both ends keep first and last frame only).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import One4DInputError
from ..umc import sparse_indices

PAPER_MIX = {"image": 0.35, "sparse": 0.30, "video": 0.35}
SPARSE_RATIO_RANGE = (0.03, 0.5)


def default_task_mix(text_share: float = 0.10) -> dict[str, float]:
    """The paper's mix scaled by ``1 - text_share``, plus a text-only share."""
    mix = {k: v * (1 - text_share) for k, v in PAPER_MIX.items()}
    mix["text"] = text_share
    return mix


def parse_task_mix(text: str) -> dict[str, float]:
    """``"image=0.35,sparse=0.3,video=0.35,text=0.1"`` as shares summing to 1; tasks left out get none."""
    mix: dict[str, float] = {}
    known = sorted(default_task_mix())
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = part.partition("=")
        name = name.strip()
        try:
            share = float(value) if eq else float("nan")
        except ValueError:
            share = float("nan")
        if name not in known or not math.isfinite(share) or share < 0 or name in mix:
            raise One4DInputError(f"--task-mix: cannot use {part!r}; give each of the tasks {', '.join(known)} at most once as "
                                  "NAME=SHARE with a share >= 0, e.g. image=0.35,sparse=0.3,video=0.35,text=0.1")
        mix[name] = share
    total = sum(mix.values())
    if total <= 0:
        raise One4DInputError(f"--task-mix: {text!r} gives no task a share above 0; e.g. image=0.35,sparse=0.3,video=0.35,text=0.1")
    return {k: v / total for k, v in sorted(mix.items()) if v > 0}


def draw_task(rng: np.random.Generator, mix: dict[str, float]) -> str:
    """Draw a task name (text, image, sparse, video) with the probabilities of ``mix``."""
    names = sorted(mix)
    probs = np.array([mix[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=probs / probs.sum()))]


def draw_sparse_indices(rng: np.random.Generator, num_frames: int) -> list[int]:
    """First, last and evenly spaced frames at a ratio drawn log-uniformly in :data:`SPARSE_RATIO_RANGE`."""
    lo, hi = SPARSE_RATIO_RANGE
    return sparse_indices(num_frames, math.exp(rng.uniform(math.log(lo), math.log(hi))))


def sample_observed(rng: np.random.Generator, num_frames: int, mix: dict[str, float]) -> tuple[str, list[int]]:
    """Draw a task from ``mix`` and the frame indices it observes."""
    task = draw_task(rng, mix)
    if task == "text":
        return task, []
    if task == "image":
        return task, [0]
    if task == "video":
        return task, list(range(num_frames))
    return task, draw_sparse_indices(rng, num_frames)
