"""`one4d train encode --data KIND:ROOT`: clips cut from real-layout sequences on disk go through the latent cache
into One4D training on a real-layout Wan folder; the same clips come back on a resumed encode."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("transformers", reason="training on Wan files needs transformers: pip install 'comfyui-one4d[train]'")
from clip_factory import intrinsics, plane_cameras, plane_depth, random_rgb  # noqa: E402
from wan_folder import write_wan_model_folder  # noqa: E402

from one4d.backbone import WAN21  # noqa: E402
from one4d.cli import main  # noqa: E402
from one4d.data.clip_sampling import ClipSpec  # noqa: E402
from one4d.errors import One4DInputError  # noqa: E402
from one4d.training.cache import LatentCache  # noqa: E402
from one4d.training.real_data import DatasetClips, parse_data  # noqa: E402

F, H, W = 9, 32, 48


def _clip_folder(root, seed: int) -> None:
    """A clip folder (docs/data.md) of a camera moving past a tilted wall: npy depth in metres, PNG frames."""
    K, c2w = intrinsics(H, W), plane_cameras(F)
    depth, rgb = plane_depth(K, c2w, H, W), random_rgb(F, H, W, seed)
    (root / "depth").mkdir(parents=True)
    (root / "rgb").mkdir()
    for i in range(F):
        np.save(root / "depth" / f"{i:04d}.npy", depth[i].astype(np.float32))
        assert cv2.imwrite(str(root / "rgb" / f"{i:04d}.png"), rgb[i][..., ::-1])
    (root / "clip.json").write_text(json.dumps({"caption": "a red room", "depth_units": "m", "K": K.tolist(), "c2w": c2w.tolist()}))


def _dataset(tmp_path):
    for s in range(2):
        _clip_folder(tmp_path / "data" / f"seq{s}", s)
    return tmp_path / "data"


def test_dataset_clips_are_cut_to_the_model_and_reproducible(tmp_path):
    data = [("folder", _dataset(tmp_path))]
    clips = DatasetClips(data, ClipSpec(5, 16, 32, 1, "random"), WAN21, per_sequence=3, seed=7)
    assert len(clips) == 6
    a, b = clips[4], clips[4]
    assert a.rgb.shape == (5, 16, 32, 3) and a.pointmap.shape == (5, 16, 32, 3) and a.caption == "a red room"
    assert np.array_equal(a.rgb, b.rgb) and np.abs(a.pointmap).max() <= 1.0
    with pytest.raises(One4DInputError, match="write KIND:ROOT"):
        parse_data(["tartanair"])
    with pytest.raises(One4DInputError, match="no sequences found"):
        DatasetClips([("vkitti2", tmp_path / "data")], ClipSpec(5, 16, 32), WAN21, 1)


def test_real_clips_train_one4d_on_a_wan_folder(tmp_path):
    model = write_wan_model_folder(tmp_path, one4d=False)
    work = str(tmp_path / "w")
    assert main(["train", "encode", "--work", work, "--model", str(model), "--data", f"folder:{_dataset(tmp_path)}",
                 "--clips-per-sequence", "2", "--clip-frames", "5", "--clip-height", "16", "--clip-width", "32", "--shard-size", "3"]) == 0
    cache = LatentCache(tmp_path / "w")
    assert len(cache) == 4 and len(cache.manifest["shards"]) == 2 and cache.rows([0])["rgb"].shape == (1, 16, 2, 2, 4)
    assert main(["train", "one4d", "--work", work, "--model", str(model), "--one4d-steps", "2", "--batch", "2", "--rank", "4",
                 "--validate-scenes", "0"]) == 0
    assert (tmp_path / "w" / "one4d.safetensors").is_file()


def test_validation_metrics_on_held_out_real_clips(tmp_path):
    """--validate-data: every checkpoint logs the evaluation metrics of the model as it is then, on held-out
    clips (from each sequence's first frame, center-cropped to the training clip); the logged figures are those
    of the saved weights, measured again here."""
    model = write_wan_model_folder(tmp_path, one4d=False)
    work = tmp_path / "w"
    clip = ["--clip-frames", "5", "--clip-height", "16", "--clip-width", "32"]
    assert main(["train", "encode", "--work", str(work), "--model", str(model), "--data", f"folder:{_dataset(tmp_path)}",
                 "--clips-per-sequence", "1", *clip]) == 0
    held_out = tmp_path / "held_out"
    _clip_folder(held_out / "seqA", 5)
    _clip_folder(held_out / "seqB", 6)
    assert main(["train", "one4d", "--work", str(work), "--model", str(model), "--one4d-steps", "2", "--batch", "2", "--rank", "4",
                 "--validate-scenes", "0", "--validate-data", f"folder:{held_out}", "--validate-clips", "2",
                 "--validate-steps", "2", "--validate-modes", "single,full", *clip]) == 0
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    (check,) = [r for r in records if r["stage"] == "validation"]
    assert check["step"] == 2
    for key in ("single_depth_absrel", "single_delta_1_25", "single_ate", "single_rgb_psnr", "full_depth_absrel", "full_rgb_psnr"):
        assert np.isfinite(check[key]), key
    # the same figures, measured independently on the written model folder
    from one4d.data.clip_sampling import sample_clip
    from one4d.data.datasets import open_sequence
    from one4d.evaluation.suite import dataset_clip, mean_rows, scene_rows
    from one4d.models import ModelFolder
    from one4d.pipeline import One4DPipeline
    from one4d.sampling import SamplerSettings

    folder = ModelFolder.open(work)
    pipe = One4DPipeline.from_folder(folder)
    spec = ClipSpec(5, 16, 32, 1, "center")
    clips = [dataset_clip(sample_clip(open_sequence("folder", held_out / s), spec, WAN21.time_stride, WAN21.size_multiple, None))
             for s in ("seqA", "seqB")]
    d = folder.defaults
    rows = scene_rows(pipe, clips, ("full",), SamplerSettings(2, d.guidance, d.shift, d.scheduler, seed=0), with_base=False)
    mean = mean_rows(rows["full"])
    assert abs(mean["depth_absrel"] - check["full_depth_absrel"]) < 1e-4 and abs(mean["rgb_psnr"] - check["full_rgb_psnr"]) < 1e-3
