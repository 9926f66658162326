"""``Instrument``: one point of a bundle's latent map (bundle.json ``instruments``), parsed and validated once when the
bundle is read (``synth.model.bundle`` and, without torch, ``synth.engine.lazy_source``). Everything downstream (the
pad, the family centroids of presets and renders, the grid bounds, the evaluations) reads these typed records.

No torch here: the lazy source reads bundle.json with it in processes that never load the networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

COORD_LIMIT = 1e6  # |x|, |y| of a map point (bundle.json is refused beyond it)
TRAIN = "train"


class InstrumentError(ValueError):
    """An ``instruments`` entry of bundle.json is not what the map needs; the message names the entry and field."""


@dataclass(frozen=True)
class Instrument:
    """A training or held-out instrument on the map: its dataset name, family, map point and split."""

    name: str
    family: str
    x: float
    y: float
    split: str = TRAIN  # train, valid or test ("" in old bundles: train)

    @property
    def point(self) -> tuple[float, float]:
        return self.x, self.y

    @property
    def held_out(self) -> bool:
        """Of the validation or test split: the model never heard it."""
        return self.split not in (TRAIN, "")

    @property
    def trained(self) -> bool:
        return not self.held_out

    def to_json(self) -> dict[str, Any]:
        """The bundle.json entry (``from_json`` reads it back)."""
        return {"name": self.name, "family": self.family, "x": self.x, "y": self.y, "split": self.split}

    @classmethod
    def from_json(cls, item: Any, where: str = "instrument") -> "Instrument":
        """One bundle.json entry (an object with text name and family, finite x and y within ``COORD_LIMIT``,
        optional text split); ``InstrumentError`` naming ``where`` and the field otherwise."""
        if isinstance(item, Instrument):
            return item
        if not isinstance(item, dict):
            raise InstrumentError(f"{where} must be an object with name, family, x, y")
        for key in ("name", "family"):
            if not isinstance(item.get(key), str):
                raise InstrumentError(f"{where}: field {key!r} missing or not text")
        x, y = (_coordinate(item.get(key), f"{where}: field {key!r}") for key in ("x", "y"))
        split = item.get("split", TRAIN)
        if not isinstance(split, str):
            raise InstrumentError(f"{where}: field 'split' must be text")
        return cls(item["name"], item["family"], x, y, split)


def _coordinate(value: Any, name: str) -> float:
    from synth.validate import InputError, finite_in_range

    try:
        return float(finite_in_range(value, -COORD_LIMIT, COORD_LIMIT, name))
    except InputError as exc:
        raise InstrumentError(str(exc)) from None


def parse_instruments(items: Any, where: str = "instruments") -> tuple[Instrument, ...]:
    """bundle.json's ``instruments`` list as records (``InstrumentError`` on the first bad entry)."""
    if not isinstance(items, (list, tuple)):
        raise InstrumentError(f"{where} must be a list")
    return tuple(Instrument.from_json(item, f"{where}[{i}]") for i, item in enumerate(items))


def bounds_of(instruments: Iterable[Instrument], margin: float = 0.1
              ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The map region the instruments cover with a ``margin`` (a fraction of each extent; 0.5 when it is 0);
    None with fewer than two."""
    points = [(i.x, i.y) for i in instruments if math.isfinite(i.x) and math.isfinite(i.y)]
    if len(points) < 2:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx = margin * (max(xs) - min(xs)) or 0.5
    my = margin * (max(ys) - min(ys)) or 0.5
    return ((min(xs) - mx, max(xs) + mx), (min(ys) - my, max(ys) + my))


__all__ = ["Instrument", "InstrumentError", "bounds_of", "parse_instruments"]
