"""Boundary checks for numbers and JSON that enter from a file, a command-line flag or a session.

Everything that crosses into the program from outside is checked once, where it enters, so the code behind it
may trust it. A bad value raises :class:`InputError` (a ``ValueError``) whose message names the field or file and
says what is wrong, ready to be printed as a one-line error.

API (small on purpose):

- ``InputError``: the error type; ``str(exc)`` is the whole message.
- ``finite_in_range(value, lo, hi, name) -> float``: ``value`` as a float, or ``InputError`` when it is not a
  number, NaN, infinite or outside ``[lo, hi]``. ``name`` is the flag or field, e.g. ``"--gain-db"``.
- ``MASTER_GAIN_DB_RANGE``: the range every master gain (render, export, play, session) must lie in.
- ``load_json_file(path, max_bytes=..., max_depth=..., allow_nan=False)``: parse a JSON file, refusing files that
  are too big, nested too deeply, hold integers too long to be meant (a 5000-digit number), or numbers that are not
  finite (``NaN``, ``Infinity``, ``1e999``). Messages start with the file's path. ``allow_nan=True`` lets those
  through as float NaN/inf instead, for a caller that checks each field and wants to keep the good ones.
- ``parse_json_text(text, source, max_depth=..., allow_nan=False)``: the same checks for text already in memory.

Example::

    from synth.validate import InputError, MASTER_GAIN_DB_RANGE, finite_in_range
    try:
        gain = finite_in_range(args.gain_db, *MASTER_GAIN_DB_RANGE, "--gain-db")
    except InputError as exc:
        print(f"synth play: {exc}", file=sys.stderr)
        return 2
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

# -96 dB is the floor of 16-bit audio (quieter is silence); +24 dB is far louder than any mix needs, and the
# limiter behind it must still see finite numbers (1000 dB overflows float32 to inf, and inf * 0 is NaN).
MASTER_GAIN_DB_RANGE = (-96.0, 24.0)

DEFAULT_MAX_BYTES = 1 << 20  # presets, sessions and grid descriptions are a few hundred bytes
DEFAULT_MAX_DEPTH = 32  # the deepest file we write nests 3 levels; 32 leaves room without risking recursion
MAX_INT_DIGITS = 30  # no number we store has more; 5000 digits is an attack on int() parsing, not data

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class InputError(ValueError):
    """A value from outside (file, flag, session) that cannot be used; the message names where it came from."""


def finite_in_range(value: object, lo: float, hi: float, name: str) -> float:
    """``value`` as a float when it is a finite number in ``[lo, hi]``, else ``InputError`` naming ``name``."""
    if isinstance(value, (bool, str, bytes)):  # True is 1 to float(), "nan" is NaN: neither is a number here
        raise InputError(f"{name}: expected a number, got {_short(repr(value))}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int past float's range
        raise InputError(f"{name}: {_short(repr(value))} is outside the allowed range {lo:g} to {hi:g}") from None
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number, got {_short(repr(value))}") from None
    if not math.isfinite(number):
        raise InputError(f"{name}: {_short(value)} is not a finite number (allowed: {lo:g} to {hi:g})")
    if not lo <= number <= hi:
        raise InputError(f"{name}: {number:g} is outside the allowed range {lo:g} to {hi:g}")
    return number


def load_json_file(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH,
                   allow_nan: bool = False):
    """Parse a JSON file with the checks above; ``InputError`` names the file on any problem (never a traceback)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{path}: {size} bytes is too big for this kind of file (at most {max_bytes})")
        raw = path.read_bytes()[: max_bytes + 1]  # the file may grow between stat and read
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise InputError(f"{path}: more than {max_bytes} bytes is too big for this kind of file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_json_text(text, str(path), max_depth, allow_nan)


def parse_json_text(text: str, source: str, max_depth: int = DEFAULT_MAX_DEPTH, allow_nan: bool = False):
    """Parse JSON ``text``; ``source`` (a path or a label) starts every error message."""
    depth = _nesting_depth(text, max_depth)
    if depth > max_depth:
        raise InputError(f"{source}: JSON nested more than {max_depth} levels deep")
    hooks = {} if allow_nan else {"parse_float": _parse_float(source), "parse_constant": _parse_constant(source)}
    try:
        return json.loads(text, parse_int=_parse_int(source), **hooks)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except RecursionError:  # the depth check above should make this unreachable; kept as a last fence
        raise InputError(f"{source}: JSON nested too deeply") from None


def _nesting_depth(text: str, limit: int) -> int:
    """Deepest bracket nesting outside strings (stops counting past ``limit``): checked before ``json.loads``,
    whose recursive parser would otherwise raise RecursionError or exhaust the stack."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def _parse_int(source: str):
    def parse(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise InputError(f"{source}: a {len(digits)}-digit integer is too long (at most {MAX_INT_DIGITS})")
        return int(digits)

    return parse


def _parse_float(source: str):
    def parse(literal: str) -> float:
        number = float(literal)
        if not math.isfinite(number):
            raise InputError(f"{source}: the number {_short(literal)} is too large (not a finite float)")
        return number

    return parse


def _parse_constant(source: str):
    def parse(name: str) -> float:
        raise InputError(f"{source}: {name} is not a number JSON allows (write a finite number)")

    return parse


def _short(value: object, limit: int = 40) -> str:
    """A value for an error message, cut so a 5000-character input does not flood the terminal."""
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
