"""Audio output through sounddevice (PortAudio): device, sample rate and block size selectable, latency reported.

``sounddevice`` is imported lazily, on the first call here: PortAudio scans host APIs at import time, and on Linux a
JACK server must already be running then to be listed (see ../shared/notes/audio-midi-qt-on-ci.md).

Real-time constraints: the stream callback (``AudioOutput._callback``) calls the engine's ``render(out)``, which may
only mix preallocated buffers: no torch, no allocation, no logging, no blocking locks. Underflows reported by
PortAudio are counted (``xruns``); the callback's own duration is measured against the block's duration (``load``).

Losing the audio server (JACK killed or stopped): PortAudio marks the stream inactive (``alive()`` turns False), and
from then on every call that stops, aborts or closes that stream waits for a server that is gone (measured: over
20 s, effectively forever), and so does ``Pa_Terminate``. ``abandon()`` therefore drops such a stream without touching
it again; a program that lost its server leaves with ``os._exit`` (play_cli does). PortAudio also cannot rescan a
host API without ``Pa_Terminate``, so reconnecting means a fresh process (``synth play`` re-executes itself).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


class AudioDeviceError(RuntimeError):
    """The requested output device or setting does not exist or cannot be opened (message lists alternatives)."""


# underflow records kept per stream, and how many callbacks before each underflow are searched for its cause
XRUN_RECORDS = 256
XRUN_WINDOW = 4

# streams whose server died: kept referenced so that nothing (no finalizer, no GC) ever calls into them again
_ABANDONED: list = []


def list_output_devices() -> list[dict]:
    """Output devices as dicts (index, name, hostapi, channels, default_samplerate)."""
    import sounddevice as sd

    out = []
    for index, dev in enumerate(sd.query_devices()):
        if dev["max_output_channels"] > 0:
            out.append({"index": index, "name": dev["name"],
                        "hostapi": sd.query_hostapis(dev["hostapi"])["name"],
                        "channels": dev["max_output_channels"], "default_samplerate": dev["default_samplerate"]})
    return out


def resolve_device(device: int | str | None) -> int | None:
    """A device index for ``device`` (index, exact name, or a substring; "jack" picks the JACK host API's output);
    None means PortAudio's default, or the JACK output when a JACK server is running (so ``play`` just works there).
    Raises AudioDeviceError with the list of devices when nothing matches."""
    devices = list_output_devices()
    if not devices:
        raise AudioDeviceError("no audio output device found (PortAudio lists none). On Linux without a sound card "
                               "start a JACK server first (jackd -d dummy -r 48000) and then the program.")
    if device is None:
        from synth.engine.midi_io import jack_server_running

        if jack_server_running():
            for d in devices:
                if "JACK" in d["hostapi"]:
                    return d["index"]
        return None
    if isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        index = int(device)
        if any(d["index"] == index for d in devices):
            return index
    else:
        wanted = device.lower()
        for test in (lambda d: d["name"].lower() == wanted, lambda d: wanted in d["name"].lower(),
                     lambda d: wanted in d["hostapi"].lower()):
            for d in devices:
                if test(d):
                    return d["index"]
    names = ", ".join(f"{d['index']}: {d['name']} ({d['hostapi']})" for d in devices)
    raise AudioDeviceError(f"audio output device {device!r} not found; available: {names}")


class AudioOutput:
    """A running output stream that pulls blocks from ``render(out[frames, channels])``."""

    def __init__(self, render: Callable[[np.ndarray], None], *, device: int | str | None = None,
                 sample_rate: int = 48000, block_size: int = 512, channels: int = 2,
                 latency: str | float = "low") -> None:
        import sounddevice as sd

        self._render = render
        self.device = resolve_device(device)
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.channels = int(channels)
        self.xruns = 0
        self.errors = 0  # callbacks that raised (rendered as silence)
        self.callbacks = 0
        self.load = 0.0  # last callback duration / block duration
        self.max_load = 0.0
        # GIL wait (issue 19): PortAudio's stream time when our Python code starts, minus the time PortAudio stamped
        # when it invoked the callback (``time.currentTime``, the same clock). The gap is the time the callback
        # thread waited for the interpreter: on a JACK dummy server ~0.1 ms idle, ~5 ms (the switch interval) with
        # a pure-Python thread busy. Kept in a preallocated ring for percentiles (``gil_wait_stats``).
        self.gil_wait = 0.0
        self.max_gil_wait = 0.0
        self._gil_ring = np.zeros(8192, dtype=np.float64)
        self._gil_count = 0
        # each underflow's context (to tell the interpreter from the machine as its cause): the callback number, the
        # longest GIL wait and the highest load of the XRUN_WINDOW callbacks up to the flagged one (PortAudio flags
        # the callback after the late one). Preallocated; the first XRUN_RECORDS underflows are kept.
        self._load_ring = np.zeros(8192, dtype=np.float64)
        self._xrun_records = np.zeros((XRUN_RECORDS, 3), dtype=np.float64)
        self._block_seconds = self.block_size / self.sample_rate
        try:
            self.stream = sd.OutputStream(device=self.device, samplerate=self.sample_rate,
                                          blocksize=self.block_size, channels=self.channels, dtype="float32",
                                          latency=latency, callback=self._callback)
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot open audio output (device={device!r}, rate={sample_rate}, "
                                   f"block={block_size}): {exc}") from exc

    @property
    def latency(self) -> float:
        """Output latency in seconds as PortAudio reports it (buffering between our callback and the DAC)."""
        return float(self.stream.latency)

    def _callback(self, outdata: np.ndarray, frames: int, _time, status) -> None:
        t0 = time.perf_counter()
        try:
            wait = self.stream.time - _time.currentTime
        except Exception:  # a stream going away: no reading this block
            wait = 0.0
        self.gil_wait = wait
        if wait > self.max_gil_wait:
            self.max_gil_wait = wait
        self._gil_ring[self._gil_count & 8191] = wait
        self._gil_count += 1
        if status.output_underflow:
            if self.xruns < XRUN_RECORDS:
                self._record_xrun(self.xruns)
            self.xruns += 1
        try:
            self._render(outdata)
        except Exception:  # a bug must cost one silent block, not the stream (sounddevice would abort it)
            outdata.fill(0.0)
            self.errors += 1
        load = (time.perf_counter() - t0) / self._block_seconds
        self._load_ring[self.callbacks & 8191] = load
        self.callbacks += 1
        self.load = load
        if load > self.max_load:
            self.max_load = load

    def _record_xrun(self, row: int) -> None:
        """Called in the callback on an underflow: fills one preallocated row (no arrays made)."""
        wait, load = 0.0, 0.0
        for back in range(XRUN_WINDOW):
            if back < self._gil_count:
                wait = max(wait, float(self._gil_ring[(self._gil_count - 1 - back) & 8191]))
            if back < self.callbacks:
                load = max(load, float(self._load_ring[(self.callbacks - 1 - back) & 8191]))
        self._xrun_records[row, 0] = self.callbacks  # element stores: no view object made in the callback
        self._xrun_records[row, 1] = wait
        self._xrun_records[row, 2] = load

    def xrun_context(self, since: int = 0) -> list[dict]:
        """The recorded underflows from number ``since`` on (at most the first XRUN_RECORDS of the stream): callback
        number, the longest GIL wait (ms) and the highest callback load of the XRUN_WINDOW callbacks before each, and
        ``cause``: "interpreter" when that wait or the callback itself took over half a block, else "outside" (our
        callback was on time: the server, the scheduler or the machine was late)."""
        out = []
        half = 0.5 * self._block_seconds
        for row in range(since, min(self.xruns, XRUN_RECORDS)):
            callback, wait, load = (float(v) for v in self._xrun_records[row])
            late = wait > half or load > 0.5
            out.append({"callback": int(callback), "gil_wait_ms": round(1000 * wait, 3), "load": round(load, 3),
                        "cause": "interpreter" if late else "outside"})
        return out

    @property
    def gil_count(self) -> int:
        """Callbacks whose GIL wait was recorded so far (pass it as ``since`` to read only later ones)."""
        return self._gil_count

    def gil_waits_ms(self, since: int = 0, until: int | None = None) -> np.ndarray:
        """GIL wait (ms) of each callback from number ``since`` up to ``until`` (default: now; at most the 8192 before
        ``until``), oldest first. Reads the ring from another thread (values may be one block stale)."""
        count = self._gil_count if until is None else int(until)
        n = min(count - since, 8192)
        if n <= 0:
            return np.zeros(0)
        return 1000.0 * self._gil_ring[np.arange(count - n, count) & 8191]

    def gil_wait_stats(self, since: int = 0) -> dict:
        """GIL wait of the callbacks since callback number ``since`` (at most the last 8192): count, p50, p99,
        max in ms. Reads the ring from another thread (values may be one block stale)."""
        w = self.gil_waits_ms(since)
        n = len(w)
        if n <= 0:
            return {"callbacks": 0}
        return {"callbacks": int(n), "p50_ms": round(float(np.percentile(w, 50)), 3),
                "p99_ms": round(float(np.percentile(w, 99)), 3), "max_ms": round(float(w.max()), 3)}

    @property
    def hostapi(self) -> str:
        """Name of the host API the stream plays on (e.g. "JACK Audio Connection Kit", "ALSA")."""
        import sounddevice as sd

        try:
            return str(sd.query_hostapis(sd.query_devices(self.stream.device)["hostapi"])["name"])
        except Exception:
            return ""

    def alive(self) -> bool:
        """False once PortAudio has given up the running stream (its server died or its device vanished).
        Cheap and non-blocking: it reads the stream's active flag."""
        try:
            return bool(self.stream.active)
        except Exception:
            return False

    def start(self) -> None:
        self.stream.start()

    def abandon(self) -> None:
        """Forget a stream whose server is gone without calling into it (any stop or close would hang). Also takes
        sounddevice's exit handler off: its ``Pa_Terminate`` would hang the interpreter's exit on this stream."""
        import atexit

        import sounddevice as sd

        _ABANDONED.append(self.stream)
        handler = getattr(sd, "_exit_handler", None)
        if handler is not None:
            atexit.unregister(handler)

    def stop(self) -> None:
        try:
            self.stream.stop()
        finally:
            self.stream.close()
