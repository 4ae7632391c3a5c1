"""The one4d command line: bench wiring prints a table and one JSON object; errors exit with code 2."""
from __future__ import annotations

import json

from one4d import cli


def test_bench_prints_table_and_json(monkeypatch, capsys, tmp_path):
    mod = tmp_path / "fake_suite.py"
    mod.write_text("def run():\n    return {'fast_s': 0.5, 'bytes': 123456}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "BENCH_SUITES", {"fake": "fake_suite:run"})
    assert cli.main(["bench", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"fast_s": 0.5, "bytes": 123456}
    assert "fast_s" in captured.err and "123,456" in captured.err


def test_unknown_suite_is_a_clear_error(capsys):
    assert cli.main(["bench", "--only", "nope"]) == 2
    assert "unknown benchmark suite 'nope'" in capsys.readouterr().err


def test_every_bench_suite_and_command_resolves():
    for spec in [*cli.BENCH_SUITES.values(), *cli.COMMANDS.values()]:
        assert callable(cli._resolve(spec)), spec
