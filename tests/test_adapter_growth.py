"""Growing a trained One4D file into a larger rank and more links: the grown model computes what the file
did, the new capacity trains, and a file never shrinks."""
from __future__ import annotations

import pytest
import torch

from one4d.backbone import DIT_PRESETS, DitVariant, build_dit
from one4d.dlc import DLCConfig, One4DModel
from one4d.errors import One4DInputError
from one4d.training.adapter_growth import init_one4d
from one4d.weights import save_one4d

PRESET = "tiny-inp"
VARIANT = DitVariant(DIT_PRESETS[PRESET], PRESET)


def _model(base_state: dict | None, **config) -> One4DModel:
    dit = build_dit(PRESET).eval()
    if base_state is not None:
        dit.load_state_dict(base_state)
    return One4DModel(dit, VARIANT, DLCConfig(**config))


def _base_state(model: One4DModel) -> dict:
    return {k.replace(".base_layer", ""): v for k, v in model.dit.state_dict().items() if "lora_" not in k}


def _inputs():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return r(1, 16, 2, 4, 4), r(1, 16, 2, 4, 4), torch.tensor([500.0]), r(1, 512, 32), torch.ones(1, 4, 2, 4, 4), r(1, 16, 2, 4, 4)


@pytest.fixture
def trained(tmp_path):
    torch.manual_seed(0)
    model = _model(None, rank=4, link_layers=(0,))
    for p in model.adapter_and_link_parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_one4d(model, tmp_path / "small.safetensors")
    return model, tmp_path / "small.safetensors"


@pytest.mark.parametrize("alpha", [None, 4.0])  # None: scale 1 kept; 4 at rank 8: scale halves, B doubles
def test_grown_model_computes_what_the_file_did(trained, alpha):
    small, path = trained
    grown = _model(_base_state(small), rank=8, alpha=alpha, link_layers=(0, 1))
    init_one4d(grown, path)
    x = _inputs()
    with torch.no_grad():
        want, got = small(*x), grown(*x)
    assert torch.allclose(want[0], got[0], atol=1e-5) and torch.allclose(want[1], got[1], atol=1e-5)
    layer = grown.dit.blocks[0].attn1.to_q
    assert layer.lora_A["xyz"].weight.shape[0] == 8 and layer.lora_A["xyz"].weight[4:].abs().sum() > 0
    assert layer.lora_B["xyz"].weight[:, 4:].abs().sum() == 0
    assert grown.links.rgb_to_xyz[1].weight.abs().sum() == 0  # the new link starts closed
    assert torch.equal(grown.links.rgb_to_xyz[0].weight, small.links.rgb_to_xyz[0].weight)


def test_new_ranks_and_links_receive_gradients(trained):
    small, path = trained
    grown = _model(_base_state(small), rank=8, link_layers=(0, 1))
    init_one4d(grown, path)
    grown.set_trainable(True)
    rgb, xyz = grown(*_inputs())
    (rgb.square().mean() + xyz.square().mean()).backward()
    assert grown.dit.blocks[1].ffn.net[2].lora_B["xyz"].weight.grad[:, 4:].abs().sum() > 0
    assert grown.links.rgb_to_xyz[1].weight.grad.abs().sum() > 0


def test_same_config_loads_as_it_is_and_a_smaller_model_is_refused(trained):
    small, path = trained
    same = _model(_base_state(small), rank=4, link_layers=(0,))
    init_one4d(same, path)
    x = _inputs()
    with torch.no_grad():
        assert torch.equal(same(*x)[1], small(*x)[1])
    with pytest.raises(One4DInputError, match="rank 4.*can only grow.*--rank >= 4"):
        init_one4d(_model(_base_state(small), rank=2, link_layers=(0,)), path)
    with pytest.raises(One4DInputError, match=r"links at blocks \[0\].*--links 2"):
        init_one4d(_model(_base_state(small), rank=4, link_layers=(1,)), path)
