"""What the app remembers between runs: audio and MIDI settings, the timbre (``synth.timbre.Timbre``: its point,
and its sound with the optional "character" of flow bundles), the last preset.

Stored as JSON in ``platformdirs.user_config_dir("pgesam-synth")/session.json`` (written atomically on quit). The
audio device is remembered by name, not by index (indices change when devices come and go). Anything missing,
unreadable or no longer available is skipped: a stale session never stops the app from starting. A file that is
not a session (broken or crafted JSON) is ignored with a warning naming it; a value in it that is not a finite
number in the range the app offers (a NaN master gain, a point at 1e300) is not applied and is reported.

The timbre is stored as its ``to_dict`` fields split in two, as sessions always held it: ``"point": [x, y]`` (applied
only on the map it was made on) and ``"sound"`` (the rest: gain, envelope, character), each checked by ``Timbre``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from synth.atomic import clean_stale
from synth.presets import PresetError, write_text_atomic
from synth.timbre import SOUND_FIELDS, Timbre
from synth.validate import InputError, finite_in_range, load_json_file

log = logging.getLogger(__name__)

SESSION_VERSION = 1
SESSION_MAX_BYTES = 1 << 20
ENGINE_KEYS = ("samplerate", "blocksize", "bend_range", "velocity_curve", "master_gain_db")
# What the settings dialog offers: a session may hold nothing the player could not have chosen there.
ENGINE_LIMITS = {"samplerate": (8000, 192000), "blocksize": (16, 8192), "bend_range": (1, 24),
                 "master_gain_db": (-60.0, 0.0)}
INTEGER_KEYS = ("samplerate", "blocksize", "bend_range")


def default_session_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("pgesam-synth")) / "session.json"


def capture(window) -> dict:
    adapter = window.adapter
    settings = adapter.settings()
    sound = window.timbre().to_dict()
    point = [sound.pop("x"), sound.pop("y")]
    return {
        "version": SESSION_VERSION,
        "engine": {key: settings.get(key) for key in ENGINE_KEYS},
        "device_name": _device_name(adapter, settings.get("device")),
        "midi_port": settings.get("midi_port"),
        "point": point,
        "sound": sound,
        "preset": window.preset_bar.current_name,
        "map_hash": adapter.map_hash,
        "octave_base": window.keys.base,
        "midi_cc": window.midi_control.cc.to_dict() if hasattr(window, "midi_control") else {},
    }


def save(window, path: Path | None = None) -> str | None:
    """Write the session; returns an error message instead of raising (quitting must always work)."""
    try:
        text = json.dumps(capture(window), indent=1, allow_nan=False) + "\n"  # NaN is not JSON
        write_text_atomic(Path(path or default_session_path()), text, what="the session")
    except (PresetError, TypeError, ValueError) as exc:
        return str(exc)
    return None


def load(path: Path | None = None) -> dict:
    """The saved session, or {} (with a warning naming the file when it exists but cannot be used)."""
    path = Path(path or default_session_path())
    clean_stale(path.parent, target=path.name)  # the temp file of a save that was killed
    if not path.exists():
        return {}
    try:  # NaN passes here so one bad value costs only itself: restore() checks every field
        data = load_json_file(path, max_bytes=SESSION_MAX_BYTES, allow_nan=True)
    except InputError as exc:
        log.warning("%s; starting without the last session", exc)
        return {}
    return data if isinstance(data, dict) and data.get("version") == SESSION_VERSION else {}


def restore(window, data: dict) -> list[str]:
    """Apply a loaded session before the engine starts; returns what could not be restored (for the status bar)."""
    problems: list[str] = []
    refused: list[str] = []  # session values out of range or of the wrong kind: reported, never applied
    adapter = window.adapter
    wanted = _engine_values(data.get("engine"), refused)
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
    _restore_sound(window, data, refused)
    _restore_point(window, data, refused)
    if hasattr(window, "midi_control"):
        window.midi_control.load(data.get("midi_cc"))  # pad X/Y CC bindings (bad ones stay unbound)
    base = data.get("octave_base")
    if isinstance(base, int) and 0 <= base <= 120 and base % 12 == 0:
        window.keys.shift_octave((base - window.keys.base) // 12)
    if refused:
        problems.insert(0, "Could not apply from the session file: " + "; ".join(refused))
    if hasattr(window, "reset_history"):
        window.reset_history()  # the restored sound is where undo starts; "modified" is measured against its preset
    return problems


def _engine_values(engine, refused: list[str]) -> dict:
    """The engine settings worth applying; each bad one goes to ``refused`` with its reason."""
    wanted = {}
    for key, value in (engine.items() if isinstance(engine, dict) else ()):
        if key not in ENGINE_KEYS or value is None:
            continue
        try:
            wanted[key] = _engine_value(key, value)
        except InputError as exc:
            refused.append(str(exc))
    return wanted


def _engine_value(key: str, value):
    if key == "velocity_curve":
        from synth.engine.velocity import CURVES

        if not isinstance(value, str) or value not in CURVES:
            raise InputError(f"engine.velocity_curve: {value!r} is not one of {', '.join(CURVES)}")
        return value
    number = finite_in_range(value, *ENGINE_LIMITS[key], f"engine.{key}")
    if key in INTEGER_KEYS:
        if number != int(number):
            raise InputError(f"engine.{key}: {number:g} is not a whole number")
        return int(number)
    return number


def _restore_sound(window, data: dict, refused: list[str]) -> None:
    sound = data.get("sound")
    if not isinstance(sound, dict) or not all(key in sound for key in SOUND_FIELDS):
        return  # an older session without a sound: nothing to restore
    try:
        values = {key: Timbre.check(key, sound[key], f"sound.{key}") for key in SOUND_FIELDS}
    except InputError as exc:
        refused.append(str(exc))
        return
    character = sound.get("character")
    if character is not None:  # optional: older sessions and bundles without the flow sampler have none
        try:  # a bad character costs only itself
            values["character"] = Timbre.check("character", character, "sound.character")
        except InputError as exc:
            refused.append(str(exc))
    window.sound_panel.set_timbre(Timbre(*window.pad.point, **values))  # the point is restored on its own


def _restore_point(window, data: dict, refused: list[str]) -> None:
    """The point only means something on the same map; the preset name is shown again either way."""
    name = data.get("preset")
    if isinstance(name, str) and window.preset_bar.library.find(name) is not None:
        window.preset_bar.select(name)
    elif "preset" in data and name is None:
        window.preset_bar.select(None)  # the last sound was not a preset: the first-launch one is not shown
    point = data.get("point")
    if data.get("map_hash") != window.adapter.map_hash or point is None:
        return
    try:
        if not isinstance(point, list) or len(point) != 2:
            raise InputError(f"point: expected [x, y], got {str(point)[:40]}")
        x, y = (Timbre.check(axis, v, f"point.{axis}") for v, axis in zip(point, "xy"))
    except InputError as exc:
        refused.append(str(exc))
        return
    window.pad.set_point(x, y)
    window.point_throttle.flush()


def _device_name(adapter, index) -> str | None:
    if index is None:
        return None
    return next((label for label, i in adapter.audio_devices() if i == index), None)


def _device_index(adapter, name) -> int | None:
    if not name:
        return None
    return next((i for label, i in adapter.audio_devices() if label == name), None)
