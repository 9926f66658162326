"""``Engine``: MIDI in -> voices from the note cache -> limiter -> audio out, with the generation worker behind it.

Threads and who touches what:

- the audio callback (PortAudio's thread) owns the ``Mixer`` and the ``PeakLimiter``. At the start of every block it
  pulls waiting MIDI messages straight from rtmidi's lock-free queues (``MidiInput.drain``: no thread hop, so a note
  that arrived during the previous period sounds in this one), then drains ``self._events`` (a deque; append/popleft
  are atomic) and applies both to the mixer, then mixes.
- the GUI and the ``play`` command only append events to that deque (``note_on`` and friends below) and update the
  bookkeeping the worker reads (held and recent pitches; MIDI events reach it through ``_seen``, folded in by the
  worker threads). They never touch the mixer.
- the worker threads fill the ``BufferSlot``s, 128 per velocity layer of the source (one per MIDI pitch), with
  buffers for the current point. A note-on picks the slot of its velocity's layer (``Mixer.layer_index``: the
  nearest layer, a table read), so velocity selects the timbre; with several layers the voice gain divides the
  layer's level out (``synth.engine.velocity``), with one it is the velocity curve as before.

So the callback holds no lock anyone else takes, allocates nothing in steady state, and never calls torch.

With ``audio_process=True`` (the app's and ``synth play``'s default) the audio callback, the MIDI input, the mixer and
the limiter run in the audio host, a process of their own (``synth.engine.audio_host``): the same ``BlockRenderer``
there, fed over a local socket with this engine's events and the buffers its slots receive, reporting back the MIDI
events it played and the CC values. The callback's interpreter is then that small process's, so the window, the
worker and the preview decoder here can no longer make it wait (issue 19).
"""

from __future__ import annotations

import gc
import sys
import threading
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synth.engine.audio_host import AudioHost, MirroredSlot, RemoteMidi, audio_process_default
from synth.engine.block import PANIC, BlockRenderer
from synth.engine.buffers import BufferSlot
from synth.engine.bundle_source import BundleSource, open_bundle
from synth.engine.limiter import db_to_gain, gain_to_db
from synth.engine.midi_io import ALL_NOTES_OFF, ALL_SOUND_OFF, BEND, NOTE_OFF, NOTE_ON, SUSTAIN, Event, MidiInput
from synth.engine.note_cache import GridStore, NoteCache
from synth.engine.sources import NoteSource, SineNoteSource, source_bounds, source_hash, velocity_layers_of
from synth.engine.worker import GenerationWorker


@dataclass
class EngineSettings:
    """Player-facing settings; change them with ``Engine.update_settings(**changes)`` (any thread)."""

    master_gain_db: float = -12.0  # safe default (FluidSynth uses 0.2 ~ -14 dB for the same reason)
    attack: float = 0.003  # seconds, added on top of the note's own attack (declicks the start)
    release: float = 0.25  # seconds of fade after note-off
    bend_range: float = 2.0  # semitones at full pitch-wheel deflection
    velocity_curve: str = "linear"  # linear | soft | hard (synth.engine.velocity)
    midi_channel: int | None = None  # None = omni, else 0-15


class Engine:
    """The real-time instrument. Typical use::

        engine = Engine.from_bundle("models/default")   # or Engine(SineNoteSource()) / Engine.demo()
        engine.start()                                   # audio + MIDI virtual port "pgesam:midi_in" + worker
        engine.connect_midi("My Keyboard")               # optional; reconnected automatically when replugged
        engine.set_point(0.3, -0.5); engine.note_on(60, 100); engine.note_off(60)
        engine.meters()                                  # peak, xruns, load, voices, latency ...
        engine.stop()
    """

    def __init__(self, source: NoteSource, *, sample_rate: int = 48000, block_size: int = 512,
                 device: int | str | None = None, channels: int = 2, max_voices: int = 32, midi: bool = True,
                 midi_client: str = "pgesam", grid_root: Path | str | None = None, use_grid: bool = True,
                 cache_bytes: int = 512 << 20, settings: EngineSettings | None = None,
                 batch_size: int = 4, preview: bool = True, audio_process: bool | None = None) -> None:
        # Import the resampler now, not in a worker thread while audio runs: a big import holds the GIL in long
        # stretches (extension-module init), which stalled the first callbacks by seconds in the bench.
        import soxr  # noqa: F401  (synth.engine.buffers resamples with it)

        self.source = source
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.device = device
        self.channels = int(channels)
        self.midi_enabled = midi
        self.midi_client = midi_client
        self.settings = settings or EngineSettings()
        self.velocity_layers = velocity_layers_of(source)
        # one list of 128 slots per velocity layer; ``slots`` is the velocity-100 layer's (the only one mostly)
        # audio_process: the callback, MIDI input, mixer and limiter run in the audio host (synth.engine.audio_host),
        # where the app's other threads cannot hold its interpreter; the slots then mirror their buffers there
        self.audio_process = audio_process_default(False) if audio_process is None else bool(audio_process)
        self._host: AudioHost | None = None
        self.layer_slots = [[MirroredSlot(layer=layer, pitch=pitch) if self.audio_process else BufferSlot()
                             for pitch in range(128)] for layer in range(len(self.velocity_layers))]
        # the audio thread's side: mixer, limiter, event deque, the MIDI events it played and the CC stores
        # (with an audio host, the host builds its own the same way, and its reports fill the last two here)
        self.block = BlockRenderer.create(self.sample_rate, self.block_size, self.channels, max_voices,
                                          self.velocity_layers, asdict(self.settings), self.layer_slots)
        self.mixer, self.limiter = self.block.mixer, self.block.limiter
        self.cache = NoteCache(self.sample_rate, max_bytes=cache_bytes, velocity_layers=self.velocity_layers,
                               held_seconds=float(getattr(source, "held_seconds", 3.0)))
        grid = GridStore(source_hash(source), Path(grid_root) if grid_root else None) if use_grid else None
        self._held: dict[int, int] = {}  # pitch -> velocity of the keys down now
        self._pedal_held: dict[int, int] = {}  # released keys the pedal holds, same
        self._pedal = False
        self._recent: deque[tuple[int, int]] = deque(maxlen=12)  # (pitch, velocity), oldest first
        self._track_lock = threading.Lock()  # bookkeeping between GUI/API and worker threads; never the callback
        # preview: held notes follow a pad drag with the source's fast approximation (issue 19), no grid needed
        self.worker = GenerationWorker(source, self.cache, self.layer_slots, grid=grid, priority=self.priority,
                                       batch_size=batch_size, preview=preview)
        self._events: deque[Event] = self.block.events
        self._seen: deque[Event] = self.block.seen
        self.cc_values = self.block.cc_values
        self.cc_counts = self.block.cc_counts
        self.midi: MidiInput | RemoteMidi | None = None
        self._midi_opened = False  # the host opened MIDI before its audio failed (``midi_running`` says so)
        self.audio = None
        (x0, x1), (y0, y1) = source_bounds(source)
        self._point = ((x0 + x1) / 2, (y0 + y1) / 2)
        self._running = False
        self._prev_switch = sys.getswitchinterval()

    @property
    def model(self) -> BundleSource | None:
        """The model bundle this engine plays (``open_bundle``'s ``BundleSource``: name, hash, instruments, device,
        play path, character), or None when it plays another source (the demo tones)."""
        return self.source if isinstance(self.source, BundleSource) else None

    @property
    def slots(self) -> list[BufferSlot]:
        """The 128 slots of the default (velocity 100) layer."""
        return self.layer_slots[self.worker.default_layer]

    def slot_for(self, pitch: int, velocity: int) -> BufferSlot:
        """The slot a note-on of ``pitch`` at ``velocity`` plays from (its velocity layer's)."""
        return self.layer_slots[self.mixer.layer_index(velocity)][pitch]

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def from_bundle(cls, path: str | Path | None = None, *, device_name: str | None = None,
                    disk_cache: bool = True, separate_process: bool | None = None, **kwargs) -> "Engine":
        """An engine playing the model bundle at ``path`` (None: the bundled model), opened by
        ``synth.engine.bundle_source.open_bundle`` (raises the bundle's BundleError when it is unusable).
        ``disk_cache``: notes go through the disk note cache shared with render and export
        (``synth.engine.disk_cache``; ``SYNTH_NOTE_CACHE=off`` turns it off everywhere). ``separate_process``: the
        model runs in a process of its own (``synth.engine.remote_source``; default: ``SYNTH_GENERATION_PROCESS=1``)."""
        if path is None:  # the bundled model (synth.resources: checkout or installed copy)
            from synth.resources import default_bundle

            path = default_bundle()
        return cls(open_bundle(path, device=device_name, disk_cache=disk_cache, separate_process=separate_process),
                   **kwargs)

    @classmethod
    def demo(cls, **kwargs) -> "Engine":
        """An engine on the built-in ``SineNoteSource`` (no model needed): the fallback when no bundle is installed."""
        return cls(SineNoteSource(), **kwargs)

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> "Engine":
        """Open MIDI (virtual port ``<midi_client>:midi_in``), start the worker on the current point, open audio."""
        from synth.engine.audio_io import AudioOutput

        if self._running:
            return self
        if self.audio_process:
            return self._start_host()
        # The callback competes for the GIL with the worker threads' Python code: a short switch interval bounds
        # how long it can wait (default 5 ms, a quarter of a 1024-frame block).
        sys.setswitchinterval(0.001)
        # A full garbage collection walks every tracked object while holding the GIL: with the model and the window
        # loaded that is ~224,000 objects and 115 ms (measured in the app), and ``bench app`` caught the callback
        # waiting 108-111 ms for the interpreter, an underflow at any block size. What exists now lives as long as
        # the engine: freezing it leaves the collector only the objects made from here on (a full pass then takes
        # well under a millisecond). ``stop`` unfreezes, so that a process that builds many engines (the tests)
        # still collects the cycles of the ones it dropped.
        gc.freeze()
        self.worker.start()
        self.worker.request(*self._point)
        if self.midi_enabled:
            # pull mode: the callback itself reads rtmidi's queue at the start of each block (see MidiInput.drain)
            self.midi = MidiInput(client_name=self.midi_client, channel=self.settings.midi_channel,
                                  bend_range=self.settings.bend_range)
            self.block.midi = self.midi
        self.audio = AudioOutput(self.process_block, device=self.device, sample_rate=self.sample_rate,
                                 block_size=self.block_size, channels=self.channels)
        self.audio.start()
        self._running = True
        return self

    def _start_host(self) -> "Engine":
        """``start`` with the audio host: the worker here, MIDI and audio in the host (raises what failed there:
        AudioDeviceError for the device, the MIDI error for MIDI)."""
        self.worker.start()
        self.worker.request(*self._point)
        s = self.settings
        config = {"sample_rate": self.sample_rate, "block_size": self.block_size, "device": self.device,
                  "channels": self.channels, "max_voices": self.mixer.max_voices,
                  "velocity_layers": list(self.velocity_layers), "midi": bool(self.midi_enabled),
                  "midi_client": self.midi_client, "settings": asdict(s)}
        self._midi_opened = False
        try:
            host = AudioHost(config, self.layer_slots, self.block)
        except Exception as exc:
            self._midi_opened = getattr(exc, "audio_host_stage", None) == "audio"
            raise
        self._host, self.audio, self.midi = host, host.audio, host.midi
        while self._events:  # what was posted before the start plays now, as in the app's own process
            host.post(self._events.popleft())
        self._running = True
        return self

    def stop(self) -> None:
        """Close MIDI (while the callback still drains it), then audio, then the worker."""
        if self.midi is not None:
            self.midi.close(wait=self.audio is not None)
            self.midi = None
            self.block.midi = None
        if self.audio is not None:
            self.audio.stop()
            self.audio = None
        self._host = None
        self._midi_opened = False
        self.worker.stop()
        if not self.audio_process:
            gc.unfreeze()
            sys.setswitchinterval(self._prev_switch)
        self._running = False

    def start_generation(self) -> None:
        """Start only the generation worker on the current point (no audio, no MIDI): notes get ready for export,
        meters and tests when no audio device opens or none is wanted. ``stop()`` stops it."""
        self.worker.start()
        self.worker.request(*self._point)

    def generation_idle(self) -> bool:
        """True when the worker has nothing left to generate for the current point."""
        return self.worker.idle()

    @property
    def audio_running(self) -> bool:
        """An audio stream is open (``start()`` opened it and it was not stopped or abandoned)."""
        return self.audio is not None

    @property
    def audio_device_index(self) -> int | None:
        """The PortAudio index of the open stream's output device (None without a stream)."""
        index = getattr(getattr(self.audio, "stream", None), "device", None)
        if isinstance(index, (tuple, list)):
            index = index[-1]
        return index

    def audio_lost(self) -> bool:
        """True when the running audio stream died under us (its server was killed or stopped, the device vanished).
        Then call ``abandon_audio()``, never ``stop()`` on that stream (see synth.engine.audio_io)."""
        audio = self.audio
        return self._running and audio is not None and not audio.alive()

    def audio_hostapi(self) -> str:
        return self.audio.hostapi if self.audio is not None else ""

    def abandon_audio(self) -> None:
        """Drop a dead stream without calling into it and close MIDI without waiting for the callback; the worker
        keeps running. ``stop()`` afterwards only stops the worker."""
        if self.audio is not None:
            self.audio.abandon()  # with an audio host: the host drops its stream and MIDI and exits
            self.audio = None
        if self.midi is not None:
            if self._host is None:
                self.midi.close(wait=False)
            self.midi = None
            self.block.midi = None
        self._host = None

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------ playing
    def set_point(self, x: float, y: float) -> None:
        """Move the timbre point: held notes follow within tens of ms (the source's preview, or the grid when one is
        prerendered), the exact notes once the point rests."""
        self._point = (float(x), float(y))
        self.worker.request(x, y)

    @property
    def point(self) -> tuple[float, float]:
        return self._point

    def note_on(self, pitch: int, velocity: int = 100) -> None:
        """Play MIDI ``pitch`` (0-127; others are ignored) at ``velocity`` (clamped to 0-127; 0 = note-off)."""
        pitch, velocity = int(pitch), min(127, int(velocity))
        if 0 <= pitch < 128:
            self._post((NOTE_ON, pitch, velocity) if velocity > 0 else (NOTE_OFF, pitch, 0))

    def note_off(self, pitch: int) -> None:
        pitch = int(pitch)
        if 0 <= pitch < 128:
            self._post((NOTE_OFF, pitch, 0))

    def sustain(self, on: bool) -> None:
        self._post((SUSTAIN, 1 if on else 0, 0))

    def pitch_bend(self, semitones: float) -> None:
        self._post((BEND, float(semitones), 0))

    def panic(self) -> None:
        """Silence everything now (fast fade), release every note, reset pedal and bend."""
        self._post((PANIC, 0, 0))

    def _post(self, event: Event) -> None:
        with self._track_lock:
            self._track(event)
        self._play(event)

    def _play(self, event: Event) -> None:
        """Hand ``event`` to the audio thread: the deque its block drains, or the audio host's feed."""
        host = self._host
        if host is not None:
            host.post(event)
        else:
            self._events.append(event)

    def receive_midi(self, event: Event) -> None:
        """An event as if it came from a MIDI keyboard: the next audio block plays it and the held notes count it,
        exactly as for a key on the keyboard (for tools and tests without a MIDI port)."""
        self._play(event)
        self._seen.append(event)

    def pending_events(self) -> list[Event]:
        """Events posted (``note_on``, ``panic``...) that the audio callback has not applied yet, oldest first (with
        an audio host: the ones posted before ``start``; later ones go to the host at once)."""
        return list(self._events)

    def _track(self, event: Event, poke: bool = True) -> None:
        """Bookkeeping for the worker's priorities (held, pedal-held, recent). Runs in the MIDI/GUI thread."""
        kind, a, b = event
        if kind == NOTE_ON:
            pitch, velocity = int(a), int(b)
            self._held[pitch] = velocity
            self._pedal_held.pop(pitch, None)
            self._recent.append((pitch, velocity))
            if poke and self.slot_for(pitch, velocity).buffer is None:
                self.worker.poke()
        elif kind == NOTE_OFF:
            velocity = self._held.pop(int(a), None)
            if self._pedal and velocity is not None:
                self._pedal_held[int(a)] = velocity
        elif kind == SUSTAIN:
            self._pedal = bool(a)
            if not self._pedal:
                self._pedal_held.clear()
        elif kind in (ALL_NOTES_OFF, ALL_SOUND_OFF, PANIC):
            self._held.clear()
            self._pedal_held.clear()
            self._pedal = False

    def priority(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """What the worker generates first: the held and the recently played (pitch, velocity) pairs (held by pitch,
        recent newest first), from MIDI, the GUI and the API alike (folds in what the callback saw from MIDI)."""
        with self._track_lock:
            self._fold_seen()
            held = sorted({**self._pedal_held, **self._held}.items())
            return held, list(reversed(self._recent))

    def _fold_seen(self) -> None:
        """Apply the MIDI events the callback played to the bookkeeping (caller holds ``_track_lock``)."""
        while self._seen:
            try:
                self._track(self._seen.popleft(), poke=False)
            except IndexError:
                break

    def held_notes(self) -> list[int]:
        """Pitches held now by a key or the sustain pedal, from MIDI, the GUI and the API alike (sorted).

        Folds in the MIDI events itself: the worker does so only while it has work, so a display that relied on it
        showed no MIDI notes once every note was generated (the old xfail in tests/gui/test_window_on_jack.py)."""
        return [pitch for pitch, _ in self.priority()[0]]

    # ------------------------------------------------------------------------------------------ the callback
    def process_block(self, out: np.ndarray) -> None:
        """One audio block: apply queued events, mix the voices, master gain + limiter. Real-time safe.

        Used as the sounddevice callback body (without an audio host); tests and offline tools may call it directly."""
        self.block.process_block(out)

    @property
    def program(self) -> int:
        """The last MIDI program change received (see ``cc_counts[128]`` for whether one arrived)."""
        return self.block.program

    @property
    def midi_running(self) -> bool:
        """MIDI input is open (``start()`` with ``midi=True`` opened it; with an audio host whose audio failed
        afterwards, it had opened)."""
        return self.midi is not None or self._midi_opened

    # ------------------------------------------------------------------------------------------ the model
    @property
    def character(self) -> float | None:
        """The flow sampler's guidance of the model played (the "character" control); None when it has none."""
        model = self.model
        return model.character if model is not None else None

    def set_character(self, guidance: float) -> None:
        """Change the character (ValueError when out of range, RuntimeError without a flow model): notes made with
        the old one are dropped from the note cache and the current point is generated again."""
        model = self.model
        if model is None or model.character is None:
            raise RuntimeError("the model played has no character control (only the flow sampler has)")
        model.set_character(float(guidance))
        self.cache.clear()
        self.worker.request(*self._point)

    def use_grid(self, store: GridStore) -> None:
        """Answer pad moves from ``store`` (a freshly prerendered grid) from now on."""
        self.worker.grid = store

    def sounding_point(self, pitch: int, velocity: int = 100) -> tuple[float, float] | None:
        """The map point the note buffer a note-on of ``pitch`` at ``velocity`` would play now was generated for
        (the point's note-cache cell), or None when it has none (not generated yet, or a grid/prerendered note)."""
        key = getattr(self.slot_for(pitch, velocity).buffer, "key", None)
        if not (hasattr(key, "qx") and hasattr(key, "qy")):
            return None
        step = float(self.cache.step)
        return round(key.qx * step, 6), round(key.qy * step, 6)

    # ------------------------------------------------------------------------------------------ settings
    def update_settings(self, **changes) -> EngineSettings:
        """Change settings (names of ``EngineSettings``); unknown names raise TypeError."""
        for name, value in changes.items():
            if not hasattr(self.settings, name):
                raise TypeError(f"unknown engine setting {name!r}; known: {list(asdict(self.settings))}")
            setattr(self.settings, name, value)
        s = self.settings
        levels = {"attack": float(s.attack), "release": float(s.release), "bend_range": float(s.bend_range),
                  "velocity_curve": s.velocity_curve, "master_gain_db": float(s.master_gain_db)}
        self.block.apply_settings(**levels)  # plain stores: the callback reads them at its next block
        if self._host is not None:
            self._host.call("settings", levels)
        if self.midi is not None:
            self.midi.set_channel(s.midi_channel)
            self.midi.set_bend_range(s.bend_range)
        return s

    # ------------------------------------------------------------------------------------------ MIDI ports
    def connect_midi(self, name: str, required: bool = True) -> bool:
        """Read from the MIDI port ``name`` too (kept connected across unplug/replug)."""
        if self.midi is None:
            raise RuntimeError("MIDI is not running: start() the engine first (or create it with midi=True)")
        return self.midi.connect(name, required=required)

    def disconnect_midi(self, name: str) -> None:
        """Stop reading the MIDI port ``name`` (and stop reconnecting it); nothing happens without MIDI running."""
        if self.midi is not None:
            self.midi.disconnect(name)

    def set_virtual_midi_enabled(self, enabled: bool) -> None:
        """Play (True) or ignore (False) what arrives on our virtual MIDI port; it stays open either way."""
        if self.midi is not None:
            self.midi.set_virtual_enabled(enabled)

    def midi_ports(self) -> list[str]:
        if self.midi is not None:
            return self.midi.ports()
        from synth.engine.midi_io import list_input_ports

        return list_input_ports()

    @property
    def midi_port_name(self) -> str | None:
        """Our virtual input, e.g. ``pgesam:midi_in``: what a keyboard or DAW connects to."""
        return self.midi.virtual_port_name if self.midi is not None else None

    # ------------------------------------------------------------------------------------------ meters
    @property
    def xruns(self) -> int:
        return self.audio.xruns if self.audio is not None else 0

    @property
    def peak(self) -> float:
        """Output peak (linear) since the last ``meters()`` call."""
        return float(self._levels(reset=False)["peak"])

    def _levels(self, reset: bool) -> dict:
        """Peak (reset when asked), limiter reduction, voices sounding, bad blocks: the host's when it plays."""
        host = self._host
        if host is not None:
            try:
                return host.call("levels", reset)
            except Exception:  # noqa: BLE001 - a host that died reads as silence; audio_lost() reports it
                return {"peak": 0.0, "reduction": 1.0, "voices": 0, "bad_blocks": 0}
        peak, reduction = self.limiter.reset_peak() if reset else (self.limiter.peak, 1.0)
        return {"peak": peak, "reduction": reduction, "voices": self.mixer.active_voices,
                "bad_blocks": self.limiter.bad_blocks}

    @property
    def latency(self) -> float:
        """Output latency in seconds as the audio device reports it (0 when not running)."""
        return self.audio.latency if self.audio is not None else 0.0

    def cache_progress(self) -> tuple[int, int]:
        """(notes exact for the current point, notes in the model's range times its velocity layers)."""
        return self.worker.progress()

    def meters(self) -> dict:
        """Meter readings; resets the peak hold."""
        levels = self._levels(reset=True)
        peak, reduction = levels["peak"], levels["reduction"]
        done, total = self.cache_progress()
        audio = self.audio
        return {
            "peak": peak, "peak_db": gain_to_db(peak), "limiter_reduction_db": gain_to_db(reduction),
            "xruns": audio.xruns if audio else 0, "load": audio.load if audio else 0.0,
            "max_load": audio.max_load if audio else 0.0, "voices": levels["voices"],
            "latency_ms": 1000.0 * self.latency, "bad_blocks": levels["bad_blocks"],
            "callback_errors": audio.errors if audio else 0,
            "cache_done": done, "cache_total": total, "worker_errors": list(self.worker.errors[-3:]),
            "worker_error_count": self.worker.error_count,
            "previewing": self.worker.previewing(),  # held notes are following a pad drag (issue 19)
            "master_gain": db_to_gain(self.settings.master_gain_db),
        }


__all__ = ["Engine", "EngineSettings"]
