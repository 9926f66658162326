"""The codec eval command and the shared audio metrics (pitch accuracy by crepe, spectral distances)."""

from __future__ import annotations

import json

import numpy as np
import torch

from synth.codec.bundled import BundledCodec
from synth.eval import audio_metrics as am
from tests.codec.conftest import tiny_config, tone


def test_pitch_accuracy_on_tones():
    waves = torch.from_numpy(np.stack([tone(p, 1.5, 1.0) for p in (48, 60, 72)]))
    right = am.pitch_accuracy(waves, 24_000, [48, 60, 72])
    assert right["accuracy"] == 1.0
    wrong = am.pitch_correct(right["f0"], np.array([49, 60, 84]))
    assert wrong.tolist() == [False, True, False]


def test_spectral_distances():
    x = torch.from_numpy(np.stack([tone(60, 1.0, 1.0)]))
    assert am.log_mel_l1(x, x, 24_000) == 0.0
    assert am.mrstft_distance(x, x) < 1e-3
    assert am.log_mel_l1(0.5 * x, x, 24_000) > 0.2


def _numbers(x, path=""):
    """(path, value) for every number in a nested JSON value (None counts: it stands for NaN)."""
    if isinstance(x, dict):
        return [item for k, v in x.items() for item in _numbers(v, f"{path}.{k}")]
    if isinstance(x, list):
        return [item for i, v in enumerate(x) for item in _numbers(v, f"{path}[{i}]")]
    return [(path, x)] if x is None or isinstance(x, (int, float)) and not isinstance(x, bool) else []


def test_eval_cli_prints_json_last(tiny_notes, tmp_path, capsys):
    import argparse
    import math

    from synth.eval import codec_cli as eval_cli

    torch.manual_seed(0)
    folder = BundledCodec(tiny_config("harmonic")).save(tmp_path / "codec")
    parser = argparse.ArgumentParser()
    eval_cli.configure(parser)
    # the train split: two instruments at the same pitches, so the timbre scale and spread exist; the tiny notes are
    # 1 s long and release at 0.75 s; crepe is skipped (tested above), pYIN runs
    args = parser.parse_args(["--codec", str(folder), "--data", str(tiny_notes), "--split", "train", "--seconds", "1",
                              "--pitch-trackers", "pyin", "--note-off", "0.75", "--timing-threads", "1", "--json",
                              "--write-examples", str(tmp_path / "ex")])
    assert eval_cli.run(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["notes"] == 10 and result["mrstft"] > 0 and "decode_s_25_notes" in result
    assert set(result["mrstft_by_family"]) == {"synth_lead"}
    assert result["embedding_health"]["learned_dims"] == 16 and "swap_change" in result["embedding_health"]
    assert len(list((tmp_path / "ex").glob("*.wav"))) == 8
    assert "pitch_accuracy_raw" not in result  # crepe not asked for
    # the sound measures: present, with real and round-trip values, all finite
    assert result["pitch_accuracy_pyin_raw"] == 1.0 and 0.0 <= result["pitch_accuracy_pyin_encoded"] <= 1.0
    for key in ("release", "noise", "timbre"):
        assert {"real", "roundtrip"} <= set(result[key] if key != "timbre" else result[key]["spread"])
    assert set(result["attack_by_family"]) == {"synth_lead", "all"}
    assert result["release"]["note_off_s"] == 0.75 and result["release"]["real"]["notes"] == 10
    assert result["release"]["real"]["share_reaching_40db"] == 0.0  # the fixture's tones fade 17 dB in 0.25 s
    numbers = _numbers({k: result[k] for k in ("release", "noise", "attack_by_family", "timbre",
                                               "pitch_accuracy_pyin_raw", "pitch_accuracy_pyin_encoded")})
    allowed_none = {".release.share_ratio"}  # round trip / real share, and the real share is 0 here
    bad = [(p, v) for p, v in numbers if p not in allowed_none and (v is None or not math.isfinite(v))]
    assert not bad, bad
    assert len(numbers) > 60
