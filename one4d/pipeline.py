"""End to end: frames + text -> RGB video, pointmap video, cameras and depth.

The generated pointmap lives in the normalized space of :mod:`one4d.pointmap` (no metric scale). After
camera recovery the result is re-anchored so that, as everywhere in the project, the world is the camera
of frame 0 (OpenCV axes): ``points``, ``c2w`` and ``depth`` agree with each other.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .backbone import TEXT_LEN
from .codec import VideoCodec
from .dlc import One4DModel
from .errors import One4DInputError
from .pointmap import Normalization
from .sampling import Conditioning, SamplerSettings, StepCallback, sample
from .umc import build_condition_video, build_mask, latent_shape, validate_indices

TextEncoder = Callable[[str], torch.Tensor]


@dataclass
class One4DResult:
    """A generated or reconstructed 4D clip. Arrays are numpy, frames first."""

    rgb: np.ndarray  # [F, H, W, 3] float32 in [0, 1]
    points: np.ndarray  # [F, H, W, 3] float32, world = frame-0 camera (OpenCV)
    depth: np.ndarray  # [F, H, W] float32 z-depth
    valid: np.ndarray  # [F, H, W] bool
    K: np.ndarray  # [F, 3, 3]
    c2w: np.ndarray  # [F, 4, 4] camera-to-world, c2w[0] = I
    indices: list[int]  # observed frames
    normalization: Normalization = field(default_factory=Normalization.identity)
    raw_points: Optional[np.ndarray] = None  # the decoded normalized pointmap before re-anchoring


@dataclass
class One4DPipeline:
    """A loaded One4D model with its VAE codec and (optional) built-in text encoder."""

    model: One4DModel
    codec: VideoCodec
    text_encoder: Optional[TextEncoder] = None
    extras: list[tuple[str, float]] = field(default_factory=list)

    @classmethod
    def embedded(cls, model: str = "embedded") -> "One4DPipeline":
        """The small trained model shipped in the package (CPU, 17 x 64 x 64), or one like it in the folder
        ``model`` (see :func:`one4d.training.recipe.model_dir`)."""
        from .training import recipe as emb
        from .weights import build_one4d

        d = emb.model_dir(model)
        dit, variant = emb.load_embedded_dit(d / "dit.safetensors")
        one4d = build_one4d(dit, variant, d / "one4d.safetensors").eval()
        codec = VideoCodec(emb.load_embedded_vae(d / "vae.safetensors"))
        return cls(one4d, codec, emb.HashTextEncoder(variant.config["text_dim"]))

    @property
    def text_length(self) -> int:
        """Tokens of text context: Wan's 512, or the built-in encoder's own length (embedded model)."""
        return int(getattr(self.text_encoder, "length", TEXT_LEN))

    @property
    def text_dim(self) -> int:
        return int(self.model.variant.config["text_dim"])

    def encode_text(self, prompt: str) -> torch.Tensor:
        if self.text_encoder is None:
            raise One4DInputError("this backbone needs text from a text encoder (CLIPTextEncode with the Wan umT5 encoder).")
        return self.text_encoder(prompt)

    def condition(
        self,
        num_frames: int,
        height: int,
        width: int,
        frames: Optional[torch.Tensor] = None,
        indices: Sequence[int] = (),
        context: Optional[torch.Tensor] = None,
        negative_context: Optional[torch.Tensor] = None,
        clip_context: Optional[torch.Tensor] = None,
        prompt: str = "",
        negative_prompt: str = "",
    ) -> Conditioning:
        """Build the UMC conditioning: mask, VAE-encoded conditioning video, text contexts."""
        t, h, w = latent_shape(num_frames, height, width)
        indices = list(indices)
        validate_indices(indices, num_frames)
        accepts = self.model.variant.accepts_conditioning
        if indices and not accepts:
            raise One4DInputError("this backbone is text-to-video only (16 input channels): give no frames, or load an InP model.")
        if indices:
            if frames is None:
                raise One4DInputError(f"frame indices {indices} were given without images; connect the images.")
            if tuple(frames.shape[1:3]) != (height, width):
                raise One4DInputError(
                    f"the images are {frames.shape[2]}x{frames.shape[1]} but the video is {width}x{height}; "
                    "resize the images (e.g. ImageScale) or change width/height."
                )
        mask = cond_lat = None
        if accepts:
            video = build_condition_video(frames if indices else torch.zeros(0, height, width, 3), indices, num_frames)
            with torch.no_grad():
                cond_lat = self.codec.encode(video)
            mask = build_mask(indices, num_frames, (h, w))
        if context is None:
            context = self.encode_text(prompt)
        if negative_context is None and (negative_prompt or self.text_encoder is not None):
            negative_context = self.encode_text(negative_prompt) if negative_prompt else torch.zeros_like(context)
        if context.shape[-1] != self.text_dim:
            raise One4DInputError(
                f"the text conditioning has width {context.shape[-1]} but this backbone expects {self.text_dim}; "
                "use the Wan umT5 text encoder (CLIPLoader type 'wan') for Wan backbones."
            )
        n = self.text_length
        return Conditioning(num_frames, height, width, indices, mask, cond_lat, pad_text(context, n),
                            None if negative_context is None else pad_text(negative_context, n), clip_context)

    def generate(
        self,
        cond: Conditioning,
        settings: SamplerSettings,
        callback: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        recover: bool = True,
    ) -> One4DResult:
        """Sample, decode both modalities, and (optionally) recover cameras and depth."""
        rgb_lat, xyz_lat = sample(self.model, cond, settings, callback, should_stop, extras=self.extras)
        with torch.no_grad():
            rgb = self.codec.decode(rgb_lat)[0].permute(1, 2, 3, 0).numpy() * 0.5 + 0.5
            pts = self.codec.decode(xyz_lat)[0].permute(1, 2, 3, 0).numpy()
        return assemble_result(rgb.astype(np.float32), pts.astype(np.float32), cond.indices, recover)


def pad_text(ctx: torch.Tensor, length: int = TEXT_LEN) -> torch.Tensor:
    """Zero-pad (or cut) a text context to ``length`` tokens (Wan convention: 512)."""
    ctx = ctx if ctx.ndim == 3 else ctx[None]
    if ctx.shape[1] >= length:
        return ctx[:, :length]
    return torch.cat([ctx, ctx.new_zeros(ctx.shape[0], length - ctx.shape[1], ctx.shape[2])], dim=1)


def anchor_to_first_camera(points: np.ndarray, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Express points and poses in the frame-0 camera: ``X' = inv(c2w[0]) X``, ``c2w' = inv(c2w[0]) c2w``."""
    inv0 = np.linalg.inv(c2w[0].astype(np.float64))
    new_c2w = (inv0 @ c2w.astype(np.float64)).astype(np.float32)
    new_pts = (points.astype(np.float64) @ inv0[:3, :3].T + inv0[:3, 3]).astype(np.float32)
    return new_pts, new_c2w


def cameras_for_generated(points: np.ndarray, valid: np.ndarray | None = None, **recover_kwargs):
    """Cameras and depth of a generated pointmap, never failing on degenerate geometry.

    A generated pointmap can be too degenerate for camera recovery (e.g. after one or two sampling steps).
    Then the estimate keeps the pointmap as seen from a fixed frame-0 camera (identity poses, a 53-degree
    field of view, depth = z), ``stats["fallback"]`` says why, and a warning is issued: a bad generation
    should give a visible, explained result rather than fail the whole run.
    """
    from .geometry import CameraEstimate, recover_cameras

    try:
        return recover_cameras(points, valid, **recover_kwargs)
    except One4DInputError as exc:
        if not np.isfinite(points).any():
            raise
        warnings.warn(f"camera recovery failed on the generated pointmap ({exc}); using fixed cameras", stacklevel=2)
        f, h, w, _ = points.shape
        focal = float(max(h, w))
        K = np.tile(np.array([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1]], np.float32), (f, 1, 1))
        depth = np.nan_to_num(points[..., 2]).astype(np.float32)
        ok = depth > 0 if valid is None else (depth > 0) & valid
        return CameraEstimate(K, np.tile(np.eye(4, dtype=np.float32), (f, 1, 1)), np.where(ok, depth, 0), ok,
                              np.full(f, focal, np.float32), {"fallback": str(exc)})


def assemble_result(rgb: np.ndarray, normalized_points: np.ndarray, indices: list[int], recover: bool = True) -> One4DResult:
    """Recover cameras/depth from a decoded normalized pointmap and re-anchor to the frame-0 camera."""
    if not recover:
        f, h, w, _ = rgb.shape
        depth = normalized_points[..., 2].copy()
        return One4DResult(rgb, normalized_points, depth, np.ones((f, h, w), bool), np.tile(np.eye(3, dtype=np.float32), (f, 1, 1)),
                           np.tile(np.eye(4, dtype=np.float32), (f, 1, 1)), list(indices), raw_points=normalized_points)
    est = cameras_for_generated(normalized_points)
    pts, c2w = anchor_to_first_camera(normalized_points, est.c2w)
    return One4DResult(rgb, pts, est.depth.astype(np.float32), est.valid, est.K.astype(np.float32), c2w, list(indices),
                       raw_points=normalized_points)
