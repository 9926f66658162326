"""The paired velocity eval: which cells it forms, the per-cell slope, and the per-family summary."""

from __future__ import annotations

import math

import pytest

from synth.eval.velocity import cell_slope, summarize, velocity_cells


def _ex(inst, fam, pitch, vel):
    return {f"{inst}-{pitch:03d}-{vel:03d}": {"instrument_str": inst, "instrument_family_str": fam, "pitch": pitch,
                                              "velocity": vel}}


def test_cells_need_two_velocity_layers_of_one_instrument_and_pitch_in_range():
    ex = {}
    for e in (_ex("a", "organ", 60, 40), _ex("a", "organ", 60, 127), _ex("a", "organ", 60, 100),  # a cell of 3
              _ex("a", "organ", 62, 100),  # one velocity: no cell
              _ex("b", "brass", 60, 40), _ex("b", "brass", 60, 55),  # 55 is not a layer: no cell
              _ex("c", "flute", 20, 40), _ex("c", "flute", 20, 127)):  # pitch out of range
        ex.update(e)
    cells = velocity_cells(ex, (21, 108), (40, 70, 100, 127))
    assert len(cells) == 1
    (cell,) = cells
    assert (cell.instrument, cell.family, cell.pitch, cell.velocities) == ("a", "organ", 60, (40, 100, 127))
    assert cell.note_strs == ("a-060-040", "a-060-100", "a-060-127")


def test_cell_slope_is_per_127_velocity_and_ignores_non_finite_values():
    assert cell_slope([0.0, 1.0], [0, 127]) == pytest.approx(1.0)
    assert cell_slope([1.0, 2.0, 3.0], [40, 70, 100]) == pytest.approx(127 / 30)
    assert cell_slope([1.0, float("nan"), 3.0], [40, 70, 100]) == pytest.approx(2 * 127 / 60)
    assert cell_slope([1.0, float("nan")], [40, 70]) is None
    assert cell_slope([1.0, 2.0], [70, 70]) is None


def test_summary_ratios_signs_and_the_families_within_30_percent():
    slopes = {"real": [1.0, 2.0, 3.0, -1.0, -2.0, -3.0],
              "model": [1.1, 2.2, 3.3, 1.0, 2.0, 3.0]}  # right on family x (ratio 1.1), wrong sign on family y
    fams = ["x", "x", "x", "y", "y", "y"]
    out = summarize(slopes, fams)
    x, y = out["by_family"]["x"], out["by_family"]["y"]
    assert x["cells"] == 3 and x["median"] == {"real": 2.0, "model": pytest.approx(2.2)}
    assert x["ratio_to_real"]["model"] == pytest.approx(1.1) and x["same_sign_share"]["model"] == 1.0
    assert x["correlation"]["model"] == pytest.approx(1.0)
    assert x["median_abs_error"]["model"] == pytest.approx(0.2) and y["median_abs_error"]["model"] == pytest.approx(4.0)
    assert y["ratio_to_real"]["model"] == pytest.approx(-1.0) and y["same_sign_share"]["model"] == 0.0
    assert out["families_within_30pct"]["model"] == {"families": 2, "within": 1, "share": 0.5}
    assert out["by_family"]["all"]["cells"] == 6


def test_summary_copes_with_missing_slopes_and_a_zero_real_median():
    out = summarize({"real": [None, 0.0, 0.0], "model": [1.0, None, 2.0]}, ["x", "x", "x"])
    row = out["by_family"]["x"]
    assert row["median"]["real"] == 0.0 and row["ratio_to_real"]["model"] is None
    assert row["correlation"]["model"] is None and math.isclose(row["same_sign_share"]["model"], 0.0)
    assert out["families_within_30pct"]["model"]["share"] is None


def test_cli_end_to_end_on_a_tiny_flow_bundle(tmp_path, capsys):
    """``synth eval velocity`` on a tiny velocity-conditioned flow bundle and stand-in real notes that get brighter
    and louder with velocity: the real slopes come out positive, every condition is measured on every cell, and
    the shared-noise switch reaches the flow."""
    import json

    from synth.cli import main
    from tests.model.fakecache import write_fake_audio, write_fake_cache
    from tests.model.widebundle import build_wide_tiny_bundle

    emb = write_fake_cache(tmp_path / "emb", num_frames=150, pitches=(58, 62), velocities=(40, 100, 127))
    write_fake_audio(tmp_path / "notes", emb, splits=("test",))
    bundle = build_wide_tiny_bundle(tmp_path / "bundle", num_frames=150)
    args = ["eval", "velocity", "--bundle", str(bundle), "--emb", str(emb), "--data", str(tmp_path / "notes"),
            "--max-cells", "4", "--models", "flow,generator", "--note-off", "1.5", "--threads", "1", "--json"]
    capsys.readouterr()
    assert main(args + ["--layer-noise", "shared"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["cells"] == 4 and res["notes"] == 12 and res["layer_noise"] == "shared"
    every = res["brightness"]["by_family"]["all"]
    assert set(every["median"]) == {"real", "codec", "flow", "generator"}
    assert every["median"]["real"] > 0.3  # brighter with velocity, as the stand-ins are made
    assert res["level"]["by_family"]["all"]["median"]["real"] > 3.0  # louder with velocity (dB from 0 to 127)
    assert all(v is not None for v in every["median"].values())
    assert set(res["by_layer"]["real"]) == {"40", "100", "127"}


def test_cli_refuses_an_unknown_network(tmp_path):
    from synth.cli import main
    from tests.model.widebundle import build_wide_tiny_bundle

    bundle = build_wide_tiny_bundle(tmp_path / "bundle", num_frames=150)
    with pytest.raises(SystemExit, match="nonsense"):
        main(["eval", "velocity", "--bundle", str(bundle), "--models", "nonsense", "--emb", str(tmp_path),
              "--data", str(tmp_path)])
