"""``synth bench morph``'s follow check, without JACK: the drag's path between the darkest and the brightest family
centre, the expected sound read where the voices are, and the correlations (issue 19)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from synth.bench.morph import _correlations, _drag_ends, _path, _read
from synth.engine.buffers import prepare_note_buffer
from synth.engine.sources import SineNoteSource

HELD = [48, 55, 60, 64]


class _FamilySource(SineNoteSource):
    """The sine source (x: spectral tilt, dark left, bright right) with instrument families on its map."""

    def __init__(self) -> None:
        super().__init__()
        self.instruments = tuple(SimpleNamespace(family=f, x=x, y=y) for f, x, y in (
            ("flute", -0.8, 0.1), ("flute", -0.6, -0.1), ("brass", 0.7, 0.0), ("brass", 0.9, 0.2),
            ("organ", 0.0, 0.5), ("organ", 0.1, 0.3), ("odd", float("nan"), 0.0)))
        self.asked: list[list[int]] = []

    def generate(self, xy, pitches, velocity=100):
        self.asked.append(list(pitches))
        return super().generate(xy, pitches, velocity)


def test_the_drag_goes_from_the_darkest_to_the_brightest_family_centre_without_playing_the_held_keys():
    source = _FamilySource()
    path = _drag_ends(source, ((-1, 1), (-1, 1)), HELD)
    assert path["from"]["family"] == "flute" and path["to"]["family"] == "brass"
    assert np.allclose(path["from"]["xy"], (-0.7, 0.0)) and np.allclose(path["to"]["xy"], (0.8, 0.1))
    assert path["from"]["probe_centroid_hz"] < path["to"]["probe_centroid_hz"]
    assert len(source.asked) == 3 and all(set(a).isdisjoint(HELD) for a in source.asked)  # no anchors of held keys
    ends = (tuple(path["from"]["xy"]), tuple(path["to"]["xy"]))
    assert np.allclose(_path(0.0, ends), ends[0]) and np.allclose(_path(1.0, ends), ends[1])
    assert np.allclose(_path(0.5, ends), np.mean(ends, axis=0))


def test_a_source_without_families_is_dragged_left_to_right_through_the_middle():
    path = _drag_ends(SineNoteSource(), ((-1.0, 1.0), (-2.0, 0.0)), HELD)
    assert path["from"]["xy"] == [-0.8, -1.0] and path["to"]["xy"] == [0.8, -1.0]


def test_read_wraps_in_the_sustain_loop():
    buf = prepare_note_buffer(SineNoteSource().generate((0, 0), [60])[0], 24000, 48000, 60)
    n = 1000
    out = _read(buf, buf.loop_end - 300.0, n)
    assert np.array_equal(out[:300], buf.data[buf.loop_end - 300:buf.loop_end])
    assert np.array_equal(out[300:], buf.data[buf.loop_start:buf.loop_start + n - 300])


def test_correlations_skip_missing_points_and_rank_ties():
    a = [1.0, 2.0, float("nan"), 4.0, 8.0]
    b = [10.0, 20.0, 30.0, 40.0, 41.0]
    r = _correlations(a, b)
    assert r["points"] == 4 and r["spearman_r"] == 1.0 and 0.8 < r["pearson_r"] < 1.0
    assert _correlations([1, 1, 1], [1, 2, 3])["pearson_r"] is None
    tied = _correlations([1, 1, 2, 3], [1, 2, 3, 4])["spearman_r"]
    assert tied is not None and 0.9 < tied < 1.0 and not math.isnan(tied)
