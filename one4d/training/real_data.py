"""Real 4D datasets as a clip source of the latent cache (:mod:`one4d.training.cache`).

``--data KIND:ROOT`` (repeatable) names a dataset root of one of the readers of :mod:`one4d.data.datasets`
(``folder``, ``pointodyssey``, ``tartanair``, ``vkitti2``); every sequence below it gives
``--clips-per-sequence`` clips, cut by :func:`one4d.data.clip_sampling.sample_clip` to the model's frame
count and size (multiples taken from the model's latent geometry) with a random start and crop. Clip ``i`` is
drawn with a generator seeded by ``(seed, i)``, so a resumed encode reads the same clips as an uninterrupted
one, in any order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..backbone import LatentGeometry
from ..data.clip_sampling import ClipSpec, TrainingClip, sample_clip
from ..data.datasets import find_sequences, open_sequence
from ..errors import One4DInputError
from .cache import Clip


def parse_data(specs: list[str]) -> list[tuple[str, Path]]:
    """``KIND:ROOT`` options -> ``(kind, root)`` pairs, with an error naming a malformed one."""
    out = []
    for spec in specs:
        kind, sep, root = spec.partition(":")
        if not sep or not root:
            raise One4DInputError(f"--data {spec!r}: write KIND:ROOT, e.g. tartanair:/data/tartanair or folder:/data/my_clips.")
        out.append((kind, Path(root)))
    return out


class DatasetClips:
    """Clips of every sequence of the given datasets, ``per_sequence`` from each (module docstring)."""

    def __init__(self, data: list[tuple[str, Path]], spec: ClipSpec, geometry: LatentGeometry, per_sequence: int, seed: int | None = 0):
        self.sequences = [(kind, folder) for kind, root in data for folder in find_sequences(kind, root)]
        if not self.sequences:
            raise One4DInputError(f"no sequences found under {', '.join(f'{k}:{r}' for k, r in data)}; check the kind and the root folder.")
        self.spec, self.geometry, self.per_sequence, self.seed = spec, geometry, per_sequence, seed

    def __len__(self) -> int:
        return len(self.sequences) * self.per_sequence

    def training_clip(self, i: int) -> TrainingClip:
        """Clip ``i`` with all it holds (depth, validity, cameras): what validation measures against. With
        ``seed`` None every clip starts at its sequence's first frame (the spec's crop must then be center)."""
        kind, folder = self.sequences[i // self.per_sequence]
        rng = np.random.default_rng([self.seed, i]) if self.seed is not None else None
        return sample_clip(open_sequence(kind, folder), self.spec, self.geometry.time_stride, self.geometry.size_multiple, rng)

    def __getitem__(self, i: int) -> Clip:
        clip = self.training_clip(i)
        return Clip(clip.rgb, clip.normalized, clip.caption)
