"""Shared fixtures: the JACK bus (recorder, virtual keyboard) and a small helper to reach the bundled model.

The test command starts a JACK server (dummy backend, 48 kHz, 1024-frame periods) before pytest. Tests marked
``jack`` fail when it is missing under the test command (SYNTH_TEST_JACK=1) and are skipped in a bare ``pytest``.
"""

from __future__ import annotations

import itertools
import os

import pytest

from tests.jackbus import Recorder, VirtualKeyboard, jack_running

_names = itertools.count()
# pytest-xdist (scripts/test.sh runs the suite on 2 worker processes): JACK client names carry the worker's id, so two
# workers never ask the one server for the same name. Empty in a serial run.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")

# The tests on the JACK bus and the ones that time the app are marked ``bus``: scripts/test.sh runs them on their own,
# serially, after the rest has run on two xdist workers. They look for the ports that appear on the one server (a second
# worker's clients would be found too), start the app and the player as processes, record audio and bound latencies and
# quitting times: beside a second worker busy with training tests they glitched (a recorded C4 15 cents sharp, once).
# They also form one xdist group, so a plain ``pytest -n 2`` keeps them on one worker, one after the other.
# A test is a bus test when it uses the JACK fixtures or the ``jack`` marker, is in one of the files below, or is
# marked ``bus`` itself (tests/gui/test_quit_and_startup.py: only its two quitting-time tests).
# Not here, so in the parallel part: the app's smoke tests (tests/test_install.py, tests/gui/test_smoke_and_jobs.py).
# They play one note into the server but record nothing from the bus and bound no time (they wait up to 90 s for a
# note louder than -60 dBFS, measured inside the app), and no other test of the parallel part is on the bus whose
# ports they could be confused with.
BUS_GROUP = "bus"
_BUS_FIXTURES = {"jack_server", "recorder", "keyboard"}
_BUS_FILES = (
    "tests/engine/test_cache_worker.py",    # grid latency < 0.15 s
    "tests/engine/test_live_morph.py",      # previews while the exact notes are still being made
    "tests/engine/test_hardening_engine.py",
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (it does so in this same hook)
def pytest_collection_modifyitems(config, items) -> None:
    root = str(config.rootpath)
    for item in items:
        path = str(item.path)[len(root) + 1:].replace(os.sep, "/")
        if (path in _BUS_FILES or item.get_closest_marker("jack") is not None
                or item.get_closest_marker("bus") is not None
                or _BUS_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.xdist_group(BUS_GROUP))
            item.add_marker(pytest.mark.bus)


@pytest.fixture(scope="session", autouse=True)
def _private_note_cache(tmp_path_factory) -> None:
    """The disk note cache (synth.engine.disk_cache) of the tests lives in a temp folder, never the user's; child
    processes inherit it. Set before any fixture of wider scope makes an engine."""
    os.environ["SYNTH_NOTE_CACHE"] = str(tmp_path_factory.mktemp("note-cache"))


@pytest.fixture(autouse=True)
def _cold_note_cache_per_test(_private_note_cache, tmp_path_factory, monkeypatch) -> None:
    """Each test starts on an empty disk note cache: notes another test left must not change what it measures."""
    monkeypatch.setenv("SYNTH_NOTE_CACHE", str(tmp_path_factory.mktemp("notes")))


@pytest.fixture(scope="session")
def jack_server() -> None:
    if not jack_running():
        if os.environ.get("SYNTH_TEST_JACK") == "1":
            pytest.fail("the test command was meant to start a JACK server, but none answers")
        pytest.skip("no JACK server running (run the suite with `make test`)")


@pytest.fixture
def recorder(jack_server):
    rec = Recorder(name=unique_name("recorder"))
    yield rec
    rec.close()


@pytest.fixture
def keyboard(jack_server):
    kbd = VirtualKeyboard(name=unique_name("vkbd"))
    yield kbd
    kbd.close()


def unique_name(prefix: str) -> str:
    """JACK client names must be unique on the server: tests that open several clients use this."""
    return f"{prefix}{_WORKER}{next(_names)}"


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread (restored afterwards). Tiny models gain nothing from a second thread, and on the
    shared 2-core CI machine two threads ran ~10x slower under load. The codec and model suites use it for every test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
