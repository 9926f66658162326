"""The audio host: the audio callback, MIDI input, mixer and limiter in a process of their own (issue 19).

Why: the callback is Python, so it needs the interpreter lock each block. In the app's process it shares that lock
with the window (Qt painting, pyqtgraph), the generation worker and the preview decoder. When the machine is busy
(a training run on the other core), the thread holding the lock gets preempted and the callback waits for it:
``synth bench app`` recorded underflows after 10-13 ms waits at 512 frames, while a C client on the same JACK server
beside the same load had none. Here the callback's interpreter belongs to this small process, whose other threads
only wake to apply a message (a note event, a new note buffer) for well under a millisecond.

How: ``AudioHost`` starts ``python -m synth.engine.audio_host`` and accepts three connections on a local socket
(``synth.engine.child``):

- ``control``: calls from the app with a reply (meters, MIDI ports, settings, stop); the first message is the
  configuration, the reply says whether MIDI and audio opened (or which failed, with the exception's type).
- ``feed``: the app to the host, no replies: note events in order, note buffers (each audio array once, by token)
  and which buffer each slot plays. The app's slots are ``MirroredSlot``s: assigning ``slot.buffer`` (what the
  generation worker does) queues the slot, and the feed thread sends its newest buffer.
- ``report``: the host to the app every ``REPORT_INTERVAL``: the MIDI events the callback played (for the worker's
  priorities), the CC values and counts and the last program change (for MIDI learn and preset switching).

The host exits when the app's ends close (the app died or stopped it). ``Engine(audio_process=True)`` uses it; the
app and ``synth play`` do by default (``SYNTH_AUDIO_PROCESS=0`` keeps the callback in the app's process).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import numpy as np

from synth.engine.audio_io import AudioDeviceError
from synth.engine.block import BlockRenderer
from synth.engine.buffers import BufferSlot, NoteBuffer
from synth.engine.child import close_all, connect_back, kill, spawn_connected, wait_or_kill

CHANNELS = ("control", "feed", "report")
KEY_ENV = "SYNTH_AUDIO_HOST_KEY"
REPORT_INTERVAL = 0.005  # s between the host's reports of played MIDI events and CC changes
RETIRE_SECONDS = 0.25  # s a replaced note buffer stays referenced here (see _Host.retired)
SNAPSHOT_TTL = 0.005  # s a counter snapshot answers property reads (one call serves a meter refresh's reads)
ENV = "SYNTH_AUDIO_PROCESS"

# exception types a failure in the host is raised as in the app (by name); anything else becomes HostError
_ERRORS = {"AudioDeviceError": AudioDeviceError, "LookupError": LookupError, "ValueError": ValueError,
           "TypeError": TypeError, "OSError": OSError, "RuntimeError": RuntimeError}
_AUDIO_CALLS = ("gil_wait_stats", "gil_waits_ms", "xrun_context")
_MIDI_CALLS = ("connect", "disconnect", "ports", "set_virtual_enabled", "set_channel", "set_bend_range")
_MIDI_READINGS = ("connected", "reconnects", "virtual_enabled")


class HostError(RuntimeError):
    """The audio host failed or went away."""


def audio_process_default(default: bool) -> bool:
    """``SYNTH_AUDIO_PROCESS``: "1" runs the audio in its own process, "0" in the app's; unset gives ``default``."""
    value = os.environ.get(ENV, "").strip()
    if value == "":
        return bool(default)
    if value not in ("0", "1"):
        raise ValueError(f"{ENV} must be 0 or 1, got {value!r}")
    return value == "1"


@dataclass(eq=False)
class MirroredSlot(BufferSlot):
    """A ``BufferSlot`` whose new buffers are sent to the audio host: assigning ``buffer`` calls ``listener``."""

    layer: int = 0
    pitch: int = 0
    listener: Callable[["MirroredSlot"], None] | None = field(default=None, repr=False)

    def __setattr__(self, name: str, value) -> None:
        object.__setattr__(self, name, value)
        if name == "buffer":
            listener = self.__dict__.get("listener")
            if listener is not None:
                listener(self)


def _raise_remote(stage: str, kind: str, message: str):
    """Raise a failure reported by the host as its own type (by name), with ``audio_host_stage`` set to where it
    happened ("midi", "audio" at start; the call's name later)."""
    cls = _ERRORS.get(kind, HostError)
    exc = cls(message if cls is not HostError else f"audio host ({stage}): {kind}: {message}")
    exc.audio_host_stage = stage
    raise exc


class AudioHost:
    """The app's end of the audio host. ``audio`` and ``midi`` answer like ``AudioOutput`` and ``MidiInput``."""

    def __init__(self, config: dict, layer_slots: list[list[MirroredSlot]], mirror: BlockRenderer,
                 timeout: float = 60.0) -> None:
        self._slots = layer_slots
        self._mirror = mirror  # the app's BlockRenderer: the host's reports land in its seen deque and CC stores
        self._send_lock = threading.Lock()  # feed sends from the feed thread and from note events
        self._call_lock = threading.Lock()
        self._dirty: deque[MirroredSlot] = deque()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._sent: dict[int, np.ndarray] = {}  # token -> audio array the host holds (kept alive: ids stay unique)
        self._last: dict[tuple[int, int], NoteBuffer | None] = {}
        self._proc, self._conns = spawn_connected("synth.engine.audio_host", [], CHANNELS, KEY_ENV, timeout, HostError,
                                                  "the audio host")
        control = self._conns["control"]
        control.send(config)
        if not control.poll(timeout):
            self.close()
            raise HostError(f"the audio host did not open audio in {timeout:.0f} s")
        reply = control.recv()
        if reply[0] != "ok":
            _, stage, kind, message = reply
            self.close()
            _raise_remote(stage, kind, message)
        info = reply[1]
        self.audio = RemoteAudio(self, info)
        self.midi = RemoteMidi(self, info["midi_port"]) if info["midi_port"] else None
        for layer in layer_slots:
            for slot in layer:
                slot.listener = self._slot_changed
                if slot.buffer is not None:
                    self._dirty.append(slot)
        self._wake.set()
        for target, name in ((self._feed_loop, "audio-host-feed"), (self._report_loop, "audio-host-report")):
            threading.Thread(target=target, name=name, daemon=True).start()

    # ------------------------------------------------------------------------------------------ app -> host
    def post(self, event) -> None:
        """A note event for the host's next block (in order with the buffers sent before it)."""
        self._feed(("ev", tuple(event)))

    def _feed(self, message) -> None:
        conn = self._conns.get("feed")
        if conn is None:
            return
        with self._send_lock:
            try:
                conn.send(message)
            except (OSError, ValueError):  # the host is gone: audio_lost() says so, nothing to deliver
                pass

    def _slot_changed(self, slot: MirroredSlot) -> None:
        self._dirty.append(slot)
        self._wake.set()

    def _feed_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            pending: dict[tuple[int, int], MirroredSlot] = {}
            while self._dirty:
                slot = self._dirty.popleft()
                pending[(slot.layer, slot.pitch)] = slot  # only the newest buffer of a slot matters
            for where, slot in pending.items():
                self._send_slot(where, slot.buffer)
            self._prune()

    def _send_slot(self, where: tuple[int, int], buffer: NoteBuffer | None) -> None:
        if where in self._last and self._last[where] is buffer:
            return
        self._last[where] = buffer
        if buffer is None:
            self._feed(("slot", where[0], where[1], None, None))
            return
        token = id(buffer.data)
        if token not in self._sent:
            self._sent[token] = buffer.data
            self._feed(("buf", token, buffer.data))
        meta = (buffer.sample_rate, buffer.pitch, buffer.length, buffer.loop_start, buffer.loop_end,
                buffer.loop_gain, buffer.level)
        self._feed(("slot", where[0], where[1], token, meta))

    def _prune(self) -> None:
        """Tell the host to forget audio no slot plays any more (voices still playing it keep their reference, and
        the host keeps replaced buffers a moment): during a drag every preview is new audio, ~0.8 MB a note, which
        would otherwise pile up here and there."""
        live = {id(b.data) for b in self._last.values() if b is not None}
        if len(self._sent) <= len(live):
            return
        for token in [t for t in self._sent if t not in live]:
            del self._sent[token]
            self._feed(("drop", token))

    def call(self, method: str, *args, timeout: float | None = None):
        """A call answered by the host (HostError when it is gone, or gives no answer within ``timeout`` s)."""
        conn = self._conns.get("control")
        if conn is None:
            raise HostError("the audio host is closed")
        with self._call_lock:
            try:
                conn.send((method, args))
                if timeout is not None and not conn.poll(timeout):
                    raise HostError(f"the audio host did not answer {method!r} in {timeout:.0f} s")
                reply = conn.recv()
            except (EOFError, OSError, ValueError) as exc:
                raise HostError(f"the audio host went away ({exc})") from None
        if reply[0] != "ok":
            _raise_remote(method, reply[2], reply[3])
        return reply[1]

    # ------------------------------------------------------------------------------------------ host -> app
    def _report_loop(self) -> None:
        conn, mirror = self._conns["report"], self._mirror
        while True:
            try:
                kind, *payload = conn.recv()
            except (EOFError, OSError):
                return
            if kind == "seen":
                mirror.seen.extend(payload[0])
            elif kind == "cc":
                values, counts, program = payload
                mirror.cc_values[:] = values
                mirror.program = program
                mirror.cc_counts[:] = counts  # last: a poll that sees the new count finds the new value

    # ------------------------------------------------------------------------------------------ life cycle
    def alive(self) -> bool:
        return self._proc.poll() is None and bool(self._conns)

    def close(self) -> None:
        """Stop the host's audio and MIDI (it closes them in order) and wait for it to exit."""
        if self._conns.get("control") is not None and self._proc.poll() is None:
            try:
                self.call("stop", timeout=10.0)
            except Exception:  # noqa: BLE001 - a host that cannot stop cleanly is killed below
                pass
        self._disconnect()
        wait_or_kill(self._proc, 10.0)

    def abandon(self) -> None:
        """The host's server died: it drops its stream without calling into it and exits (see audio_io)."""
        if self._conns.get("control") is not None and self._proc.poll() is None:
            try:
                self.call("abandon", timeout=5.0)
            except Exception:  # noqa: BLE001 - it exits right after replying, or is gone already
                pass
        self._disconnect()
        wait_or_kill(self._proc, 5.0)

    def _disconnect(self) -> None:
        self._closed.set()
        self._wake.set()
        for slot in (s for layer in self._slots for s in layer):
            slot.listener = None
        conns, self._conns = self._conns, {}
        with self._send_lock:
            close_all(conns)

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            kill(proc)


class RemoteAudio:
    """``AudioOutput``'s readings for a stream that runs in the audio host (counters from a short-lived snapshot)."""

    def __init__(self, host: AudioHost, info: dict) -> None:
        self._host = host
        self.sample_rate = int(info["sample_rate"])
        self.block_size = int(info["block_size"])
        self.channels = int(info["channels"])
        self._latency = float(info["latency"])
        self.realtime = bool(info.get("realtime", False))  # the host's other threads run real-time (see the host)
        self._hostapi = str(info["hostapi"])
        self.stream = SimpleNamespace(device=info["device"])
        self._snap: dict = {}
        self._snap_at = -1.0

    def snapshot(self) -> dict:
        now = time.monotonic()
        if now - self._snap_at > SNAPSHOT_TTL:
            try:
                self._snap = self._host.call("snapshot")
            except HostError:
                self._snap = {**self._snap, "alive": False}
            self._snap_at = now
        return self._snap

    def _read(self, name: str, default=0):
        return self.snapshot().get(name, default)

    xruns = property(lambda self: int(self._read("xruns")))
    errors = property(lambda self: int(self._read("errors")))
    callbacks = property(lambda self: int(self._read("callbacks")))
    load = property(lambda self: float(self._read("load", 0.0)))
    gil_count = property(lambda self: int(self._read("gil_count")))
    blocks_heard = property(lambda self: int(self._read("blocks")))
    max_rms = property(lambda self: float(self._read("max_rms", 0.0)))

    @property
    def max_load(self) -> float:
        return float(self._read("max_load", 0.0))

    @max_load.setter
    def max_load(self, value: float) -> None:
        self._host.call("reset_max", "max_load", float(value))
        self._snap_at = -1.0

    @property
    def max_gil_wait(self) -> float:
        return float(self._read("max_gil_wait", 0.0))

    @max_gil_wait.setter
    def max_gil_wait(self, value: float) -> None:
        self._host.call("reset_max", "max_gil_wait", float(value))
        self._snap_at = -1.0

    @property
    def latency(self) -> float:
        return self._latency

    @property
    def hostapi(self) -> str:
        return self._hostapi

    def gil_wait_stats(self, since: int = 0) -> dict:
        return self._host.call("audio", "gil_wait_stats", since)

    def gil_waits_ms(self, since: int = 0, until: int | None = None) -> np.ndarray:
        return self._host.call("audio", "gil_waits_ms", since, until)

    def xrun_context(self, since: int = 0) -> list[dict]:
        return self._host.call("audio", "xrun_context", since)

    def alive(self) -> bool:
        return self._host.alive() and bool(self._read("alive", False))

    def start(self) -> None:  # the host started its stream before answering
        pass

    def stop(self) -> None:
        self._host.close()

    def abandon(self) -> None:
        self._host.abandon()


class RemoteMidi:
    """``MidiInput``'s API for the MIDI input the audio host owns (its callback drains it)."""

    def __init__(self, host: AudioHost, port_name: str) -> None:
        self._host = host
        self.virtual_port_name = port_name

    def connect(self, name: str, *, required: bool = True) -> bool:
        return bool(self._host.call("midi", "connect", name, required))

    def disconnect(self, name: str) -> None:
        self._host.call("midi", "disconnect", name)

    def ports(self) -> list[str]:
        return list(self._host.call("midi", "ports"))

    @property
    def connected(self) -> dict[str, bool]:
        """Each wanted port and whether it is connected now (False while unplugged)."""
        return dict(self._host.call("midi_read", "connected"))

    @property
    def reconnects(self) -> int:
        return int(self._host.call("midi_read", "reconnects"))

    @property
    def virtual_enabled(self) -> bool:
        return bool(self._host.call("midi_read", "virtual_enabled"))

    def set_virtual_enabled(self, on: bool) -> None:
        self._host.call("midi", "set_virtual_enabled", bool(on))

    def set_channel(self, channel: int | None) -> None:
        self._host.call("midi", "set_channel", channel)

    def set_bend_range(self, semitones: float) -> None:
        self._host.call("midi", "set_bend_range", float(semitones))

    def close(self, wait: bool = True) -> None:
        try:
            self._host.call("midi_close", bool(wait))
        except HostError:
            pass


# ---------------------------------------------------------------------------------------------------- the host
class _Host:
    """The host process's state: the block renderer, its stream and MIDI input, and the buffers the app sent."""

    def __init__(self, config: dict) -> None:
        slots = [[BufferSlot() for _ in range(128)] for _ in config["velocity_layers"]]
        self.block = BlockRenderer.create(config["sample_rate"], config["block_size"], config["channels"],
                                          config["max_voices"], config["velocity_layers"], config["settings"], slots)
        self.mixer, self.limiter = self.block.mixer, self.block.limiter
        self.audio_data: dict[int, np.ndarray] = {}
        # Buffers a slot no longer plays, kept RETIRE_SECONDS (voices move to the newest within a 30 ms crossfade) and
        # let go by the report thread: otherwise a voice dropping the last reference would free the audio (an munmap
        # of ~0.8 MB, which waits for the process's memory lock) inside the callback.
        self.retired: deque[tuple[float, NoteBuffer]] = deque()
        self.midi = None
        self.audio = None
        self.blocks = 0
        self.max_rms = 0.0

    def process_block(self, out: np.ndarray) -> None:
        self.block.process_block(out)
        self.blocks += 1
        rms = float(np.sqrt(np.vdot(out, out) / out.size))  # the loudest block (the app's smoke test reads it)
        if rms > self.max_rms:
            self.max_rms = rms

    def open(self, config: dict) -> dict:
        """MIDI first (the callback drains it from its first block), then audio. Raises with ``stage`` set."""
        from synth.engine.audio_io import AudioOutput
        from synth.engine.midi_io import MidiInput

        self.stage = "midi"
        if config["midi"]:
            self.midi = MidiInput(client_name=config["midi_client"], channel=config["settings"]["midi_channel"],
                                  bend_range=config["settings"]["bend_range"])
            self.block.midi = self.midi
        self.stage = "audio"
        self.audio = AudioOutput(self.process_block, device=config["device"], sample_rate=config["sample_rate"],
                                 block_size=config["block_size"], channels=config["channels"])
        self.audio.start()
        device = self.audio.stream.device
        return {"sample_rate": self.audio.sample_rate, "block_size": self.audio.block_size,
                "channels": self.audio.channels, "latency": self.audio.latency, "hostapi": self.audio.hostapi,
                "device": device[-1] if isinstance(device, (tuple, list)) else device,
                "midi_port": self.midi.virtual_port_name if self.midi is not None else None}

    # ------------------------------------------------------------------------------------------ feed
    def apply(self, message: tuple) -> None:
        kind = message[0]
        if kind == "ev":
            self.block.events.append(message[1])
        elif kind == "buf":
            self.audio_data[message[1]] = message[2]
        elif kind == "slot":
            _, layer, pitch, token, meta = message
            slot = self.block.layer_slots[layer][pitch]
            if slot.buffer is not None:
                self.retired.append((time.monotonic(), slot.buffer))
            if token is None:
                slot.buffer = None
                return
            rate, note, length, loop_start, loop_end, loop_gain, level = meta
            slot.buffer = NoteBuffer(data=self.audio_data[token], sample_rate=rate, pitch=note, length=length,
                                     loop_start=loop_start, loop_end=loop_end, loop_gain=loop_gain, level=level)
        elif kind == "drop":
            self.audio_data.pop(message[1], None)

    # ------------------------------------------------------------------------------------------ control
    def answer(self, method: str, args: tuple):
        audio = self.audio
        if method == "snapshot":
            return {"xruns": audio.xruns, "errors": audio.errors, "callbacks": audio.callbacks, "load": audio.load,
                    "max_load": audio.max_load, "max_gil_wait": audio.max_gil_wait, "gil_count": audio.gil_count,
                    "alive": audio.alive(), "blocks": self.blocks, "max_rms": self.max_rms}
        if method == "levels":
            if args[0]:
                peak, reduction = self.limiter.reset_peak()
            else:
                peak, reduction = self.limiter.peak, 1.0
            return {"peak": peak, "reduction": reduction, "voices": self.mixer.active_voices,
                    "bad_blocks": self.limiter.bad_blocks}
        if method == "audio" and args[0] in _AUDIO_CALLS:
            return getattr(audio, args[0])(*args[1:])
        if method == "reset_max" and args[0] in ("max_load", "max_gil_wait"):
            setattr(audio, args[0], float(args[1]))
            return None
        if method == "midi" and args[0] in _MIDI_CALLS:
            if self.midi is None:
                raise RuntimeError("MIDI is not running in the audio host")
            if args[0] == "connect":  # ``required`` is keyword-only there
                return self.midi.connect(args[1], required=bool(args[2]))
            return getattr(self.midi, args[0])(*args[1:])
        if method == "midi_read" and args[0] in _MIDI_READINGS:
            if self.midi is None:
                raise RuntimeError("MIDI is not running in the audio host")
            value = getattr(self.midi, args[0])
            return dict(value) if isinstance(value, dict) else value
        if method == "settings":
            self.block.apply_settings(**args[0])
            return None
        if method == "midi_close":
            self.close_midi(bool(args[0]))
            return None
        raise ValueError(f"unknown audio host call {method!r}")

    def release_retired(self) -> None:
        """Let go of the buffers retired over RETIRE_SECONDS ago (in the report thread)."""
        limit = time.monotonic() - RETIRE_SECONDS
        retired = self.retired
        while retired and retired[0][0] < limit:
            try:
                retired.popleft()
            except IndexError:
                break

    def close_midi(self, wait: bool) -> None:
        midi, self.midi = self.midi, None
        if midi is not None:
            midi.close(wait=wait)
        self.block.midi = None


def _promote_to_realtime(priority: int = 1) -> bool:
    """Run this thread, and every thread it starts from now on (they inherit it), at the lowest real-time priority
    where the system allows it (where JACK may run real-time, e.g. the audio group's rtprio limit). Why: the callback
    (JACK's own real-time thread, a higher priority) needs this process's interpreter lock; when one of our other
    threads holds it for a moment and ordinary work preempts that thread, the callback waits for the preemption
    to end. ``bench app`` saw 10 ms once at 512 frames beside a training run. False where not allowed (then the
    threads run as ordinary ones)."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError:
        return False
    return True


def _reply_error(conn, stage: str, exc: BaseException) -> None:
    conn.send(("err", stage, type(exc).__name__, str(exc)[:2000]))


def _feed_loop(conn, host: _Host) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            os._exit(0)  # the app closed or died: the server drops our client when we go
        host.apply(message)


def _report_loop(conn, host: _Host) -> None:
    block = host.block
    counts = bytes(block.cc_counts)
    while True:
        time.sleep(REPORT_INTERVAL)
        host.release_retired()
        seen = []
        while block.seen:
            try:
                seen.append(block.seen.popleft())
            except IndexError:
                break
        try:
            if seen:
                conn.send(("seen", seen))
            now = bytes(block.cc_counts)
            if now != counts:
                counts = now
                conn.send(("cc", bytes(block.cc_values), now, block.program))
        except (OSError, ValueError):
            os._exit(0)


def _serve(conn, host: _Host) -> None:
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        if method == "stop":
            if host.audio.alive():
                host.close_midi(True)  # while the callback still drains it
                host.audio.stop()
            else:  # its server is gone: any call into the stream would wait forever (see audio_io)
                host.audio.abandon()
                host.close_midi(False)
            conn.send(("ok", None))
            os._exit(0)
        if method == "abandon":
            host.audio.abandon()
            host.close_midi(False)
            conn.send(("ok", None))
            os._exit(0)
        try:
            conn.send(("ok", host.answer(method, args)))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the host keeps playing
            _reply_error(conn, method, exc)


def _host_main(address: str) -> None:
    conns = connect_back(address, CHANNELS, KEY_ENV)
    config = conns["control"].recv()
    realtime = _promote_to_realtime()
    host = None
    try:
        host = _Host(config)
        info = host.open(config)
    except Exception as exc:  # noqa: BLE001 - the app raises it as the same type, naming the stage
        _reply_error(conns["control"], getattr(host, "stage", "setup"), exc)
        os._exit(1)
    # as in the app's process: a short switch interval bounds the callback's wait for this process's few other
    # threads, and what exists now is never collected (a full collection would walk it holding the lock)
    sys.setswitchinterval(0.001)
    gc.freeze()
    conns["control"].send(("ok", {**info, "realtime": realtime}))
    for target, name in ((_feed_loop, "feed"), (_report_loop, "report")):
        threading.Thread(target=target, args=(conns[name], host), name=f"host-{name}", daemon=True).start()
    _serve(conns["control"], host)


if __name__ == "__main__":
    _host_main(sys.argv[1])
