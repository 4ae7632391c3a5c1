"""Natural-photo pseudo-videos for VAE training: held-out photos stay out, clips pan over the photo, and the
vae stage mixes them in."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from one4d.cli import main
from one4d.data.photos import HELDOUT, PhotoClips, photo_files
from one4d.errors import One4DInputError


def _folder(folder):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for name in (*HELDOUT, "street.png", "garden.jpg"):
        cv2.imwrite(str(folder / name), (rng.random((80, 120, 3)) * 255).astype(np.uint8))
    (folder / "notes.txt").write_text("not a photo")
    return folder


def test_held_out_photos_never_reach_training(tmp_path):
    folder = _folder(tmp_path)
    assert [p.name for p in photo_files(str(folder))] == ["garden.jpg", "street.png"]
    assert sorted(p.name for p in photo_files(str(folder), "heldout")) == sorted(HELDOUT)
    with pytest.raises(One4DInputError, match="does not exist"):
        photo_files(str(tmp_path / "nowhere"))


def test_scikit_image_samples_are_a_photo_source():
    pytest.importorskip("skimage", reason="needs scikit-image: pip install 'comfyui-one4d[train]'")
    train, held = photo_files("skimage"), photo_files("skimage", "heldout")
    assert len(held) == 4 and not {p.name for p in train} & set(HELDOUT) and len(train) >= 10


def test_a_clip_pans_over_one_photo(tmp_path):
    img = np.zeros((200, 200, 3), np.uint8)
    img[:, :, 0] = np.arange(200, dtype=np.uint8)[None, :]  # red ramps left to right
    cv2.imwrite(str(tmp_path / "ramp.png"), img[..., ::-1])
    clips = PhotoClips([tmp_path / "ramp.png"])
    rng = np.random.default_rng(3)
    moved = 0
    for _ in range(8):
        clip = clips.draw(rng, 9, 16)
        assert clip.shape == (9, 16, 16, 3) and clip.dtype == np.uint8 and clip[..., 1:].max() == 0
        moved += int(np.abs(clip[0].astype(int) - clip[-1].astype(int)).mean() > 0.5)
    assert moved >= 6  # the window drifts: first and last frames differ


def test_the_vae_stage_mixes_photos_in(tmp_path, monkeypatch):
    drawn = []
    original = PhotoClips.draw
    monkeypatch.setattr(PhotoClips, "draw", lambda self, *a: drawn.append(a) or original(self, *a))
    work = tmp_path / "w"
    assert main(["train", "data", "--work", str(work), "--clips", "2"]) == 0
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "2", "--vae-batch", "2", "--vae-photo-share", "1.0",
                 "--vae-photos", str(_folder(tmp_path / "photos")), "--vae-validate-scenes", "1"]) == 0
    assert len(drawn) == 4 and (work / "vae.safetensors").is_file()
    checks = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines() if '"vae-validation"' in line]
    assert len(checks) == 1 and checks[0]["step"] == 2 and {"rgb_psnr", "pointmap_psnr", "pointmap_depth_absrel"} <= set(checks[0])


def test_eval_reports_the_held_out_photos(tmp_path, capsys):
    assert main(["eval", "--scenes", "1", "--modes", "single", "--steps", "2", "--no-vae", "--json",
                 "--photos", str(_folder(tmp_path / "photos"))]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = doc["photos"]
    assert set(row) == {"vae_psnr", "refined_psnr", "frame0_psnr"} and 5 < row["vae_psnr"] < 60
    assert row["refined_psnr"] > row["vae_psnr"]  # refining the given frame's latents for the decoder
    # the given frame comes back at the quality of the refined round trip
    assert abs(row["frame0_psnr"] - row["refined_psnr"]) < 0.05


def test_eval_vae_only_measures_a_vae_file_before_any_dit(tmp_path, capsys):
    import torch

    from one4d.codec import VideoCodec
    from one4d.data.media import read_image
    from one4d.evaluation.reports import codec_report
    from one4d.evaluation.suite import psnr, suite_seeds
    from one4d.models import EMBEDDED_DIR, load_vae_component

    vae_file = EMBEDDED_DIR / "vae.safetensors"
    photos = _folder(tmp_path / "photos")
    assert main(["eval", "--vae-only", str(vae_file), "--scenes", "2", "--json", "--photos", str(photos)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"vae", "photos", "scenes"} and doc["scenes"] == 2
    codec = VideoCodec(load_vae_component(vae_file))
    assert doc["vae"] == pytest.approx(codec_report(codec, suite_seeds(2)), rel=1e-6)
    expected = []  # the photo row: each held-out photo through the VAE as a one-frame clip
    for name in HELDOUT:
        photo = read_image(photos / name, 64, 64)
        with torch.no_grad():
            back = codec.decode(codec.encode(torch.from_numpy(photo).permute(2, 0, 1)[None, :, None] * 2 - 1))
        expected.append(psnr(back[0, :, 0].permute(1, 2, 0).numpy() * 0.5 + 0.5, photo))
    assert set(doc["photos"]) == {"vae_psnr", "refined_psnr"}
    assert doc["photos"]["vae_psnr"] == pytest.approx(float(np.mean(expected)), rel=1e-6)
    assert doc["photos"]["refined_psnr"] > doc["photos"]["vae_psnr"]
    assert main(["eval", "--vae-only", str(vae_file), "--scenes", "1", "--json", "--photos", str(photos), "--refine-steps", "0"]) == 0
    assert set(json.loads(capsys.readouterr().out)["photos"]) == {"vae_psnr"}
    assert main(["eval", "--vae-only", str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "--vae-only" in err and "one4d train vae" in err
