"""``--quiet`` on every command and sub-command: no progress or status on stderr, results still printed."""

import argparse

from edgeship.cli.main import build_parser, main
from edgeship.core import progress


def _parsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from _parsers(sub)


def test_every_command_takes_quiet_and_json():
    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 10
    missing = [name for name, p in parsers if "--quiet" not in p._option_string_actions]
    assert missing == []
    leaves = [(n, p) for n, p in parsers if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)]
    assert "--json" in dict(leaves)["bench"]._option_string_actions


def test_quiet_silences_status_lines_and_is_restored(tmp_path, capsys):
    from models.tiny import tiny_onnx

    model = tiny_onnx(tmp_path / "m.onnx")
    assert not progress.is_quiet()
    assert main(["bench", str(model), "--min-time", "0.1", "--max-time", "1", "--quiet", "--json"]) == 0
    out = capsys.readouterr()
    assert out.out.lstrip().startswith("{") and out.err == ""
    assert not progress.is_quiet()  # the next command in this process is not silenced
    progress.status("shown")
    assert "shown" in capsys.readouterr().err
