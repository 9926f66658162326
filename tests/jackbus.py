"""Test harness for the real audio/MIDI bus: a JACK recorder, a virtual MIDI keyboard, signal checks.

The test command (scripts/test.sh) starts ``jackd -d dummy -r 48000 -p 1024`` before pytest, so these are real
JACK clients and ports. Blocks are placed by JACK frame time, never assumed contiguous: client activation can
make the server skip thousands of frames.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np


def jack_running() -> bool:
    import jack

    try:
        client = jack.Client("probe", no_start_server=True)
    except jack.JackOpenError:
        return False
    client.close()
    return True


class Recorder:
    """Records JACK audio ports; everything it hears is indexed by JACK frame time."""

    def __init__(self, name: str = "recorder", channels: int = 2) -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.inports = [self.client.inports.register(f"in_{i}") for i in range(channels)]
        self._blocks: list[tuple[int, np.ndarray]] = []
        self._lock = threading.Lock()
        self._recording = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    @property
    def samplerate(self) -> int:
        return int(self.client.samplerate)

    @property
    def frame_time(self) -> int:
        """The server's current frame time: stamp events with it to find them in the recording."""
        return int(self.client.frame_time)

    def _process(self, frames: int) -> None:
        if not self._recording:
            return
        block = np.stack([port.get_array().copy() for port in self.inports])
        with self._lock:
            self._blocks.append((self.client.last_frame_time, block))

    def connect_from(self, *sources: str, timeout: float = 10.0) -> None:
        """Connect output ports (e.g. ``PortAudio:out_0``) to our inputs, waiting until they exist."""
        deadline = time.monotonic() + timeout
        for source, port in zip(sources, self.inports):
            while True:
                names = [p.name for p in self.client.get_ports(is_output=True, is_audio=True)]
                if source in names:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"JACK port {source!r} did not appear; have: {names}")
                time.sleep(0.02)
            if not port.is_connected_to(source):
                self.client.connect(source, port)

    def start(self) -> None:
        with self._lock:
            self._blocks.clear()
        self._recording = True

    def stop(self) -> None:
        self._recording = False

    def audio(self, start_frame: int, end_frame: int, channel: int = 0) -> np.ndarray:
        """Recorded samples for [start_frame, end_frame) of JACK time; frames not heard are zeros."""
        out = np.zeros(max(0, end_frame - start_frame), dtype=np.float32)
        with self._lock:
            blocks = list(self._blocks)
        for first, block in blocks:
            lo, hi = max(first, start_frame), min(first + block.shape[1], end_frame)
            if lo < hi:
                out[lo - start_frame : hi - start_frame] = block[channel, lo - first : hi - first]
        return out

    def covered(self, start_frame: int, end_frame: int) -> float:
        """Fraction of [start, end) that the recording actually holds (xruns leave gaps)."""
        with self._lock:
            blocks = list(self._blocks)
        held = sum(max(0, min(f + b.shape[1], end_frame) - max(f, start_frame)) for f, b in blocks)
        return held / max(1, end_frame - start_frame)

    def close(self) -> None:
        self.stop()
        self.client.deactivate()
        self.client.close()


class VirtualKeyboard:
    """A MIDI keyboard on the JACK bus (python-rtmidi's JACK API), connected to a named input port."""

    def __init__(self, name: str = "vkbd") -> None:
        import rtmidi

        self.midi_out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)

    def connect(self, port_name: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ports = self.midi_out.get_ports()
            matches = [i for i, p in enumerate(ports) if p == port_name or p.endswith(port_name)]
            if matches:
                self.midi_out.open_port(matches[0])
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"MIDI port {port_name!r} did not appear; have: {ports}")
            time.sleep(0.02)

    def send(self, *message: int) -> None:
        self.midi_out.send_message(list(message))

    def note_on(self, note: int, velocity: int = 100, channel: int = 0) -> None:
        self.send(0x90 | channel, note, velocity)

    def note_off(self, note: int, channel: int = 0) -> None:
        self.send(0x80 | channel, note, 0)

    def close(self) -> None:
        self.midi_out.close_port()
        del self.midi_out


@dataclass
class Tone:
    frequency: float
    rms: float


def dominant_tone(signal: np.ndarray, samplerate: int) -> Tone:
    """Frequency of the strongest spectral peak (parabolic interpolation on a Hann-windowed FFT) and the RMS."""
    signal = np.asarray(signal, dtype=np.float64)
    n_fft = 1 << int(np.ceil(np.log2(max(len(signal), 2) * 4)))
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)), n_fft))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
    offset = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    return Tone(frequency=(k + offset) * samplerate / n_fft, rms=float(np.sqrt(np.mean(signal**2))))


def median_f0(signal: np.ndarray, samplerate: int, fmin: float = 50.0, fmax: float = 2000.0) -> float:
    """Median pYIN f0 (Hz) over the voiced frames; NaN when none is voiced. The pitch a listener hears, where
    ``dominant_tone`` gives the loudest partial (often the second harmonic of a real timbre)."""
    import librosa

    f0, voiced, _ = librosa.pyin(np.asarray(signal, dtype=np.float64), fmin=fmin, fmax=fmax, sr=samplerate,
                                 frame_length=4096, hop_length=1024)
    f0 = f0[voiced & np.isfinite(f0)]
    return float(np.median(f0)) if f0.size else float("nan")


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def cents(f: float, ref: float) -> float:
    return 1200.0 * float(np.log2(f / ref))


def jack_output_device() -> int:
    """Index of PortAudio's JACK output device. The JACK server must have run before sounddevice was imported."""
    import sounddevice as sd

    for index, device in enumerate(sd.query_devices()):
        hostapi = sd.query_hostapis(device["hostapi"])["name"]
        if "JACK" in hostapi and device["max_output_channels"] > 0:
            return index
    raise RuntimeError("PortAudio lists no JACK output device: was jackd started before `import sounddevice`?")


def new_output_ports(before: set[str], prefix: str = "PortAudio", timeout: float = 10.0) -> list[str]:
    """Audio output ports that appeared since ``before`` (PortAudio names its client itself)."""
    import jack

    client = jack.Client("portwatch", no_start_server=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = sorted(p.name for p in client.get_ports(is_output=True, is_audio=True))
            fresh = [n for n in names if n not in before and n.startswith(prefix)]
            if fresh:
                return fresh
            time.sleep(0.02)
    finally:
        client.close()
    raise TimeoutError(f"no new {prefix} output port appeared")


def output_ports() -> set[str]:
    import jack

    client = jack.Client("portlist", no_start_server=True)
    try:
        return {p.name for p in client.get_ports(is_output=True, is_audio=True)}
    finally:
        client.close()
