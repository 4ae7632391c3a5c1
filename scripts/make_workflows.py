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

Model files named (what users have in their ComfyUI model folders):
  diffusion_models/Wan2.1-Fun-V1_1-InP-14B_fp8_e4m3fn.safetensors   Wan2.1-Fun V1.1 14B InP (fp8)
  vae/wan_2.1_vae.safetensors
  text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors              (CLIPLoader type wan)
  clip_vision/clip_vision_h.safetensors
  one4d/one4d_wan2.1_fun_v1.1_14b_inp.safetensors                    One4D weights for that backbone
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
from one4d.defaults import WAN_FUN_14B, ModelDefaults  # noqa: E402

EMBEDDED = "embedded (CPU demo)"
DIT_14B = "Wan2.1-Fun-V1_1-InP-14B_fp8_e4m3fn.safetensors"
VAE = "wan_2.1_vae.safetensors"
UMT5 = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
CLIP_VISION = "clip_vision_h.safetensors"
ONE4D_14B = "one4d_wan2.1_fun_v1.1_14b_inp.safetensors"
COMMUNITY_LORA = "your_wan2.1_14b_lora.safetensors"
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

    specs = dict(CORE_NODES)
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
        if node.title:
            ui["title"] = node.title
        ui_nodes.append(ui)
    return {
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
        if node.mode == 4:
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

def _backbone(g: Graph, embedded: bool, row: float = 0):
    load = g.add("One4DLoadBackbone", 0, row, {
        "dit_name": EMBEDDED if embedded else DIT_14B, "vae_name": EMBEDDED if embedded else VAE,
        "dtype": "auto", "weight_storage": "auto", "attention": "sdpa", "memory": "auto"})
    apply = g.add("One4DApplyPointmapLoRA", 0, row + 250, {"one4d_weights": EMBEDDED if embedded else ONE4D_14B}, model=(load, 0))
    return apply


def _text(g: Graph, prompt: str):
    clip = g.add("CLIPLoader", 0, 380, {"clip_name": UMT5, "type": "wan", "device": "default"})
    pos = g.add("CLIPTextEncode", 0, 540, {"text": prompt}, title="Positive prompt (umT5)", clip=(clip, 0))
    neg = g.add("CLIPTextEncode", 0, 720, {"text": NEGATIVE}, title="Negative prompt (umT5)", clip=(clip, 0))
    return pos, neg


def _clip_vision(g: Graph, image: tuple[Node, int], row: float):
    loader = g.add("CLIPVisionLoader", 0, 900, {"clip_name": CLIP_VISION})
    return g.add("CLIPVisionEncode", 1, row, {"crop": "none"}, clip_vision=(loader, 0), image=image)


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


def _cond_values(defaults: ModelDefaults, indices: str, prompt: str = "", negative: str = "") -> dict:
    """Build Conditioning widgets at the model kind's clip size."""
    return {"width": defaults.width, "height": defaults.height, "length": defaults.frames, "frame_indices": indices,
            "prompt": prompt, "negative_prompt": negative}


def embedded_image_to_4d() -> Graph:
    g = Graph("one4d_embedded_cpu", "One4D embedded model: image to 4D on a CPU",
              "The pack's own small One4D model (17 frames, 64x64): no downloads, under a minute on a CPU. The sample image "
              "is copied into ComfyUI's input folder when the pack loads.")
    model = _backbone(g, embedded=True)
    image = g.add("LoadImage", 1, 0, {"image": "one4d_sample.png"}, size=(340, 360))
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(EMBEDDED_DEFAULTS, "first", SAMPLE_CAPTION), size=(360, 420),
                 model=(model, 0), images=(image, 0))
    _tail(g, model, cond, "one4d/embedded", seed=0, defaults=EMBEDDED_DEFAULTS, fps=8.0, preview_images=True)
    return g


def image_to_4d() -> Graph:
    g = Graph("one4d_image_to_4d_wan14b", "One4D image to 4D (Wan2.1-Fun 14B InP)",
              "One image becomes an 81-frame RGB video with its pointmaps, cameras and depth.")
    model = _backbone(g, embedded=False)
    pos, neg = _text(g, "the camera slowly orbits around the scene, natural motion, high detail")
    image = g.add("LoadImage", 1, 0, {"image": "example.png"}, size=(340, 360))
    vision = _clip_vision(g, (image, 0), 400)
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(WAN_FUN_14B, "first"), size=(360, 420), model=(model, 0),
                 images=(image, 0), positive=(pos, 0), negative=(neg, 0), clip_vision_output=(vision, 0))
    _tail(g, model, cond, "one4d/image_to_4d", seed=42, defaults=WAN_FUN_14B, fps=16.0, preview_images=False)
    return g


def sparse_to_4d() -> Graph:
    g = Graph("one4d_sparse_frames_to_4d_wan14b", "One4D sparse frames to 4D (Wan2.1-Fun 14B InP)",
              "Three photos placed at frames 0, 40 and 80 of an 81-frame video: One4D fills in the rest and reconstructs it.")
    model = _backbone(g, embedded=False)
    pos, neg = _text(g, "a smooth camera move through the scene")
    a = g.add("LoadImage", 1, 0, {"image": "frame_000.png"}, title="Frame 0", size=(340, 330))
    b = g.add("LoadImage", 1, 340, {"image": "frame_040.png"}, title="Frame 40", size=(340, 330))
    c = g.add("LoadImage", 1, 680, {"image": "frame_080.png"}, title="Frame 80", size=(340, 330))
    ab = g.add("ImageBatch", 2, 470, {}, image1=(a, 0), image2=(b, 0))
    abc = g.add("ImageBatch", 2, 570, {}, image1=(ab, 0), image2=(c, 0))
    vision = _clip_vision(g, (a, 0), 1030)
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(WAN_FUN_14B, "0,40,80"), size=(360, 420), model=(model, 0),
                 images=(abc, 0), positive=(pos, 0), negative=(neg, 0), clip_vision_output=(vision, 0))
    _tail(g, model, cond, "one4d/sparse_to_4d", seed=42, defaults=WAN_FUN_14B, fps=16.0, preview_images=False)
    return g


def video_to_4d() -> Graph:
    g = Graph("one4d_video_to_4d_wan14b", "One4D video to 4D reconstruction (Wan2.1-Fun 14B InP)",
              "All 81 frames of a video are observed: One4D returns their pointmaps, cameras and depth.")
    model = _backbone(g, embedded=False)
    pos, neg = _text(g, "")
    video = g.add("LoadVideo", 1, 0, {"file": "your_video.mp4"}, size=(340, 360))
    parts = g.add("GetVideoComponents", 1, 380, {}, video=(video, 0))
    first = g.add("ImageFromBatch", 1, 500, {"batch_index": 0, "length": 1}, title="First frame", image=(parts, 0))
    vision = _clip_vision(g, (first, 0), 640)
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(WAN_FUN_14B, "all"), size=(360, 420), model=(model, 0),
                 images=(parts, 0), positive=(pos, 0), negative=(neg, 0), clip_vision_output=(vision, 0))
    _tail(g, model, cond, "one4d/video_to_4d", seed=42, defaults=WAN_FUN_14B, fps=16.0, preview_images=False)
    return g


def text_to_4d() -> Graph:
    g = Graph("one4d_text_to_4d_wan14b", "One4D text to 4D (Wan2.1-Fun 14B InP)",
              "A prompt alone becomes an RGB video with pointmaps, cameras and depth. The community LoRA node is bypassed: "
              "pick a Wan2.1 14B LoRA and press Ctrl+B on it to style the RGB branch.")
    load = g.add("One4DLoadBackbone", 0, 0, {"dit_name": DIT_14B, "vae_name": VAE, "dtype": "auto", "weight_storage": "auto",
                                              "attention": "sdpa", "memory": "auto"})
    apply = g.add("One4DApplyPointmapLoRA", 0, 250, {"one4d_weights": ONE4D_14B}, model=(load, 0))
    lora = g.add("One4DApplyRGBLoRA", 1, 0, {"lora_name": COMMUNITY_LORA, "strength": 1.0}, mode=4,
                 title="One4D Apply RGB LoRA (bypassed: pick a LoRA, Ctrl+B)", model=(apply, 0))
    pos, neg = _text(g, "a red vintage car drives along a coastal road at sunset, the camera tracks alongside")
    cond = g.add("One4DBuildConditioning", 2, 0, _cond_values(WAN_FUN_14B, "none"), size=(360, 420), model=(lora, 0),
                 positive=(pos, 0), negative=(neg, 0))
    _tail(g, lora, cond, "one4d/text_to_4d", seed=42, defaults=WAN_FUN_14B, fps=16.0, preview_images=False)
    return g


WORKFLOWS = [embedded_image_to_4d, image_to_4d, sparse_to_4d, video_to_4d, text_to_4d]


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
