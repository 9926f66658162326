"""``synth play`` when its JACK server dies (issue 16, item 3): it says so, waits, reconnects when the server comes
back, and Ctrl-C ends it within about a second in every state.

Each test runs its own JACK server under a name of its own (``jackd -n NAME``; clients find it through
JACK_DEFAULT_SERVER) so that killing it leaves the suite's shared server alone. The names come from a small fixed
set (``private_server_name``): JACK keeps a killed server's entry in its shared-memory registry and reclaims it only
for a server of the same name, so unique names per run filled the registry's few slots after a handful of runs
("Too many servers already active"). The test process itself never opens
a client on that server (a client of a killed server lingers in libjack); it looks at ports with ``jack_lsp``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from synth.engine.midi_io import wait_for
from tests.conftest import unique_name

pytestmark = [pytest.mark.jack, pytest.mark.skipif(shutil.which("jackd") is None, reason="needs jackd")]


def private_server_name(prefix: str = "pgesamsrv", choices: int = 4) -> str:
    """The first of ``prefix0..prefix{choices-1}`` that no live server uses (parallel runs take different ones)."""
    for i in range(choices):
        name = f"{prefix}{i}"
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        probe = subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=5)
        if probe.returncode != 0:
            return name
    pytest.skip(f"all {choices} private JACK server names are in use")


class Server:
    """A private JACK server (dummy backend) that a test may kill and start again under the same name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["jackd", "-n", self.name, "-R", "-d", "dummy", "-r", "48000", "-p", "1024"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert _wait(lambda: self.ports() is not None, 10), "private jackd did not start"

    def ports(self) -> list[str] | None:
        try:
            out = subprocess.run(["jack_lsp"], env=self.env, capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            return None
        return out.stdout.split("\n") if out.returncode == 0 else None

    def kill(self, sig: int) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Player:
    """``python -m synth play --demo`` on the private server; its stderr lines are collected as they come."""

    def __init__(self, server: Server) -> None:
        self.client = unique_name("pgesamloss")
        self.proc = subprocess.Popen([sys.executable, "-m", "synth", "play", "--demo", "--blocksize", "1024",
                                      "--midi-client", self.client, "--duration", "300"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def said(self, *words: str) -> bool:
        return any(all(w in line for w in words) for line in self.lines)

    def interrupt(self) -> float:
        """Ctrl-C; returns the seconds until the process ended (inf when it did not within 10 s)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return float("inf")
        return time.monotonic() - t0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


def _wait(predicate, timeout: float, interval: float = 0.05) -> bool:
    return wait_for(predicate, timeout, interval)


@pytest.fixture
def server():
    srv = Server(private_server_name())
    srv.start()
    yield srv
    srv.close()


def _playing(player: Player, server: Server) -> bool:
    ports = server.ports() or []
    return f"{player.client}:midi_in" in ports and any(p.startswith("PortAudio") for p in ports)


def test_play_says_the_server_is_gone_reconnects_when_it_returns_and_quits_at_once(server):
    player = Player(server)
    try:
        assert _wait(lambda: player.said("Ctrl-C to stop") and _playing(player, server), 60), player.lines
        server.kill(signal.SIGKILL)
        assert _wait(lambda: player.said("audio server", "gone"), 5), player.lines
        assert player.proc.poll() is None, player.lines  # still there, waiting for the server
        server.start()
        assert _wait(lambda: player.said("reconnected") and _playing(player, server), 60), player.lines
        took = player.interrupt()
        assert took < 2.0, (took, player.lines)
        assert player.proc.returncode == 0, player.lines
    finally:
        player.close()


def test_ctrl_c_quits_at_once_while_the_server_is_gone(server):
    player = Player(server)
    try:
        assert _wait(lambda: player.said("Ctrl-C to stop") and _playing(player, server), 60), player.lines
        server.kill(signal.SIGTERM)
        assert _wait(lambda: player.said("audio server", "gone"), 5), player.lines
        took = player.interrupt()
        assert took < 2.0, (took, player.lines)
        assert player.proc.returncode == 0, player.lines
    finally:
        player.close()
