"""The embedded model's recipe: the shapes of the small Wan-style VAE, DiT and One4D adapters that
``one4d train`` trains into a model folder, and the folder layout it writes.

Shapes: 17 frames at 64 x 64 (:data:`one4d.defaults.EMBEDDED`); VAE base width 16 (16 latent channels, as
Wan); DiT width 128 (4 heads of 32), FFN 384, 8 blocks, 36 input channels (Fun-InP layout), text width 64;
One4D rank 16 with links at the default evenly spaced blocks. Text goes through the hash encoder of
:mod:`one4d.text` (the embedded model has no 4096-wide umT5), zero-padded to 48 tokens: Wan pads to 512,
but captions here are short, and 512 padded tokens would cost ten times the cross-attention on a CPU.
"""
from __future__ import annotations

from ..backbone import dit_config
from ..defaults import EMBEDDED
from ..models import EMBEDDED_LAYOUT

FRAMES, HEIGHT, WIDTH = EMBEDDED.frames, EMBEDDED.height, EMBEDDED.width
DIT_CONFIG = dit_config(128, 4, 384, 8, 36, image=False, text_dim=64)
VAE_CONFIG = {"base_dim": 16, "z_dim": 16}
RANK = 16
MODEL_LAYOUT = EMBEDDED_LAYOUT
TEXT_LENGTH = int(MODEL_LAYOUT["text_encoder"]["length"])
