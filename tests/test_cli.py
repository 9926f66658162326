"""The command line: help lists commands, version reports the stack (and that encodec imports), errors are clear."""

from __future__ import annotations

import json
import subprocess
import sys

from synth import __version__
from synth.cli import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "version" in out and "usage: synth" in out


def test_version_json_reports_stack_and_encodec_imports(capsys):
    assert main(["version", "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["synth"] == __version__
    assert info["torch"].startswith("2.")
    assert info["encodec"] == "ok"


def test_unknown_command_fails_with_usage(capsys):
    assert main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "synth", "version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert __version__ in done.stdout


def test_encodec_imports_beside_cpu_torch():
    import encodec

    model = encodec.EncodecModel.encodec_model_24khz(pretrained=False)
    assert model.sample_rate == 24000
