"""The embedded model's recipe: the shapes of the small Wan-style VAE, DiT and One4D adapters that
``one4d train`` trains into a model folder, and the folder layout it writes.

Shapes: 17 frames at 64 x 64 (:data:`one4d.defaults.EMBEDDED`). VAE (``--vae-arch``, :data:`VAE_CONFIGS`; the
shipped v3d's is ``residual``, the default for a new VAE, v2's was ``plain``): the Wan VAE architecture with base
width 32 and two down-sampling stages, each 2x in space and time: 4x spatial and 4x temporal stride, 16
latent channels (16 x 16 latents per frame instead of the 8 x 8 of Wan's 8x stride, which capped the v1
model's pictures at about 18.7 dB). DiT: width 128 (4 heads of 32), FFN 384, 8 blocks, Fun-InP input layout
whose channels follow the VAE (:meth:`one4d.backbone.LatentGeometry.inp_channels`), text width 64; One4D rank
16 with links at the default evenly spaced blocks, which v2.2 grew to rank 64 with links at all 8 blocks
(``--one4d-init`` with ``--rank 64 --links 8``); v2.3 trained them on at a lower peak rate, and the shipped v3d
carried DiT and adapters into the residual VAE's latents and trained them on (docs/embedded.md). Text goes through
the hash encoder of :mod:`one4d.text`
(the embedded model has no 4096-wide umT5), zero-padded to 48 tokens: Wan pads to 512, but captions here are
short, and 512 padded tokens would cost ten times the cross-attention on a CPU.
"""
from __future__ import annotations

from typing import Any

from ..backbone import LatentGeometry, dit_config
from ..defaults import EMBEDDED
from ..models import EMBEDDED_LAYOUT

FRAMES, HEIGHT, WIDTH = EMBEDDED.frames, EMBEDDED.height, EMBEDDED.width
_STRIDE4 = {"base_dim": 32, "z_dim": 16, "temperal_downsample": [True, True], "scale_factor_spatial": 4, "scale_factor_temporal": 4}
# a new VAE's architecture (`one4d train vae --vae-arch`): "plain" is the shipped v2 VAE's; "residual" adds Wan2.2's
# parameter-free average-pool shortcuts around each down and up block (its widths must then divide evenly: [1, 2, 2]),
# and learns faster per step and per second on a CPU (docs/embedded.md, "the residual VAE")
VAE_CONFIGS = {"plain": dict(_STRIDE4, dim_mult=[1, 2, 4]), "residual": dict(_STRIDE4, dim_mult=[1, 2, 2], is_residual=True)}
TEXT_DIM = 64
RANK = 16
MODEL_LAYOUT = EMBEDDED_LAYOUT
TEXT_LENGTH = int(MODEL_LAYOUT["text_encoder"]["length"])


def dit_config_for(geometry: LatentGeometry) -> dict[str, Any]:
    """The embedded DiT's config for a VAE of this geometry (its channels and the DiT's patch)."""
    return dit_config(128, 4, 384, 8, geometry.inp_channels, image=False, text_dim=TEXT_DIM,
                      latent_channels=geometry.channels, patch=geometry.patch)
