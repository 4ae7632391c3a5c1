"""Decoupled LoRA Control: base model untouched, links couple the branches, peft equivalence, parameter counts."""
from __future__ import annotations

import pytest
import torch

from one4d.backbone import DIT_PRESETS, DitVariant, build_dit
from one4d.dlc import BRANCHES, DLCConfig, One4DModel, count_dlc_parameters, default_link_layers, forward_mode
from one4d.errors import One4DInputError


def _model(preset: str, rank: int = 4) -> One4DModel:
    return One4DModel(build_dit(preset).eval(), DitVariant(DIT_PRESETS[preset], preset), DLCConfig(rank=rank))


def _batch(model: One4DModel, n: int = 2):
    cfg = model.variant.config
    t, h, w = 2, 4, 6
    rgb, xyz = torch.randn(n, 16, t, h, w), torch.randn(n, 16, t, h, w)
    mask = cond = None
    if cfg["in_channels"] == 36:
        mask, cond = (torch.rand(n, 4, t, h, w) > 0.5).float(), torch.randn(n, 16, t, h, w)
    clip = torch.randn(n, 257, cfg["image_dim"]) if cfg["image_dim"] else None
    return rgb, xyz, torch.tensor([900.0, 250.0][:n]), torch.randn(n, 512, cfg["text_dim"]), mask, cond, clip


def _plain(model: One4DModel, batch):
    rgb, xyz, ts, ctx, mask, cond, clip = batch
    x = model.prepare_inputs(rgb, xyz, mask, cond)
    two = lambda t: None if t is None else torch.cat([t, t])  # noqa: E731
    with forward_mode("plain"), torch.no_grad():
        return model.dit(x, two(ts), two(ctx), two(clip), return_dict=False)[0].chunk(2)


def _randomize_links(model: One4DModel) -> None:
    for lin in [*model.links.xyz_to_rgb, *model.links.rgb_to_xyz]:
        torch.nn.init.normal_(lin.weight, std=0.2)


@pytest.mark.parametrize("preset", ["tiny-inp", "tiny-inp-clip", "tiny-t2v"])
def test_zero_adapters_and_links_leave_the_backbone_exact(preset):
    model = _model(preset)
    batch = _batch(model)
    with torch.no_grad():
        rgb, xyz = model(*batch)
    base_rgb, base_xyz = _plain(model, batch)
    assert (rgb - base_rgb).abs().max().item() == 0.0
    assert (xyz - base_xyz).abs().max().item() == 0.0
    # and against the backbone run on the RGB clips alone (other GEMM blocking: last-bit differences only)
    r, _, ts, ctx, mask, cond, clip = batch
    alone = model.dit(model.prepare_inputs(r, r, mask, cond)[:2], ts, ctx, clip, return_dict=False)[0]
    torch.testing.assert_close(rgb, alone, rtol=0, atol=1e-5)
    _randomize_links(model)
    with torch.no_grad():
        rgb2, xyz2 = model(*batch)
    assert (rgb2 - rgb).abs().max() > 1e-3 and (xyz2 - xyz).abs().max() > 1e-3


def test_links_carry_information_between_branches_only_when_nonzero():
    model = _model("tiny-inp")
    rgb, xyz, ts, ctx, mask, cond, clip = _batch(model)
    with torch.no_grad():
        a = model(rgb, xyz, ts, ctx, mask, cond)[0]
        b = model(rgb, xyz + 1.0, ts, ctx, mask, cond)[0]
        assert torch.equal(a, b)  # zero links: XYZ input cannot reach RGB output
        _randomize_links(model)
        a = model(rgb, xyz, ts, ctx, mask, cond)[0]
        b = model(rgb, xyz + 1.0, ts, ctx, mask, cond)[0]
    assert (a - b).abs().max() > 1e-3


def test_batched_two_branch_forward_matches_peft_two_passes():
    model = _model("tiny-inp-clip")
    for _, layer in model.lora_layers():
        for b in BRANCHES:
            torch.nn.init.normal_(layer.lora_B[b].weight, std=0.2)
    batch = _batch(model)
    rgb, xyz, ts, ctx, mask, cond, clip = batch
    with torch.no_grad():
        out = model(*batch)
        x = model.prepare_inputs(rgb, xyz, mask, cond)
        with forward_mode("peft"):
            ref = []
            for i, name in enumerate(BRANCHES):
                for _, layer in model.lora_layers():
                    layer.set_adapter(name)
                ref.append(model.dit(x[2 * i:2 * i + 2], ts, ctx, clip, return_dict=False)[0])
    for got, want in zip(out, ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        assert (got - _plain(model, batch)[0]).abs().max() > 1e-3  # the adapters really act


def test_gradients_reach_only_adapters_and_links():
    model = _model("tiny-inp")
    for lin in model.links.xyz_to_rgb:
        torch.nn.init.normal_(lin.weight, std=0.1)
    rgb, xyz, ts, ctx, mask, cond, _ = _batch(model)
    v_rgb, v_xyz = model(rgb, xyz, ts, ctx, mask, cond)
    (v_rgb.square().mean() + v_xyz.square().mean()).backward()
    base = [p for n, p in model.dit.named_parameters() if "lora_" not in n]
    assert all(p.grad is None for p in base)
    lora_b = [layer.lora_B[b].weight for _, layer in model.lora_layers() for b in BRANCHES]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora_b)
    assert all(p.grad is not None for p in model.links.parameters())


def test_dlc_adds_exactly_adapters_and_links_without_copying_base_weights():
    dit = build_dit("tiny-inp-clip")
    ptrs = {n: p.data_ptr() for n, p in dit.named_parameters()}
    before = sum(p.numel() for p in dit.parameters())
    model = One4DModel(dit, DitVariant(DIT_PRESETS["tiny-inp-clip"], None), DLCConfig(rank=4))
    added = sum(p.numel() for p in model.parameters()) - before
    assert added == sum(p.numel() for p in model.adapter_and_link_parameters())
    for name, p in dit.named_parameters():
        key = name.replace(".base_layer", "")
        if "lora_" not in name:
            assert p.data_ptr() == ptrs[key]
    # 12 adapted linears per block with image attention (q,k,v,o x2 + k_img, v_img + FFN in/out)
    per_block = {n.split(".", 2)[2] for n, _ in model.lora_layers() if n.startswith("blocks.0.")}
    assert len(per_block) == 12


def test_trainable_parameter_count_of_the_14b_preset_matches_the_paper():
    counts = count_dlc_parameters(DitVariant(DIT_PRESETS["wan2.1-fun-v1.1-14b-inp"], None))
    assert counts["adapters"] == 685 * 2**20  # 685M in the paper = rank 64 x 12 linears x 40 blocks x 2 branches
    assert counts["links"] == 10 * 5120 * 5120 + 10 * 5120  # 5 layers x 2 directions, with bias


def test_link_layers_default_and_validation():
    assert default_link_layers(40) == (4, 12, 20, 28, 36)
    assert default_link_layers(2) == (0, 1)
    with pytest.raises(One4DInputError, match="outside"):
        DLCConfig(link_layers=(0, 7)).resolve(4)


def test_text_to_video_backbone_rejects_conditioning_frames():
    model = _model("tiny-t2v")
    rgb, xyz, ts, ctx, _, _, _ = _batch(model)
    mask = torch.ones(2, 4, *rgb.shape[2:])
    with pytest.raises(One4DInputError, match="text-to-video"):
        model(rgb, xyz, ts, ctx, mask, torch.zeros_like(rgb))


def test_adapters_on_fp8_stored_weights_are_bf16():
    dit = build_dit("tiny-inp")
    for name, mod in dit.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.startswith("blocks."):
            mod.weight.data = mod.weight.data.to(torch.float8_e4m3fn)
    model = One4DModel(dit, DitVariant(DIT_PRESETS["tiny-inp"], None), DLCConfig(rank=4))
    assert {p.dtype for n, p in model.named_parameters() if "lora_" in n} == {torch.bfloat16}


def _merge_test_model() -> tuple[One4DModel, tuple]:
    """A small model whose adapters and links all carry random weights, and a batch for it."""
    model = _model("tiny-inp-clip")
    _randomize_links(model)
    for _, layer in model.lora_layers():
        for b in BRANCHES:
            torch.nn.init.normal_(layer.lora_B[b].weight, std=0.2)
    return model, _batch(model)


def _merged_equals_unmerged(model: One4DModel, batch: tuple, monkeypatch) -> tuple:
    """The model's outputs with merged inference, checked equal to those of the unmerged path (autograd off)."""
    import one4d.dlc as dlc

    merged = model(*batch)
    monkeypatch.setattr(dlc, "MERGE_SHARE", float("inf"))
    plain = model(*batch)
    monkeypatch.setattr(dlc, "MERGE_SHARE", 1 / 8)
    for got, want in zip(merged, plain):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    return merged


def test_inference_with_merged_weights_matches_the_two_branch_products(monkeypatch):
    """Small layers run inference on per-branch merged weights: same outputs as the base product plus the
    rank-r ones, rebuilt when a weight changes in place, and never while autograd records (training)."""
    import one4d.dlc as dlc

    model, batch = _merge_test_model()
    assert all(dlc.merges_for_inference(layer) for _, layer in model.lora_layers())
    model(*batch)  # autograd on: the unmerged path, nothing cached
    assert not any(hasattr(layer, "_one4d_merged") for _, layer in model.lora_layers())

    with torch.no_grad():
        before = _merged_equals_unmerged(model, batch, monkeypatch)
    assert all(hasattr(layer, "_one4d_merged") for _, layer in model.lora_layers())
    with torch.no_grad():
        for _, layer in model.lora_layers():
            layer.lora_B["xyz"].weight.mul_(2)  # in place, as an optimizer step
        after = _merged_equals_unmerged(model, batch, monkeypatch)
    assert (after[1] - before[1]).abs().max() > 1e-3
    assert (after[0] - before[0]).abs().max() > 1e-3  # through the links


def test_merged_inference_on_a_model_built_in_inference_mode(monkeypatch):
    """ComfyUI builds and runs models under torch.inference_mode, whose tensors keep no version counter: the
    merged path still runs, equals the unmerged one, caches nothing, and follows an in-place weight update."""
    import one4d.dlc as dlc

    with torch.inference_mode():
        model, batch = _merge_test_model()
        assert all(p.is_inference() for p in model.parameters())
        calls = []
        original = dlc._merge
        monkeypatch.setattr(dlc, "_merge", lambda layer: calls.append(layer) or original(layer))

        before = _merged_equals_unmerged(model, batch, monkeypatch)
        assert calls and not any(hasattr(layer, "_one4d_merged") for _, layer in model.lora_layers())
        for _, layer in model.lora_layers():
            layer.lora_B["xyz"].weight.mul_(2)
        after = _merged_equals_unmerged(model, batch, monkeypatch)
    assert (after[1] - before[1]).abs().max() > 1e-3


def test_large_layers_keep_the_rank_r_products():
    """Wan-sized layers (rank 64 on 5120 x 5120) are not merged: the adapters cost 2.5 % there, a merged
    pair would cost two more copies of the weight."""
    from types import SimpleNamespace

    from one4d.dlc import merges_for_inference

    def layer(width: int, rank: int):
        with torch.device("meta"):
            return SimpleNamespace(base_layer=torch.nn.Linear(width, width), lora_A={"rgb": torch.nn.Linear(width, rank, bias=False)})

    assert not merges_for_inference(layer(5120, 64)) and not merges_for_inference(layer(1536, 64))
    assert merges_for_inference(layer(128, 16)) and merges_for_inference(layer(128, 64))
