"""``--set KEY=VALUE`` overrides of a config dataclass, shared by the training commands."""

from __future__ import annotations

import dataclasses
import sys

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _parse(current: object, value: str, key: str) -> object:
    if isinstance(current, bool):  # before int: bool("false") would be True
        low = value.strip().lower()
        if low not in _TRUE + _FALSE:
            raise ValueError(f"--set {key}={value}: expected true or false")
        return low in _TRUE
    if isinstance(current, tuple):
        return tuple(type(current[0])(v) for v in value.split(","))
    return type(current)(value)


def apply_overrides(cfg, items: list[str]):
    """Set each ``KEY=VALUE`` on ``cfg`` with the type of the field's current value; a clear error on unknown keys,
    retired experiment options (``cfg.RETIRED``, at any value) or values that do not parse."""
    names = {f.name for f in dataclasses.fields(cfg)}
    retired = getattr(type(cfg), "RETIRED", {})
    for item in items:
        key, sep, value = item.partition("=")
        if sep and key in retired:  # gone, not merely unknown: say so (synth.model.configio)
            raise ValueError(f"--set {item!r}: {type(cfg).retired_error(key, value)}; it is no longer an option")
        if not sep or key not in names:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(names))}")
        try:
            setattr(cfg, key, _parse(getattr(cfg, key), value, key))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"--set {item!r}: {exc}") from exc
    return cfg


def apply_overrides_validated(cfg, items: list[str]) -> bool:
    """``apply_overrides``, then re-derive (``cfg.__post_init__()``) and check (``cfg.validate()``) the config, as
    the flow commands need; a bad override or an invalid config is printed on stderr and gives False (the command
    then exits 2)."""
    try:
        apply_overrides(cfg, items)
        cfg.__post_init__()
        cfg.validate()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return False
    return True
