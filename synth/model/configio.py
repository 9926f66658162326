"""JSON save/load shared by the model configs (VAEConfig, GeneratorConfig, FlowConfig).

A config is a dataclass; it is written as indented JSON with sorted keys, and read back tolerating fields of
newer versions (unknown keys are dropped) with JSON lists turned back into tuples.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TypeVar

_C = TypeVar("_C", bound="JsonConfig")


class JsonConfig:
    """Mixin for a dataclass config: ``to_json`` / ``from_json`` / ``save`` / ``load``."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls: type[_C], text: str) -> _C:
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        # unknown keys = fields of newer versions: tolerated, dropped
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls: type[_C], path: str | Path) -> _C:
        return cls.from_json(Path(path).read_text())
