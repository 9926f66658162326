"""The import graph (issue 20): no cycles, one direction of layers, and a runtime that imports no training,
evaluation or benchmark module. The contracts live in pyproject.toml ([tool.importlinter]); import-linter checks
them statically (imports inside functions included), so this takes well under a second and imports no torch."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("importlinter", reason="import-linter is a test tool: pip install -e '.[test]'")


def _run_linter() -> subprocess.CompletedProcess:
    # In a child process run from the repository root, so the graph is built from this checkout's synth and gui
    # (not from another checkout a shared virtual environment may have installed) and nothing is cached on disk.
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_import_contracts_are_kept():
    proc = _run_linter()
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, "import-linter contracts broken (pyproject.toml [tool.importlinter]):\n" + report
    assert "BROKEN" not in report and "3 kept, 0 broken" in report, report


def _contract(contracts: list[dict], type_name: str) -> dict:
    (found,) = [c for c in contracts if c["type"] == type_name]
    return found


def test_every_module_is_runtime_or_tool():
    """A new module in a package that mixes both (synth.codec, synth.model, synth.data) or a new top-level module
    must be listed on one side of the forbidden contract, so the runtime/tools split stays complete."""
    import grimp

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    forbidden = _contract(config["contracts"], "forbidden")
    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph(*config["root_packages"], cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))

    def expand(expressions: list[str]) -> set[str]:
        out: set[str] = set()
        for expression in expressions:
            out |= set(graph.find_matching_modules(expression)) if "*" in expression else {expression}
        return out

    runtime, tools = expand(forbidden["source_modules"]), expand(forbidden["forbidden_modules"])
    assert not runtime & tools, f"listed as both runtime and tool: {sorted(runtime & tools)}"
    unlisted = sorted(set(graph.modules) - runtime - tools - {"synth"})
    assert not unlisted, ("modules on neither side of the runtime/tools contract in pyproject.toml; add each to "
                          f"source_modules (runtime) or forbidden_modules (training, eval, bench, CLI): {unlisted}")
