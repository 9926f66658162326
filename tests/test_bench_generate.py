"""``synth bench generate`` on tiny bundles: every play path the bundle has, first note / 25 nearest keys / all keys,
and the flow's steps x sampler table with the codec decode included."""

from __future__ import annotations

import json

from synth.cli import main
from synth.model.bundle import build_tiny_bundle
from tests.model.widebundle import build_wide_tiny_bundle


def _bench(capsys, bundle, *extra) -> dict:
    capsys.readouterr()
    assert main(["bench", "generate", "--bundle", str(bundle), "--repeats", "2", "--threads", "1", "--json",
                 *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_generate_every_path_over_88_keys_and_the_flow_table(tmp_path, capsys):
    res = _bench(capsys, build_wide_tiny_bundle(tmp_path / "wide"), "--steps", "2,4", "--samplers", "euler,heun")
    assert res["model"] == "bundled" and res["play_path"] == "flow"
    assert res["keys"] == 88 and res["pitch_range"] == [21, 108] and res["nearest_25"] == [48, 72]
    assert set(res["paths"]) == {"flow", "generator", "vae"}
    for row in res["paths"].values():
        assert 0 < row["first_note_s"] <= row["nearest_25_s"] <= row["all_keys_s"]
    assert res["first_note_s"] == res["paths"]["generator"]["first_note_s"]  # earlier versions' keys stay
    assert res["all_25_s"] == res["paths"]["generator"]["nearest_25_s"] and res["codec_decode_25_s"] > 0
    table = res["flow_steps_table"]
    assert [(r["sampler"], r["steps"], r["net_calls"]) for r in table] == \
        [("euler", 2, 2), ("euler", 4, 4), ("heun", 2, 3), ("heun", 4, 7)]
    for r in table:
        assert r["decode_s"] > 0 and abs(r["model_s"] + r["decode_s"] - r["total_s"]) < 2e-4 and r["first_note_s"] > 0
    assert res["flow"] == {"steps": 2, "guidance": 2.0, "sampler": "euler"}
    assert len(res["per_repeat"]) == 2


def test_bench_generate_without_flow(tmp_path, capsys):
    res = _bench(capsys, build_tiny_bundle(tmp_path / "tiny"), "--first-pitch", "30")
    assert set(res["paths"]) == {"generator", "vae"} and "flow_steps_table" not in res
    assert res["keys"] == 25 and res["first_pitch"] == 48  # clamped into the bundle's range
    assert res["paths"]["generator"]["nearest_25_s"] == res["paths"]["generator"]["all_keys_s"]
