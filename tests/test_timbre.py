"""synth.timbre.Timbre: the one timbre type (checked when made; the JSON fields presets and sessions store)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from synth.timbre import RANGES, Timbre
from synth.validate import InputError


def test_defaults_and_numbers_become_floats():
    timbre = Timbre(1, -2)
    assert (timbre.x, timbre.y, timbre.gain_db, timbre.attack_ms, timbre.release_ms, timbre.character) == \
        (1.0, -2.0, 0.0, 5.0, 300.0, None)
    assert all(type(v) is float for v in (timbre.x, timbre.y, timbre.gain_db))
    assert timbre.point == (1.0, -2.0) and timbre.at(0.5, 0.25) == Timbre(0.5, 0.25)


@pytest.mark.parametrize("field", sorted(RANGES))
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 10 ** 400, True, "1", 1e300])
def test_every_field_is_checked_when_made(field, bad):
    with pytest.raises(InputError, match=field):
        Timbre(**{"x": 0.0, "y": 0.0, field: bad})


@pytest.mark.parametrize("field", sorted(RANGES))
def test_range_edges(field):
    lo, hi = RANGES[field]
    for ok in (lo, hi):
        assert getattr(Timbre(**{"x": 0.0, "y": 0.0, field: ok}), field) == ok
    for bad in (lo - 1e-9 * max(1.0, abs(lo)) - 1e-12, hi + 1e-9 * max(1.0, abs(hi)) + 1e-12):
        with pytest.raises(InputError):
            Timbre(**{"x": 0.0, "y": 0.0, field: bad})


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timbre(0, 0).x = 1.0  # type: ignore[misc]


def test_dict_round_trip_and_older_fields():
    full = Timbre(0.25, -0.5, -3.0, 20.0, 800.0, 2.5)
    assert Timbre.from_dict(full.to_dict()) == full
    assert "character" not in Timbre(0, 0).to_dict()  # older readers never see it
    assert list(full.to_dict()) == ["x", "y", "gain_db", "attack_ms", "release_ms", "character"]
    assert Timbre.from_dict({"x": 1, "y": 2}) == Timbre(1.0, 2.0)  # older files: only the point
    assert Timbre.from_dict({"x": 1, "y": 2, "character": None}).character is None
    with pytest.raises(InputError, match="sound.y: missing"):
        Timbre.from_dict({"x": 1}, where="sound.")
    with pytest.raises(InputError, match="gain_db"):
        Timbre.from_dict({"x": 1, "y": 2, "gain_db": None})
    with pytest.raises(InputError, match="timbre"):
        Timbre.from_dict([1, 2])  # type: ignore[arg-type]
