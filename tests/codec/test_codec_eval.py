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


def test_eval_cli_prints_json_last(tiny_notes, tmp_path, capsys):
    import argparse

    from synth.codec import eval_cli

    torch.manual_seed(0)
    folder = BundledCodec(tiny_config("harmonic")).save(tmp_path / "codec")
    parser = argparse.ArgumentParser()
    eval_cli.configure(parser)
    args = parser.parse_args(["--codec", str(folder), "--data", str(tiny_notes), "--split", "test", "--seconds", "1",
                              "--skip-pitch", "--timing-threads", "1", "--json", "--write-examples",
                              str(tmp_path / "ex")])
    assert eval_cli.run(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["notes"] == 5 and result["mrstft"] > 0 and "decode_s_25_notes" in result
    assert set(result["mrstft_by_family"]) == {"synth_lead"}
    assert result["embedding_health"]["learned_dims"] == 16 and "swap_change" in result["embedding_health"]
    assert len(list((tmp_path / "ex").glob("*.wav"))) == 5
