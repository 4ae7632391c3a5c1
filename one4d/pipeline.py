"""Inference: frames + text -> UMC conditioning -> joint sampling -> decoded RGB video and pointmap video,
with cameras and depth recovered from the pointmap (:mod:`one4d.geometry.result`).

The steps live with what they use: conditioning in :mod:`one4d.umc`, sampling in :mod:`one4d.sampling`,
decoding of the pair in :mod:`one4d.codec`; this class only holds a loaded model and runs them in order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from .backbone import LatentGeometry
from .codec import VideoCodec
from .defaults import EMBEDDED, ModelDefaults
from .dlc import One4DModel
from .geometry.result import One4DResult, assemble_result
from .models import ModelFolder
from .request import check_video
from .sampling import SamplerSettings, StepCallback, sample
from .text import TEXT_LEN, text_contexts
from .umc import Conditioning, build_conditioning, model_geometry
from .weights import build_one4d

TextEncoder = Callable[[str], torch.Tensor]


@dataclass
class One4DPipeline:
    """A loaded One4D model with its VAE codec, (optional) built-in text encoder and sampling defaults."""

    model: One4DModel
    codec: VideoCodec
    text_encoder: Optional[TextEncoder] = None
    extras: list[tuple[str, float]] = field(default_factory=list)
    defaults: ModelDefaults = EMBEDDED

    @classmethod
    def from_folder(cls, folder: ModelFolder | str | Path = "embedded") -> "One4DPipeline":
        """The model of a model folder (:class:`one4d.models.ModelFolder`; ``"embedded"``: the shipped one)."""
        folder = folder if isinstance(folder, ModelFolder) else ModelFolder.open(folder)
        dit, variant = folder.load_dit()
        model = build_one4d(dit, variant, folder.file("one4d")).eval()
        return cls(model, VideoCodec(folder.load_vae()), folder.text_encoder(variant), defaults=folder.defaults)

    @property
    def geometry(self) -> LatentGeometry:
        """Latent channels, strides and patch of this VAE + DiT (:class:`one4d.backbone.LatentGeometry`)."""
        return model_geometry(self.codec, self.model.variant)

    @property
    def text_length(self) -> int:
        """Tokens of text context: Wan's 512, or the built-in encoder's own length (embedded model)."""
        return int(getattr(self.text_encoder, "length", TEXT_LEN))

    def encode_text(self, prompt: str) -> torch.Tensor:
        """The built-in encoder's context of a prompt."""
        return text_contexts(self.text_encoder, prompt)[0]

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
        refine_steps: Optional[int] = None,
    ) -> Conditioning:
        """Build the UMC conditioning; prompts are encoded by the built-in text encoder unless contexts are given.
        ``refine_steps``: for the image of image-to-4D (:func:`one4d.umc.build_conditioning`; None: the model kind's)."""
        check_video(num_frames, height, width, indices, self.geometry)
        context, negative_context = text_contexts(self.text_encoder, prompt, negative_prompt, context, negative_context)
        return build_conditioning(self.codec, self.model.variant, num_frames, height, width, frames, indices, context,
                                  negative_context, self.text_length, clip_context,
                                  self.defaults.refine_steps if refine_steps is None else refine_steps)

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
        rgb, points = self.codec.decode_pair(rgb_lat, xyz_lat)
        return assemble_result(rgb, points, cond.indices, recover)
