"""``one4d train``: every stage runs on a tiny work folder and writes what the next stage reads."""
from __future__ import annotations

import json

import torch

from one4d.backbone import read_safetensors
from one4d.cli import main
from one4d.models import ModelFolder
from one4d.weights import read_metadata


def test_all_stages_on_two_clips(tmp_path, monkeypatch):
    work = tmp_path / "w"
    saved_at = []
    from one4d.training import stages

    original = stages.save_one4d

    def spy(model, path, extra=None):
        saved_at.append(int(extra["trained_steps"]))
        return original(model, path, extra)

    monkeypatch.setattr(stages, "save_one4d", spy)
    code = main(["train", "all", "--work", str(work), "--clips", "2", "--vae-steps", "1", "--base-steps", "2",
                 "--one4d-steps", "5", "--checkpoint-every", "2", "--batch", "2", "--validate-scenes", "2", "--validate-steps", "2"])
    assert code == 0
    for name in ("data.npz", "vae.safetensors", "cache/manifest.json", "dit.safetensors", "one4d.safetensors"):
        assert (work / name).is_file(), name
    assert saved_at == [2, 4, 5]  # checkpoints, then the final weights
    meta = read_metadata(work / "one4d.safetensors")
    assert meta["trained_steps"] == "5" and json.loads(meta["normalization"])["scheme"] == "median-shift-percentile-scale"
    folder = ModelFolder.open(work)  # the work folder is a complete model folder
    assert folder.kind == "embedded" and (work / "model.json").is_file()
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert {"data", "vae", "encode", "base", "one4d"} <= {r["stage"] for r in records}
    checks = [r for r in records if r["stage"] == "validation"]  # metrics and the coupling report with every checkpoint
    assert [r["step"] for r in checks] == [2, 4, 5] and all(r["sigma_0.9_own"] > 0 and r["sigma_0.9_swapped"] > 0 for r in checks)
    # (a model trained for 2 steps may predict no valid depth or cameras: those figures are then left out, not made up)
    assert all(r["full_rgb_psnr"] > 0 and r["single_rgb_psnr"] > 0 and 0 <= r.get("full_delta_1_25", 0) <= 1 for r in checks)


def test_decoder_only_vae_fine_tune_keeps_the_encoder(tmp_path):
    work = tmp_path / "w"
    assert main(["train", "data", "--work", str(work), "--clips", "2"]) == 0
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "1"]) == 0
    start = read_safetensors(work / "vae.safetensors")
    (work / "start.safetensors").write_bytes((work / "vae.safetensors").read_bytes())
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "2", "--vae-train", "decoder",
                 "--vae-pointmap-share", "0.5", "--vae-init", str(work / "start.safetensors")]) == 0
    tuned = read_safetensors(work / "vae.safetensors")
    enc = [k for k in start if k.startswith(("encoder.", "quant_conv."))]
    dec = [k for k in start if k.startswith(("decoder.", "post_quant_conv."))]
    assert enc and dec
    assert all(torch.equal(start[k], tuned[k]) for k in enc)
    assert any(not torch.equal(start[k], tuned[k]) for k in dec)
    assert read_metadata(work / "vae.safetensors")["config"] == read_metadata(work / "start.safetensors")["config"]
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "1", "--vae-train", "decoder"]) == 2


def test_train_help_documents_every_option():
    from one4d.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    train = sub.choices["train"]
    undocumented = [a.option_strings or a.dest for a in train._actions if not (a.help or "").strip()]
    assert undocumented == []
    assert len(train._actions) > 40  # the parser read is the full one


def test_vae_gradient_clipping_is_applied_when_asked(tmp_path, monkeypatch, capsys):
    from accelerate import Accelerator

    norms = []
    original = Accelerator.clip_grad_norm_

    def spy(self, parameters, max_norm, *args, **kwargs):
        norms.append(max_norm)
        return original(self, parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(Accelerator, "clip_grad_norm_", spy)
    work = tmp_path / "w"
    assert main(["train", "data", "--work", str(work), "--clips", "2"]) == 0
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "1", "--vae-crop", "16", "--vae-window", "5"]) == 0
    assert norms == []  # the default: no clipping (the v1 recipe)
    assert main(["train", "vae", "--work", str(tmp_path / "w2"), "--vae-steps", "2", "--vae-crop", "16", "--vae-window", "5",
                 "--vae-clip", "1.0", "--vae-batch", "2"]) == 2  # no data in that folder: refused with the fix
    assert "one4d train data --work" in capsys.readouterr().err
    (tmp_path / "w2").mkdir(exist_ok=True)
    (tmp_path / "w2" / "data.npz").write_bytes((work / "data.npz").read_bytes())
    assert main(["train", "vae", "--work", str(tmp_path / "w2"), "--vae-steps", "2", "--vae-crop", "16", "--vae-window", "5",
                 "--vae-clip", "1.0", "--vae-batch", "2"]) == 0
    assert norms == [1.0, 1.0]


def test_anchored_vae_fine_tune_keeps_the_latents_and_their_statistics(tmp_path, capsys):
    from one4d.backbone import build_vae
    from one4d.models import read_component_config
    from one4d.training.data import load_training_set, video_tensor

    work = tmp_path / "w"
    assert main(["train", "data", "--work", str(work), "--clips", "2"]) == 0
    fast = ["--vae-window", "1", "--vae-crop", "16", "--vae-batch", "2", "--vae-validate-scenes", "0"]
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "2", *fast]) == 0
    start = work / "start.safetensors"
    start.write_bytes((work / "vae.safetensors").read_bytes())
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "1", "--vae-anchor", "1"]) == 2
    assert "--vae-anchor keeps the latents of the --vae-init VAE" in capsys.readouterr().err

    def latents(path):
        vae = build_vae(read_component_config(path)).eval()
        vae.load_state_dict(read_safetensors(path))
        with torch.no_grad():
            return vae.encode(video_tensor(load_training_set(work)["rgb"][:, :1])).latent_dist.mean

    drift = {}
    for weight in ("0", "1000"):
        out = tmp_path / f"a{weight}"
        out.mkdir()
        (out / "data.npz").write_bytes((work / "data.npz").read_bytes())
        assert main(["train", "vae", "--work", str(out), "--vae-steps", "6", "--vae-lr", "3e-3", "--vae-init", str(start),
                     "--vae-anchor", weight, *fast]) == 0
        drift[weight] = (latents(out / "vae.safetensors") - latents(start)).square().mean().item()
        stats = {k: read_component_config(out / "vae.safetensors")[k] for k in ("latents_mean", "latents_std")}
        kept = stats == {k: read_component_config(start)[k] for k in ("latents_mean", "latents_std")}
        assert kept == (weight != "0")  # anchored: the init's normalization, the one the DiT was trained with
    assert 0 < drift["1000"] < 0.5 * drift["0"]
    logged = [json.loads(line) for line in (tmp_path / "a1000" / "log.jsonl").read_text().splitlines()]
    assert any(r.get("drift", 0) > 0 for r in logged)


def test_a_new_vae_takes_the_architecture_asked_for(tmp_path):
    from one4d.models import read_component_config

    work = tmp_path / "w"
    assert main(["train", "data", "--work", str(work), "--clips", "2"]) == 0
    fast = ["--vae-steps", "1", "--vae-window", "1", "--vae-crop", "16", "--vae-batch", "1", "--vae-validate-scenes", "0"]
    configs = {}
    for arch in ("residual", "plain"):
        assert main(["train", "vae", "--work", str(work), "--vae-arch", arch, *fast]) == 0
        configs[arch] = read_component_config(work / "vae.safetensors")
    assert configs["residual"]["is_residual"] and configs["residual"]["dim_mult"] == [1, 2, 2]
    assert not configs["plain"].get("is_residual") and configs["plain"]["dim_mult"] == [1, 2, 4]
    assert {c["scale_factor_spatial"] for c in configs.values()} == {4}


def test_seed_chooses_the_vae_batches_and_keeps_the_default_draws(tmp_path):
    data = tmp_path / "data"
    assert main(["train", "data", "--work", str(data), "--clips", "2"]) == 0
    fast = ["--vae-steps", "1", "--vae-window", "1", "--vae-crop", "16", "--vae-batch", "1", "--vae-validate-scenes", "0",
            "--vae-photo-share", "0"]

    def trained(name: str, *seed: str) -> dict:
        work = tmp_path / name  # a folder of its own: a run in the same folder would resume
        work.mkdir()
        (work / "data.npz").symlink_to(data / "data.npz")
        assert main(["train", "vae", "--work", str(work), *fast, *seed]) == 0
        return read_safetensors(work / "vae.safetensors")

    default, again, zero, other = trained("a"), trained("b"), trained("c", "--seed", "0"), trained("d", "--seed", "7")
    same = lambda x, y: all(torch.equal(x[k], y[k]) for k in x)
    assert same(default, again) and same(default, zero)  # the VAE stage's default seed is 0, as before --seed reached it
    assert not same(default, other)


def test_recipe_script_commands_parse(tmp_path):
    """Every ``one4d`` command of scripts/train_embedded.sh, expanded by bash as the script runs it, parses with
    the CLI's options: the recipe of the shipped model does not drift from the command line it documents."""
    import shutil
    import subprocess
    from pathlib import Path

    from one4d.cli import build_parser

    script = Path(__file__).parents[1] / "scripts" / "train_embedded.sh"
    bash = shutil.which("bash")
    assert bash is not None
    # one4d prints its arguments NUL-separated, one command per record; files are not touched
    stubs = 'one4d() { printf "%s\\0" "$@"; printf "\\1\\0"; }; cp() { :; }; mkdir() { :; }; '
    out = subprocess.run([bash, "-c", stubs + 'source "$0" "$1"', str(script), str(tmp_path / "w")],
                         check=True, capture_output=True).stdout.decode()
    commands = [c.strip("\0").split("\0") for c in out.split("\1\0") if c.strip("\0")]
    assert len(commands) >= 15 and commands[-1][:2] == ["train", "one4d"]
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        assert args.command in ("train", "eval"), argv
    last = parser.parse_args(commands[-1])
    assert last.task_mix == "image=0.35,sparse=0.2,video=0.2,text=0.25" and last.one4d_init.endswith("one4d_v3c.safetensors")
