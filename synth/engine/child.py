"""A helper process of the engine, connected back over a local socket: the generation process
(``synth.engine.remote_source``) and the audio host (``synth.engine.audio_host``) start and reach theirs alike.

The parent listens on a fresh address with a random auth key (``multiprocessing.connection``), starts ``python -m
<module> <address> ...`` with ``subprocess`` (not multiprocessing: spawning would import the app's ``__main__``
again) and the key in an environment variable, and accepts one connection per named channel; the child connects
once per channel and sends the channel's name first.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Client, Listener

FAMILY = "AF_UNIX" if os.name == "posix" else "AF_INET"


def spawn_connected(module: str, args: list[str], channels: tuple[str, ...], key_env: str, timeout: float,
                    error: type[Exception], label: str) -> tuple[subprocess.Popen, dict]:
    """Start ``module`` as a child and accept its ``channels``: (the process, {channel: connection}). Raises
    ``error`` naming ``label`` when the child exits first or does not connect within ``timeout`` s."""
    key = secrets.token_bytes(32)
    listener = Listener(family=FAMILY, authkey=key)
    env = dict(os.environ, **{key_env: key.hex()})
    proc = subprocess.Popen([sys.executable, "-m", module, str(listener.address), *args], env=env,
                            stdin=subprocess.DEVNULL)
    conns: dict = {}
    done = threading.Event()

    def accept() -> None:
        try:
            for _ in channels:
                conn = listener.accept()
                conns[conn.recv()] = conn
        except Exception:  # noqa: BLE001 - the child died before connecting: reported below
            pass
        done.set()

    threading.Thread(target=accept, name=f"{module.rsplit('.', 1)[-1]}-accept", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not done.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            break
    listener.close()
    if len(conns) != len(channels):
        for conn in conns.values():
            conn.close()
        kill(proc)
        status = proc.poll()
        raise error(f"{label} exited ({status})" if status is not None and status != -9 else f"{label} did not connect")
    return proc, conns


def connect_back(address: str, channels: tuple[str, ...], key_env: str) -> dict:
    """The child's side: one connection per channel, authenticated with the key its parent put in ``key_env``."""
    key = bytes.fromhex(os.environ.pop(key_env))
    conns = {}
    for name in channels:
        conn = Client(address, family=FAMILY, authkey=key)
        conn.send(name)
        conns[name] = conn
    return conns


def close_all(conns: dict) -> None:
    for conn in conns.values():
        try:
            conn.close()
        except OSError:
            pass


def kill(proc: subprocess.Popen) -> None:
    """Kill ``proc`` if it still runs and reap it."""
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            return
        proc.wait(timeout=5)


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> None:
    """Give ``proc`` ``timeout`` s to exit by itself, then kill it."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
