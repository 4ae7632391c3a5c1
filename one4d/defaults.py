"""Sampling defaults, declared once per model kind: the library, the nodes' widgets, the CLI and the
example-workflow generator all read them from here, and the request check reads the limits.

Kinds: ``embedded`` (the small CPU model shipped in ``one4d/assets/embedded``), ``wan2.1-fun-14b`` and
``wan2.1-fun-1.3b`` (Wan2.1-Fun-V1.1 InP backbones). The Wan figures are the paper's (section 6: 50
flow-matching steps, classifier-free guidance 6.0) with the common Wan shift of 3.0 at 480p and Wan's
81 x 480 x 832 clip; the paper reports no 1.3B run, so the 1.3B kind uses the same values. Windows of
a longer clip overlap by 16 of 81 frames for Wan (a fifth: 25% more model runs) and by 8 of 17 for the
embedded model, whose noisier pointmaps need more shared frames: on three 65-frame held-out clips,
overlap 4 left seams 1.44x (depth) and 1.58x (pose) the jumps within windows, overlap 8 1.29x and 1.17x
(`one4d eval --frames 65`, docs/long_video.md). The embedded
model samples without guidance: on its held-out suite guidance 1.0 beat 3.0 in every mode (depth AbsRel
full 0.346 vs 0.377) with one model pass per step instead of two (docs/embedded.md). Only the embedded
model refines the given image's latents in image-to-4D (25 steps, 2.6 s on two CPU threads, +1.5 dB on the
held-out photos; :mod:`one4d.codec`): Wan's VAE is the paper's, and a backward pass through it at 480p costs more
than the gain is known to be worth.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import One4DInputError

SCHEDULERS = ("unipc", "euler")
STEPS_RANGE = (1, 200)
GUIDANCE_RANGE = (1.0, 20.0)  # 1.0 turns guidance off
SHIFT_RANGE = (0.1, 20.0)
MAX_FRAMES = 1025  # longest clip one request may ask for (4k + 1)
MAX_SIDE = 2048  # largest width or height in pixels


@dataclass(frozen=True)
class ModelDefaults:
    """What a request to one kind of model uses when the caller does not say otherwise."""

    kind: str
    steps: int
    guidance: float
    shift: float
    scheduler: str
    frames: int  # the clip length the model was trained on (its window), 4k + 1
    height: int
    width: int
    overlap: int  # frames shared by consecutive windows of a longer clip (one4d.long_video)
    refine_steps: int = 0  # Adam steps refining image-to-4D's given image for the decoder (one4d.codec)
    notice: str = ""  # what a user should know about this kind's outputs, said once per run


EMBEDDED_NOTICE = ("the embedded model is a small CPU model trained only on synthetic rooms: the geometry it gives "
                   "for other content is a rough guess; use the real Wan2.1-Fun checkpoints for real work.")
EMBEDDED = ModelDefaults("embedded", steps=30, guidance=1.0, shift=3.0, scheduler="unipc", frames=17, height=64, width=64, overlap=8,
                         refine_steps=25, notice=EMBEDDED_NOTICE)
WAN_FUN_14B = ModelDefaults("wan2.1-fun-14b", steps=50, guidance=6.0, shift=3.0, scheduler="unipc", frames=81, height=480, width=832, overlap=16)
WAN_FUN_1_3B = ModelDefaults("wan2.1-fun-1.3b", steps=50, guidance=6.0, shift=3.0, scheduler="unipc", frames=81, height=480, width=832, overlap=16)
DEFAULTS: dict[str, ModelDefaults] = {d.kind: d for d in (EMBEDDED, WAN_FUN_14B, WAN_FUN_1_3B)}


def defaults_for(kind: str) -> ModelDefaults:
    """The defaults of a model kind, with an error naming the known kinds."""
    try:
        return DEFAULTS[kind]
    except KeyError:
        raise One4DInputError(f"model kind '{kind}' is unknown; use one of {', '.join(DEFAULTS)}.") from None


def kind_for_width(hidden_size: int) -> str:
    """The kind whose defaults suit a Wan DiT of this hidden width (5120: 14B, 1536: 1.3B, else embedded-sized)."""
    return {5120: WAN_FUN_14B.kind, 1536: WAN_FUN_1_3B.kind}.get(int(hidden_size), EMBEDDED.kind)
