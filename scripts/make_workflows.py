"""Write the example workflows of ``example_workflows/``: each as a UI-format file (drag into ComfyUI; listed
in its template browser) and its API-format twin ``api/<name>.json`` (for ``/prompt`` and
``scripts/comfy_client.py``; in a subfolder because ComfyUI offers every top-level .json as a template).

Run from the repository root: ``python scripts/make_workflows.py``. The UI files follow the layout the
ComfyUI frontend saves (litegraph schema 0.4): nodes with input/output slots, ``widgets_values`` in widget
order (a seed with ``control_after_generate`` is followed by its mode, an image/video upload combo by its
upload button value) and links ``[id, from node, from slot, to node, to slot, type]``. Nodes in bypass mode
(``mode`` 4) are left out of the API twin and their links are passed through, as the frontend does.

The widget orders of the core nodes used are written out in :data:`CORE_NODES` (ComfyUI 0.3.64); the tests
check them against ``/object_info`` of a real ComfyUI when one is available, and the pack's own nodes
against their ``INPUT_TYPES``.

Model files (:data:`MODEL_FILES`): each Wan workflow names the files it loads in the frontend's models
metadata, so that ComfyUI's missing-models dialog lists what is absent with its folder and download link
instead of a bare "Value not in list" on Run: ``properties.models`` of each loader node and the
workflow-level ``models`` list, entries ``{name, url, directory}`` (the frontend's schema; it offers a
download for huggingface.co urls and .safetensors names). The pack itself never downloads anything. Sources:
the Wan2.1-Fun V1.1 InP DiTs from their publisher (alibaba-pai on the Hugging Face hub; no repackaged V1.1
InP file exists, and Comfy-Org's ``wan2.1_fun_inp_1.3B_bf16`` is V1.0), saved under the names written here;
the VAE, umT5 and CLIP vision files from Comfy-Org's Wan 2.1 repackaged set, as ComfyUI's own Wan
templates use them. No One4D weights are published: their entry links to the README section that says how
such a file is made, and each Wan workflow's note says the same.

Two backbone setups (:class:`WanSetup`): Wan2.1-Fun V1.1 14B InP at Wan's 81 x 480 x 832, and 1.3B InP for
8-16 GB GPUs at the paper's training size, 81 x 352 x 624; both keep the DiT in fp8 (``weight_storage``
fp8_e4m3fn, half the memory of the bf16 file).
"""
from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "example_workflows"
sys.path.insert(0, str(ROOT))

from one4d.defaults import EMBEDDED as EMBEDDED_DEFAULTS  # noqa: E402  (the pack's library, from this checkout)
from one4d.defaults import WAN_FUN_1_3B, WAN_FUN_14B, ModelDefaults  # noqa: E402

EMBEDDED = "embedded (CPU demo)"


@dataclass(frozen=True)
class ModelFile:
    """A model file a workflow loads: its name in the ComfyUI folder, the folder, and where it comes from."""

    name: str
    directory: str
    url: str
    source: str  # for people: who publishes it, and how to save it

    def metadata(self) -> dict[str, str]:
        """The entry of the frontend's models metadata."""
        return {"name": self.name, "url": self.url, "directory": self.directory}


HF = "https://huggingface.co"
REPACKAGED = f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
REPOSITORY = "https://github.com/one4d-comfy/ComfyUI-One4D"
ONE4D_WEIGHTS_DOC = f"{REPOSITORY}#the-one4d-weights-file"  # README section: no public file, how one is made
DIT_14B = ModelFile("Wan2.1-Fun-V1.1-14B-InP.safetensors", "diffusion_models",
                    f"{HF}/alibaba-pai/Wan2.1-Fun-V1.1-14B-InP/resolve/main/diffusion_pytorch_model.safetensors",
                    "alibaba-pai/Wan2.1-Fun-V1.1-14B-InP: its diffusion_pytorch_model.safetensors, saved under this name")
DIT_1_3B = ModelFile("Wan2.1-Fun-V1.1-1.3B-InP.safetensors", "diffusion_models",
                     f"{HF}/alibaba-pai/Wan2.1-Fun-V1.1-1.3B-InP/resolve/main/diffusion_pytorch_model.safetensors",
                     "alibaba-pai/Wan2.1-Fun-V1.1-1.3B-InP: its diffusion_pytorch_model.safetensors, saved under this name")
VAE = ModelFile("wan_2.1_vae.safetensors", "vae", f"{REPACKAGED}/vae/wan_2.1_vae.safetensors",
                "Comfy-Org/Wan_2.1_ComfyUI_repackaged")
UMT5 = ModelFile("umt5_xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders",
                 f"{REPACKAGED}/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "Comfy-Org/Wan_2.1_ComfyUI_repackaged")
CLIP_VISION = ModelFile("clip_vision_h.safetensors", "clip_vision", f"{REPACKAGED}/clip_vision/clip_vision_h.safetensors",
                        "Comfy-Org/Wan_2.1_ComfyUI_repackaged")
ONE4D_14B = ModelFile("one4d_wan2.1_fun_v1.1_14b_inp.safetensors", "one4d", ONE4D_WEIGHTS_DOC, "not published (see the note)")
ONE4D_1_3B = ModelFile("one4d_wan2.1_fun_v1.1_1.3b_inp.safetensors", "one4d", ONE4D_WEIGHTS_DOC, "not published (see the note)")
MODEL_FILES = (DIT_14B, DIT_1_3B, VAE, UMT5, CLIP_VISION, ONE4D_14B, ONE4D_1_3B)


@dataclass(frozen=True)
class WanSetup:
    """A Wan backbone the examples are made for, with the sizes and memory settings that suit it."""

    key: str  # file-name suffix of its workflows
    label: str
    dit: ModelFile
    one4d: ModelFile
    defaults: ModelDefaults
    width: int
    height: int
    weight_storage: str
    memory: str
    lora: str  # the placeholder name of the bypassed community-LoRA node
    fits: str  # the GPUs it is set up for, and what to change on others


WAN_14B = WanSetup(
    "wan14b", "Wan2.1-Fun 14B InP", DIT_14B, ONE4D_14B, WAN_FUN_14B, WAN_FUN_14B.width, WAN_FUN_14B.height,
    "fp8_e4m3fn", "auto", "your_wan2.1_14b_lora.safetensors",
    "Set up for GPUs with 32 GB or more (an estimate: the DiT in fp8 plus two branches' activations at 81 x 480 x 832). "
    "Smaller GPUs: memory block_swap (slow), or fewer frames / a smaller size.")
# 624 x 352 is the paper's training size; two branches' activations there are about 55% of those at 832 x 480.
WAN_1_3B = WanSetup(
    "wan1_3b", "Wan2.1-Fun 1.3B InP", DIT_1_3B, ONE4D_1_3B, WAN_FUN_1_3B, 624, 352,
    "fp8_e4m3fn", "auto", "your_wan2.1_1.3b_lora.safetensors",
    "Set up for GPUs with 8 to 16 GB (estimates: about 7 GB at 81 x 352 x 624 with the DiT in fp8). With 12 GB or more: "
    "weight_storage auto (bf16, best quality), or 832 x 480 (about 10 GB). Below 8 GB: memory block_swap, or fewer frames.")
WAN_SETUPS = (WAN_14B, WAN_1_3B)
# The negative prompt Wan's reference code uses (in English).
NEGATIVE = ("bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, still, overall "
            "gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, poorly drawn "
            "hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy "
            "background, three legs, many people in the background, walking backwards")
SAMPLE_CAPTION = "a sliding yellow box and a bouncing mottled pink box in a room with a striped purple floor and checkered gray walls, the camera orbits left"

# Core ComfyUI nodes used by the examples (0.3.64): socket inputs, widgets (name, kind, options), outputs.
# kind: INT / FLOAT / STRING / BOOLEAN / COMBO (options = allowed values) / FILE (a model or input file list).
CORE_NODES: dict[str, dict[str, Any]] = {
    "LoadImage": {"inputs": [], "widgets": [("image", "FILE", {"upload": "image"})], "outputs": [("IMAGE", "IMAGE"), ("MASK", "MASK")]},
    "LoadVideo": {"inputs": [], "widgets": [("file", "FILE", {"upload": "video"})], "outputs": [("VIDEO", "VIDEO")]},
    "GetVideoComponents": {"inputs": [("video", "VIDEO")], "widgets": [],
                           "outputs": [("images", "IMAGE"), ("audio", "AUDIO"), ("fps", "FLOAT")]},
    "CLIPLoader": {"inputs": [], "widgets": [
        ("clip_name", "FILE", {}),
        ("type", "COMBO", {"options": ["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart",
                                       "cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image",
                                       "hunyuan_image"]}),
        ("device", "COMBO", {"options": ["default", "cpu"]})], "outputs": [("CLIP", "CLIP")]},
    "CLIPTextEncode": {"inputs": [("clip", "CLIP")], "widgets": [("text", "STRING", {"multiline": True})],
                       "outputs": [("CONDITIONING", "CONDITIONING")]},
    "CLIPVisionLoader": {"inputs": [], "widgets": [("clip_name", "FILE", {})], "outputs": [("CLIP_VISION", "CLIP_VISION")]},
    "CLIPVisionEncode": {"inputs": [("clip_vision", "CLIP_VISION"), ("image", "IMAGE")],
                         "widgets": [("crop", "COMBO", {"options": ["center", "none"]})],
                         "outputs": [("CLIP_VISION_OUTPUT", "CLIP_VISION_OUTPUT")]},
    "ImageBatch": {"inputs": [("image1", "IMAGE"), ("image2", "IMAGE")], "widgets": [], "outputs": [("IMAGE", "IMAGE")]},
    "ImageFromBatch": {"inputs": [("image", "IMAGE")], "widgets": [("batch_index", "INT", {"min": 0, "max": 4095}),
                                                                  ("length", "INT", {"min": 1, "max": 4096})],
                       "outputs": [("IMAGE", "IMAGE")]},
    "SaveAnimatedWEBP": {"inputs": [("images", "IMAGE")], "widgets": [
        ("filename_prefix", "STRING", {}), ("fps", "FLOAT", {"min": 0.01, "max": 1000.0}), ("lossless", "BOOLEAN", {}),
        ("quality", "INT", {"min": 0, "max": 100}), ("method", "COMBO", {"options": ["default", "fastest", "slowest"]})],
        "outputs": []},
    "PreviewImage": {"inputs": [("images", "IMAGE")], "widgets": [], "outputs": []},
}
# Nodes the frontend itself defines (not in /object_info, never in the API format: they do not run).
FRONTEND_NODES: dict[str, dict[str, Any]] = {
    "MarkdownNote": {"inputs": [], "widgets": [("text", "STRING", {"multiline": True})], "outputs": []},
}
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")


def pack_node_spec(cls) -> dict[str, Any]:
    """Sockets, widgets and outputs of one of the pack's node classes, from its INPUT_TYPES."""
    spec = cls.INPUT_TYPES()
    inputs, widgets = [], []
    for group in ("required", "optional"):
        for name, value in spec.get(group, {}).items():
            kind, opts = value[0], (value[1] if len(value) > 1 else {})
            if isinstance(kind, list):
                widgets.append((name, "COMBO", {"options": kind, **opts}))
            elif kind in WIDGET_TYPES and not opts.get("forceInput"):
                widgets.append((name, kind, opts))
            else:
                inputs.append((name, kind))
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    return {"inputs": inputs, "widgets": widgets, "outputs": list(zip(names, cls.RETURN_TYPES))}


def node_specs() -> dict[str, dict[str, Any]]:
    import nodes

    specs = dict(CORE_NODES, **FRONTEND_NODES)
    specs.update({name: pack_node_spec(cls) for name, cls in nodes.NODE_CLASS_MAPPINGS.items()})
    return specs


def widget_values(spec: dict[str, Any], values: dict[str, Any]) -> list[Any]:
    """``widgets_values`` as the frontend saves them (extra entries after seed and upload combos)."""
    out = []
    for name, kind, opts in spec["widgets"]:
        if name not in values:
            raise KeyError(f"no value for widget {name}")
        out.append(values[name])
        if opts.get("control_after_generate"):
            out.append(values.get(name + "__control", "fixed"))
        if opts.get("upload"):
            out.append("image")  # the upload button's value (the frontend saves "image" for image and video uploads)
    return out


@dataclass
class Node:
    id: int
    type: str
    values: dict[str, Any]
    links: dict[str, tuple["Node", int]]
    col: int
    row: float
    title: str | None = None
    mode: int = 0
    size: tuple[int, int] | None = None


@dataclass
class Graph:
    name: str
    title: str
    description: str
    nodes: list[Node] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)

    def add(self, type_: str, col: int, row: float, values: dict | None = None, title: str | None = None, mode: int = 0,
            size: tuple[int, int] | None = None, **links: tuple[Node, int]) -> Node:
        node = Node(len(self.nodes) + 1, type_, dict(values or {}), links, col, row, title, mode, size)
        self.nodes.append(node)
        return node


COL_X = [0, 380, 760, 1140, 1520, 1980]


def _size(spec: dict, node: Node) -> list[int]:
    if node.size:
        return list(node.size)
    n_slots = max(len(spec["inputs"]), len(spec["outputs"]), 1)
    h = 16 + 20 * n_slots  # litegraph: 20 px a slot row, 24 px a widget row (title bar not included)
    for _name, kind, opts in spec["widgets"]:
        h += 84 if opts.get("multiline") else 24
        if opts.get("control_after_generate"):
            h += 24
        if opts.get("upload"):
            h += 24 + (260 if opts["upload"] == "image" else 0)
    return [340, h]


def to_ui(graph: Graph, specs: dict) -> dict[str, Any]:
    links: list[list] = []
    out_links: dict[tuple[int, int], list[int]] = {}
    in_link: dict[tuple[int, str], int] = {}
    for node in graph.nodes:
        spec = specs[node.type]
        names = [n for n, _ in spec["inputs"]]
        for name, (src, slot) in node.links.items():
            if name not in names:
                raise KeyError(f"{node.type} has no input {name}")
            link_id = len(links) + 1
            typ = specs[src.type]["outputs"][slot][1]
            links.append([link_id, src.id, slot, node.id, names.index(name), typ])
            out_links.setdefault((src.id, slot), []).append(link_id)
            in_link[(node.id, name)] = link_id
    order = {n.id: i for i, n in enumerate(_topo(graph.nodes))}
    ui_nodes = []
    for node in graph.nodes:
        spec = specs[node.type]
        ui = {
            "id": node.id,
            "type": node.type,
            "pos": [COL_X[node.col], round(node.row)],
            "size": _size(spec, node),
            "flags": {},
            "order": order[node.id],
            "mode": node.mode,
            "inputs": [{"name": n, "type": t, "link": in_link.get((node.id, n))} for n, t in spec["inputs"]],
            "outputs": [{"name": n, "type": t, "links": out_links.get((node.id, i), []), "slot_index": i}
                        for i, (n, t) in enumerate(spec["outputs"])],
            "properties": {"Node name for S&R": node.type},
            "widgets_values": widget_values(spec, node.values),
        }
        models = node_models(node)
        if models:
            ui["properties"]["models"] = [m.metadata() for m in models]
        if node.title:
            ui["title"] = node.title
        if node.type in FRONTEND_NODES:
            ui["color"], ui["bgcolor"] = "#432", "#653"  # the frontend's note colours
        ui_nodes.append(ui)
    workflow = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "one4d/" + graph.name)),
        "revision": 0,
        "last_node_id": len(graph.nodes),
        "last_link_id": len(links),
        "nodes": ui_nodes,
        "links": links,
        "groups": graph.groups,
        "config": {},
        "extra": {"ds": {"scale": 0.7, "offset": [40, 40]}, "one4d": {"title": graph.title, "description": graph.description}},
        "version": 0.4,
    }
    active = [m for n in graph.nodes if n.mode != 4 for m in node_models(n)]
    if active:
        workflow["models"] = [m.metadata() for m in dict.fromkeys(active)]
    return workflow


def node_models(node: Node) -> list[ModelFile]:
    """The known model files a node's widgets name (its ``properties.models``)."""
    return [m for value in node.values.values() for m in MODEL_FILES if m.name == value]


def _topo(nodes: list[Node]) -> list[Node]:
    done: list[Node] = []
    seen: set[int] = set()

    def visit(n: Node) -> None:
        if n.id in seen:
            return
        seen.add(n.id)
        for src, _ in n.links.values():
            visit(src)
        done.append(n)

    for n in nodes:
        visit(n)
    return done


def to_api(graph: Graph, specs: dict) -> dict[str, Any]:
    """The API-format twin: bypassed nodes removed, their same-type input passed through."""
    def resolve(src: Node, slot: int) -> tuple[Node, int]:
        while src.mode == 4:  # bypass: the first input of the output's type takes its place
            typ = specs[src.type]["outputs"][slot][1]
            name = next(n for n, t in specs[src.type]["inputs"] if t == typ)
            src, slot = src.links[name]
        return src, slot

    api = {}
    for node in graph.nodes:
        if node.mode == 4 or node.type in FRONTEND_NODES:
            continue
        spec = specs[node.type]
        inputs: dict[str, Any] = {}
        for name, _kind, _opts in spec["widgets"]:
            inputs[name] = node.values[name]
        for name, (src, slot) in node.links.items():
            s, k = resolve(src, slot)
            inputs[name] = [str(s.id), k]
        api[str(node.id)] = {"class_type": node.type, "inputs": inputs,
                             "_meta": {"title": node.title or _display(node.type)}}
    return api


def _display(type_: str) -> str:
    try:
        import nodes

        return nodes.NODE_DISPLAY_NAME_MAPPINGS.get(type_, type_)
    except ImportError:
        return type_


# ---------------------------------------------------------------------------------------------------------
# the workflows
# ---------------------------------------------------------------------------------------------------------

def _backbone(g: Graph, setup: WanSetup | None, row: float = 0):
    """Load Backbone + Apply Pointmap LoRA: the embedded model (``setup`` None) or a Wan setup's files."""
    load = g.add("One4DLoadBackbone", 0, row, {
        "dit_name": setup.dit.name if setup else EMBEDDED, "vae_name": VAE.name if setup else EMBEDDED,
        "dtype": "auto", "weight_storage": setup.weight_storage if setup else "auto", "attention": "sdpa",
        "memory": setup.memory if setup else "auto"})
    return g.add("One4DApplyPointmapLoRA", 0, row + 250, {"one4d_weights": setup.one4d.name if setup else EMBEDDED},
                 model=(load, 0))


def _text(g: Graph, prompt: str):
    clip = g.add("CLIPLoader", 0, 380, {"clip_name": UMT5.name, "type": "wan", "device": "default"})
    pos = g.add("CLIPTextEncode", 0, 540, {"text": prompt}, title="Positive prompt (umT5)", clip=(clip, 0))
    neg = g.add("CLIPTextEncode", 0, 720, {"text": NEGATIVE}, title="Negative prompt (umT5)", clip=(clip, 0))
    return pos, neg


def _clip_vision(g: Graph, image: tuple[Node, int], row: float):
    loader = g.add("CLIPVisionLoader", 0, 900, {"clip_name": CLIP_VISION.name})
    return g.add("CLIPVisionEncode", 1, row, {"crop": "none"}, clip_vision=(loader, 0), image=image)


def note_text(setup: WanSetup, files: list[ModelFile]) -> str:
    """The workflow's note: the model files (folder, source), the One4D weights, the memory settings."""
    lines = [f"## {setup.label}: model files", "",
             "Put each file in its folder under ComfyUI/models (the missing-models dialog links the downloads):", ""]
    for f in files:
        if f.directory != "one4d":
            lines.append(f"- `{f.directory}/{f.name}`: [{f.source}]({f.url})")
    lines += [f"- `one4d/{setup.one4d.name}`: the One4D weights for this backbone (both modality LoRAs and the "
              "control links). **No such file is published**: the paper's authors released no weights, and "
              "`one4d train` trains only the pack's small embedded model today; a trainer for the Wan backbones "
              "is planned, not built. A file trained for this backbone goes in models/one4d "
              f"([how it is made]({ONE4D_WEIGHTS_DOC})).", "",
              f"{setup.fits}", "",
              "Run the embedded example (one4d_embedded_cpu) to see the whole graph work without any download."]
    return "\n".join(lines)


def _note(g: Graph, setup: WanSetup) -> None:
    """The note node, added last (node ids of the rest stay as they are), once the graph's files are known."""
    named = {v for n in g.nodes if n.mode != 4 for v in n.values.values() if isinstance(v, str)}
    files = [f for f in MODEL_FILES if f.name in named]
    # below the cameras and the Save 4D node, inside the picture's frame (a taller graph would shrink its text)
    g.add("MarkdownNote", 4, 790, {"text": note_text(setup, files)}, title="Model files", size=(900, 330))


def _tail(g: Graph, model: Node, cond: Node, prefix: str, seed: int, defaults: ModelDefaults, fps: float, preview_images: bool):
    """Sample with the model kind's declared defaults, decode, recover cameras, save."""
    sample = g.add("One4DSample", 3, 0, {"seed": seed, "seed__control": "fixed", "steps": defaults.steps,
                                          "guidance": defaults.guidance, "shift": defaults.shift, "scheduler": defaults.scheduler},
                   model=(model, 0), conditioning=(cond, 0))
    decode = g.add("One4DDecode", 3, 300, {}, model=(model, 0), rgb_latent=(sample, 0), pointmap_latent=(sample, 1))
    cams = g.add("One4DCameras", 4, 0, {"shared_focal": True, "refine_iterations": 100, "remove_flying_points": True},
                 pointmap=(decode, 1))
    g.add("One4DSave4D", 5, 0, {"filename_prefix": prefix, "save_ply": True, "save_glb": True, "save_npz": True,
                                "save_cameras_json": True, "save_colmap": False, "save_depth_png": False,
                                "max_points": 500_000, "fps": fps}, size=(440, 720), pointmap=(cams, 2))
    if preview_images:
        g.add("PreviewImage", 3, 470, {}, title="RGB frames", size=(340, 300), images=(decode, 0))
        g.add("PreviewImage", 4, 300, {}, title="Depth (per-frame camera)", size=(340, 300), images=(cams, 1))
    else:
        g.add("SaveAnimatedWEBP", 3, 470, {"filename_prefix": prefix + "_rgb", "fps": fps, "lossless": False, "quality": 90,
                                            "method": "default"}, title="Save RGB video", size=(340, 420), images=(decode, 0))
        g.add("SaveAnimatedWEBP", 4, 300, {"filename_prefix": prefix + "_depth", "fps": fps, "lossless": False, "quality": 90,
                                            "method": "default"}, title="Save depth video", size=(340, 420), images=(cams, 1))


def _cond_values(size: ModelDefaults | WanSetup, indices: str, prompt: str = "", negative: str = "") -> dict:
    """Build Conditioning widgets at the clip size of a model kind (its defaults) or of a Wan setup."""
    frames = size.defaults.frames if isinstance(size, WanSetup) else size.frames
    return {"width": size.width, "height": size.height, "length": frames, "frame_indices": indices,
            "prompt": prompt, "negative_prompt": negative, "fit": "crop"}


def embedded_image_to_4d() -> Graph:
    g = Graph("one4d_embedded_cpu", "One4D embedded model: image to 4D on a CPU",
              "The pack's own small One4D model (17 frames, 64x64): no downloads, under a minute on a CPU. The sample image "
              "is copied into ComfyUI's input folder when the pack loads.")
    model = _backbone(g, None)
    image = g.add("LoadImage", 1, 0, {"image": "one4d_sample.png"}, size=(340, 360))
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(EMBEDDED_DEFAULTS, "first", SAMPLE_CAPTION), size=(360, 420),
                 model=(model, 0), images=(image, 0))
    _tail(g, model, cond, "one4d/embedded", seed=0, defaults=EMBEDDED_DEFAULTS, fps=8.0, preview_images=True)
    return g


def image_to_4d(setup: WanSetup = WAN_14B) -> Graph:
    d = setup.defaults
    g = Graph(f"one4d_image_to_4d_{setup.key}", f"One4D image to 4D ({setup.label})",
              f"One image becomes a {d.frames}-frame RGB video with its pointmaps, cameras and depth.")
    model = _backbone(g, setup)
    pos, neg = _text(g, "the camera slowly orbits around the scene, natural motion, high detail")
    image = g.add("LoadImage", 1, 0, {"image": "example.png"}, size=(340, 360))
    vision = _clip_vision(g, (image, 0), 400)
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(setup, "first"), size=(360, 420), model=(model, 0),
                 images=(image, 0), positive=(pos, 0), negative=(neg, 0), clip_vision_output=(vision, 0))
    _tail(g, model, cond, "one4d/image_to_4d", seed=42, defaults=d, fps=16.0, preview_images=False)
    _note(g, setup)
    return g


def sparse_to_4d(setup: WanSetup = WAN_14B) -> Graph:
    d = setup.defaults
    last = d.frames - 1
    mid = last // 2
    g = Graph(f"one4d_sparse_frames_to_4d_{setup.key}", f"One4D sparse frames to 4D ({setup.label})",
              f"Three photos placed at frames 0, {mid} and {last} of a {d.frames}-frame video: One4D fills in the rest "
              "and reconstructs it.")
    model = _backbone(g, setup)
    pos, neg = _text(g, "a smooth camera move through the scene")
    a = g.add("LoadImage", 1, 0, {"image": "frame_000.png"}, title="Frame 0", size=(340, 330))
    b = g.add("LoadImage", 1, 340, {"image": f"frame_{mid:03d}.png"}, title=f"Frame {mid}", size=(340, 330))
    c = g.add("LoadImage", 1, 680, {"image": f"frame_{last:03d}.png"}, title=f"Frame {last}", size=(340, 330))
    ab = g.add("ImageBatch", 2, 470, {}, image1=(a, 0), image2=(b, 0))
    abc = g.add("ImageBatch", 2, 570, {}, image1=(ab, 0), image2=(c, 0))
    vision = _clip_vision(g, (a, 0), 1030)
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(setup, f"0,{mid},{last}"), size=(360, 420),
                 model=(model, 0), images=(abc, 0), positive=(pos, 0), negative=(neg, 0), clip_vision_output=(vision, 0))
    _tail(g, model, cond, "one4d/sparse_to_4d", seed=42, defaults=d, fps=16.0, preview_images=False)
    _note(g, setup)
    return g


def video_to_4d(setup: WanSetup = WAN_14B) -> Graph:
    d = setup.defaults
    g = Graph(f"one4d_video_to_4d_{setup.key}", f"One4D video to 4D reconstruction ({setup.label})",
              f"All {d.frames} frames of a video are observed: One4D returns their pointmaps, cameras and depth.")
    model = _backbone(g, setup)
    pos, neg = _text(g, "")
    video = g.add("LoadVideo", 1, 0, {"file": "your_video.mp4"}, size=(340, 360))
    parts = g.add("GetVideoComponents", 1, 380, {}, video=(video, 0))
    first = g.add("ImageFromBatch", 1, 500, {"batch_index": 0, "length": 1}, title="First frame", image=(parts, 0))
    vision = _clip_vision(g, (first, 0), 640)
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(setup, "all"), size=(360, 420), model=(model, 0),
                 images=(parts, 0), positive=(pos, 0), negative=(neg, 0), clip_vision_output=(vision, 0))
    _tail(g, model, cond, "one4d/video_to_4d", seed=42, defaults=d, fps=16.0, preview_images=False)
    _note(g, setup)
    return g


def text_to_4d(setup: WanSetup = WAN_14B) -> Graph:
    g = Graph(f"one4d_text_to_4d_{setup.key}", f"One4D text to 4D ({setup.label})",
              "A prompt alone becomes an RGB video with pointmaps, cameras and depth. The community LoRA node is bypassed: "
              f"pick a Wan2.1 {setup.label.split()[1]} LoRA and press Ctrl+B on it to style the RGB branch.")
    load = g.add("One4DLoadBackbone", 0, 0, {"dit_name": setup.dit.name, "vae_name": VAE.name, "dtype": "auto",
                                              "weight_storage": setup.weight_storage, "attention": "sdpa",
                                              "memory": setup.memory})
    apply = g.add("One4DApplyPointmapLoRA", 0, 250, {"one4d_weights": setup.one4d.name}, model=(load, 0))
    lora = g.add("One4DApplyRGBLoRA", 1, 0, {"lora_name": setup.lora, "strength": 1.0}, mode=4,
                 title="One4D Apply RGB LoRA (bypassed: pick a LoRA, Ctrl+B)", model=(apply, 0))
    pos, neg = _text(g, "a red vintage car drives along a coastal road at sunset, the camera tracks alongside")
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(setup, "none"), size=(360, 420), model=(lora, 0),
                 positive=(pos, 0), negative=(neg, 0))
    _tail(g, lora, cond, "one4d/text_to_4d", seed=42, defaults=setup.defaults, fps=16.0, preview_images=False)
    _note(g, setup)
    return g


def _for(make, setup: WanSetup):
    def build() -> Graph:
        return make(setup)

    build.__name__ = f"{make.__name__}_{setup.key}"
    return build


WORKFLOWS = [embedded_image_to_4d] + [_for(make, setup) for setup in WAN_SETUPS
                                      for make in (image_to_4d, sparse_to_4d, video_to_4d, text_to_4d)]


def build_all() -> dict[str, tuple[dict, dict]]:
    specs = node_specs()
    out = {}
    for make in WORKFLOWS:
        g = make()
        out[g.name] = (to_ui(g, specs), to_api(g, specs))
    return out


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, (ui, api) in build_all().items():
        (OUT / f"{name}.json").write_text(json.dumps(ui, indent=1) + "\n")
        (OUT / "api").mkdir(exist_ok=True)
        (OUT / "api" / f"{name}.json").write_text(json.dumps(api, indent=1) + "\n")
        print(f"wrote example_workflows/{name}.json and api/{name}.json")


if __name__ == "__main__":
    main()
