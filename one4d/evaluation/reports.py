"""Reports on a model's parts: how well its VAE reconstructs scenes, how much its pointmap branch uses the video."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..data import render_scene
from ..codec import REFINE_RATE, REFINE_WEIGHT
from ..data.media import read_image
from ..errors import One4DInputError
from ..pointmap import denormalize, fit_normalization, normalize
from ..text import pad_text
from ..umc import build_mask
from .metrics import depth_metrics
from .suite import mean_rows, psnr


def scene_clip(scene):
    """A scene's RGB video and normalized pointmap video as a VAE batch ``[2, 3, F, H, W]`` in [-1, 1],
    with the pointmap's :class:`~one4d.pointmap.Normalization`."""
    norm = fit_normalization(scene.points, scene.valid)
    clip = torch.from_numpy(np.stack([scene.rgb * 2 - 1, normalize(scene.points, norm)])).permute(0, 4, 1, 2, 3)
    return clip.float(), norm


def codec_report(codec, seeds: Sequence[int]) -> dict[str, float]:
    """How well the VAE reconstructs the RGB clips and normalized pointmap clips of the given scenes."""
    rows = []
    for s in seeds:
        sc = render_scene(s)
        clip, norm = scene_clip(sc)
        with torch.no_grad():
            rec = codec.decode(codec.encode(clip)).permute(0, 2, 3, 4, 1).cpu().numpy()
        pts = denormalize(rec[1], norm)
        cam = np.einsum("fij,fhwj->fhwi", np.linalg.inv(sc.c2w)[:, :3, :3], pts) + np.linalg.inv(sc.c2w)[:, None, None, :3, 3]
        d = depth_metrics(cam[..., 2], sc.depth, sc.valid, alignment="none", max_depth=None)
        rows.append({"rgb_psnr": psnr(rec[0] * 0.5 + 0.5, sc.rgb),
                     "pointmap_psnr": psnr(rec[1] * 0.5 + 0.5, normalize(sc.points, norm) * 0.5 + 0.5),
                     "pointmap_depth_absrel": d["abs_rel"]})
    return mean_rows(rows)


def coupling_report(pipe, seeds: Sequence[int], sigmas: tuple[float, ...] = (0.5, 0.9), seed: int = 0) -> dict[str, dict[str, float]]:
    """How much the XYZ branch uses the RGB video: full-video conditioning, one denoising prediction.

    For each scene, the clean pointmap latents are noised to each sigma and the model predicts them
    back (``x0 = x_t - sigma * v``) three times: with the scene's own RGB video as conditioning, with another
    scene's, and with the links switched off (``unlinked``: the XYZ branch alone). The mean squared x0 error
    of each is reported. Own equal to swapped means the pointmap prediction ignores the video; own equal to
    unlinked means the links carry nothing at all, and swapped near own but far from unlinked means they
    carry what every video shares (the average room), not this scene.
    """
    scenes = len(seeds)
    if scenes < 2:
        raise One4DInputError("--coupling needs at least 2 scenes (it swaps the videos between scenes).")
    rgb, xyz, ctx = [], [], []
    with torch.no_grad():
        for s in seeds:
            sc = render_scene(s)
            lat = pipe.codec.encode(scene_clip(sc)[0])  # the full-video conditioning latents are the RGB latents
            rgb.append(lat[:1])
            xyz.append(lat[1:])
            ctx.append(pad_text(pipe.encode_text(sc.caption), pipe.text_length))
    f = sc.rgb.shape[0]
    rgb, xyz, ctx = torch.cat(rgb), torch.cat(xyz), torch.cat(ctx)
    mask = build_mask(list(range(f)), f, tuple(rgb.shape[-2:]), pipe.geometry, batch=scenes)
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for sigma in sigmas:
        eps_r, eps_x = torch.randn(rgb.shape, generator=gen), torch.randn(xyz.shape, generator=gen)
        x_t = (1 - sigma) * xyz + sigma * eps_x
        t = torch.full((scenes,), sigma * 1000.0)
        row = {}
        dev = next(pipe.model.parameters()).device
        for name, video in (("own", rgb), ("swapped", rgb.roll(1, 0)), ("unlinked", rgb)):
            args = ((1 - sigma) * video + sigma * eps_r, x_t, t, ctx, mask, video)
            pipe.model.links_enabled = name != "unlinked"
            try:
                with torch.no_grad():
                    _, v = pipe.model(*(a.to(dev) for a in args))
            finally:
                pipe.model.links_enabled = True
            row[name] = float((x_t - sigma * v.float().cpu() - xyz).square().mean())
        out[f"sigma_{sigma:g}"] = row
    return out


def photo_latents(codec, photo: np.ndarray, refine_steps: int = 0, rate: float = REFINE_RATE,
                  weight: float = REFINE_WEIGHT) -> tuple[torch.Tensor, torch.Tensor]:
    """A photo ``[H, W, 3]`` in [0, 1] encoded as a one-frame clip: the encoder's latents and, with
    ``refine_steps``, those refined for the decoder as image-to-4D's given image is (:mod:`one4d.codec`; else the
    same tensor)."""
    frame = torch.from_numpy(photo).permute(2, 0, 1)[None, :, None] * 2 - 1  # [1, 3, 1, H, W]
    with torch.no_grad():
        z = codec.encode(frame)
    return z, codec.refine(frame, z, torch.ones(1, dtype=torch.bool), refine_steps, rate, weight)


def decode_photo(codec, latents: torch.Tensor) -> np.ndarray:
    """One-frame latents back to a photo ``[H, W, 3]`` in [0, 1]."""
    with torch.no_grad():
        return codec.decode(latents)[0, :, 0].permute(1, 2, 0).numpy() * 0.5 + 0.5


def photo_round_trip(codec, photo: np.ndarray, refine_steps: int = 0) -> np.ndarray:
    """A photo ``[H, W, 3]`` in [0, 1] through the VAE as a one-frame clip, back in [0, 1] (refined with
    ``refine_steps``, :func:`photo_latents`)."""
    return decode_photo(codec, photo_latents(codec, photo, refine_steps)[1])


def photo_vae_report(codec, files: Sequence, height: int, width: int, refine_steps: int = 0) -> dict[str, float]:
    """The VAE round trip of held-out photos fitted to ``height x width``, as PSNR against the fitted photo: the
    encoder's latents (``vae_psnr``) and, with ``refine_steps``, the refined ones (``refined_psnr``)."""
    rows = []
    for path in files:
        photo = read_image(path, height, width)
        encoded, refined = photo_latents(codec, photo, refine_steps)
        row = {"vae_psnr": psnr(decode_photo(codec, encoded), photo)}
        if refine_steps > 0:
            row["refined_psnr"] = psnr(decode_photo(codec, refined), photo)
        rows.append(row)
    return mean_rows(rows)


def photo_report(pipe, files: Sequence, settings) -> dict[str, float]:
    """How a model reproduces held-out photos: the VAE round trip of each photo (fitted to the model size,
    :func:`photo_vae_report`, refined as the model kind refines image-to-4D's given image) and frame 0 of an
    image-to-4D run from it, as PSNR against the fitted photo."""
    d = pipe.defaults
    rows = []
    for path in files:
        photo = read_image(path, d.height, d.width)
        cond = pipe.condition(d.frames, d.height, d.width, frames=torch.from_numpy(photo)[None], indices=[0])
        result = pipe.generate(cond, settings, recover=False)
        rows.append({"frame0_psnr": psnr(result.rgb[0], photo)})
    return {**photo_vae_report(pipe.codec, files, d.height, d.width, d.refine_steps), **mean_rows(rows)}
