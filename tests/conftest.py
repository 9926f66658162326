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
    rec = Recorder(name=f"recorder{next(_names)}")
    yield rec
    rec.close()


@pytest.fixture
def keyboard(jack_server):
    kbd = VirtualKeyboard(name=f"vkbd{next(_names)}")
    yield kbd
    kbd.close()


def unique_name(prefix: str) -> str:
    """JACK client names must be unique on the server: tests that open several clients use this."""
    return f"{prefix}{next(_names)}"


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread (restored afterwards). Tiny models gain nothing from a second thread, and on the
    shared 2-core CI machine two threads ran ~10x slower under load. The codec and model suites use it for every test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
