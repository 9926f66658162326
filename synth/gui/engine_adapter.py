"""What the window needs from the engine, in one place: ``EngineAdapter`` wraps a ``synth.engine.engine.Engine``.

``open_engine`` loads the bundled model; when it is missing or invalid it falls back to the engine's built-in demo
source (``Engine.demo``) and says why (``fallback_reason``), so the app always starts and plays. Sample rate, block
size and device are fixed when an Engine is built, so changing them rebuilds the engine on the same note source,
carrying the timbre point and the settings over.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synth.engine.bundle_source import BundleSource
from synth.engine.engine import Engine
from synth.resources import default_bundle

DEFAULT_SAMPLE_RATE = 48000
DEFAULT_BLOCK_SIZE = 1024  # 21 ms at 48 kHz: clean under load on 2 cores (see the shared audio notes)
AUDIO_KEYS = ("device", "samplerate", "blocksize")
VIRTUAL_PORT = "virtual"


@dataclass
class OpenOptions:
    bundle: str | Path = field(default_factory=default_bundle)  # the bundled model (checkout or installed copy)
    device: str | int | None = None
    midi_port: str | None = None
    audio: bool = True  # False: no audio stream (tests; the smoke test without JACK pumps blocks itself)
    midi: bool = True  # open the MIDI virtual port (only together with audio)
    midi_client: str = "pgesam"  # JACK/ALSA client name: the virtual port is <midi_client>:midi_in
    sample_rate: int = DEFAULT_SAMPLE_RATE
    block_size: int = DEFAULT_BLOCK_SIZE
    use_grid: bool = True
    grid_root: str | Path | None = None  # None: the user cache folder
    audio_process: bool | None = None  # None: SYNTH_AUDIO_PROCESS, else on (the audio host)


def open_engine(options: OpenOptions) -> "EngineAdapter":
    """The engine on the bundle, or on the demo source with the reason in ``fallback_reason``."""
    from synth.engine.audio_host import audio_process_default

    # the audio callback runs in the audio host (synth.engine.audio_host): the window, the worker and the preview
    # decoder then never hold its interpreter (issue 19); SYNTH_AUDIO_PROCESS=0 keeps it in this process
    audio_process = audio_process_default(True) if options.audio_process is None else options.audio_process
    kwargs = dict(sample_rate=options.sample_rate, block_size=options.block_size, device=options.device,
                  midi=options.audio and options.midi, midi_client=options.midi_client, use_grid=options.use_grid,
                  grid_root=options.grid_root, audio_process=audio_process)
    try:
        if not Path(options.bundle).is_dir():
            raise FileNotFoundError("the folder does not exist")
        engine = Engine.from_bundle(options.bundle, **kwargs)
        fallback = None
    except Exception as exc:  # BundleError, a missing folder, a model that fails to build: all fall back
        engine = Engine.demo(**kwargs)
        fallback = (f"No usable model at {options.bundle} ({_first_line(exc)}). Playing the built-in demo tones "
                    f"instead; install or build a model bundle there to play the neural instrument.")
    adapter = EngineAdapter(engine, fallback_reason=fallback, audio=options.audio)
    adapter.wanted_midi_port = options.midi_port
    adapter.grid_root = options.grid_root
    adapter.grid_enabled = options.use_grid
    return adapter


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class EngineAdapter:
    def __init__(self, engine: Engine, *, fallback_reason: str | None = None, audio: bool = True) -> None:
        self.engine = engine
        self.fallback_reason = fallback_reason
        self.audio = audio
        self.wanted_midi_port: str | None = None
        self.grid_root: str | Path | None = None
        self.grid_enabled = True
        self._started = False
        self.master_gain_db = float(engine.settings.master_gain_db)
        self.preset_gain_db = 0.0
        self.meters: dict[str, Any] = {}
        self.audio_error: str | None = None
        self._connected_port: str | None = None
        self._virtual_on = True  # False: MIDI input "None" (the virtual port stays open but is not played)
        self._errors: list[str] = []
        self._seen_worker_errors = 0
        self._last_worker_error: str | None = None

    # ------------------------------------------------------------ what the model is

    @property
    def model(self) -> BundleSource | None:
        """The model bundle played (None: the demo tones)."""
        return self.engine.model

    @property
    def model_name(self) -> str:
        model = self.model
        if model is None:
            return "demo tones (no model)"
        return f"{model.name} ({model.hash[:8]})" if model.hash else model.name

    @property
    def map_hash(self) -> str:
        """Identifies the map presets' x, y refer to: the bundle's hash (the demo source's own for demo tones)."""
        from synth.engine.sources import source_hash

        return source_hash(self.engine.source)

    @property
    def instruments(self) -> list:
        model = self.model
        return list(model.instruments) if model is not None else []

    @property
    def pitch_range(self) -> tuple[int, int]:
        low, high = self.engine.source.pitch_range
        return int(low), int(high)

    @property
    def velocity_layers(self) -> tuple[int, ...]:
        """The velocities the model has a timbre for ((100,) when it ignores velocity)."""
        return tuple(self.engine.velocity_layers)

    @property
    def map_bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        from synth.engine.sources import source_bounds

        return source_bounds(self.engine.source)

    @property
    def generation_device(self) -> str:
        model = self.model
        if model is None:
            return "CPU (demo tones)"
        return "GPU" if (model.device or "cpu").startswith("cuda") else "CPU"

    @property
    def character(self) -> float | None:
        """The flow sampler's guidance (the "character" control); None when the model played has none."""
        return self.engine.character

    def set_character(self, guidance: float) -> None:
        """Change the character; raises what the engine raises (the window reports it)."""
        self.engine.set_character(float(guidance))

    # ------------------------------------------------------------ playing

    @property
    def point(self) -> tuple[float, float]:
        return self.engine.point

    def set_point(self, x: float, y: float) -> None:
        self._guard("move the timbre", self.engine.set_point, float(x), float(y))

    def note_on(self, pitch: int, velocity: int = 100) -> None:
        self._guard("play a note", self.engine.note_on, int(pitch), int(velocity))

    def note_off(self, pitch: int) -> None:
        self._guard("release a note", self.engine.note_off, int(pitch))

    def panic(self) -> None:
        self._guard("panic", self.engine.panic)

    def held_notes(self) -> set[int]:
        """Notes held right now from any source (MIDI keyboard included)."""
        return set(self.engine.held_notes())

    def set_sound(self, gain_db: float, attack_ms: float, release_ms: float) -> None:
        """A preset's gain rides on top of the master gain; attack and release go to every voice."""
        self.preset_gain_db = float(gain_db)
        self._guard("set the sound", self.engine.update_settings, attack=max(0.0, attack_ms) / 1000.0,
                    release=max(0.0, release_ms) / 1000.0, master_gain_db=self._output_gain_db())

    def sound(self) -> tuple[float, float, float]:
        """(preset gain dB, attack ms, release ms) as the engine plays now."""
        s = self.engine.settings
        return self.preset_gain_db, 1000.0 * s.attack, 1000.0 * s.release

    def _output_gain_db(self) -> float:
        return min(12.0, self.master_gain_db + self.preset_gain_db)

    # ------------------------------------------------------------ meters and status

    def poll_meters(self) -> dict:
        """Read (and reset) the engine's meters; the window calls this on its timer, the dialogs read ``meters``."""
        meters = self._guard("read the meters", self.engine.meters) or {}
        self.meters = meters
        errors = meters.get("worker_errors") or []
        total = int(meters.get("worker_error_count", 0))
        if total > self._seen_worker_errors and errors and errors[-1] != self._last_worker_error:
            self._errors.append(f"Generation problem: {errors[-1]}")  # each new message once, not every retry
            self._last_worker_error = errors[-1]
        self._seen_worker_errors = total
        self._check_audio_alive()
        return meters

    def _check_audio_alive(self) -> None:
        """A stream whose server died is dropped (stopping it would hang the window) and the player is told."""
        if self.engine.audio_lost():
            self.engine.abandon_audio()
            self.audio_error = ("Audio stopped: the audio server or device is gone. Restart the app when it is "
                                "back (or pick another device in File > Settings).")
            self._errors.append(self.audio_error)

    def cache_progress(self) -> tuple[int, int]:
        done, total = self.engine.cache_progress()
        return int(done), int(total)

    def peak_db(self) -> float:
        peak = float(self.meters.get("peak", 0.0))
        return 20.0 * math.log10(peak) if peak > 1e-6 else -120.0

    def xruns(self) -> int:
        return int(self.meters.get("xruns", self.engine.xruns))

    def take_error(self) -> str | None:
        return self._errors.pop(0) if self._errors else None

    # ------------------------------------------------------------ settings

    def settings(self) -> dict:
        s = self.engine.settings
        return {
            "device": self.engine.device, "samplerate": self.engine.sample_rate, "blocksize": self.engine.block_size,
            "midi_port": self._connected_port or (VIRTUAL_PORT if self.engine.midi_enabled and self._virtual_on else None),
            "bend_range": int(round(s.bend_range)), "velocity_curve": s.velocity_curve,
            "master_gain_db": self.master_gain_db,
        }

    def apply_settings(self, **changes) -> str | None:
        """Apply changed settings; returns an error message for the dialog, or None."""
        try:
            if any(key in changes for key in AUDIO_KEYS):
                self._rebuild(**{key: changes[key] for key in AUDIO_KEYS if key in changes})
            if "master_gain_db" in changes:
                self.master_gain_db = float(changes["master_gain_db"])
                self.engine.update_settings(master_gain_db=self._output_gain_db())
            if "bend_range" in changes:
                self.engine.update_settings(bend_range=float(changes["bend_range"]))
            if "velocity_curve" in changes:
                self.engine.update_settings(velocity_curve=str(changes["velocity_curve"]))
            if "midi_port" in changes:
                self._switch_midi_port(changes["midi_port"])
        except Exception as exc:  # the engine explains what it could not do (e.g. a device that will not open)
            return f"Could not apply settings: {_first_line(exc)}"
        return None

    def _rebuild(self, **audio) -> None:
        """Sample rate, block size and device are fixed per Engine: build a new one on the same source, carrying the
        point and settings over. When the new audio settings do not open, go back to the ones that played."""
        old = self.engine
        before = {"samplerate": old.sample_rate, "blocksize": old.block_size, "device": old.device}
        error = self._swap_engine({**before, **audio})
        if error:
            self._swap_engine(before)
            raise RuntimeError(error)

    def _swap_engine(self, audio: dict) -> str | None:
        old = self.engine
        new = Engine(old.source, sample_rate=int(audio["samplerate"]), block_size=int(audio["blocksize"]),
                     device=audio["device"], midi=old.midi_enabled, midi_client=old.midi_client,
                     settings=type(old.settings)(**asdict(old.settings)), use_grid=self.grid_enabled,
                     grid_root=self.grid_root, audio_process=old.audio_process)
        new.set_point(*old.point)
        old.stop()
        self.engine = new
        # the chosen keyboard is reconnected by start() (wanted_midi_port): a block-size change must not drop it
        self._connected_port = None
        if not self._started:
            return None
        self.start()
        return self.audio_error

    def _switch_midi_port(self, port: str | None) -> None:
        if self._connected_port:
            self.engine.disconnect_midi(self._connected_port)
        self._connected_port = None
        self.wanted_midi_port = None
        self._virtual_on = port is not None  # "None" silences the virtual port too
        self._apply_virtual()
        if port and port != VIRTUAL_PORT:
            self.engine.connect_midi(port)
            self._connected_port = port
            self.wanted_midi_port = port  # what an engine rebuild (new block size...) reconnects

    def _apply_virtual(self) -> None:
        self.engine.set_virtual_midi_enabled(self._virtual_on)

    def audio_devices(self) -> list[tuple[str, int]]:
        """(label, device index) of every output device PortAudio lists."""
        from synth.engine.audio_io import list_output_devices

        try:
            devices = list_output_devices()
        except Exception as exc:
            self._errors.append(f"Cannot list audio devices: {_first_line(exc)}")
            return []
        return [(f"{d['name']} — {d['hostapi']}", d["index"]) for d in devices]

    def midi_ports(self) -> list[str]:
        try:
            return list(self.engine.midi_ports())
        except Exception as exc:
            self._errors.append(f"Cannot list MIDI ports: {_first_line(exc)}")
            return []

    def virtual_port_name(self) -> str:
        return self.engine.midi_port_name or f"{self.engine.midi_client}:midi_in"

    # ------------------------------------------------------------ the prerendered grid

    def grid_store(self):
        from synth.engine.note_cache import GridStore
        from synth.engine.sources import source_hash

        return GridStore(source_hash(self.engine.source), Path(self.grid_root) if self.grid_root else None)

    def use_grid(self, store) -> None:
        """Let the running worker answer pad moves from a freshly prerendered grid."""
        if store.spec is not None:
            self.engine.use_grid(store)

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start audio and MIDI. Without a usable device the window still opens and says what is missing."""
        self._started = True
        if not self.audio:
            self.engine.start_generation()
            return
        self.audio_error = None
        try:
            self.engine.start()
        except Exception as exc:
            self._start_degraded(exc)
        self._apply_virtual()
        if self.wanted_midi_port and self.engine.midi_running:
            self._guard("connect the MIDI keyboard", self._connect_when_present, self.wanted_midi_port)

    def _connect_when_present(self, name: str) -> None:
        """The keyboard asked for at start: connected now, or by the engine's hot-plug poller once it appears."""
        present = self.engine.connect_midi(name, required=False)
        self._connected_port = name
        if not present:
            self._errors.append(f"MIDI keyboard {name!r} is not there yet; it will play as soon as it is plugged in")

    def _start_degraded(self, exc: Exception) -> None:
        """Retry without MIDI when MIDI was what failed; without audio the worker still runs (for export, meters)."""
        engine = self.engine
        midi_failed = engine.midi_enabled and not engine.midi_running
        engine.stop()
        if midi_failed:
            self._errors.append(f"MIDI input is not available ({_first_line(exc)}); playing without it")
            engine.midi_enabled = False
            try:
                engine.start()
                return
            except Exception as again:
                exc = again
                engine.stop()
        self.audio_error = f"No audio output: {_first_line(exc)}. Choose a device in File > Settings."
        self._errors.append(self.audio_error)
        engine.start_generation()

    def close(self) -> None:
        self._guard("stop the engine", self.engine.stop)

    def _guard(self, what: str, call, *args, **kwargs):
        """Engine errors become status-bar messages: a glitch must not take the instrument down mid-performance."""
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            self._errors.append(f"Could not {what}: {_first_line(exc)}")
            return None
