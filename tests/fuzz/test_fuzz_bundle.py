"""Property-based fuzzing of bundle.json (issue 16): whatever bundle.json holds, ``load_bundle`` either loads a
bundle or raises ``BundleError`` naming a file of the bundle; it never raises anything else, and it never opens a
file outside the bundle folder (an audit hook watches every ``open``; decoy weight files sit next to the folder and
hostile names point at them).

Each example copies a tiny bundle (build_tiny_bundle: loads in milliseconds) and changes its bundle.json: a field
set to any JSON value, a field removed, a file entry renamed to a hostile path, or the whole text replaced.
Example counts are bounded (``EXAMPLES``) and derandomized so CI runs the same cases in a few seconds.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth.model.bundle import BundleError, build_tiny_bundle, load_bundle

EXAMPLES = {"field": 60, "remove": 30, "names": 40, "text": 40}
OUTCOMES: dict[str, int] = {"tried": 0, "clear error": 0, "loaded": 0}  # for the tally
FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])

_root = Path(tempfile.mkdtemp(prefix="fuzz-bundle-"))
_counter = iter(range(10 ** 9))
_watch: dict | None = None  # {"root": folder, "outside": [paths opened outside it]} while a load runs


def _audit(event: str, args: tuple) -> None:
    if _watch is None or event != "open" or not isinstance(args[0], (str, Path)):
        return
    path = Path(args[0]).resolve()
    if path.is_relative_to(_root) and not path.is_relative_to(_watch["root"]):
        _watch["outside"].append(str(path))


sys.addaudithook(_audit)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_pristine = build_tiny_bundle(_root / "pristine", seed=0)
for _name in ("vae.pt", "generator.pt", "stats.pt"):  # decoys next to every bundle: hostile names aim at them
    shutil.copy(_pristine / _name, _root / _name)
shutil.copytree(_pristine / "codec", _root / "decoy_codec")
_INFO = json.loads((_pristine / "bundle.json").read_text())

_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-10 ** 30, 10 ** 30),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                    st.sampled_from(["../vae.pt", "/etc/passwd", "..", ".", "", "codec/../..", "../decoy_codec",
                                     "0" * 12, "a" * 64, 10 ** 12, -1, 0]))
_json = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                     max_leaves=10)


def _paths(value, prefix=()) -> list[tuple]:
    """Every key path in bundle.json (lists by index), the configs and instruments included."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            out += _paths(item, prefix + (index,))
    return out


_PATHS = _paths(_INFO)
_hostile_name = st.sampled_from(["../vae.pt", str(_root / "vae.pt"), "../decoy_codec/codec.pt", "codec/../../stats.pt",
                                 "link.pt", "./vae.pt", "vae.pt/", "a\\..\\vae.pt", "", "  ", "\x00", "codec"])


def _bundle() -> Path:
    folder = _root / f"b{next(_counter)}"
    shutil.copytree(_pristine, folder)
    (folder / "link.pt").symlink_to(_root / "vae.pt")
    return folder


def _load(folder: Path, text: str | bytes) -> None:
    """The contract: loads, or BundleError naming a file in the folder; nothing outside the folder is opened."""
    global _watch
    (folder / "bundle.json").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    _watch = {"root": folder.resolve(), "outside": []}
    OUTCOMES["tried"] += 1
    try:
        load_bundle(folder, device="cpu")
        OUTCOMES["loaded"] += 1
    except BundleError as exc:
        assert str(folder) in str(exc), exc
        OUTCOMES["clear error"] += 1
    finally:
        outside, _watch = _watch["outside"], None
        shutil.rmtree(folder, ignore_errors=True)
    assert outside == [], outside


def _set(info: dict, path: tuple, value) -> dict:
    target = info
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return info


@settings(max_examples=EXAMPLES["field"], **FUZZ)
@given(st.sampled_from(_PATHS), _json)
def test_any_field_set_to_any_value(path, value):
    _load(_bundle(), json.dumps(_set(json.loads(json.dumps(_INFO)), path, value)))


@settings(max_examples=EXAMPLES["remove"], **FUZZ)
@given(st.sampled_from(_PATHS))
def test_any_field_removed(path):
    info = json.loads(json.dumps(_INFO))
    target = info
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    _load(_bundle(), json.dumps(info))


@settings(max_examples=EXAMPLES["names"], **FUZZ)
@given(st.sampled_from(sorted(_INFO["files"])), _hostile_name, st.booleans())
def test_file_entries_renamed_to_hostile_paths(entry, name, keep_hash):
    info = json.loads(json.dumps(_INFO))
    info["files"][name] = info["files"].pop(entry)
    if keep_hash:
        from synth.model.bundle import _content_hash

        info["hash"] = _content_hash(info["files"])  # so only the path check stands in the way
    _load(_bundle(), json.dumps(info))


@settings(max_examples=EXAMPLES["text"], **FUZZ)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200),
                 st.sampled_from(["[" * 5000, '{"format": "pgesam-bundle", "format_version": 1' + ", " * 3 + "}",
                                  '{"num_frames": ' + "9" * 5000 + "}", '{"x": 1e999}', "NaN", "null", "[]",
                                  json.dumps(_INFO).replace('"num_frames": 24', '"num_frames": 1e308')])))
def test_any_text(text):
    _load(_bundle(), text)
