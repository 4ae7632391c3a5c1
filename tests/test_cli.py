"""The one4d command line: every subcommand listed (also under ``python -m one4d``), bench prints a table and
one JSON object (suites that cannot run are reported as skipped), errors exit with code 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from one4d import bench, cli
from one4d.bench import SuiteUnavailable


def _fake_suites(monkeypatch, tmp_path) -> None:
    mod = tmp_path / "fake_suite.py"
    mod.write_text(
        "from one4d.bench import SuiteUnavailable\n"
        "def run():\n    return {'fast_s': 0.5, 'bytes': 123456}\n"
        "def absent():\n    raise SuiteUnavailable('needs node', 'install node')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bench, "SUITES", {"fake": "fake_suite:run", "absent": "fake_suite:absent"})


def test_bench_prints_table_and_json_and_reports_skipped_suites(monkeypatch, capsys, tmp_path):
    _fake_suites(monkeypatch, tmp_path)
    assert cli.main(["bench", "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc == {"fast_s": 0.5, "bytes": 123456, "skipped": {"absent": {"reason": "needs node", "hint": "install node"}}}
    assert "fast_s" in captured.err and "123,456" in captured.err and "suite absent skipped: needs node" in captured.err


def test_preview_suite_without_browser_tools_is_skipped_not_crashed(monkeypatch, capsys):
    from one4d.bench import preview

    monkeypatch.setattr(preview, "CHROMIUM", preview.REPO_ROOT / "no-such-chromium")
    with pytest.raises(SuiteUnavailable, match="no-such-chromium"):
        preview.bench_widget()
    assert cli.main(["bench", "--json", "--only", "preview"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"skipped"} and "chromium" in doc["skipped"]["preview"]["reason"]
    assert "install_web.sh" in doc["skipped"]["preview"]["hint"]


def test_unknown_suite_is_a_clear_error(capsys):
    assert cli.main(["bench", "--only", "nope"]) == 2
    assert "unknown benchmark suite 'nope'" in capsys.readouterr().err


def test_every_bench_suite_resolves():
    for spec in bench.SUITES.values():
        assert callable(bench.suite_function(spec)), spec


@pytest.mark.parametrize("argv", [[str(Path(sys.executable).with_name("one4d"))], [sys.executable, "-m", "one4d"]])
def test_help_lists_every_subcommand(argv):
    out = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in cli.COMMANDS:
        assert name in out.stdout


def test_subcommand_with_missing_dependency_is_listed_with_install_hint(monkeypatch, capsys):
    def fake_import(name, *args, **kwargs):
        if name == "one4d.cli.fake":
            raise ModuleNotFoundError("No module named 'gguf'", name="gguf")
        return real_import(name, *args, **kwargs)

    real_import = cli.importlib.import_module
    monkeypatch.setattr(cli.importlib, "import_module", fake_import)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("one4d.cli.fake", "a command needing gguf"))
    assert "pip install gguf" in cli.build_parser().format_help()
    assert cli.main(["fake"]) == 2
    assert "needs the Python package 'gguf': pip install gguf" in capsys.readouterr().err
