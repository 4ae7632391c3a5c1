"""Strides and latent channels come from the VAE's config: the whole pipeline runs on two stride layouts and on a
residual (Wan2.2-style) VAE, and a DiT that does not fit its VAE is refused by name."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from one4d.backbone import WAN21, DitVariant, build_dit, build_vae, dit_config, vae_geometry
from one4d.codec import VideoCodec
from one4d.dlc import DLCConfig, One4DModel
from one4d.errors import One4DInputError
from one4d.pipeline import One4DPipeline
from one4d.sampling import SamplerSettings
from one4d.text import HashTextEncoder

# Wan2.1's layout (8x space, 4x time, 16 channels), the embedded v2 layout (4x space) with 8 channels, and a
# Wan2.2-style residual VAE (average-pool shortcuts around its down and up blocks) of the same strides.
LAYOUTS = {
    "wan-like": {"base_dim": 8, "z_dim": 16},
    "stride4": {"base_dim": 8, "z_dim": 8, "dim_mult": [1, 2, 4], "temperal_downsample": [True, True]},
    "stride4-residual": {"base_dim": 8, "z_dim": 8, "dim_mult": [1, 2, 2], "temperal_downsample": [True, True],
                         "is_residual": True},
}


def _pipeline(vae_cfg: dict, geometry_patch: int = 2) -> One4DPipeline:
    torch.manual_seed(0)
    z = vae_cfg["z_dim"]
    vae = build_vae(dict(vae_cfg, latents_mean=[0.0] * z, latents_std=[1.0] * z)).eval()
    geometry = vae_geometry(vae_cfg, geometry_patch)
    cfg = dit_config(32, 2, 64, 2, geometry.inp_channels, image=False, text_dim=32, latent_channels=z, patch=geometry_patch)
    model = One4DModel(build_dit(cfg).eval(), DitVariant(cfg, None), DLCConfig(rank=4)).eval()
    return One4DPipeline(model, VideoCodec(vae), HashTextEncoder(32, 8))


def test_geometry_is_read_from_the_vae_config():
    assert vae_geometry({"base_dim": 96, "z_dim": 16}) == WAN21
    g = vae_geometry(LAYOUTS["stride4"], patch=2)
    assert (g.channels, g.time_stride, g.space_stride, g.size_multiple, g.inp_channels) == (8, 4, 4, 8, 20)
    assert g.latent_shape(17, 32, 48) == (5, 8, 12)
    assert vae_geometry({"z_dim": 4, "dim_mult": [1, 2], "temperal_downsample": [True]}).time_stride == 2


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_the_whole_pipeline_runs_on_each_stride_layout(name):
    pipe = _pipeline(LAYOUTS[name])
    g = pipe.geometry
    assert g == vae_geometry(LAYOUTS[name])
    frames = torch.rand(1, 32, 32, 3)
    cond = pipe.condition(9, 32, 32, frames=frames, indices=[0], prompt="a room")
    t, h, w = g.latent_shape(9, 32, 32)
    assert cond.mask.shape == (1, g.mask_channels, t, h, w)
    assert cond.cond_latents.shape == (1, g.channels, t, h, w)
    result = pipe.generate(cond, SamplerSettings(steps=2, guidance=1.0, seed=0))
    assert result.rgb.shape == (9, 32, 32, 3) and result.points.shape == (9, 32, 32, 3)
    assert np.isfinite(result.points).all() and result.K.shape == (9, 3, 3)


def test_sizes_follow_the_model_size_multiple():
    stride4 = _pipeline(LAYOUTS["stride4"])
    stride4.condition(5, 24, 40, prompt="a room")  # multiples of 4 x 2 = 8
    with pytest.raises(One4DInputError, match="height 24 is not a positive multiple of 16; use 32"):
        _pipeline(LAYOUTS["wan-like"]).condition(5, 24, 40, prompt="a room")


def test_a_dit_for_another_vae_is_refused():
    pipe = _pipeline(LAYOUTS["stride4"])
    pipe.codec = VideoCodec(build_vae(dict(LAYOUTS["wan-like"], latents_mean=[0.0] * 16, latents_std=[1.0] * 16)))
    with pytest.raises(One4DInputError, match="does not fit this VAE.*16 latent channels"):
        pipe.condition(5, 32, 32, prompt="a room")


def test_the_given_frame_of_image_to_4d_is_refined_into_the_pinned_latents_where_the_model_kind_refines():
    from one4d.defaults import EMBEDDED, WAN_FUN_14B

    pipe = _pipeline(LAYOUTS["stride4"])
    frames = torch.rand(2, 32, 32, 3, generator=torch.Generator().manual_seed(4))
    assert pipe.defaults is EMBEDDED and EMBEDDED.refine_steps > 0
    cond = pipe.condition(9, 32, 32, frames=frames[:1], indices=[0], prompt="a room")
    assert cond.pinned_latents.shape == cond.cond_latents.shape
    assert torch.equal(cond.pinned_latents[:, :, 1:], cond.cond_latents[:, :, 1:])
    assert not torch.equal(cond.pinned_latents[:, :, 0], cond.cond_latents[:, :, 0])
    assert pipe.condition(9, 32, 32, frames=frames[:1], indices=[0], prompt="a room", refine_steps=0).pinned_latents is None
    assert pipe.condition(9, 32, 32, frames=frames, indices=[0, 5], prompt="a room").pinned_latents is None  # sparse
    assert pipe.condition(9, 32, 32, frames=frames[:1], indices=[4], prompt="a room").pinned_latents is None  # not frame 0
    pipe.defaults = WAN_FUN_14B
    assert pipe.condition(9, 32, 32, frames=frames[:1], indices=[0], prompt="a room").pinned_latents is None
