"""MIDI input: a robust byte parser, python-rtmidi ports (virtual input + named keyboards) and hot-plug.

Events are small tuples ``(kind, a, b)``; the audio callback pulls them from rtmidi's lock-free queues itself at the
start of each block (``MidiInput.drain``), so no thread of ours ever touches them on the way:

- ``(NOTE_ON, pitch, velocity)`` with velocity 1-127 (a note-on with velocity 0 becomes NOTE_OFF)
- ``(NOTE_OFF, pitch, 0)``
- ``(SUSTAIN, on, 0)`` from CC64 (on when value >= 64)
- ``(BEND, semitones, 0)`` from pitch bend, scaled to +-``bend_range`` semitones (default 2)
- ``(ALL_NOTES_OFF, 0, 0)`` from CC123 (and CC124-127, which imply it), ``(ALL_SOUND_OFF, 0, 0)`` from CC120
- ``(CONTROL, cc, value)`` from every other CC (pad X/Y and mod wheel bindings, see ``synth.engine.cc_control``)
- ``(PROGRAM, program, 0)`` from program change (selects a preset)

The parser takes raw bytes, so it copes with whatever arrives: running status, several messages in one packet,
real-time bytes interleaved (ignored), sysex (skipped up to F7), truncated messages and stray data bytes (dropped).
Channel filter: ``channel=None`` (omni, the default) or 0-15.

Transport fault handled here: rtmidi's JACK input holds back every event after an unterminated SysEx start (F0
without F7) until some later event ends with F7, so one junk F0 from a keyboard held back the note-offs and CC123
behind it (a stuck note nothing could stop). ``MidiInput`` therefore feeds each of its JACK input ports a lone F7
every ``SYSEX_FLUSH_INTERVAL`` seconds from a small output client of its own: the held stretch is released within
that time and the parser recovers every message in it (any status byte ends a SysEx); with nothing held, the F7
arrives alone and is dropped. Real-time bytes (F8-FF) may sit anywhere, inside a SysEx too, and change nothing.

Unplug: each parser remembers which notes its device holds (and its pedal); when a keyboard disappears (or is
disconnected), note-offs for them (and pedal up) are played, so a key held at unplug does not sound forever.

Ports: with a JACK server running, rtmidi's JACK API is used (that is also what the test bus and the benchmark run
on); otherwise the platform default (ALSA on Linux, CoreMIDI, WinMM). ``MidiInput`` always opens a virtual input port
(``<client>:midi_in``) that a keyboard or DAW can connect to, and can also connect to keyboards by name; a poller
thread notices when a named keyboard disappears and reconnects it when it comes back (hot-plug without a restart).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import threading
import time
from collections import deque
from typing import Callable, Iterable

NOTE_ON, NOTE_OFF, SUSTAIN, BEND, ALL_NOTES_OFF, ALL_SOUND_OFF, CONTROL, PROGRAM = range(8)
EVENT_NAMES = ("note_on", "note_off", "sustain", "bend", "all_notes_off", "all_sound_off", "control", "program")

Event = tuple[int, float, int]

# data bytes that follow each channel-voice status (high nibble)
_DATA_LEN = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
# system common: data bytes after F1..F7 (F4/F5 undefined, F7 ends sysex)
_SYS_LEN = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF4: 0, 0xF5: 0, 0xF6: 0, 0xF7: 0}
_NO_NOTES = bytes(128)
# how often each JACK input gets a lone F7 that releases events rtmidi holds back after an unterminated SysEx
SYSEX_FLUSH_INTERVAL = 0.05


class MidiParser:
    """Stateful MIDI byte-stream parser -> engine events (see module docstring). One per input source."""

    def __init__(self, channel: int | None = None, bend_range: float = 2.0) -> None:
        self.channel = channel
        self.bend_range = float(bend_range)
        self._status = 0  # running status (0: none)
        self._data: list[int] = []
        self._in_sysex = False
        # what this source holds down, for release_events() at unplug (a bytearray: updating it allocates nothing)
        self._held = bytearray(128)
        self._pedal = False
        self._bent = False

    def reset(self) -> None:
        """Forget a half-read message (the held notes stay: they are still down on the device)."""
        self._status, self._data, self._in_sysex = 0, [], False

    def release_events(self) -> list[Event]:
        """Events that let go of everything this source holds (note-offs, pedal up, bend centred) and forget it:
        played when its device is unplugged, so a key that was down then does not sound forever."""
        events: list[Event] = [(NOTE_OFF, pitch, 0) for pitch in range(128) if self._held[pitch]]
        if self._pedal:
            events.append((SUSTAIN, 0, 0))
        if self._bent:
            events.append((BEND, 0.0, 0))
        self._held[:] = _NO_NOTES
        self._pedal = self._bent = False
        return events

    def _remember(self, event: Event) -> None:
        kind, a, _ = event
        if kind == NOTE_ON:
            self._held[a] = 1
        elif kind == NOTE_OFF:
            self._held[a] = 0
        elif kind == SUSTAIN:
            self._pedal = bool(a)
        elif kind == BEND:
            self._bent = a != 0.0
        elif kind in (ALL_NOTES_OFF, ALL_SOUND_OFF):
            self._held[:] = _NO_NOTES

    def feed(self, data: Iterable[int]) -> list[Event]:
        events: list[Event] = []
        for byte in data:
            try:
                byte = int(byte) & 0xFF
            except (TypeError, ValueError):
                continue
            if byte >= 0xF8:  # real-time (clock, start, active sensing...): may interleave anywhere; ignore
                continue
            if byte == 0xF0:
                self._in_sysex, self._status, self._data = True, 0, []
                continue
            if byte >= 0x80:
                self._in_sysex = False
                self._data = []
                # system common cancels running status; its own data bytes are swallowed by _status 0xF?
                self._status = byte
                if byte >= 0xF0 and _SYS_LEN.get(byte, 0) == 0:
                    self._status = 0
                continue
            if self._in_sysex or self._status == 0:
                continue  # sysex payload or a stray data byte without a status: drop
            self._data.append(byte)
            status = self._status
            need = _DATA_LEN.get(status & 0xF0) if status < 0xF0 else _SYS_LEN.get(status, 0)
            if need is None or len(self._data) < need:
                continue
            data_bytes, self._data = self._data, []
            if status >= 0xF0:
                self._status = 0  # system common has no running status
                continue
            event = self._decode(status, data_bytes)
            if event is not None:
                self._remember(event)
                events.append(event)
        return events

    def feed_message(self, message: Iterable[int]) -> list[Event]:
        """One complete message as rtmidi delivers it; a truncated one must not leak into the next, so partial
        data is dropped at the end (running status is kept)."""
        events = self.feed(message)
        self._data = []
        self._in_sysex = False
        return events

    def _decode(self, status: int, data: list[int]) -> Event | None:
        kind, channel = status & 0xF0, status & 0x0F
        if self.channel is not None and channel != self.channel:
            return None
        if kind == 0x90:
            return (NOTE_ON, data[0], data[1]) if data[1] > 0 else (NOTE_OFF, data[0], 0)
        if kind == 0x80:
            return (NOTE_OFF, data[0], 0)
        if kind == 0xE0:
            value = (data[0] | (data[1] << 7)) - 8192  # -8192..8191
            return (BEND, value / (8192.0 if value < 0 else 8191.0) * self.bend_range, 0)
        if kind == 0xB0:
            cc, value = data
            if cc == 64:
                return (SUSTAIN, 1 if value >= 64 else 0, 0)
            if cc == 120:
                return (ALL_SOUND_OFF, 0, 0)
            if cc in (123, 124, 125, 126, 127):  # all notes off; omni/mono/poly mode changes imply it
                return (ALL_NOTES_OFF, 0, 0)
            return (CONTROL, cc, value)
        if kind == 0xC0:
            return (PROGRAM, data[0], 0)
        return None  # aftertouch: not used by this instrument


# ---------------------------------------------------------------------------------------------------- ports
_jack_lib: ctypes.CDLL | None = None


def jack_server_running() -> bool:
    """True when a JACK server answers (checked through libjack with JackNoStartServer, so none is spawned)."""
    global _jack_lib
    try:
        if _jack_lib is None:
            name = ctypes.util.find_library("jack")
            if name is None:
                return False
            _jack_lib = ctypes.CDLL(name)
            _jack_lib.jack_client_open.restype = ctypes.c_void_p
            _jack_lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            _jack_lib.jack_client_close.argtypes = [ctypes.c_void_p]
        status = ctypes.c_int(0)
        client = _jack_lib.jack_client_open(b"pgesam-probe", 0x01, ctypes.byref(status))  # JackNoStartServer
        if not client:
            return False
        _jack_lib.jack_client_close(client)
        return True
    except OSError:
        return False


def default_api() -> int:
    import rtmidi

    if rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api() and jack_server_running():
        return rtmidi.API_UNIX_JACK
    return rtmidi.API_UNSPECIFIED


def list_input_ports(api: int | None = None) -> list[str]:
    """Names of the MIDI output ports of other programs/devices that we can read from."""
    import rtmidi

    probe = rtmidi.MidiIn(default_api() if api is None else api, name="pgesam-list")
    try:
        return list(probe.get_ports())
    finally:
        probe.delete()


def _match(ports: list[str], name: str) -> int | None:
    """Index of the port called ``name``: exact first, then a port ending with or containing it."""
    for test in (lambda p: p == name, lambda p: p.endswith(name), lambda p: name in p):
        for i, p in enumerate(ports):
            if test(p):
                return i
    return None


class _SysexFlusher:
    """Feeds a lone F7 to each of our JACK input ports every ``SYSEX_FLUSH_INTERVAL`` seconds (module docstring):
    rtmidi's JACK input releases what it held back after an unterminated SysEx at the next event that ends with F7."""

    _names = itertools.count()

    def __init__(self, rtmidi, api: int, client_name: str) -> None:
        self._rtmidi, self._api, self._client = rtmidi, api, client_name
        self._outs: dict[str, object] = {}  # our input port -> the MidiOut connected to it
        self._lock = threading.Lock()  # sends vs. opening/closing (an rtmidi object must not be used while deleted)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, port: str) -> None:
        out = self._rtmidi.MidiOut(self._api, name=f"{self._client}-flush{next(self._names)}")
        try:
            out.open_port(list(out.get_ports()).index(port), name="sysex_flush")
        except Exception:  # the port is not there (renamed by the server?): that input just goes unflushed
            out.delete()
            return
        with self._lock:
            self._outs[port] = out
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="midi-sysex-flush", daemon=True)
            self._thread.start()

    def remove(self, port: str | None) -> None:
        with self._lock:
            out = self._outs.pop(port, None)
            if out is not None:
                _delete_quietly(out)

    def _run(self) -> None:
        while not self._stop.wait(SYSEX_FLUSH_INTERVAL):
            with self._lock:
                for out in self._outs.values():
                    try:
                        out.send_message([0xF7])
                    except Exception:  # a port of a dead server: nothing to flush
                        pass

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        for port in list(self._outs):
            self.remove(port)


def _delete_quietly(port) -> None:
    try:
        port.close_port()
        port.delete()
    except Exception:
        pass


class MidiInput:
    """The engine's MIDI input: a virtual port plus keyboards opened by name. Nothing is pushed from rtmidi's
    threads: the audio callback pulls every waiting message with ``drain`` at the start of each block."""

    def __init__(self, *, client_name: str = "pgesam", port_name: str = "midi_in",
                 channel: int | None = None, bend_range: float = 2.0, api: int | None = None,
                 virtual: bool = True, poll_interval: float = 0.25) -> None:
        import rtmidi

        self._rtmidi = rtmidi
        self.client_name = client_name
        self.api = default_api() if api is None else api
        self.channel = channel
        self.bend_range = bend_range
        self.poll_interval = poll_interval
        self._parsers: list[MidiParser] = []
        self._parser_of: dict[int, MidiParser] = {}
        # (MidiIn, parser) pairs that drain() reads; replaced as a whole (atomic reference swap), never mutated
        self._active: tuple = ()
        self._drains = 0
        self._virtual = None
        self._wanted: dict[str, object | None] = {}  # keyboard name -> open MidiIn (None while unplugged)
        self._lock = threading.Lock()  # guards _wanted between the poller and API calls (never the audio thread)
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.reconnects = 0
        # release events of unplugged keyboards, played by the next drain() (a deque: no lock needed)
        self._pending: deque = deque()
        self._own_port: dict[int, str] = {}  # id(MidiIn) -> its JACK input port, for the SysEx flusher
        jack = self.api == rtmidi.API_UNIX_JACK
        self._flusher = _SysexFlusher(rtmidi, self.api, client_name) if jack else None
        self.virtual_port_name = f"{client_name}:{port_name}" if virtual else None
        if virtual:
            self._virtual = self._new_midi_in(f"{client_name}")
            self._virtual.open_virtual_port(port_name)
            self._publish(self._virtual, add=True)
            self._flush_sysex_of(self._virtual, self.virtual_port_name)

    # -------------------------------------------------------------------------------------- settings
    def set_channel(self, channel: int | None) -> None:
        self.channel = channel
        for p in self._parsers:
            p.channel = channel

    def set_bend_range(self, semitones: float) -> None:
        self.bend_range = float(semitones)
        for p in self._parsers:
            p.bend_range = self.bend_range

    def set_virtual_enabled(self, on: bool) -> None:
        """Play (or ignore) what arrives at our virtual port: MIDI input "None" must mean no input at all, yet the
        port stays open so a DAW's connection to it survives switching back. Called from the GUI, never the audio
        thread; the drain reads ``_active`` as a snapshot, so swapping it is all the audio thread sees."""
        virtual = self._virtual
        if virtual is None or on == any(pair[0] is virtual for pair in self._active):
            return
        if on:
            while virtual.get_message() is not None:  # what came while ignored is stale: do not play it now
                pass
            self._publish(virtual, add=True)
            return
        self._publish(virtual, add=False)
        self._wait_for_drain()
        parser = self._parser_of.get(id(virtual))
        if parser is not None:  # keys held through the virtual port when it went silent must not hang
            self._deliver(parser.release_events())

    @property
    def virtual_enabled(self) -> bool:
        return self._virtual is not None and any(pair[0] is self._virtual for pair in self._active)

    def _wait_for_drain(self) -> None:
        """Let a drain() that may still hold the old ``_active`` tuple finish."""
        seen = self._drains
        deadline = time.monotonic() + 0.5
        while self._drains == seen and time.monotonic() < deadline:
            time.sleep(0.002)

    # -------------------------------------------------------------------------------------- ports
    def _new_midi_in(self, name: str):
        midi_in = self._rtmidi.MidiIn(self.api, name=name)
        # SysEx is NOT filtered by rtmidi: its JACK backend treats every event after an unterminated F0 as SysEx
        # continuation until some event ends with F7, so with its filter on, note-offs in that stretch would be
        # lost (stuck notes). Unfiltered, such a stretch arrives as one blob and our parser recovers the channel
        # messages inside it (any status byte ends a SysEx).
        midi_in.ignore_types(sysex=False, timing=True, active_sense=True)
        parser = MidiParser(self.channel, self.bend_range)
        self._parsers.append(parser)
        self._parser_of[id(midi_in)] = parser
        return midi_in

    def _publish(self, midi_in, add: bool) -> None:
        with self._lock:
            rest = tuple(pair for pair in self._active if pair[0] is not midi_in)
            parser = self._parser_of.get(id(midi_in))
            self._active = rest + ((midi_in, parser),) if add and parser is not None else rest

    def drain(self, sink: Callable[[Event], None]) -> None:
        """Parse every message waiting in rtmidi's queues and hand the events to ``sink``.

        Called by the engine at the start of each audio block, so an event that arrived during the previous JACK
        cycle is played in this one (a callback thread would add a thread hop and often a whole period). rtmidi's
        queue is a lock-free ring; with no input waiting this allocates nothing."""
        pending = self._pending
        while pending:
            try:
                sink(pending.popleft())
            except IndexError:
                break
        for midi_in, parser in self._active:  # a tuple snapshot: the hot-plug thread swaps it, never mutates it
            try:
                while True:
                    msg = midi_in.get_message()
                    if msg is None:
                        break
                    for ev in parser.feed_message(msg[0]):
                        sink(ev)
            except Exception:  # never let a bad message or a closing port reach the audio callback
                parser.reset()
        self._drains += 1

    def ports(self) -> list[str]:
        """Ports we could connect to (our own virtual port excluded)."""
        probe = self._rtmidi.MidiIn(self.api, name=f"{self.client_name}-list")
        try:
            names = list(probe.get_ports())
        finally:
            probe.delete()
        own = self.virtual_port_name
        return [n for n in names if n != own and not n.startswith(f"{self.client_name}")]

    def connect(self, name: str, *, required: bool = True) -> bool:
        """Connect to the keyboard port called ``name`` (exact or a suffix/substring) and keep it connected:
        if it disappears, the poller reconnects it when it comes back. Raises LookupError when it does not exist
        now and ``required``; otherwise it is connected as soon as it appears."""
        with self._lock:
            self._wanted.setdefault(name, None)
        ok = self._try_open(name)
        if not ok and required:
            with self._lock:
                self._wanted.pop(name, None)
            raise LookupError(f"MIDI port {name!r} not found; available: {self.ports()}")
        self._ensure_poller()
        return ok

    def disconnect(self, name: str) -> None:
        """Stop reading keyboard ``name``; notes it holds are released."""
        with self._lock:
            midi_in = self._wanted.pop(name, None)
        if midi_in is not None:
            self._close(midi_in, release=True)

    @property
    def connected(self) -> dict[str, bool]:
        with self._lock:
            return {name: m is not None for name, m in self._wanted.items()}

    def _try_open(self, name: str) -> bool:
        probe_names = self._rtmidi.MidiIn(self.api, name=f"{self.client_name}-list")
        try:
            ports = list(probe_names.get_ports())
        finally:
            probe_names.delete()
        index = _match(ports, name)
        if index is None:
            return False
        client = f"{self.client_name}-in{len(self._parsers)}"
        midi_in = self._new_midi_in(client)
        try:
            # the port list may have changed since the probe: re-resolve on the object that opens it
            ports = list(midi_in.get_ports())
            index = _match(ports, name)
            if index is None:
                raise OSError("port vanished")
            midi_in.open_port(index, name="in")
        except Exception:
            self._close(midi_in)
            return False
        self._flush_sysex_of(midi_in, f"{client}:in")
        with self._lock:
            if name in self._wanted:
                old = self._wanted[name]
                self._wanted[name] = midi_in
            else:
                old = midi_in
        if old is not midi_in:
            self._publish(midi_in, add=True)
        if old is not None and old is not midi_in:
            self._close(old)
        return True

    def _flush_sysex_of(self, midi_in, port: str) -> None:
        if self._flusher is not None:
            self._own_port[id(midi_in)] = port
            self._flusher.add(port)

    def _deliver(self, events: list[Event]) -> None:
        """Events made here rather than read from a port (the release of an unplugged keyboard)."""
        for ev in events:
            self._pending.append(ev)  # drain() hands them to the engine, in the audio thread like any other

    def _close(self, midi_in, release: bool = False, wait: bool = True) -> None:
        """Close one input. ``release``: play note-offs for what its device still holds. ``wait`` False when no
        drain() will come any more (audio stopped or its server died): then there is nothing to wait for."""
        if any(pair[0] is midi_in for pair in self._active):
            self._publish(midi_in, add=False)
            if wait:  # let a drain() that may still hold the old tuple finish before the port goes
                self._wait_for_drain()
        parser = self._parser_of.pop(id(midi_in), None)
        if self._flusher is not None:
            self._flusher.remove(self._own_port.pop(id(midi_in), None))
        _delete_quietly(midi_in)
        if parser in self._parsers:
            self._parsers.remove(parser)
        if release and parser is not None:  # no thread reads this parser any more
            self._deliver(parser.release_events())

    def _ensure_poller(self) -> None:
        if self._poller is None or not self._poller.is_alive():
            self._stop.clear()
            self._poller = threading.Thread(target=self._poll, name="midi-hotplug", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        """Hot-plug: a wanted keyboard whose port vanished is marked lost and reopened when it reappears."""
        probe = self._rtmidi.MidiIn(self.api, name=f"{self.client_name}-poll")
        try:
            while not self._stop.wait(self.poll_interval):
                try:
                    ports = list(probe.get_ports())
                except Exception:
                    continue
                with self._lock:
                    wanted = list(self._wanted.items())
                for name, midi_in in wanted:
                    present = _match(ports, name) is not None
                    if midi_in is not None and not present:
                        with self._lock:
                            if self._wanted.get(name) is midi_in:
                                self._wanted[name] = None
                        self._close(midi_in, release=True)  # unplugged: keys it held must not sound forever
                    elif midi_in is None and present:
                        if self._try_open(name):
                            self.reconnects += 1
        finally:
            probe.delete()

    def close(self, wait: bool = True) -> None:
        """Close every port. ``wait`` False when the audio callback no longer runs (see ``_close``)."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.close()
        if self._poller is not None:
            self._poller.join(timeout=2.0)
        with self._lock:
            opened = [m for m in self._wanted.values() if m is not None]
            self._wanted.clear()
        for m in opened:
            self._close(m, wait=wait)
        if self._virtual is not None:
            self._close(self._virtual, wait=wait)
            self._virtual = None


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
