"""The VAE as a video codec (one4d/codec.py): shapes, the latents_mean/std normalization, clamping, and the
numpy decoders for one clip and for a generated RGB/pointmap pair."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from one4d.backbone import VAE_PRESETS, build_vae
from one4d.codec import VideoCodec

# per-channel, far from the identity: a broadcast over the wrong axis or a swapped mean/std shows
MEAN = torch.linspace(-0.9, 0.7, 16)
STD = torch.linspace(0.4, 2.5, 16).flip(0)


@pytest.fixture(scope="module")
def vaes():
    """The tiny Wan VAE twice, with the same weights: plain (mean 0, std 1) and with MEAN / STD."""
    torch.manual_seed(0)
    plain = build_vae("tiny-vae").eval()
    cfg = dict(VAE_PRESETS["tiny-vae"], latents_mean=MEAN.tolist(), latents_std=STD.tolist())
    normed = build_vae(cfg).eval()
    normed.load_state_dict(plain.state_dict())
    return plain, normed


def _video(frames=5, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, frames, size, size, generator=g) * 2 - 1


def _latents(seed=1, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 16, 2, 2, 2, generator=g) * scale


def test_round_trip_shapes_and_determinism(vaes):
    codec = VideoCodec(vaes[1])
    x = _video()
    with torch.no_grad():
        z = codec.encode(x)
        z2 = codec.encode(x)
        y = codec.decode(z)
    assert z.shape == (1, 16, 2, 2, 2) and z.dtype == torch.float32  # 4x in time (causal first frame), 8x in space
    assert torch.equal(z, z2)  # the posterior mean, not a sample
    assert y.shape == x.shape and y.dtype == torch.float32
    with torch.no_grad():
        y9 = codec.decode(codec.encode(_video(frames=9, size=32)))
    assert y9.shape == (1, 3, 9, 32, 32)


def test_encode_applies_the_normalization_per_channel(vaes):
    plain, normed = vaes
    x = _video()
    with torch.no_grad():
        raw = plain.encode(x).latent_dist.mean
        z = VideoCodec(normed).encode(x)
        z_plain = VideoCodec(plain).encode(x)
    view = (1, 16, 1, 1, 1)
    torch.testing.assert_close(z_plain, raw)  # mean 0 / std 1: the posterior mean itself
    torch.testing.assert_close(z, (raw - MEAN.view(view)) / STD.view(view), rtol=1e-5, atol=1e-6)
    assert (z - z_plain).abs().max() > 0.1  # the statistics changed the latents


def test_decode_inverts_the_normalization(vaes):
    plain, normed = vaes
    z = _latents()
    view = (1, 16, 1, 1, 1)
    with torch.no_grad():
        expect = plain.decode(z * STD.view(view) + MEAN.view(view)).sample.clamp(-1, 1)
        got = VideoCodec(normed).decode(z)
        unnormalized = VideoCodec(plain).decode(z)
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-6)
    assert (got - unnormalized).abs().max() > 1e-3
    # encode then decode goes through the same affine map both ways: the normalization cancels out
    x = _video()
    with torch.no_grad():
        a = VideoCodec(normed).decode(VideoCodec(normed).encode(x))
        b = VideoCodec(plain).decode(VideoCodec(plain).encode(x))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


class _LoudVAE(torch.nn.Module):
    """A stand-in VAE whose decoder overshoots [-1, 1] (the Wan VAE clamps by itself, hiding the codec's clamp)."""

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(4.0))
        self.decoder = torch.nn.Identity()  # the codec hooks the VAE's decoder (cancel and progress per frame)
        self.config = SimpleNamespace(latents_mean=[0.0] * 16, latents_std=[1.0] * 16)

    def decode(self, z):
        return SimpleNamespace(sample=self.gain * self.decoder(z[:, :3]))


def test_decode_clamps_to_unit_range():
    z = _latents()
    with torch.no_grad():
        out = VideoCodec(_LoudVAE()).decode(z)
    raw = 4.0 * z[:, :3]
    assert raw.abs().max() > 2 and (raw.abs() < 1).any()
    assert out.min() == -1 and out.max() == 1
    torch.testing.assert_close(out, raw.clamp(-1, 1))  # clamped, not squashed: values inside stay as they are


def test_low_precision_vae_gives_float32(vaes):
    vae = build_vae("tiny-vae", dtype=torch.bfloat16).eval()
    vae.load_state_dict(vaes[0].state_dict())
    codec = VideoCodec(vae)
    assert codec.dtype == torch.bfloat16
    with torch.no_grad():
        z = codec.encode(_video())
        y = codec.decode(z)
        ref = VideoCodec(vaes[0]).encode(_video())
    assert z.dtype == torch.float32 and y.dtype == torch.float32
    assert (z - ref).norm() / ref.norm() < 0.05


def test_decode_video_is_frames_last_numpy(vaes):
    codec = VideoCodec(vaes[1])
    z = _latents()
    frames = codec.decode_video(z)
    with torch.no_grad():
        video = codec.decode(z)
    assert isinstance(frames, np.ndarray) and frames.dtype == np.float32
    assert frames.shape == (5, 16, 16, 3)  # [F, H, W, 3]
    np.testing.assert_array_equal(frames, video[0].permute(1, 2, 3, 0).numpy())
    assert frames.min() >= -1 and frames.max() <= 1 and frames.min() < 0  # the codec's [-1, 1] range


def test_decode_pair_maps_rgb_to_unit_range_and_keeps_the_pointmap(vaes):
    codec = VideoCodec(vaes[1])
    rgb_lat, xyz_lat = _latents(1), _latents(2)
    rgb, xyz = codec.decode_pair(rgb_lat, xyz_lat)
    video_rgb, video_xyz = codec.decode_video(rgb_lat), codec.decode_video(xyz_lat)
    assert rgb.shape == xyz.shape == (5, 16, 16, 3)
    assert rgb.dtype == np.float32 and xyz.dtype == np.float32
    np.testing.assert_allclose(rgb, video_rgb * 0.5 + 0.5, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(xyz, video_xyz)  # the pointmap stays in [-1, 1]: no RGB remap
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert xyz.min() < 0
    assert np.abs(video_rgb - video_xyz).max() > 1e-3  # the two latents really decode differently (not swapped)


# ---------------------------------------------------------------------------------------------------------
# refinement of given frames for the decoder (VideoCodec.refine), on the shipped embedded VAE
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedded_codec():
    from one4d.models import ModelFolder

    return VideoCodec(ModelFolder.open("embedded").load_vae())


def _photo(seed: int) -> torch.Tensor:
    """A held-out photo fitted to the embedded size as a one-frame clip in [-1, 1]."""
    pytest.importorskip("skimage", reason="needs scikit-image: pip install 'comfyui-one4d[train]'")
    from one4d.data.media import read_image
    from one4d.data.photos import photo_files

    photo = read_image(photo_files("skimage", "heldout")[seed], 64, 64)
    return torch.from_numpy(photo).permute(2, 0, 1)[None, :, None] * 2 - 1


def _mse(codec, latents, video):
    with torch.no_grad():
        return float((codec.decode(latents)[:, :, : video.shape[2]] - video).square().mean())


def test_refining_a_photo_brings_it_back_sharper_and_stays_near_the_encoder(embedded_codec):
    video = _photo(1)  # chelsea
    with torch.no_grad():
        z = embedded_codec.encode(video)
    refined = embedded_codec.refine(video, z, torch.ones(1, dtype=torch.bool), 25)
    gain = 10 * np.log10(_mse(embedded_codec, z, video) / _mse(embedded_codec, refined, video))
    assert gain > 0.5, gain  # measured +1.2 dB on this photo (+1.5 dB over the four held-out photos)
    change = float((refined - z).square().mean().sqrt())
    assert 0.02 < change < 0.6, change  # near the encoder's latents, in normalized units
    assert torch.equal(embedded_codec.refine(video, z, torch.ones(1, dtype=torch.bool), 0), z)


def test_refinement_touches_only_the_chosen_latent_frames_and_never_decodes_worse(embedded_codec):
    from one4d.data.scenes import render_scene

    scene = render_scene(1_000_003)
    video = torch.from_numpy(scene.rgb[:9]).float().permute(3, 0, 1, 2)[None] * 2 - 1  # 3 latent frames
    with torch.no_grad():
        z = embedded_codec.encode(video)
    chosen = torch.tensor([False, True, False])
    refined = embedded_codec.refine(video, z, chosen, 6)
    assert torch.equal(refined[:, :, [0, 2]], z[:, :, [0, 2]])
    assert not torch.equal(refined[:, :, 1], z[:, :, 1])
    # the best step is kept: the refined frames' own pixel frames (1-4) never come back worse
    with torch.no_grad():
        a, b = embedded_codec.decode(z)[:, :, 1:5], embedded_codec.decode(refined)[:, :, 1:5]
    target = video[:, :, 1:5]
    assert float((b - target).square().mean()) <= float((a - target).square().mean())


def test_refinement_runs_under_inference_mode_and_leaves_the_vae_as_it_was(embedded_codec):
    """ComfyUI runs nodes under torch.inference_mode, where a VAE loaded in a node has inference tensors."""
    from one4d.models import ModelFolder

    video = _photo(2)
    with torch.inference_mode():
        codec = VideoCodec(ModelFolder.open("embedded").load_vae())
        assert next(codec.vae.parameters()).is_inference()
        z = codec.encode(video)
        refined = codec.refine(video, z, torch.ones(1, dtype=torch.bool), 3)
    assert not torch.equal(refined, z)
    before = [p.requires_grad for p in embedded_codec.vae.parameters()]
    embedded_codec.refine(video, embedded_codec.encode(video).detach(), torch.ones(1, dtype=torch.bool), 2)
    assert [p.requires_grad for p in embedded_codec.vae.parameters()] == before
    assert all(p.grad is None for p in embedded_codec.vae.parameters())


def test_refinement_stops_on_cancel(embedded_codec):
    from one4d.errors import One4DInterrupted
    from one4d.progress import progress_hook

    video = _photo(0)
    with torch.no_grad():
        z = embedded_codec.encode(video)
    with progress_hook(cancelled=lambda: True), pytest.raises(One4DInterrupted, match="refining"):
        embedded_codec.refine(video, z, torch.ones(1, dtype=torch.bool), 25)
