"""The umT5 text encoder from a ComfyUI-style file, and a model folder of real-layout Wan files that
`one4d run` and the pipeline load like the embedded model (tiny generated checkpoints)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

transformers = pytest.importorskip("transformers", reason="the umT5 encoder needs transformers: pip install 'comfyui-one4d[train]'")
from wan_folder import write_tokenizer, write_umt5, write_wan_model_folder  # noqa: E402

from one4d.cli import main  # noqa: E402
from one4d.errors import One4DInputError  # noqa: E402
from one4d.models import ModelFolder  # noqa: E402
from one4d.pipeline import One4DPipeline  # noqa: E402
from one4d.sampling import SamplerSettings  # noqa: E402
from one4d.umt5 import UMT5TextEncoder  # noqa: E402


def test_the_encoder_reads_its_shape_from_the_file_and_encodes_like_transformers(tmp_path):
    ref = write_umt5(tmp_path / "umt5.safetensors")
    enc = UMT5TextEncoder(tmp_path / "umt5.safetensors", write_tokenizer(tmp_path / "tok"), dtype=torch.float32)
    out = enc("a  red\nsphere ")
    ids = torch.tensor([[3, 6, 7, 1]])  # "a red sphere" + end token, whitespace cleaned
    with torch.no_grad():
        want = ref(input_ids=ids).last_hidden_state
    assert out.shape == (1, 4, 32) and torch.allclose(out, want, atol=1e-5)
    assert enc.dim == 32 and enc.length == 512


def test_fp8_files_load(tmp_path):
    write_umt5(tmp_path / "umt5_fp8.safetensors", fp8=True)
    enc = UMT5TextEncoder(tmp_path / "umt5_fp8.safetensors", write_tokenizer(tmp_path / "tok"))
    assert torch.isfinite(enc("a room")).all()


def test_wrong_files_are_named(tmp_path):
    save_file({"encoder.conv_in.weight": torch.zeros(2, 3, 3, 3)}, str(tmp_path / "vae.safetensors"))
    with pytest.raises(One4DInputError, match="not a umT5 encoder.*umt5_xxl_fp16"):
        UMT5TextEncoder(tmp_path / "vae.safetensors", tmp_path)
    write_umt5(tmp_path / "umt5.safetensors")
    with pytest.raises(One4DInputError, match="no tokenizer.json.*google/umt5-xxl"):
        UMT5TextEncoder(tmp_path / "umt5.safetensors", tmp_path)


def test_a_folder_of_real_layout_wan_files_runs_through_the_pipeline(tmp_path):
    folder = ModelFolder.open(write_wan_model_folder(tmp_path))
    assert folder.geometry.space_stride == 8 and folder.geometry.size_multiple == 16
    pipe = One4DPipeline.from_folder(folder)
    assert pipe.defaults.steps == 50 and pipe.text_length == 512
    cond = pipe.condition(5, 32, 32, frames=torch.rand(1, 32, 32, 3), indices=[0], prompt="a red sphere")
    assert cond.context.shape == (1, 512, 32) and cond.context[0, 4:].abs().max() == 0  # real tokens, then zeros
    result = pipe.generate(cond, SamplerSettings(steps=2, guidance=2.0, seed=0))
    assert result.rgb.shape == (5, 32, 32, 3) and torch.isfinite(torch.from_numpy(result.points)).all()


def test_a_umt5_of_another_width_is_refused(tmp_path):
    folder = ModelFolder.open(write_wan_model_folder(tmp_path, width=40))
    with pytest.raises(One4DInputError, match="40 wide but the DiT reads 32-wide"):
        One4DPipeline.from_folder(folder)


def test_one4d_run_takes_the_real_layout_folder(tmp_path):
    folder = write_wan_model_folder(tmp_path)
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8))
    out = tmp_path / "out"
    assert main(["run", "--model", str(folder), "--image", str(image), "--text", "a red room", "--width", "32", "--height", "32",
                 "--length", "5", "--steps", "2", "--out", str(out)]) == 0
    assert (out / "rgb.mp4").is_file() and (out / "cameras.json").is_file()
