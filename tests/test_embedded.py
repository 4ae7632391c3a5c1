"""The shipped embedded model end to end: reconstruction quality, the main job's files, eval's JSON."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import trimesh
from plyfile import PlyData

from one4d.cli import main
from one4d.data import HELDOUT_SEEDS, TRAIN_SEEDS, render_scene
from one4d.defaults import EMBEDDED
from one4d.errors import One4DInputError
from one4d.evaluation.suite import evaluate_scene
from one4d.models import EMBEDDED_DIR, ModelFolder, read_component_config
from one4d.pipeline import One4DPipeline
from one4d.sampling import SamplerSettings
from one4d.text import HashTextEncoder
from one4d.training import recipe

SAMPLE = str(EMBEDDED_DIR.parent / "sample.png")


@pytest.fixture(scope="module")
def pipe() -> One4DPipeline:
    return One4DPipeline.from_folder("embedded")


def test_shipped_files_are_small_and_self_describing():
    folder = ModelFolder.open("embedded")
    files = [folder.file(n) for n in ("vae", "dit", "one4d")]
    assert all(f.is_file() for f in files)
    assert sum(f.stat().st_size for f in files) <= 100 * 2**20  # the embedded-model issue's budget
    assert read_component_config(folder.file("dit")) == json.loads(json.dumps(recipe.dit_config_for(folder.geometry)))
    assert folder.kind == "embedded" and folder.defaults == EMBEDDED
    assert json.loads((EMBEDDED_DIR / "model.json").read_text()) == recipe.MODEL_LAYOUT


def test_hash_text_encoder_is_deterministic_and_padded():
    enc = HashTextEncoder(64, recipe.TEXT_LENGTH)
    a, b = enc("A red sphere"), enc("a red  sphere!")
    assert a.shape == (1, recipe.TEXT_LENGTH, 64) and torch.equal(a, b)
    assert a[0, 3:].abs().max() == 0 and a[0, :3].abs().min() > 0
    assert not torch.equal(enc("a blue sphere"), a)
    assert enc("").abs().max() == 0


def test_full_video_reconstruction_beats_baselines_and_keeps_rgb(pipe):
    """Held-out full-video reconstruction: depth far better than the untrained model, better than a constant
    depth map, and RGB within 0.5 dB of the base model alone. (The issue's AbsRel <= 0.10 target is not
    reached by the shipped model; docs/embedded.md has the measured figures.)"""
    from one4d.evaluation.suite import constant_depth_metrics

    rows, const = [], []
    for index in (0, 1):
        assert HELDOUT_SEEDS[index] not in TRAIN_SEEDS
        scene = render_scene(HELDOUT_SEEDS[index])
        rows.append(evaluate_scene(pipe, scene, "full", SamplerSettings(steps=20, guidance=EMBEDDED.guidance, seed=0)))
        const.append(constant_depth_metrics(scene)["depth_absrel"])
    absrel = np.mean([r["depth_absrel"] for r in rows])
    delta = np.mean([r["delta_1_25"] for r in rows])
    assert absrel < 0.45 and absrel < np.mean(const), (absrel, const)
    assert delta > 0.3, delta
    for r in rows:
        assert abs(r["rgb_psnr"] - r["base_rgb_psnr"]) < 0.5, r


def test_one4d_run_writes_files_that_other_readers_open(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--image", SAMPLE, "--out", str(out), "--steps", "8"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["rgb.mp4", "pointmaps.npz", "pointcloud.ply", "cameras.json", "preview.png"])
    npz = np.load(out / "pointmaps.npz")
    assert npz["points"].shape == (17, 64, 64, 3) and npz["K"].shape == (17, 3, 3)
    np.testing.assert_allclose(npz["c2w"][0], np.eye(4), atol=1e-5)
    ply = PlyData.read(str(out / "pointcloud.ply"))
    assert ply["vertex"].count > 1000 and {"red", "green", "blue"} <= {p.name for p in ply["vertex"].properties}
    cloud = trimesh.load(out / "pointcloud.ply")
    assert len(cloud.vertices) == ply["vertex"].count
    cap = cv2.VideoCapture(str(out / "rgb.mp4"))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 17
    cams = json.loads((out / "cameras.json").read_text())
    assert len(cams["frames"]) == 17
    sheet = cv2.imread(str(out / "preview.png"))
    assert sheet is not None and sheet.shape == (4 * 68 * 3, 4 * 68 * 3, 3)  # 4 frames x (input, RGB, depth, cloud)


def _first_frame(folder) -> np.ndarray:
    ok, frame = cv2.VideoCapture(str(folder / "rgb.mp4")).read()
    assert ok
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255


def test_a_given_photo_comes_back_sharper_with_its_latents_refined(tmp_path, capsys):
    pytest.importorskip("skimage", reason="needs scikit-image: pip install 'comfyui-one4d[train]'")
    from one4d.data.media import read_image
    from one4d.data.photos import photo_files
    from one4d.evaluation.suite import psnr

    chelsea = photo_files("skimage", "heldout")[1]
    assert main(["run", "--image", str(chelsea), "--out", str(tmp_path / "on"), "--steps", "4"]) == 0
    assert main(["run", "--image", str(chelsea), "--out", str(tmp_path / "off"), "--steps", "4", "--refine-steps", "0"]) == 0
    photo = read_image(chelsea, 64, 64)
    on, off = psnr(_first_frame(tmp_path / "on"), photo), psnr(_first_frame(tmp_path / "off"), photo)
    assert on > off + 0.5, (on, off)  # measured 27.3 against 26.2 dB (through the mp4)
    assert main(["run", "--image", str(chelsea), "--out", str(tmp_path / "bad"), "--refine-steps", "-1"]) == 2
    assert "--refine-steps -1" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_failed_run_leaves_no_partial_output(tmp_path, monkeypatch):
    """A writer failing after others succeeded leaves neither their files nor the staging folder, and a
    previous complete run in the same folder stays as it was."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "rgb.mp4").write_bytes(b"previous run")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("one4d.export.result_folder.export_ply", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["run", "--text", "a red sphere", "--out", str(out), "--steps", "2"])
    assert [p.name for p in out.iterdir()] == ["rgb.mp4"] and (out / "rgb.mp4").read_bytes() == b"previous run"


def test_bad_run_inputs_give_clear_errors(tmp_path, capsys):
    assert main(["run", "--image", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["run", "--frames", SAMPLE, SAMPLE, "--indices", "0", "--out", str(tmp_path / "o")]) == 2
    assert "2 image(s)" in capsys.readouterr().err


def test_eval_json_schema(capsys):
    assert main(["eval", "--json", "--scenes", "2", "--steps", "2", "--modes", "full,text", "--photos", ""]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"full", "text", "stderr", "scenes", "seeds", "per_scene", "vae"} and doc["scenes"] == 2
    assert len(doc["seeds"]) == 2 and len(doc["per_scene"]["full"]) == 2
    assert doc["full"]["depth_absrel"] == pytest.approx(sum(r["depth_absrel"] for r in doc["per_scene"]["full"]) / 2)
    keys = {"depth_absrel", "delta_1_25", "depth_absrel_frame0", "delta_1_25_frame0", "ate", "rpe_trans", "rpe_rot_deg",
            "rgb_psnr", "base_rgb_psnr"}
    assert set(doc["full"]) == keys and set(doc["text"]) == keys and set(doc["stderr"]["full"]) == keys
    assert doc["text"]["rgb_psnr"] is None and doc["full"]["rgb_psnr"] > 5
    assert doc["stderr"]["full"]["depth_absrel"] > 0 and doc["stderr"]["text"]["rgb_psnr"] is None
    assert doc["full"]["depth_absrel_frame0"] != doc["full"]["depth_absrel"]
    assert set(doc["vae"]) == {"rgb_psnr", "pointmap_psnr", "pointmap_depth_absrel"}
    assert main(["eval", "--json", "--scenes", "1", "--steps", "1", "--modes", "text", "--no-vae", "--photos", ""]) == 0
    assert "vae" not in json.loads(capsys.readouterr().out)


def test_standard_error_is_the_spread_of_the_mean():
    from one4d.evaluation.suite import stderr_rows

    rows = [{"a": 1.0, "b": None}, {"a": 3.0, "b": None}, {"a": 5.0, "b": 2.0}]
    assert stderr_rows(rows) == {"a": pytest.approx(2.0 / np.sqrt(3)), "b": None}


def test_eval_and_run_take_a_model_folder(tmp_path, capsys):
    """``--model FOLDER`` evaluates the weights in that folder (here: the shipped base with untrained
    adapters, which must score exactly like the untrained baseline), and a wrong folder is named."""
    import shutil

    from one4d.evaluation.suite import untrained_pipeline
    from one4d.weights import save_one4d

    folder = tmp_path / "work"
    folder.mkdir()
    for name in ("vae.safetensors", "dit.safetensors"):
        shutil.copy(EMBEDDED_DIR / name, folder / name)
    save_one4d(untrained_pipeline().model, folder / "one4d.safetensors")
    args = ["eval", "--json", "--scenes", "1", "--steps", "2", "--modes", "full", "--photos", ""]
    assert main([*args, "--model", str(folder)]) == 0
    mine = json.loads(capsys.readouterr().out)["full"]
    assert main(args) == 0
    shipped = json.loads(capsys.readouterr().out)["full"]
    reference = evaluate_scene(untrained_pipeline(), render_scene(HELDOUT_SEEDS[0]), "full", SamplerSettings(steps=2, guidance=EMBEDDED.guidance, seed=0))
    assert set(mine) == set(reference)
    for key, value in reference.items():  # None where the untrained model gives no valid depth at all
        assert mine[key] == (None if value is None else pytest.approx(value, rel=1e-6)), key
    assert shipped["depth_absrel"] is not None and mine["depth_absrel"] != pytest.approx(shipped["depth_absrel"], rel=1e-3)
    (folder / "one4d.safetensors").unlink()
    assert main(["run", "--image", SAMPLE, "--model", str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "missing: one4d.safetensors" in err and "--work folder" in err
    assert not (tmp_path / "o").exists()


def test_suite_seeds_pick_the_split():
    from one4d.evaluation.suite import suite_seeds

    assert suite_seeds(3) == [HELDOUT_SEEDS[0], HELDOUT_SEEDS[1], HELDOUT_SEEDS[2]]
    assert suite_seeds(2, "heldout", 100) == [HELDOUT_SEEDS[100], HELDOUT_SEEDS[101]]
    assert suite_seeds(2, "train") == [0, 1] and all(s in TRAIN_SEEDS for s in suite_seeds(4, "train", 10))
    with pytest.raises(One4DInputError, match="split 'val'"):
        suite_seeds(2, "val")
    with pytest.raises(One4DInputError, match="at least 1 scene"):
        suite_seeds(0)


def test_degenerate_generated_pointmap_falls_back_to_fixed_cameras():
    from one4d.geometry import assemble_result

    flat = np.zeros((5, 16, 16, 3), np.float32)
    flat[..., 2] = 1.0  # every pixel at the same point: no camera can be recovered
    with pytest.warns(UserWarning, match="using fixed cameras"):
        res = assemble_result(np.zeros((5, 16, 16, 3), np.float32), flat, [0])
    assert res.K[0, 0, 0] == 16 and np.allclose(res.c2w, np.eye(4)) and res.valid.all()


def test_coupling_report_sees_the_links(pipe):
    """With zero links the pointmap prediction cannot depend on the video (own == swapped == unlinked); the
    shipped model's does: its pointmap error is lower with the scene's own video than with another scene's,
    and switching its links off changes the prediction (and is undone afterwards)."""
    from one4d.evaluation.reports import coupling_report
    from one4d.evaluation.suite import suite_seeds, untrained_pipeline

    untrained = coupling_report(untrained_pipeline(), suite_seeds(2), sigmas=(0.9,))["sigma_0.9"]
    assert abs(untrained["own"] - untrained["swapped"]) < 1e-6 * untrained["own"]
    assert abs(untrained["own"] - untrained["unlinked"]) < 1e-6 * untrained["own"]
    trained = coupling_report(pipe, suite_seeds(2), sigmas=(0.9,))["sigma_0.9"]
    assert trained["own"] < 0.97 * trained["swapped"], trained
    assert abs(trained["unlinked"] - trained["own"]) > 0.01 * trained["own"], trained
    assert pipe.model.links_enabled
    with pytest.raises(One4DInputError, match="at least 2 scenes"):
        coupling_report(pipe, suite_seeds(1))


def test_paired_differences_tell_apart_what_the_means_cannot():
    from one4d.evaluation.suite import paired_differences, stderr_rows

    a = [{"d": v, "rgb": None, "name": "x"} for v in (0.1, 0.5, 0.9, 0.3)]
    b = [{"d": v + 0.02 + e, "rgb": None, "name": "x"} for v, e in zip((0.1, 0.5, 0.9, 0.3), (0.001, -0.001, 0.002, -0.002))]
    diffs = paired_differences(a, b)
    assert set(diffs) == {"d"}
    mean, err = diffs["d"]
    assert mean == pytest.approx(0.02) and err < 0.002 < stderr_rows(a)["d"]
    with pytest.raises(One4DInputError, match="4 and 3 scenes"):
        paired_differences(a, b[:3])


def test_eval_compare_reads_two_saved_runs(tmp_path, capsys):
    runs = []
    for steps in (1, 2):
        assert main(["eval", "--json", "--scenes", "2", "--steps", str(steps), "--modes", "full", "--no-vae", "--photos", ""]) == 0
        runs.append(tmp_path / f"steps{steps}.json")
        runs[-1].write_text(capsys.readouterr().out)
    assert main(["eval", "--compare", str(runs[0]), str(runs[1]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    one, two = (json.loads(p.read_text()) for p in runs)
    row = doc["full"]["depth_absrel"]
    assert row["a"] == one["full"]["depth_absrel"] and row["b"] == two["full"]["depth_absrel"]
    assert row["diff"] == pytest.approx(row["b"] - row["a"]) and row["stderr"] is not None
    other = tmp_path / "other.json"
    assert main(["eval", "--json", "--scenes", "2", "--first-scene", "3", "--steps", "1", "--modes", "full", "--no-vae",
                 "--photos", ""]) == 0
    other.write_text(capsys.readouterr().out)
    assert main(["eval", "--compare", str(runs[0]), str(other)]) == 2
    assert "different scenes" in capsys.readouterr().err
    assert main(["eval", "--compare", str(runs[0]), str(tmp_path / "missing.json")]) == 2
    assert "cannot read it as JSON" in capsys.readouterr().err
