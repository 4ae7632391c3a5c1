"""Block swapping (nodes/offload.py): every DiT block is moved to the compute device just before it runs and
back to the offload device right after, one block at a time; outputs equal the unswapped model's.

Only the CPU is at hand, so the two devices are ``cpu:0`` (compute) and ``cpu`` (offload): the same memory,
but distinct device objects, so a spy on each block's ``.to`` sees which way every move goes.
"""
from __future__ import annotations

import pytest
import torch

import nodes
from nodes import comfy_bridge
from nodes.cache import EMBEDDED
from nodes.offload import BlockSwap
from one4d.backbone import DIT_PRESETS, DitVariant, build_dit
from one4d.dlc import BRANCHES, DLCConfig, One4DModel

COMPUTE = torch.device("cpu", 0)
OFFLOAD = torch.device("cpu")


def _model() -> One4DModel:
    dit = build_dit("tiny-inp").eval()
    model = One4DModel(dit, DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4))
    for _, layer in model.lora_layers():
        for b in BRANCHES:
            torch.nn.init.normal_(layer.lora_B[b].weight, std=0.05)
    return model


def _args():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 2, 4, 4, generator=g)
    return (x, torch.randn(1, 16, 2, 4, 4, generator=g), torch.tensor([500.0]), torch.randn(1, 512, 32, generator=g),
            torch.ones(1, 4, 2, 4, 4), torch.randn(1, 16, 2, 4, 4, generator=g))


def _spy(blocks: torch.nn.ModuleList) -> tuple[list[tuple], list]:
    """Record ``("to", block, device)`` for each block's ``.to`` and ``("run", block)`` when the block's first
    layer runs (inside the block's forward, after its pre-hooks). Returns the event list and the handles."""
    events: list[tuple] = []
    handles = []
    for i, block in enumerate(blocks):
        original = block.to

        def to(*args, _i=i, _original=original, **kwargs):
            events.append(("to", _i, torch.device(args[0] if args else kwargs["device"])))
            return _original(*args, **kwargs)

        block.to = to  # instance attribute: the swap hooks call module.to(...)
        handles.append(block.norm1.register_forward_pre_hook(lambda m, a, _i=i: events.append(("run", _i))))
    return events, handles


def test_block_swap_moves_each_block_in_for_its_forward_and_out_after():
    net = _model()
    blocks = net.dit.blocks
    args = _args()
    with torch.no_grad():
        ref = net(*args)
    hooks = [(dict(b._forward_pre_hooks), dict(b._forward_hooks)) for b in blocks]  # the DLC links' own hooks
    events, spies = _spy(blocks)
    swap = BlockSwap()
    try:
        swap.attach(net, blocks, COMPUTE, OFFLOAD)
        assert swap.attached and all(len(b._forward_hooks) == len(h[1]) + 1 for b, h in zip(blocks, hooks))
        # attaching parks every block on the offload device; nothing runs yet
        assert events == [("to", i, OFFLOAD) for i in range(len(blocks))]
        events.clear()
        with torch.no_grad():
            out = net(*args)
        # one block at a time, in order: in just before it runs, out right after
        expect = [e for i in range(len(blocks)) for e in (("to", i, COMPUTE), ("run", i), ("to", i, OFFLOAD))]
        assert events == expect
        events.clear()
        with torch.no_grad():
            again = net(*args)
        assert events == expect  # every forward pass streams the blocks again
    finally:
        swap.detach()
    assert torch.equal(ref[0], out[0]) and torch.equal(ref[1], out[1])
    assert torch.equal(out[0], again[0]) and torch.equal(out[1], again[1])
    # detached: no hooks left, no more moves, same outputs
    assert not swap.attached
    assert [(dict(b._forward_pre_hooks), dict(b._forward_hooks)) for b in blocks] == hooks
    events.clear()
    with torch.no_grad():
        after = net(*args)
    assert events == [("run", i) for i in range(len(blocks))]
    assert torch.equal(ref[0], after[0]) and torch.equal(ref[1], after[1])
    for h in spies:
        h.remove()


def test_attach_twice_keeps_one_set_of_hooks():
    net = _model()
    blocks = net.dit.blocks
    events, spies = _spy(blocks)
    swap = BlockSwap()
    swap.attach(net, blocks, COMPUTE, OFFLOAD)
    swap.attach(net, blocks, COMPUTE, OFFLOAD)  # e.g. the loader asked again: the first hooks are replaced
    events.clear()
    with torch.no_grad():
        net(*_args())
    swap.detach()
    assert [e for e in events if e[0] == "to"] == [e for i in range(len(blocks)) for e in (("to", i, COMPUTE), ("to", i, OFFLOAD))]
    for h in spies:
        h.remove()


@pytest.fixture()
def dirs(tmp_path):
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input",
                                   models=tmp_path / "models")
    return tmp_path


def test_embedded_handle_streams_its_blocks_and_after_sampling_detaches(dirs):
    """The node path on the embedded model: ``load_for_sampling`` on the CPU loads the whole model (no swap);
    attached as ``load_for_sampling`` does on a GPU, the swap streams every block of the cached DiT with
    unchanged outputs, and ``after_sampling`` takes the hooks off again."""
    handle = nodes.One4DLoadBackbone().load(EMBEDDED, EMBEDDED, memory="block_swap")[0]
    handle = nodes.One4DApplyPointmapLoRA().apply(handle, EMBEDDED)[0]
    net = handle.load_for_sampling()
    entry = handle.dit
    blocks = entry.dit.blocks
    assert not entry.swap.attached  # the CPU is the compute device: nothing to stream
    images = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    cond = nodes.One4DBuildConditioning().build(handle, images=images, width=64, height=64, length=17,
                                                frame_indices="first", prompt="a red box", negative_prompt="")[0].cond
    x = torch.randn(*cond.cond_latents.shape, generator=torch.Generator().manual_seed(0))
    args = (x, x.flip(-1), torch.tensor([500.0]), cond.context, cond.mask, cond.cond_latents)
    hooks = [(dict(b._forward_pre_hooks), dict(b._forward_hooks)) for b in blocks]
    events, spies = _spy(blocks)
    try:
        with torch.no_grad():
            ref = net(*args)
            entry.swap.attach(net, blocks, COMPUTE, OFFLOAD)
            events.clear()
            out = net(*args)
        assert events == [e for i in range(len(blocks)) for e in (("to", i, COMPUTE), ("run", i), ("to", i, OFFLOAD))]
        handle.after_sampling()
        assert not entry.swap.attached
        assert [(dict(b._forward_pre_hooks), dict(b._forward_hooks)) for b in blocks] == hooks
    finally:
        entry.swap.detach()
        for block, h in zip(blocks, spies):
            del block.to  # the model stays in the node cache: drop the spies
            h.remove()
    assert torch.equal(ref[0], out[0]) and torch.equal(ref[1], out[1])
