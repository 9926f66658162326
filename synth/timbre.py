"""A timbre: one sound of the instrument, as a point on the map plus how it is played. The one type for it.

``Timbre(x, y, gain_db=0, attack_ms=5, release_ms=300, character=None)`` is frozen and checked when it is made:
every number finite and in the range the app offers (``RANGES``), else ``synth.validate.InputError`` naming the
field. So whoever holds a ``Timbre`` may trust it. Who uses it:

- a preset (``synth.presets.Preset``) is a name, a timbre and its bookkeeping (notes, tags, map hash);
- ``synth.render`` maps MIDI programs to presets and plays each channel with its timbre;
- ``synth.export.ExportRequest`` exports one timbre;
- the app: the pad's point and the sound panel are one timbre (``MainWindow.timbre()``), and the undo history and
  the session store it.

``character`` is the flow sampler's guidance (0-8) on bundles that play it; None means the bundle's default (and
every other bundle ignores it). ``to_dict``/``from_dict`` give the JSON fields presets and sessions store
(``x``, ``y``, ``gain_db``, ``attack_ms``, ``release_ms`` and ``character`` only when set), so files written before
this type existed read unchanged. This module imports nothing but ``synth.validate``: presets and the session need
no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from synth.validate import InputError, finite_in_range

# The trained maps span about +-1 (a VAE latent under a unit Gaussian prior); +-100 leaves room for any retrained
# map while refusing points like 1e300 that no map has and that overflow the generator's arithmetic.
MAP_COORD_RANGE = (-100.0, 100.0)
GAIN_DB_RANGE = (-60.0, 12.0)
ATTACK_MS_RANGE = (0.0, 5000.0)
RELEASE_MS_RANGE = (0.0, 10000.0)
CHARACTER_RANGE = (0.0, 8.0)  # synth.engine.synthesizer.GUIDANCE_RANGE (not imported: this module needs no torch)
RANGES = {"x": MAP_COORD_RANGE, "y": MAP_COORD_RANGE, "gain_db": GAIN_DB_RANGE, "attack_ms": ATTACK_MS_RANGE,
          "release_ms": RELEASE_MS_RANGE, "character": CHARACTER_RANGE}
SOUND_FIELDS = ("gain_db", "attack_ms", "release_ms")  # what the sound panel shows (the point is the pad's)


@dataclass(frozen=True)
class Timbre:
    """A point on the timbre map, the gain (dB) and envelope (ms) it plays with, and the optional character."""

    x: float
    y: float
    gain_db: float = 0.0
    attack_ms: float = 5.0
    release_ms: float = 300.0
    character: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "character" and value is None:
                continue
            object.__setattr__(self, f.name, self.check(f.name, value))

    @staticmethod
    def check(name: str, value: object, label: str | None = None) -> float:
        """``value`` as a float when it is a finite number in field ``name``'s range, else ``InputError`` naming
        ``label`` (default: the field's name)."""
        return finite_in_range(value, *RANGES[name], label or name)

    @property
    def point(self) -> tuple[float, float]:
        return self.x, self.y

    def at(self, x: float, y: float) -> "Timbre":
        """The same sound at another point of the map."""
        return replace(self, x=x, y=y)

    def to_dict(self) -> dict:
        """The JSON fields (``character`` only when set: files without it stay readable by older versions)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.character is None:
            del data["character"]
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> "Timbre":
        """From the fields ``to_dict`` writes (``x`` and ``y`` required, the others default; a missing or null
        ``character`` is None); ``InputError`` names the first bad field, prefixed with ``where``."""
        if not isinstance(data, dict):
            raise InputError(f"{where or 'timbre'}: expected an object, got {type(data).__name__}")
        values = {}
        for f in fields(cls):
            if f.name not in data or (f.name == "character" and data[f.name] is None):
                if f.name in ("x", "y"):
                    raise InputError(f"{where}{f.name}: missing")
                continue
            values[f.name] = cls.check(f.name, data[f.name], f"{where}{f.name}")
        return cls(**values)
