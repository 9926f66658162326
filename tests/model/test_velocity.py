"""Issue 18, model side: velocity as a condition of the VAE decoder and the generator, the whole keyboard (88
pitches), and old configs (no velocity field) building the same network with the same outputs."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synth.model.data import coverage_warnings, instrument_batches, synthetic_notes
from synth.model.generator import Generator, GeneratorConfig, generate_frames
from synth.model.train_vae import train_vae
from synth.model.vae import TimbreVAE, VAEConfig, load_vae, save_vae, velocity_index
from synth.model.vae_health import velocity_response

ROOT = Path(__file__).resolve().parents[2]
LAYERS = (40, 70, 100, 127)


def tiny_vae_cfg(**kw) -> VAEConfig:
    base = dict(num_frames=24, dim=8, time_pool=2, enc_channels=(16, 8), pool_bins=2, hidden=32, cls_hidden=16,
                num_instruments=6, batch_size=48, epochs=3, warmup_epochs=1)
    base.update(kw)
    return VAEConfig(**base)


def tiny_gen_cfg(**kw) -> GeneratorConfig:
    base = dict(num_frames=20, dim=6, d_model=32, n_layers=2, n_heads=4, frames_per_step=4, dropout=0.0)
    base.update(kw)
    return GeneratorConfig(**base)


def brightness(frames: torch.Tensor) -> torch.Tensor:
    """Projection of frames ``[..., D]`` on the synthetic data's tilt (a ramp -1..1 over the dims), mean over all
    but the batch: how much "high dims" a note has (``synthetic_notes``' velocity effect)."""
    ramp = torch.linspace(-1.0, 1.0, frames.shape[-1])
    return (frames.float() * ramp).mean(dim=tuple(range(1, frames.dim()))) / ramp.square().mean()


# -- the velocity layer index ----------------------------------------------------------------------------------------
def test_velocity_index_picks_the_nearest_layer_and_defaults_to_100():
    v = torch.tensor([1, 40, 54, 56, 84, 86, 100, 113, 114, 127])
    assert velocity_index(LAYERS, v, 10).tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    assert velocity_index(LAYERS, None, 3).tolist() == [2, 2, 2]
    assert velocity_index((100,), torch.tensor([1, 127]), 2).tolist() == [0, 0]
    with pytest.raises(ValueError):
        velocity_index(LAYERS, torch.tensor([100, 100]), 3)


# -- VAE -------------------------------------------------------------------------------------------------------------
def test_conditioned_decoder_output_changes_with_velocity_and_none_means_100():
    torch.manual_seed(0)
    m = TimbreVAE(tiny_vae_cfg(velocity_cond=True)).eval()
    z, p = torch.randn(4, 2), torch.tensor([48, 55, 60, 72])
    outs = {v: m.decode(z, p, torch.full((4,), v)) for v in LAYERS}
    for a in LAYERS:
        for b in LAYERS:
            assert (a == b) == torch.equal(outs[a], outs[b])
    assert torch.equal(m.decode(z, p), outs[100])
    assert torch.equal(m.decode(z, p, torch.full((4,), 96)), outs[100])  # nearest layer
    assert torch.equal(m.decode(z, p, [127, 127, 127, 127]), outs[127])  # a list works too
    # one decode, mixed velocities: each row as if alone
    mixed = m.decode(z, p, torch.tensor([40, 70, 100, 127]))
    for i, v in enumerate(LAYERS):
        assert torch.allclose(mixed[i], outs[v][i], atol=1e-6)


def test_unconditioned_decoder_ignores_velocity():
    torch.manual_seed(0)
    m = TimbreVAE(tiny_vae_cfg()).eval()
    z, p = torch.randn(3, 2), torch.tensor([48, 60, 72])
    ref = m.decode(z, p)
    for v in LAYERS:
        assert torch.equal(m.decode(z, p, torch.full((3,), v)), ref)


def test_the_encoder_has_no_velocity_or_pitch_input():
    torch.manual_seed(0)
    m = TimbreVAE(tiny_vae_cfg(velocity_cond=True, beta=0.0)).train()
    xp = m.prep(torch.randn(4, 24, 8))
    pitch = torch.tensor([48, 50, 60, 72])
    a = m(xp, pitch, velocity=torch.full((4,), 40))
    b = m(xp, torch.tensor([72, 60, 50, 48]), velocity=torch.full((4,), 127))
    for key in ("mu", "logvar", "z", "inst_logits", "fam_logits", "pitch_logits"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.allclose(a["recon"], b["recon"])
    assert list(inspect.signature(m.encode).parameters) == ["x"]  # the encoder's only input is the note


def test_old_configs_without_the_velocity_fields_load_and_give_identical_outputs(tmp_path):
    torch.manual_seed(0)
    m = TimbreVAE(tiny_vae_cfg()).eval()
    save_vae(m, tmp_path)
    cfg_json = json.loads((tmp_path / "vae.json").read_text())
    for key in ("velocity_cond", "velocity_layers"):
        del cfg_json[key]  # as written before the fields existed
    (tmp_path / "vae.json").write_text(json.dumps(cfg_json))
    old = load_vae(tmp_path)
    assert old.cfg.velocity_cond is False and old.cfg == m.cfg
    assert list(old.state_dict()) == list(m.state_dict())  # same network: no velocity weights at all
    x, z, p = torch.randn(3, 24, 8), torch.randn(3, 2), torch.tensor([48, 60, 72])
    assert torch.equal(old.encode(x)[0], m.encode(x)[0])
    assert torch.equal(old.decode(z, p), m.decode(z, p))
    assert torch.equal(old.decode(z, p, torch.tensor([40, 70, 127])), m.decode(z, p))
    # and the generator's config
    g = Generator(tiny_gen_cfg()).eval()
    g_json = json.loads(g.cfg.to_json())
    del g_json["velocity_cond"], g_json["velocity_layers"]
    g_old = Generator(GeneratorConfig.from_json(json.dumps(g_json))).eval()
    assert g_old.cfg == g.cfg and list(g_old.state_dict()) == list(g.state_dict())


def test_the_shipped_bundle_loads_strictly_and_its_networks_hear_velocity():
    """models/default (round 3) is velocity-conditioned over four layers: the networks built from its configs take
    its weight files exactly (strict; the stage-2 files are float16) and a soft and a hard layer give different
    frames at the same point and pitch."""
    from synth.model.flow import FlowConfig, FlowNet

    b = ROOT / "models" / "default"
    if not (b / "bundle.json").exists() or (b / "vae.pt").stat().st_size < 1000:
        pytest.skip("no shipped bundle weights in this checkout")
    info = json.loads((b / "bundle.json").read_text())
    assert info["vae_config"]["velocity_cond"] and info["velocity_layers"] == [40, 70, 100, 127]
    vae = TimbreVAE(VAEConfig.from_json(json.dumps(info["vae_config"]))).eval()
    vae.load_state_dict(torch.load(b / "vae.pt", weights_only=True))
    gen = Generator(GeneratorConfig.from_json(json.dumps(info["generator_config"]))).eval()
    gen.load_state_dict(torch.load(b / "generator.pt", weights_only=True))
    flow = FlowNet(FlowConfig.from_json(json.dumps(info["flow_config"]))).eval()
    flow.load_state_dict(torch.load(b / "flow.pt", weights_only=True))
    z, p = torch.tensor([[0.2, -0.3], [0.2, -0.3]]), torch.tensor([60, 60])
    v = torch.tensor([40, 127])
    with torch.no_grad():
        frames = vae.decode(z, p, v)
        assert not torch.allclose(frames[0], frames[1], atol=1e-3)
        made = flow.generate(z, p, v, steps=2)
        assert torch.isfinite(made).all() and not torch.allclose(made[0], made[1], atol=1e-3)


def test_vae_learns_brightness_over_velocity_and_a_blind_one_cannot(tmp_path):
    """Synthetic instruments whose notes get brighter with velocity (``synthetic_notes(velocities=...)``): the
    conditioned decoder reproduces the brightness difference between v40 and v127 at the same point and pitch."""
    torch.manual_seed(0)
    notes = synthetic_notes(6, pitches=(48, 55), num_frames=24, dim=8, time_pool=2, seed=1, velocities=(40, 127))
    classes = sorted(set(notes.instrument_names))
    kw = dict(pitch_max=55, epochs=60, warmup_epochs=2, lr=3e-3, batch_size=48, w_nei=1.0, w_reg=1.0)
    models = {}
    for cond in (True, False):
        models[cond] = train_vae(notes, tiny_vae_cfg(velocity_cond=cond, **kw), tmp_path / str(cond), classes,
                                 progress=False)
    x = notes.x.float()
    loud, soft = notes.velocity == 127, notes.velocity == 40
    assert torch.equal(notes.pitch[loud], notes.pitch[soft])  # same (instrument, pitch) order in both layers
    true_step = float((brightness(x[loud].transpose(1, 2)) - brightness(x[soft].transpose(1, 2))).mean())
    assert true_step > 0.3  # (127 - 40) / 64 times the mean envelope
    steps = {}
    for cond, m in models.items():
        with torch.no_grad():
            mu = m.encode_prepped(x[soft])[0]  # one point per note; decoded at both velocities
            n = len(mu)
            hi = m.decode_coarse(mu, notes.pitch[soft], torch.full((n,), 127))
            lo = m.decode_coarse(mu, notes.pitch[soft], torch.full((n,), 40))
        steps[cond] = float((brightness(hi.transpose(1, 2)) - brightness(lo.transpose(1, 2))).mean())
    assert steps[False] == 0.0
    assert steps[True] == pytest.approx(true_step, rel=0.3), (steps, true_step)
    logs = {c: json.loads((tmp_path / str(c) / "log.jsonl").read_text().splitlines()[-1]) for c in (True, False)}
    assert logs[True]["rec"] < logs[False]["rec"]
    # the check `synth train vae` runs after training (synth.model.vae_health) on the same models
    follows = velocity_response(models[True], notes)
    assert follows["cells"] == 6 * 8 and not follows["blind"], follows  # every (instrument, pitch) has 40 and 127
    assert follows["cosine_p50"] > 0.5 and follows["share_cosine_positive"] > 0.9
    assert velocity_response(models[False], notes)["cells"] == 0  # no velocity input: nothing to check
    deaf = models[True]
    with torch.no_grad():  # cut the decoder's velocity inputs (the last columns of its first layer): blind
        deaf.dec_mlp[0].weight[:, -deaf.num_velocity_inputs :] = 0
    blind = velocity_response(deaf, notes)
    assert blind["blind"] and blind["ratio_p50"] == 0.0, blind


def test_velocity_layers_of_one_instrument_are_one_instrument_in_the_batches():
    notes = synthetic_notes(4, pitches=(48, 51), num_frames=8, dim=4, seed=0, velocities=LAYERS)
    assert len(set(notes.instrument_names)) == 4 and len(notes) == 4 * 4 * 4
    per_inst = {}
    for n, i in zip(notes.instrument_names, notes.instrument.tolist()):
        per_inst.setdefault(n, set()).add(i)
    assert all(len(v) == 1 for v in per_inst.values())  # one class per instrument, whatever the layer
    batches = instrument_batches(notes.instrument_names, 16, np.random.default_rng(0), group=8)
    groups_with_layers = 0
    for b in batches:
        for s in range(0, len(b), 8):
            g = b[s : s + 8]
            assert len({notes.instrument_names[i] for i in g}) == 1
            groups_with_layers += len({int(notes.velocity[i]) for i in g}) > 1
    assert groups_with_layers > 0  # the neighbour loss pulls different layers of one instrument together


# -- 88 pitches ------------------------------------------------------------------------------------------------------
def test_88_pitch_vae_trains_and_its_pitch_head_and_probe_cover_the_keyboard(tmp_path):
    from synth.eval.latent import evaluate_latent

    notes = synthetic_notes(4, pitches=(21, 108), num_frames=24, dim=8, time_pool=2, seed=0, velocities=(40, 100))
    cfg = tiny_vae_cfg(pitch_min=21, pitch_max=108, velocity_cond=True, num_instruments=4, batch_size=64, epochs=1)
    assert cfg.num_pitches == 88
    m = train_vae(notes, cfg, tmp_path / "wide", sorted(set(notes.instrument_names)), progress=False, max_steps=3)
    log = json.loads((tmp_path / "wide" / "log.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(log["total"]) and log["pitch"] > 0
    assert m.pitch_head[-1].out_features == 88
    with torch.no_grad():
        z = torch.zeros(2, 2)
        lo_hi = m.decode(z, torch.tensor([21, 108]))
    assert not torch.allclose(lo_hi[0], lo_hi[1])  # the top and bottom keys have their own one-hot
    res = evaluate_latent(m, notes, notes, probe_steps=5)
    assert res["pitch_probe"]["chance"] == pytest.approx(1 / 88) and 0 <= res["pitch_head_acc"] <= 1


def test_88_pitch_velocity_generator_matches_its_cached_and_uncached_runs():
    torch.manual_seed(0)
    g = Generator(tiny_gen_cfg(pitch_min=21, pitch_max=108, velocity_cond=True)).eval()
    torch.nn.init.normal_(g.vel_emb.weight, std=0.5)  # a trained generator's layers differ (a fresh one: zeros)
    z, p, v = torch.randn(3, 2), torch.tensor([21, 64, 108]), torch.tensor([40, 100, 127])
    a, b = g.generate(z, p, velocity=v), g.generate_uncached(z, p, velocity=v)
    assert a.shape == (3, 20, 6) and torch.allclose(a, b, atol=1e-5)
    assert torch.equal(g.generate(z, p), g.generate(z, p, velocity=torch.full((3,), 100)))
    assert not torch.allclose(g.generate(z, p, velocity=torch.full((3,), 40)), g.generate(z, p))
    assert g.pitch_emb.num_embeddings == 88


# -- generator -------------------------------------------------------------------------------------------------------
def test_fresh_velocity_generator_starts_velocity_blind_and_old_calls_still_work():
    torch.manual_seed(0)
    g = Generator(tiny_gen_cfg(velocity_cond=True)).eval()
    z, p = torch.randn(2, 2), torch.tensor([50, 60])
    ref = g.generate(z, p)
    assert torch.equal(ref, g.generate(z, p, velocity=torch.tensor([40, 127])))  # zero-initialised embedding
    assert g.generate(z, p, 7).shape == (2, 7, 6)  # num_frames stays the third positional argument
    plain = Generator(tiny_gen_cfg()).eval()
    assert plain.vel_emb is None
    assert torch.equal(plain.generate(z, p), plain.generate(z, p, velocity=torch.tensor([40, 127])))


def test_refining_generator_hands_the_velocity_to_the_vae_decoder():
    torch.manual_seed(0)
    vae = TimbreVAE(VAEConfig(num_frames=20, dim=6, time_pool=2, enc_channels=(8, 4), pool_bins=2, hidden=16,
                              cls_hidden=8, num_instruments=2, velocity_cond=True)).eval()
    g = Generator(tiny_gen_cfg(refine_vae=True, velocity_cond=True)).eval()  # fresh: plays exactly the decoder
    z, p = torch.randn(2, 2), torch.tensor([50, 60])
    for v in (torch.tensor([40, 127]), None):
        with torch.no_grad():
            assert torch.equal(generate_frames(g, vae, z, p, velocity=v), vae.decode(z, p, v))


def test_generator_learns_brightness_over_velocity():
    from synth.model.train_generator import free_running_error, training_loss

    torch.manual_seed(0)
    notes = synthetic_notes(3, pitches=(48, 51), num_frames=12, dim=4, seed=0, velocities=(40, 127), brightness=2.0)
    x = notes.x.float()
    points = torch.randn(3, 2)[notes.instrument]
    cfg = tiny_gen_cfg(num_frames=12, dim=4, d_model=32, n_layers=1, velocity_cond=True, input_noise=0.0)
    g = Generator(cfg)
    opt = torch.optim.Adam(g.parameters(), lr=3e-3)
    g.train()
    for _ in range(150):
        loss = training_loss(g, None, points, notes.pitch, x, notes.velocity)
        opt.zero_grad()
        loss.backward()
        opt.step()
    g.eval()
    loud, soft = notes.velocity == 127, notes.velocity == 40
    true_step = float((brightness(x[loud]) - brightness(x[soft])).mean())
    with torch.no_grad():
        hi = g.generate(points[soft], notes.pitch[soft], velocity=notes.velocity[loud])
        lo = g.generate(points[soft], notes.pitch[soft], velocity=notes.velocity[soft])
    step = float((brightness(hi) - brightness(lo)).mean())
    assert step == pytest.approx(true_step, rel=0.3), (step, true_step)
    err = free_running_error(g, None, points, notes.pitch, x, notes.velocity)
    blind = free_running_error(g, None, points, notes.pitch, x)  # every note at 100 = the 127 layer's neighbour
    assert err < blind


# -- configs and the command line ------------------------------------------------------------------------------------
def test_velocity_fields_roundtrip_and_parse_from_set():
    from synth.model.overrides import apply_overrides

    cfg = apply_overrides(VAEConfig(), ["pitch_min=21", "pitch_max=108", "velocity_cond=true",
                                       "velocity_layers=40,70,100,127"])
    assert (cfg.num_pitches, cfg.velocity_cond, cfg.velocity_layers) == (88, True, LAYERS)
    assert VAEConfig.from_json(cfg.to_json()) == cfg
    gcfg = apply_overrides(GeneratorConfig(), ["velocity_cond=on", "velocity_layers=60,110"])
    assert GeneratorConfig.from_json(gcfg.to_json()) == gcfg and gcfg.velocity_layers == (60, 110)
    assert {f.name for f in dataclasses.fields(VAEConfig)} >= {"velocity_cond", "velocity_layers"}


def test_coverage_warnings_name_the_flags():
    wide = {"pitch_min": 21, "pitch_max": 108, "velocities": list(LAYERS)}
    out = coverage_warnings(wide, 48, 72, False)
    assert len(out) == 2 and "--set pitch_min=21 --set pitch_max=108" in out[0]
    assert "--set velocity_cond=true" in out[1]
    assert coverage_warnings(wide, 21, 108, True) == []
    assert coverage_warnings({"pitch_min": 48, "pitch_max": 72, "velocities": [100]}, 48, 72, False) == []


def test_cli_trains_the_whole_keyboard_with_velocity_layers(tmp_path, capsys):
    from synth.cli import main
    from synth.model.data import load_notes, train_instruments
    from tests.model.fakecache import write_fake_cache
    from tests.model.test_pipeline_cli import TINY_GEN, TINY_VAE

    emb = write_fake_cache(tmp_path / "emb", instruments=(3, 2, 2), pitches=(21, 108), velocities=(40, 100, 127))
    vae_dir, gen_dir = tmp_path / "vae", tmp_path / "gen"
    assert main(["train", "vae", "--emb", str(emb), "--out", str(tmp_path / "narrow"), "--epochs", "1",
                 "--no-progress", *TINY_VAE, "--set", "batch_size=200"]) == 0
    err = capsys.readouterr().err
    assert "--set pitch_min=21 --set pitch_max=108" in err and "velocity_cond=true" in err
    assert json.loads((tmp_path / "narrow" / "vae.json").read_text())["velocity_cond"] is False
    assert main(["train", "vae", "--emb", str(emb), "--out", str(vae_dir), "--epochs", "1", "--no-progress",
                 *TINY_VAE, "--set", "batch_size=200", "--set", "pitch_min=21", "--set", "pitch_max=108",
                 "--set", "velocity_cond=true"]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert "--set pitch_min" not in out.err and "--set velocity_cond" not in out.err  # no coverage warning
    assert summary["notes"] == 3 * 88 * 3
    # the velocity check after training: every (instrument, pitch) of the 3 train instruments is a cell; one epoch
    # of a tiny VAE is free to be blind, and the warning says so exactly when it is
    health = json.loads((vae_dir / "velocity_health.json").read_text())
    assert summary["velocity_response"] == health and health["cells"] == 3 * 88
    assert ("velocity-blind" in out.err) == health["blind"]
    vae = load_vae(vae_dir)
    assert (vae.cfg.pitch_min, vae.cfg.pitch_max, vae.cfg.velocity_cond) == (21, 108, True)
    assert main(["train", "generator", "--emb", str(emb), "--vae", str(vae_dir), "--out", str(gen_dir),
                 "--steps", "2", "--valid-every", "2", "--valid-notes", "8", "--no-progress", *TINY_GEN]) == 0
    assert "warning" not in capsys.readouterr().err
    gcfg = GeneratorConfig.load(gen_dir / "generator.json")
    assert (gcfg.pitch_min, gcfg.pitch_max, gcfg.velocity_cond, gcfg.velocity_layers) == (21, 108, True, LAYERS)
    log = [json.loads(x) for x in (gen_dir / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and np.isfinite(log[-1]["valid_free_mse"])
    valid = load_notes(emb, "valid", train_instruments(emb), 24, 1, (21, 108))
    assert sorted(set(valid.velocity.tolist())) == [40, 100, 127] and len(valid) == 2 * 88 * 3
    # the bundle as it is today takes the velocity-conditioned configs (it plays them at velocity 100)
    from synth.engine.synthesizer import Synthesizer
    from synth.model.bundle import build_tiny_bundle, load_bundle

    codec_dir = build_tiny_bundle(tmp_path / "tinyb") / "codec"
    assert main(["bundle", "build", "--codec", str(codec_dir), "--vae", str(vae_dir), "--gen", str(gen_dir),
                 "--emb", str(emb), "--out", str(tmp_path / "bundle")]) == 0
    b = load_bundle(tmp_path / "bundle", device="cpu")
    assert b.vae.cfg.velocity_cond and b.generator.cfg.velocity_cond and tuple(b.pitch_range) == (21, 108)
    audio = Synthesizer(b, device="cpu").generate((0.1, 0.2), [21, 108])
    assert audio.shape[0] == 2 and np.isfinite(audio).all()
