"""JSON save/load shared by the model configs (VAEConfig, GeneratorConfig, FlowConfig).

A config is a dataclass; it is written as indented JSON with sorted keys, and read back tolerating fields of
newer versions (unknown keys are dropped) with JSON lists turned back into tuples.

Retired experiment options: a config class lists in ``RETIRED`` the fields it no longer has, each with the value
that switched it off (what every shipped model was trained with). Reading a config (bundle.json, a run folder's
``<net>.json``, a resume checkpoint) drops such a field silently at its off value and raises
``RetiredOptionError`` (a ValueError naming the field, its value and where the experiment is recorded) at any
other value: the code that would honour it is gone, and loading must not silently change what a model does.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from synth import atomic

_C = TypeVar("_C", bound="JsonConfig")

RETIRED_RECORD = 'models/default/MODEL_CARD.md, section "Retired experiments"'


class RetiredOptionError(ValueError):
    """A config sets a retired experiment option to a value other than the one that switched it off."""


def _json_value(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _same(value: Any, off: Any) -> bool:
    """``value`` (as read from JSON) is ``off``: equal, and a bool only where ``off`` is one (``1 == True``)."""
    if isinstance(off, tuple):
        return isinstance(value, tuple) and len(value) == len(off) and all(_same(v, o) for v, o in zip(value, off))
    if isinstance(off, bool) or isinstance(value, bool):
        return type(value) is type(off) and value == off
    return type(value) in (int, float) and type(off) in (int, float) and value == off


class JsonConfig:
    """Mixin for a dataclass config: ``to_json`` / ``from_json`` / ``save`` / ``load``."""

    # retired experiment options: {field: its off value} (see the module docstring)
    RETIRED: ClassVar[dict[str, Any]] = {}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def retired_error(cls, key: str, value: Any, where: str = "") -> RetiredOptionError:
        off = cls.RETIRED[key]
        return RetiredOptionError(
            f"{where}{cls.__name__}.{key} = {value!r}: {key} was a retired experiment option (measured, no gain, "
            f"removed; only {key} = {off!r}, off, still loads); see {RETIRED_RECORD}")

    @classmethod
    def without_retired(cls, data: dict) -> dict:
        """``data`` (a config as JSON) less its retired fields at their off values; ``RetiredOptionError`` when one
        is at any other value."""
        out = {}
        for key, value in data.items():
            if key in cls.RETIRED:
                if not _same(_json_value(value), cls.RETIRED[key]):
                    raise cls.retired_error(key, value)
                continue
            out[key] = value
        return out

    @classmethod
    def from_json(cls: type[_C], text: str) -> _C:
        data = cls.without_retired(json.loads(text))
        names = {f.name for f in dataclasses.fields(cls)}
        # unknown keys = fields of newer versions: tolerated, dropped
        return cls(**{k: _json_value(v) for k, v in data.items() if k in names})

    def save(self, path: str | Path) -> None:
        # atomic: under torchrun rank 0 rewrites a resumed run's config while the other ranks may still be reading it
        atomic.write_text(path, self.to_json(), file_mode=atomic.UMASK)

    @classmethod
    def load(cls: type[_C], path: str | Path) -> _C:
        try:
            return cls.from_json(Path(path).read_text())
        except RetiredOptionError as exc:
            raise RetiredOptionError(f"{path}: {exc}") from None
