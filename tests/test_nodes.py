"""The node pack without ComfyUI: node contract, bad widget values, path escapes, never overwriting, Cancel,
model reuse, and the real-backbone path (single-file Wan DiT and VAE from the model folders) on tiny files."""
from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from comfy_fakes import CORE, embedded_version
from safetensors.torch import save_file

import nodes
from nodes import cache, comfy_bridge
from nodes.cache import EMBEDDED
from nodes.headless import run_prompt
from one4d.data.media import PAD_GRAY
from one4d.errors import One4DInputError
from one4d.models import ModelFolder
from one4d.sampling import One4DInterrupted

GEOMETRY = ModelFolder.open("embedded").geometry  # the shipped model's strides and channels: 17 x 64 x 64 clips
LATENTS = (1, GEOMETRY.channels, *GEOMETRY.latent_shape(17, 64, 64))

ROOT = Path(__file__).resolve().parents[1]
WIDGETS = ("INT", "FLOAT", "STRING", "BOOLEAN")
CUSTOM = ("ONE4D_MODEL", "ONE4D_COND", "POINTMAP", "CAMERAS")
CORE_TYPES = ("IMAGE", "LATENT", "CONDITIONING", "CLIP_VISION_OUTPUT", "STRING", "MASK")


@pytest.fixture()
def dirs(tmp_path):
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input",
                                   models=tmp_path / "models")
    return tmp_path


# ---------------------------------------------------------------------------------------------------------
# contract
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("node_id", sorted(nodes.NODE_CLASS_MAPPINGS))
def test_node_contract(node_id):
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    assert node_id.startswith("One4D") and cls.CATEGORY.startswith("One4D/")
    assert node_id in nodes.NODE_DISPLAY_NAME_MAPPINGS
    assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 40
    assert callable(getattr(cls, cls.FUNCTION))
    spec = cls.INPUT_TYPES()
    assert set(spec) <= {"required", "optional", "hidden"} and spec["required"]
    for group in ("required", "optional"):
        for name, value in spec.get(group, {}).items():
            assert isinstance(value, tuple) and 1 <= len(value) <= 2, f"{node_id}.{name}"
            kind, opts = value[0], value[1] if len(value) > 1 else {}
            assert isinstance(opts.get("tooltip"), str) and opts["tooltip"], f"{node_id}.{name} has no tooltip"
            if isinstance(kind, list):
                assert all(isinstance(v, str) for v in kind) and (kind or name == "lora_name"), f"{node_id}.{name}"
                assert "default" not in opts or opts["default"] in kind
            elif kind in ("INT", "FLOAT"):
                assert opts["min"] <= opts["default"] <= opts["max"], f"{node_id}.{name}"
            else:
                assert kind in WIDGETS + CUSTOM + CORE_TYPES, f"{node_id}.{name}: {kind}"
    assert isinstance(cls.RETURN_TYPES, tuple) and all(t in CUSTOM + CORE_TYPES for t in cls.RETURN_TYPES)
    assert len(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)) == len(cls.RETURN_TYPES)
    assert len(getattr(cls, "OUTPUT_TOOLTIPS", ())) == len(cls.RETURN_TYPES)
    if not cls.RETURN_TYPES:
        assert cls.OUTPUT_NODE
    seed = spec["required"].get("seed")
    if seed:
        assert seed[1]["control_after_generate"] is True


def test_entry_point_contract():
    tree = ast.parse((ROOT / "__init__.py").read_text())
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "nodes"]
    assert relative and all(n.level == 1 for n in relative), "the root __init__ must import .nodes relatively"
    assert any(isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "WEB_DIRECTORY" and n.value.value == "./web"
               for n in tree.body)
    # ComfyUI imports live in exactly one module
    comfy = ("comfy", "folder_paths", "server", "latent_preview", "comfy_extras", "comfy_api", "execution")

    def comfy_imports(path):
        found = []
        for n in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else (
                [n.module or ""] if isinstance(n, ast.ImportFrom) and n.level == 0 else [])
            found += [m for m in names if m.split(".")[0] in comfy]
        return found

    for path in (ROOT / "nodes").glob("*.py"):
        if path.name != "comfy_bridge.py":
            assert not comfy_imports(path), f"{path.name} imports {comfy_imports(path)}"
    assert comfy_imports(ROOT / "nodes" / "comfy_bridge.py")
    for path in (ROOT / "one4d").rglob("*.py"):
        assert not comfy_imports(path), path


def test_pack_imports_as_a_comfyui_package_without_the_library_installed(tmp_path):
    """ComfyUI loads custom_nodes/<folder>/__init__.py as a package whose name is the folder's name."""
    import subprocess
    import sys

    pack = tmp_path / "custom_nodes" / "ComfyUI-One4D"
    pack.parent.mkdir()
    pack.symlink_to(ROOT, target_is_directory=True)
    code = (
        "import importlib.util, sys\n"
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in type(f).__name__.lower() and "
        "'editable' not in getattr(f, '__module__', '')]\n"
        "sys.path = [p for p in sys.path if '__editable__' not in p]\n"
        "sys.path_hooks = [h for h in sys.path_hooks if 'editable' not in repr(h).lower()]\n"
        "sys.path_importer_cache.clear()\n"
        "print(importlib.util.find_spec('one4d') is None)\n"
        f"spec = importlib.util.spec_from_file_location('ComfyUI-One4D', r'{pack / '__init__.py'}', "
        f"submodule_search_locations=[r'{pack}'])\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['ComfyUI-One4D'] = mod; spec.loader.exec_module(mod)\n"
        "print(len(mod.NODE_CLASS_MAPPINGS), mod.WEB_DIRECTORY, 'nodes' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # one4d was not importable before; the pack made it importable; no top-level 'nodes' module was created
    assert out.stdout.split() == ["True", str(len(nodes.NODE_CLASS_MAPPINGS)), "./web", "False"], out.stdout


# ---------------------------------------------------------------------------------------------------------
# the embedded model through the nodes
# ---------------------------------------------------------------------------------------------------------

def _model():
    handle = nodes.One4DLoadBackbone().load(EMBEDDED, EMBEDDED)[0]
    return nodes.One4DApplyPointmapLoRA().apply(handle, EMBEDDED)[0]


def _image(n=1, size=64):
    g = torch.Generator().manual_seed(n)
    return torch.rand(n, size, size, 3, generator=g)


def _cond(model, **kw):
    args = dict(width=64, height=64, length=17, frame_indices="first", prompt="a red box", negative_prompt="")
    args.update(kw)
    images = args.pop("images", _image())
    return nodes.One4DBuildConditioning().build(model, images=images, **args)[0]


@pytest.mark.parametrize("kw, message", [
    (dict(frame_indices="0,20"), "outside the video of 17 frames"),
    (dict(frame_indices="0,a,8"), "not understood"),
    (dict(frame_indices="0,8,8", images=_image(3)), "repeat a frame"),
    (dict(frame_indices="even:x"), "whole number"),
    (dict(width=60), f"width 60 is not a positive multiple of {GEOMETRY.size_multiple}; use 64"),
    (dict(height=70), f"height 70 is not a positive multiple of {GEOMETRY.size_multiple}"),
    (dict(length=16), "length 16 is not 4k\\+1"),
    (dict(frame_indices="0,8,16", images=_image(2)), "2 image\\(s\\) were given for 3 frame index"),
    (dict(frame_indices="all", images=_image(5)), "needs 17 images"),
    (dict(frame_indices="none"), "images are connected but frame_indices is 'none'"),
    (dict(frame_indices="first", images=None), "no images are connected"),
    (dict(positive=[[torch.zeros(1, 8, 4096), {}]]), "disconnect 'positive' and type the prompt"),
    (dict(positive="hello"), "not a CONDITIONING"),
    (dict(fit="stretch"), "fit 'stretch' is unknown; choose 'crop'"),
])
def test_bad_widget_values_stop_with_a_clear_message(dirs, kw, message):
    with pytest.raises(One4DInputError, match=message):
        _cond(_model(), **kw)


def test_frame_selection_modes_and_resizing(dirs):
    model = _model()
    assert _cond(model).mode == "image"
    assert _cond(model, images=None, frame_indices="none").mode == "text"
    three = _cond(model, images=_image(3, size=96), frame_indices="0,8,16")  # other size: centre-crop + resize
    assert three.mode == "sparse" and three.cond.indices == [0, 8, 16] and three.frames.shape == (3, 64, 64, 3)
    video = _image(20)
    picked = _cond(model, images=video, frame_indices="even:3")  # listed frames taken from a whole video
    assert picked.cond.indices == [0, 8, 16] and np.allclose(picked.frames[1], video[8].numpy(), atol=1e-6)
    full = _cond(model, images=video, frame_indices="all")
    assert full.mode == "video" and len(full.cond.indices) == 17
    wide = _cond(model, images=torch.rand(1, 64, 128, 3))
    assert wide.frames.shape == (1, 64, 64, 3)


def test_the_embedded_model_refines_the_image_of_image_to_4d_under_inference_mode(dirs):
    """ComfyUI runs nodes under torch.inference_mode; the given image's latents are refined for the decoder
    into the pinned latents (on the CPU with the rest), the DiT's conditioning stays the encoder's."""
    model = _model()
    assert model.refine_steps == 25
    with torch.inference_mode():
        image = _cond(model).cond
    assert image.pinned_latents.device.type == "cpu" and image.pinned_latents.shape == image.cond_latents.shape
    assert torch.equal(image.pinned_latents[:, :, 1:], image.cond_latents[:, :, 1:])
    assert not torch.equal(image.pinned_latents[:, :, 0], image.cond_latents[:, :, 0])
    assert _cond(model, images=_image(2), frame_indices="0,8").cond.pinned_latents is None  # sparse: not refined


def test_fit_pads_a_wide_photo_with_the_unobserved_gray_and_says_so(dirs, caplog):
    model = _model()
    wide = torch.zeros(1, 32, 64, 3)
    wide[..., 0] = 1.0  # a red 64 x 32 picture
    with caplog.at_level(logging.WARNING, logger="one4d"):
        padded = _cond(model, images=wide, fit="pad")
    frame = padded.frames[0]
    assert frame.shape == (64, 64, 3)
    assert np.allclose(frame[:12], PAD_GRAY, atol=1e-6) and np.allclose(frame[-12:], PAD_GRAY, atol=1e-6)  # gray margins
    assert np.allclose(frame[20:44], [1.0, 0.0, 0.0], atol=1e-6)  # all of the picture, in the middle
    assert "the 64x32 picture was padded with gray to 64x64 to match the model's 64x64" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="one4d"):
        cropped = _cond(model, images=wide, fit="crop")
    assert np.allclose(cropped.frames[0], [1.0, 0.0, 0.0], atol=1e-6)  # the centre fills the frame
    assert "cropped to its centre 32x32" in caplog.text and "fit 'pad' keeps all of it" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="one4d"):
        _cond(model, images=_image(1), fit="pad")  # already square: nothing to say
    assert "picture was" not in caplog.text
    assert nodes.One4DBuildConditioning.INPUT_TYPES()["optional"]["fit"][0] == ["crop", "pad"]


def test_sample_decode_cameras_save_preview_and_never_overwrite(dirs):
    model = _model()
    cond = _cond(model)
    rgb, xyz = nodes.One4DSample().sample(model, cond, seed=3, steps=2, guidance=3.0, shift=3.0, scheduler="euler")
    assert rgb["samples"].shape == LATENTS and rgb["one4d"]["indices"] == [0]
    again = nodes.One4DSample().sample(model, cond, seed=3, steps=2, guidance=3.0, shift=3.0, scheduler="euler")
    assert torch.equal(again[0]["samples"], rgb["samples"]), "same seed, same result"
    images, pointmap, depth = nodes.One4DDecode().decode(model, rgb, xyz)
    assert images.shape == (17, 64, 64, 3) and depth.shape == (17, 64, 64, 3) and 0 <= float(images.min()) <= float(images.max()) <= 1
    assert pointmap.points.shape == (17, 64, 64, 3) and pointmap.space == "normalized"
    with pytest.raises(One4DInputError, match="need cameras"):
        nodes.One4DSave4D().save(pointmap, "one4d/x")
    cams, cam_depth, anchored = nodes.One4DCameras().recover(pointmap, refine_iterations=5)
    assert cams.K.shape == (17, 3, 3) and np.allclose(cams.c2w[0], np.eye(4), atol=1e-5) and anchored.space == "anchored"
    assert cam_depth.shape == (17, 64, 64, 3)
    first = nodes.One4DSave4D().save(anchored, "one4d/scene", save_colmap=True, save_depth_png=True)
    second = nodes.One4DSave4D().save(anchored, "one4d/scene")
    out = dirs / "output" / "one4d"
    names1 = {r["filename"] for r in first["ui"]["one4d_files"]}
    names2 = {r["filename"] for r in second["ui"]["one4d_files"]}
    assert {"scene_00001_.ply", "scene_00001_.glb", "scene_00001_.npz", "scene_00001_cameras.json", "scene_00001_colmap",
            "scene_00001_depth"} == names1
    assert names1.isdisjoint(names2) and all((out / n).exists() for n in names1 | names2)
    assert first["result"] == ("one4d/scene_00001_.glb", "one4d/scene_00001_.ply") and first["ui"]["3d"][0]["type"] == "output"
    assert first["ui"]["one4d_preview"] == [{"filename": "scene_00001_.o4dp", "subfolder": "one4d", "type": "output"}]
    assert json.loads((out / "scene_00001_cameras.json").read_text())["frames"][0]["index"] == 0
    # a file that happens to hold the next counter's name is never overwritten
    (out / "scene_00003_.ply").write_text("keep me")
    third = nodes.One4DSave4D().save(anchored, "one4d/scene", save_glb=False, save_npz=False, save_cameras_json=False)
    assert (out / "scene_00003_.ply").read_text() == "keep me"
    assert third["ui"]["one4d_files"][0]["filename"] == "scene_00004_.ply"
    assert third["result"] == ("one4d/scene_00004_.ply", "one4d/scene_00004_.ply")  # no GLB: model_file falls back to the PLY
    no_ply = nodes.One4DSave4D().save(anchored, "one4d/noply", save_ply=False, save_npz=False, save_cameras_json=False)
    assert no_ply["result"] == ("one4d/noply_00001_.glb", "")
    preview = nodes.One4DPreview4D().preview(pointmap, max_points_per_frame=2000)
    ref = preview["ui"]["one4d_preview"][0]
    assert ref["type"] == "temp" and (dirs / "temp" / ref["subfolder"] / ref["filename"]).read_bytes()[:4] == b"O4DP"


@pytest.mark.parametrize("prefix", ["../escape", "one4d/../../escape", "/tmp/escape", "\\\\server\\share\\x", "C:/escape",
                                    "C:escape", "~/escape"])
def test_filename_prefix_cannot_leave_the_output_folder(dirs, prefix):
    from nodes.values import PointmapData

    pm = PointmapData(np.random.rand(1, 16, 16, 3).astype(np.float32), np.random.rand(1, 16, 16, 3).astype(np.float32),
                      np.ones((1, 16, 16), bool))
    before = sorted(p for p in dirs.parent.rglob("*") if "escape" in p.name)
    with pytest.raises(One4DInputError, match="must be a relative name inside the output folder"):
        nodes.One4DSave4D().save(pm, prefix, save_cameras_json=False)
    assert sorted(p for p in dirs.parent.rglob("*") if "escape" in p.name) == before
    assert not (dirs / "output").exists() or not any((dirs / "output").rglob("*"))


@pytest.mark.parametrize("prefix, message", [
    ("", "filename_prefix is empty; type a name for the files, e.g. 'one4d/scene' \\(the default\\)"),
    ("   ", "filename_prefix is empty"),
    ("one4d/", "filename_prefix 'one4d/' names a folder but no file name; add one after the last slash \\(e.g. 'one4d/scene'\\)"),
])
def test_an_empty_filename_prefix_is_called_empty_not_an_escape(dirs, prefix, message):
    """No silent fallback to the default: the user cleared the name, so the message says so and gives the fix."""
    from nodes.values import PointmapData

    pm = PointmapData(np.random.rand(1, 16, 16, 3).astype(np.float32), np.random.rand(1, 16, 16, 3).astype(np.float32),
                      np.ones((1, 16, 16), bool))
    with pytest.raises(One4DInputError, match=message) as err:
        nodes.One4DSave4D().save(pm, prefix, save_cameras_json=False)
    assert "outside the output folder" not in str(err.value)
    assert not (dirs / "output").exists() or not any((dirs / "output").rglob("*"))


def test_cancel_stops_within_one_step_and_writes_nothing(dirs, monkeypatch):
    steps = []

    def progress(total, preview_device=None):
        def update(step, n, x0=None):
            steps.append(step)
            if step == 2:
                comfy_bridge.request_interrupt()  # the user presses Cancel during step 2
        return update

    monkeypatch.setattr(comfy_bridge, "make_progress", progress)
    prompt = embedded_version(json.loads((ROOT / "example_workflows/api/one4d_embedded_cpu.json").read_text()), steps=10)
    with pytest.raises(One4DInterrupted, match="after 2 of 10 steps"):
        run_prompt(prompt, dict(nodes.NODE_CLASS_MAPPINGS, **CORE))
    assert steps == [1, 2]
    assert not comfy_bridge.interrupted(), "the interrupt flag is consumed"
    assert not (dirs / "output").exists() or not any((dirs / "output").rglob("*"))
    # the next prompt runs normally
    nodes.One4DSample().sample(_model(), _cond(_model()), seed=0, steps=1, guidance=1.0, shift=3.0, scheduler="unipc")


def test_repeated_prompts_reuse_the_loaded_model(dirs):
    a = _model()
    b = _model()
    assert a.dit is b.dit and a.model() is b.model() and a.vae is b.vae


# ---------------------------------------------------------------------------------------------------------
# a real-style backbone from the model folders (tiny shapes, real key names)
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture()
def tiny_models(dirs):
    from ckpt_factory import original_state_dict

    from one4d.backbone import DIT_PRESETS, DitVariant, build_dit, build_vae
    from one4d.dlc import DLCConfig, One4DModel
    from one4d.weights import save_one4d

    root = dirs / "models"
    for sub in ("diffusion_models", "vae", "one4d", "loras"):
        (root / sub).mkdir(parents=True)
    torch.manual_seed(0)
    dit = build_dit("tiny-inp").eval()
    save_file(original_state_dict(dit.state_dict(), "model.diffusion_model."), root / "diffusion_models" / "tiny_inp.safetensors")
    save_file(build_vae("tiny-vae").state_dict(), root / "vae" / "tiny_vae.safetensors")
    model = One4DModel(dit, DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4, link_layers=(0, 1)))
    for p in model.adapter_and_link_parameters():
        torch.nn.init.normal_(p, std=0.02)
    save_one4d(model, root / "one4d" / "tiny_one4d.safetensors")
    other = One4DModel(build_dit("tiny-inp-clip"), DitVariant(DIT_PRESETS["tiny-inp-clip"], "tiny-inp-clip"), DLCConfig(rank=4))
    save_one4d(other, root / "one4d" / "for_clip_backbone.safetensors")
    g = torch.Generator().manual_seed(1)
    lora = {}
    for i in range(2):
        for name, width in (("self_attn.q", 32), ("ffn.0", 32)):
            out = 64 if name == "ffn.0" else 32
            lora[f"diffusion_model.blocks.{i}.{name}.lora_A.weight"] = torch.randn(2, width, generator=g) * 0.1
            lora[f"diffusion_model.blocks.{i}.{name}.lora_B.weight"] = torch.randn(out, 2, generator=g) * 0.1
    save_file(lora, root / "loras" / "style.safetensors")
    wrong = {k: torch.randn(v.shape[0], 48) if "lora_A" in k else v for k, v in lora.items()}
    save_file(wrong, root / "loras" / "for_a_bigger_wan.safetensors")
    yield root
    cache.clear_cache()


def _tiny(storage="auto", weights="tiny_one4d.safetensors"):
    h = nodes.One4DLoadBackbone().load("tiny_inp.safetensors", "tiny_vae.safetensors", "fp32", storage)[0]
    return nodes.One4DApplyPointmapLoRA().apply(h, weights)[0]


def test_model_lists_come_from_the_model_folders(tiny_models):
    req = nodes.One4DLoadBackbone.INPUT_TYPES()["required"]
    assert req["dit_name"][0] == [EMBEDDED, "tiny_inp.safetensors"] and req["vae_name"][0] == [EMBEDDED, "tiny_vae.safetensors"]
    assert nodes.One4DApplyPointmapLoRA.INPUT_TYPES()["required"]["one4d_weights"][0] == [
        EMBEDDED, "for_clip_backbone.safetensors", "tiny_one4d.safetensors"]


def test_real_backbone_needs_text_conditioning_and_runs_with_it(tiny_models):
    model = _tiny()
    with pytest.raises(One4DInputError, match="connect CLIPTextEncode"):
        _cond(model, prompt="words are not enough")
    positive = [[torch.randn(1, 7, 32), {}]]  # CLIPTextEncode output (L=7 tokens), zero-padded to 512 inside
    cond = _cond(model, positive=positive, negative=[[torch.randn(1, 3, 32), {}]])
    assert cond.cond.context.shape == (1, 512, 32) and torch.count_nonzero(cond.cond.context[0, 7:]) == 0
    lat = nodes.One4DSample().sample(model, cond, seed=0, steps=1, guidance=2.0, shift=3.0, scheduler="unipc")
    assert torch.isfinite(lat[0]["samples"]).all()


def test_weights_or_lora_for_another_model_are_refused(tiny_models):
    base = nodes.One4DLoadBackbone().load("tiny_inp.safetensors", "tiny_vae.safetensors", "fp32", "auto")[0]
    with pytest.raises(One4DInputError, match="for_clip_backbone.safetensors.*trained for a tiny-inp-clip backbone"):
        nodes.One4DApplyPointmapLoRA().apply(base, "for_clip_backbone.safetensors")
    with pytest.raises(One4DInputError, match="trained for a one4d-embedded backbone"):
        nodes.One4DApplyPointmapLoRA().apply(base, EMBEDDED)
    with pytest.raises(One4DInputError, match="apply the One4D weights first"):
        nodes.One4DApplyRGBLoRA().apply(base, "style.safetensors", 1.0)
    with pytest.raises(One4DInputError, match="does not fit this backbone"):
        nodes.One4DApplyRGBLoRA().apply(_tiny(), "for_a_bigger_wan.safetensors", 1.0)
    with pytest.raises(One4DInputError, match="was not found in models/one4d"):
        nodes.One4DApplyPointmapLoRA().apply(base, "missing.safetensors")


def test_community_lora_changes_rgb_only_with_strength(tiny_models):
    model = _tiny()
    cond = _cond(model, positive=[[torch.randn(1, 5, 32), {}]])
    run = lambda m: nodes.One4DSample().sample(m, cond, seed=1, steps=1, guidance=1.0, shift=3.0, scheduler="euler")  # noqa: E731
    base_rgb, _ = run(model)
    styled = nodes.One4DApplyRGBLoRA().apply(model, "style.safetensors", 1.0)[0]
    off = nodes.One4DApplyRGBLoRA().apply(model, "style.safetensors", 0.0)[0]
    rgb, _ = run(styled)
    assert not torch.allclose(rgb["samples"], base_rgb["samples"], atol=1e-4), "the LoRA styles the RGB branch"
    rgb0, _ = run(off)
    assert torch.allclose(rgb0["samples"], base_rgb["samples"], atol=1e-6), "strength 0 is the plain model"
    assert torch.allclose(run(model)[0]["samples"], base_rgb["samples"], atol=1e-6), "the unstyled handle is unaffected"
    with pytest.raises(One4DInputError, match="already applied"):
        nodes.One4DApplyRGBLoRA().apply(styled, "style.safetensors", 0.5)


def test_fp8_weight_storage_keeps_adapters_in_the_compute_dtype(tiny_models):
    model = _tiny(storage="fp8_e4m3fn")
    net = model.model()
    layer = next(layer for _, layer in net.lora_layers())
    assert layer.base_layer.weight.dtype == torch.float8_e4m3fn and layer.lora_A["rgb"].weight.dtype == torch.float32
    cond = _cond(model, positive=[[torch.randn(1, 5, 32), {}]])
    lat = nodes.One4DSample().sample(model, cond, seed=0, steps=1, guidance=1.0, shift=3.0, scheduler="unipc")
    assert torch.isfinite(lat[0]["samples"]).all()


def test_unknown_options_and_unavailable_attention_are_reported(tiny_models):
    with pytest.raises(One4DInputError, match="memory 'lots'"):
        nodes.One4DLoadBackbone().load(EMBEDDED, EMBEDDED, memory="lots")
    h = nodes.One4DLoadBackbone().load("tiny_inp.safetensors", "tiny_vae.safetensors", "fp32", "auto", attention="sage")[0]
    h = nodes.One4DApplyPointmapLoRA().apply(h, "tiny_one4d.safetensors")[0]
    with pytest.raises(One4DInputError, match="attention 'sage' is not available here"):
        h.load_for_sampling()


def test_the_embedded_model_says_once_what_its_geometry_is_worth(caplog):
    from nodes import loaders

    loaders._told.clear()
    with caplog.at_level(logging.WARNING, logger="one4d"):
        for _ in range(2):
            nodes.One4DLoadBackbone().load(EMBEDDED, EMBEDDED)
    said = [r.getMessage() for r in caplog.records if "synthetic rooms" in r.getMessage()]
    assert len(said) == 1 and "use the real Wan2.1-Fun checkpoints" in said[0]
    assert "trained only on synthetic rooms" in nodes.One4DLoadBackbone.DESCRIPTION
