"""One request check and one declaration of defaults: the library, the CLI and the nodes all use them."""
from __future__ import annotations

import pytest
import torch

import nodes
from one4d.cli import main
from one4d.defaults import DEFAULTS, EMBEDDED, MAX_FRAMES, WAN_FUN_14B, defaults_for, kind_for_width
from one4d.errors import One4DInputError
from one4d.request import check_request, check_sampling, check_video
from one4d.sampling import SamplerSettings


@pytest.mark.parametrize("args, match", [
    ((18, 64, 64), "length 18 is not 4k\\+1.*use 17 or 21"),
    ((MAX_FRAMES + 4, 64, 64), f"length {MAX_FRAMES + 4} is more than {MAX_FRAMES}"),
    ((17, 60, 64), "height 60 is not a positive multiple of 16; use 64"),
    ((17, 64, 4096), "width 4096 is larger than 2048"),
])
def test_clip_size_errors_name_the_input_and_the_fix(args, match):
    with pytest.raises(One4DInputError, match=match):
        check_video(*args)


def test_observed_frames_are_checked():
    check_video(17, 64, 64, [0, 8, 16])
    with pytest.raises(One4DInputError, match="frame index 17 is outside the video of 17 frames"):
        check_video(17, 64, 64, [0, 17])
    with pytest.raises(One4DInputError, match="repeat a frame"):
        check_video(17, 64, 64, [3, 3])


@pytest.mark.parametrize("settings, match", [
    ((0, 6.0, 3.0, "unipc"), "steps 0 is outside 1..200"),
    ((30, 0.5, 3.0, "unipc"), "guidance 0.5 is outside 1..20; 1 turns guidance off"),
    ((30, 6.0, 0.0, "unipc"), "shift 0 is outside 0.1..20"),
    ((30, 6.0, 3.0, "ddim"), "scheduler 'ddim' is unknown; choose one of unipc, euler"),
])
def test_sampler_setting_errors(settings, match):
    with pytest.raises(One4DInputError, match=match):
        check_sampling(*settings)
    with pytest.raises(One4DInputError, match=match):
        check_request(17, 64, 64, [0], *settings)


def test_declared_defaults_pass_the_check_and_feed_the_library():
    for d in DEFAULTS.values():
        check_request(d.frames, d.height, d.width, [0], d.steps, d.guidance, d.shift, d.scheduler)
    assert SamplerSettings() == SamplerSettings.for_kind(WAN_FUN_14B)
    assert (WAN_FUN_14B.steps, WAN_FUN_14B.guidance) == (50, 6.0)  # the paper's sampling
    assert kind_for_width(5120) == "wan2.1-fun-14b" and kind_for_width(1536) == "wan2.1-fun-1.3b" and kind_for_width(128) == "embedded"
    with pytest.raises(One4DInputError, match="model kind 'wan9' is unknown"):
        defaults_for("wan9")


def test_node_widgets_default_to_the_declared_values():
    sample = nodes.One4DSample.INPUT_TYPES()["required"]
    assert (sample["steps"][1]["default"], sample["guidance"][1]["default"], sample["shift"][1]["default"],
            sample["scheduler"][1]["default"]) == (WAN_FUN_14B.steps, WAN_FUN_14B.guidance, WAN_FUN_14B.shift, WAN_FUN_14B.scheduler)
    cond = nodes.One4DBuildConditioning.INPUT_TYPES()["required"]
    assert (cond["length"][1]["default"], cond["height"][1]["default"], cond["width"][1]["default"]) == (81, 480, 832)
    assert cond["length"][1]["max"] == MAX_FRAMES


def test_cli_samples_with_the_model_kinds_defaults_and_checks_options(tmp_path, capsys, monkeypatch):
    from one4d.cli import run as run_cli

    seen = {}

    def stop_after_settings(self, cond, settings, *args, **kwargs):
        seen["s"] = settings
        raise KeyboardInterrupt

    monkeypatch.setattr(run_cli.One4DPipeline, "generate", stop_after_settings)
    assert main(["run", "--text", "a red sphere", "--out", str(tmp_path / "o")]) == 130
    assert seen["s"] == SamplerSettings.for_kind(EMBEDDED)
    assert main(["run", "--text", "x", "--steps", "0", "--out", str(tmp_path / "o")]) == 2
    assert "steps 0 is outside" in capsys.readouterr().err


def test_conditioning_node_reports_a_bad_text_input_without_assert():
    handle = nodes.One4DApplyPointmapLoRA().apply(nodes.One4DLoadBackbone().load(nodes.cache.EMBEDDED, nodes.cache.EMBEDDED)[0],
                                                 nodes.cache.EMBEDDED)[0]
    build = nodes.One4DBuildConditioning().build
    for bad in ([["not a tensor", {}]], [], "text", [[torch.zeros(2, 3, 4, 5), {}]]):
        with pytest.raises(One4DInputError, match="'positive' is not a CONDITIONING from CLIPTextEncode"):
            build(handle, 64, 64, 17, "none", positive=bad)
    with pytest.raises(One4DInputError, match="length 18 is not 4k\\+1"):
        build(handle, 64, 64, 18, "none", prompt="a red sphere")
