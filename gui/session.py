"""What the app remembers between runs: audio and MIDI settings, the timbre point, the sound, the last preset.

Stored as JSON in ``platformdirs.user_config_dir("pgesam-synth")/session.json`` (written atomically on quit). The
audio device is remembered by name, not by index (indices change when devices come and go). Anything missing,
unreadable or no longer available is skipped: a stale session never stops the app from starting.
"""

from __future__ import annotations

import json
from pathlib import Path

from synth.presets import PresetError, write_text_atomic

SESSION_VERSION = 1
ENGINE_KEYS = ("samplerate", "blocksize", "bend_range", "velocity_curve", "master_gain_db")


def default_session_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("pgesam-synth")) / "session.json"


def capture(window) -> dict:
    adapter = window.adapter
    settings = adapter.settings()
    gain_db, attack_ms, release_ms = window.sound_panel.sound()
    return {
        "version": SESSION_VERSION,
        "engine": {key: settings.get(key) for key in ENGINE_KEYS},
        "device_name": _device_name(adapter, settings.get("device")),
        "midi_port": settings.get("midi_port"),
        "point": list(window.pad.point),
        "sound": {"gain_db": gain_db, "attack_ms": attack_ms, "release_ms": release_ms},
        "preset": window.preset_bar.current_name,
        "map_hash": adapter.map_hash,
        "octave_base": window.keys.base,
    }


def save(window, path: Path | None = None) -> str | None:
    """Write the session; returns an error message instead of raising (quitting must always work)."""
    try:
        text = json.dumps(capture(window), indent=1) + "\n"
        write_text_atomic(Path(path or default_session_path()), text, what="the session")
    except (PresetError, TypeError, ValueError) as exc:
        return str(exc)
    return None


def load(path: Path | None = None) -> dict:
    try:
        data = json.loads(Path(path or default_session_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == SESSION_VERSION else {}


def restore(window, data: dict) -> list[str]:
    """Apply a loaded session before the engine starts; returns what could not be restored (for the status bar)."""
    problems: list[str] = []
    adapter = window.adapter
    wanted = {k: v for k, v in (data.get("engine") or {}).items() if k in ENGINE_KEYS and v is not None}
    device = _device_index(adapter, data.get("device_name"))
    if device is not None:
        wanted["device"] = device
    current = adapter.settings()
    changes = {k: v for k, v in wanted.items() if current.get(k) != v}
    if isinstance(data.get("midi_port"), str) and data["midi_port"] != "virtual" and not adapter.wanted_midi_port:
        adapter.wanted_midi_port = data["midi_port"]  # connected on start, or as soon as it is plugged in
    if changes:
        error = adapter.apply_settings(**changes)
        if error:
            problems.append(error)
    _restore_sound(window, data)
    _restore_point(window, data)
    base = data.get("octave_base")
    if isinstance(base, int) and 0 <= base <= 120 and base % 12 == 0:
        window.keys.shift_octave((base - window.keys.base) // 12)
    return problems


def _restore_sound(window, data: dict) -> None:
    sound = data.get("sound") or {}
    try:
        values = float(sound["gain_db"]), float(sound["attack_ms"]), float(sound["release_ms"])
    except (KeyError, TypeError, ValueError):
        return
    window.sound_panel.set_sound(*values)


def _restore_point(window, data: dict) -> None:
    """The point only means something on the same map; the preset name is shown again either way."""
    name = data.get("preset")
    if isinstance(name, str) and window.preset_bar.library.find(name) is not None:
        window.preset_bar.select(name)
    point = data.get("point")
    if data.get("map_hash") == window.adapter.map_hash and isinstance(point, list) and len(point) == 2:
        try:
            window.pad.set_point(float(point[0]), float(point[1]))
        except (TypeError, ValueError):
            return
        window.point_throttle.flush()


def _device_name(adapter, index) -> str | None:
    if index is None:
        return None
    return next((label for label, i in adapter.audio_devices() if i == index), None)


def _device_index(adapter, name) -> int | None:
    if not name:
        return None
    return next((i for label, i in adapter.audio_devices() if label == name), None)
