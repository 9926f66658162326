"""Flow-matching generator: seeding per point, guidance semantics, sampler plumbing, continuation, training, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from synth.model.flow import FlowConfig, FlowNet, load_flow, point_noise, save_flow, time_grid, velocity_index

T, D = 24, 6


def tiny_cfg(**kw) -> FlowConfig:
    base = dict(num_frames=T, dim=D, patch=4, d_model=32, n_layers=2, n_heads=4, pitch_min=48, pitch_max=72,
                context_min=2, context_max=10, context_shift_max=6, context_frames=8, batch_size=16,
                warmup_steps=5, total_steps=200, ema_decay=0.9)
    base.update(kw)
    return FlowConfig(**base)


def tiny(**kw) -> FlowNet:
    """A tiny net with every weight random (a fresh one is adaLN-Zero: it outputs exactly zero)."""
    torch.manual_seed(0)
    net = FlowNet(tiny_cfg(**kw))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.1)
    return net.eval()


PTS = torch.tensor([[0.3, -0.1]])


def test_same_point_same_notes_and_different_points_differ():
    net = tiny()
    pitches = torch.arange(48, 54)
    a = net.generate(PTS.expand(6, 2), pitches)
    b = net.generate(PTS.expand(6, 2), pitches)
    assert a.shape == (6, T, D) and a.dtype == torch.float32
    assert torch.equal(a, b)
    c = net.generate(torch.tensor([[-0.4, 0.5]]).expand(6, 2), pitches)
    assert not torch.allclose(a, c, atol=1e-3)
    # a row does not depend on the others in its batch (the engine generates the first note alone)
    mixed = net.generate(torch.cat([PTS, torch.tensor([[-0.4, 0.5]])]), torch.tensor([48, 49]))
    assert torch.allclose(mixed[0], a[0], atol=1e-5) and torch.allclose(mixed[1], c[1], atol=1e-5)


def test_pitches_of_one_point_share_their_noise():
    cfg = tiny_cfg()
    pts = torch.tensor([[0.3, -0.1]] * 5 + [[0.301, -0.1]])  # the last one is in the same 0.02 cell
    noise = point_noise(cfg, pts, torch.full((6,), 2))
    assert all(torch.equal(noise[0], noise[i]) for i in range(6))
    assert not torch.equal(noise[0], point_noise(cfg, pts[:1], torch.tensor([1]))[0])  # another velocity layer
    assert not torch.equal(noise[0], point_noise(cfg, pts[:1], torch.tensor([2]), segment=1)[0])  # next segment
    assert not torch.equal(noise[0], point_noise(cfg, pts[:1] + 0.05, torch.tensor([2]))[0])  # another cell
    # and generate() really starts every pitch of the point from that one tensor
    net, seen = tiny(), []
    real = net.sample
    net.sample = lambda noise, *a, **k: seen.append(noise) or real(noise, *a, **k)
    net.generate(pts[:5], torch.arange(50, 55))
    assert all(torch.equal(seen[0][0], seen[0][i]) for i in range(5))
    assert torch.equal(seen[0][0], noise[0])
    # seed_points=False: fresh noise per row
    seen.clear()
    net.generate(pts[:2], torch.tensor([50, 51]), seed_points=False, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(seen[0][0], seen[0][1])


def test_guidance_at_the_velocity_field():
    net = tiny()
    b = 3
    x, t = torch.randn(b, T, D), torch.rand(b)
    pts, pidx = torch.randn(b, 2) * 0.5, torch.tensor([0, 5, 20])
    vidx = velocity_index(net.cfg, torch.tensor([100, 40, 127]), b)
    with torch.no_grad():
        vc = net(x, t, pts, pidx, vidx)
        vu = net(x, t, pts, pidx, vidx, torch.ones(b, dtype=torch.bool))
        assert torch.equal(net.guided_velocity(x, t, pts, pidx, vidx, 1.0), vc)
        assert torch.equal(net.guided_velocity(x, t, pts, pidx, vidx, 0.0), vu)
        assert torch.allclose(net.guided_velocity(x, t, pts, pidx, vidx, 2.5), vu + 2.5 * (vc - vu), atol=1e-5)
        assert not torch.allclose(vc, vu, atol=1e-3)
        # the unconditional field ignores point, pitch and velocity
        vu2 = net(x, t, pts + 1, pidx.flip(0), vidx.flip(0), torch.ones(b, dtype=torch.bool))
        assert torch.allclose(vu, vu2, atol=1e-6)


def _euler(net, noise, t_grid, drop, pts, pidx, vidx):
    x = noise
    for t0, t1 in zip(t_grid[:-1], t_grid[1:]):
        with torch.no_grad():
            x = x + (t1 - t0) * net(x, torch.full((len(x),), t0), pts, pidx, vidx, drop)
    return x


def test_guidance_through_the_sampler():
    net = tiny()
    pts, pitches = PTS.expand(3, 2), torch.tensor([48, 60, 72])
    noise = point_noise(net.cfg, pts, velocity_index(net.cfg, None, 3))
    pidx, vidx = pitches - 48, velocity_index(net.cfg, None, 3)
    grid = time_grid(4)
    cond = _euler(net, noise, grid, None, pts, pidx, vidx)
    unc = _euler(net, noise, grid, torch.ones(3, dtype=torch.bool), pts, pidx, vidx)
    assert torch.allclose(net.generate(pts, pitches, steps=4, guidance=1.0), cond, atol=1e-5)
    assert torch.allclose(net.generate(pts, pitches, steps=4, guidance=0.0), unc, atol=1e-5)
    # guidance 0 = the unconditional model: the pitch makes no difference (same noise)
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    a = net.generate(pts, pitches, steps=4, guidance=0.0, seed_points=False, generator=g(1))
    b = net.generate(pts * -1, pitches.flip(0), steps=4, guidance=0.0, seed_points=False, generator=g(1))
    assert torch.allclose(a, b, atol=1e-5)
    g2 = net.generate(pts, pitches, steps=4, guidance=2.0)
    assert not torch.allclose(g2, cond, atol=1e-3)


def test_the_shared_first_unconditional_step_changes_nothing():
    """Issue 18: rows of one point and layer start from the same noise, so the first step's unconditional velocity
    is computed once; the notes equal those of the doubled batch at every step (and rows of different layers, whose
    noise differs, take the doubled batch)."""
    net = tiny()
    pts, pitches = PTS.expand(4, 2), torch.tensor([48, 55, 60, 72])
    for velocities in (None, torch.tensor([40, 100, 100, 127])):
        layers = velocity_index(net.cfg, velocities, 4)
        noise = point_noise(net.cfg, pts, layers)
        pidx = pitches - 48
        x = noise
        for t0, t1 in zip(time_grid(4)[:-1], time_grid(4)[1:]):  # the reference: 2B rows at every step
            x = x + (t1 - t0) * net.guided_velocity(x, torch.full((4,), t0), pts, pidx, layers, 2.0)
        out = net.generate(pts, pitches, velocities, steps=4, guidance=2.0)
        assert torch.allclose(out, x, atol=1e-6, rtol=0)
    rows = point_noise(net.cfg, pts, velocity_index(net.cfg, None, 4))
    assert all(torch.equal(rows[0], r) for r in rows)  # one point's rows: one noise (computed once)


def _count(net):
    calls = []
    handle = net.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    return calls, handle


@pytest.mark.parametrize("sampler", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 4, 7])
def test_step_count_plumbing(sampler, steps):
    net = tiny()
    calls, handle = _count(net)
    try:
        expected = steps if sampler == "euler" else 2 * steps - 1
        for guidance, rows in ((1.0, 5), (0.0, 5), (2.0, 10)):  # guidance other than 0/1: one doubled batch
            calls.clear()
            net.generate(PTS.expand(5, 2), torch.arange(50, 55), steps=steps, guidance=guidance, sampler=sampler)
            # the first step from one point's noise computes the shared unconditional velocity once (5 + 1 rows)
            assert calls == ([6] + [rows] * (expected - 1) if guidance == 2.0 else [rows] * expected)
    finally:
        handle.remove()
    assert time_grid(4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    shifted = time_grid(4, 3.0)
    assert shifted[0] == 0.0 and shifted[-1] == 1.0 and shifted[1] < 0.25  # more steps near the noise end


def test_defaults_come_from_the_config():
    net = tiny(sample_steps=3, sampler="heun", guidance=1.0)
    calls, handle = _count(net)
    net.generate(PTS, torch.tensor([60]))
    handle.remove()
    assert calls == [1] * 5


def test_continuation_shapes_and_exact_context():
    net = tiny()
    pts, pitches = PTS.expand(2, 2), torch.tensor([55, 67])
    first = net.generate(pts, pitches)
    nxt = net.continue_(first, pts, pitches, context=8)
    assert nxt.shape == (2, T - 8, D)
    window = net.continue_(first, pts, pitches, context=8, return_window=True)
    assert window.shape == (2, T, D)
    assert torch.equal(window[:, :8], first[:, -8:])  # the given frames come back exactly
    assert torch.equal(window[:, 8:], nxt)
    assert torch.equal(net.continue_(first, pts, pitches, context=8), nxt)  # deterministic
    assert not torch.equal(net.continue_(first, pts, pitches, context=8, segment=2), nxt)  # new noise per segment
    assert net.continue_(first, pts, pitches).shape == (2, T - net.cfg.context_frames, D)
    # the context matters
    other = net.continue_(first + 1.0, pts, pitches, context=8)
    assert not torch.allclose(other, nxt, atol=1e-3)
    with pytest.raises(ValueError, match="context"):
        net.continue_(first, pts, pitches, context=T)
    with pytest.raises(ValueError, match="prev_frames"):
        net.continue_(first[:, :4], pts, pitches, context=8)


def test_refuses_non_finite_conditions_and_bad_pitches():
    net = tiny()
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            net.generate(torch.tensor([[bad, 0.0]]), torch.tensor([60]))
        with pytest.raises(ValueError, match="finite"):
            net.continue_(torch.zeros(1, T, D), torch.tensor([[0.0, bad]]), torch.tensor([60]))
    with pytest.raises(ValueError, match="MIDI 48-72"):
        net.generate(PTS, torch.tensor([90]))
    with pytest.raises(ValueError, match="points"):
        net.generate(PTS, torch.tensor([60, 61]))


def test_config_json_round_trip_and_state_dict_files(tmp_path):
    cfg = tiny_cfg(velocity_layers=(50, 100), betas=(0.8, 0.9), guidance=3.0, sampler="heun")
    back = FlowConfig.from_json(cfg.to_json())
    assert back == cfg and isinstance(back.velocity_layers, tuple)
    net = tiny(velocity_layers=(50, 100))
    save_flow(net, tmp_path)
    assert json.loads((tmp_path / "flow.json").read_text())["velocity_layers"] == [50, 100]
    loaded = load_flow(tmp_path)
    assert not loaded.training
    assert torch.equal(loaded.generate(PTS, torch.tensor([60]), velocities=[55]),
                       net.generate(PTS, torch.tensor([60]), velocities=[55]))
    with pytest.raises(ValueError, match="n_heads"):
        FlowNet(tiny_cfg(d_model=30))
    assert velocity_index(FlowConfig(), torch.tensor([1, 55, 56, 100, 114, 127]), 6).tolist() == [0, 0, 1, 2, 3, 3]


def _tiny_task():
    from synth.model.data import synthetic_notes

    notes = synthetic_notes(num_instruments=4, pitches=(48, 55), num_frames=T, dim=D, seed=0)
    g = torch.Generator().manual_seed(0)
    inst_pts = torch.rand(4, 2, generator=g) * 2 - 1
    return notes, inst_pts[notes.instrument]


def test_training_lowers_the_loss_and_resumes_to_the_same_weights(tmp_path):
    from synth.model.train_flow import train_flow, valid_loss

    notes, pts = _tiny_task()
    cfg = tiny_cfg(lr=3e-3)
    val = (notes.x, pts, notes.pitch, notes.velocity)
    torch.manual_seed(0)
    fresh = FlowNet(cfg)
    before = valid_loss(fresh, *val)
    trained = train_flow(notes, notes, pts, pts, cfg, tmp_path / "a", max_steps=80, valid_every=40,
                         valid_notes=64, progress=False)
    after = valid_loss(trained, *val)
    assert after < 0.6 * before
    log = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [40, 80] and "valid_loss" in log[-1] and "valid_loss_raw" in log[-1]
    assert load_flow(tmp_path / "a").cfg == cfg
    # interrupted at step 3 and resumed to 6 == 6 steps in one go
    train_flow(notes, None, pts, None, cfg, tmp_path / "b", max_steps=6, valid_every=100, progress=False)
    train_flow(notes, None, pts, None, cfg, tmp_path / "c", max_steps=3, valid_every=100, progress=False)
    ck = torch.load(tmp_path / "c" / "ckpt.pt", weights_only=False)
    assert ck["step"] == 3 and ck["elapsed"] > 0 and set(ck) >= {"model", "ema", "opt", "sched", "gen", "rng"}
    train_flow(notes, None, pts, None, cfg, tmp_path / "c", max_steps=6, valid_every=100, progress=False)
    for name in ("last.pt", "last_ema.pt"):
        a = torch.load(tmp_path / "b" / name, weights_only=True)
        b = torch.load(tmp_path / "c" / name, weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    # a resume with another network is refused by name; the schedule length may change
    with pytest.raises(RuntimeError, match="d_model"):
        train_flow(notes, None, pts, None, tiny_cfg(lr=3e-3, d_model=16), tmp_path / "c", max_steps=7, progress=False)
    train_flow(notes, None, pts, None, tiny_cfg(lr=3e-3, total_steps=300), tmp_path / "c", max_steps=7,
               progress=False)


def test_training_batch_pieces():
    from synth.model.train_flow import context_batch, instrument_points, sample_t

    cfg = tiny_cfg(p_context=1.0, context_shift_max=0)
    x = torch.randn(8, T, D)
    g = torch.Generator().manual_seed(0)
    xs, mask = context_batch(cfg, x, g)
    k = mask.sum(1)
    assert torch.equal(xs, x) and bool(((k >= 2) & (k <= 10)).all())
    assert bool((mask[:, 0] == 1).all())  # the context is the start of the window
    t = sample_t(FlowConfig(), 4000, g)
    assert 0 < float(t.min()) and float(t.max()) < 1 and float((t < 0.05).float().mean()) > 0.005
    mu = torch.tensor([[0.0, 0.0], [1.0, 1.0], [9.0, 9.0], [5.0, 5.0]])
    pts = instrument_points(mu, ["a", "a", "a", "b"], torch.tensor([60, 62, 21, 21]), torch.tensor([100, 100, 100, 40]),
                            (48, 72))
    # a's point: its core notes (MIDI 48-72, velocity 100) only; b has no core note: all of its notes
    assert torch.allclose(pts, torch.tensor([[0.5, 0.5]] * 3 + [[5.0, 5.0]]))


def test_onset_weighting_and_velocity_balance():
    from synth.model.train_flow import flow_loss, frame_weights, note_weights

    cfg = tiny_cfg(onset_frames=3, onset_weight=8.0, velocity_balance=1.0, velocity_layers=(40, 100))
    w = frame_weights(cfg, T)
    assert w.tolist() == [8.0] * 3 + [1.0] * (T - 3)
    # a note whose error sits only in its first frames costs more in training; validation stays the plain MSE.
    # A fresh net is adaLN-Zero (it predicts v = 0), so the error is (x - noise)^2, the same draws in every call.
    x = torch.zeros(4, T, D)
    x[:, :3] = 3.0
    cond = (PTS.expand(4, 2), torch.full((4,), 60), torch.full((4,), 100))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    plain = dict(velocity_layers=(40, 100), p_context=0.0, p_uncond=0.0)
    net_off, net_on = FlowNet(tiny_cfg(**plain)).eval(), FlowNet(tiny_cfg(**plain, onset_frames=3, onset_weight=8.0))
    with torch.no_grad():
        off = flow_loss(net_off, x, *cond, g(), train=True).item()
        on = flow_loss(net_on.eval(), x, *cond, g(), train=True).item()
        valid_on = flow_loss(net_on, x, *cond, g(), train=False).item()
    assert on > 1.5 * off
    assert valid_on == pytest.approx(flow_loss(net_off, x, *cond, g(), train=False).item())
    # balance 1: each layer drawn equally often although velocity 40 has 1 note in 10
    vel = torch.tensor([40] + [100] * 9)
    weights = note_weights(cfg, vel)
    picks = torch.multinomial(weights, 20000, replacement=True, generator=torch.Generator().manual_seed(0))
    share_soft = float((vel[picks] == 40).float().mean())
    assert 0.47 < share_soft < 0.53
    assert note_weights(tiny_cfg(), vel) is None  # balance 0: uniform over notes (the old sampler, bit for bit)
    half = note_weights(tiny_cfg(velocity_layers=(40, 100), velocity_balance=0.5), vel)
    assert abs(float(half[vel == 40].sum() / half.sum()) - 1 / (1 + 3)) < 1e-6  # sqrt(1) : sqrt(9)
    with pytest.raises(ValueError, match="velocity_balance"):
        tiny_cfg(velocity_balance=2.0).validate()
    with pytest.raises(ValueError, match="onset_weight"):
        tiny_cfg(onset_weight=0.0).validate()


def test_a_new_run_starts_from_a_trained_flow_and_a_resume_ignores_it(tmp_path):
    from synth.model.train_flow import train_flow, valid_loss

    notes, pts = _tiny_task()
    cfg = tiny_cfg(lr=3e-3)
    val = (notes.x, pts, notes.pitch, notes.velocity)
    trained = train_flow(notes, None, pts, None, cfg, tmp_path / "a", max_steps=60, valid_every=100, progress=False)
    # step 0 of a fine-tuning run: network and EMA are the trained weights, on a schedule of its own
    start = train_flow(notes, None, pts, None, tiny_cfg(lr=1e-3, total_steps=500), tmp_path / "b", max_steps=0,
                       progress=False, init=trained)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), start.state_dict().values()))
    assert valid_loss(start, *val) == pytest.approx(valid_loss(trained, *val))
    tuned = train_flow(notes, None, pts, None, tiny_cfg(lr=1e-3, total_steps=500), tmp_path / "b", max_steps=20,
                       valid_every=100, progress=False, init=trained)
    assert torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)["step"] == 20
    # resuming the fine-tuning run continues its own checkpoint; a fresh net would be far from the trained one
    resumed = train_flow(notes, None, pts, None, tiny_cfg(lr=1e-3, total_steps=500), tmp_path / "b", max_steps=20,
                         progress=False, init=FlowNet(cfg))
    assert all(torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), resumed.state_dict().values()))
    with pytest.raises(RuntimeError, match="d_model: 32 vs 16"):
        train_flow(notes, None, pts, None, tiny_cfg(d_model=16), tmp_path / "c", max_steps=1, progress=False,
                   init=trained)


def test_cli_trains_resumes_and_benches(tmp_path, capsys):
    from synth.cli import main
    from tests.model.fakecache import write_fake_cache
    from tests.model.test_pipeline_cli import TINY_VAE

    emb = write_fake_cache(tmp_path / "emb")
    vae_dir, out = tmp_path / "vae", tmp_path / "flow"
    assert main(["train", "vae", "--emb", str(emb), "--out", str(vae_dir), "--epochs", "1", "--no-progress",
                 *TINY_VAE]) == 0
    tiny_flow = ["--set", "d_model=16", "--set", "n_layers=1", "--set", "n_heads=2", "--set", "patch=4",
                 "--set", "batch_size=8", "--set", "warmup_steps=2", "--set", "context_min=4",
                 "--set", "context_max=12", "--set", "context_shift_max=8", "--set", "context_frames=8"]
    args = ["train", "flow", "--emb", str(emb), "--vae", str(vae_dir), "--out", str(out), "--valid-every", "2",
            "--valid-notes", "8", "--no-progress", "--threads", "1"]
    capsys.readouterr()
    assert main([*args, "--steps", "4", *tiny_flow]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["step"] == 4 and res["valid_loss"] > 0
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]
    assert (out / "vae_source.txt").exists() and (out / "ckpt.pt").exists()
    assert main([*args, "--steps", "6"]) == 0  # resumes (config from flow.json)
    assert json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"] == 6
    capsys.readouterr()
    assert main([*args, "--steps", "8", "--set", "d_model=32"]) == 2
    assert "d_model" in capsys.readouterr().err
    # --init: a new run from the trained one (its run folder); a folder without a flow is refused by name
    capsys.readouterr()
    init_args = [*args, "--out", str(tmp_path / "tuned"), "--steps", "1", *tiny_flow]
    assert main([*init_args, "--init", str(tmp_path)]) == 2
    assert f"--init {tmp_path}: neither a flow run folder" in capsys.readouterr().err
    assert main([*init_args, "--init", str(out)]) == 0
    assert json.loads((tmp_path / "tuned" / "log.jsonl").read_text().splitlines()[-1])["step"] == 1
    flow = load_flow(out)
    assert flow.cfg.num_frames == 24 and flow.cfg.dim == 8 and flow.cfg.pitch_min == 21
    frames = flow.generate(torch.tensor([[0.1, 0.2]] * 3), torch.tensor([21, 60, 108]), velocities=[40, 100, 127],
                           steps=2)
    assert frames.shape == (3, 24, 8) and bool(torch.isfinite(frames).all())
    capsys.readouterr()
    assert main(["bench", "flow", "--run", str(out), "--steps", "2", "--samplers", "euler,heun", "--threads", "1",
                 "--notes", "3", "--repeats", "1", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = bench["by_threads"][0]["rows"]
    assert [(r["sampler"], r["net_calls"]) for r in rows] == [("euler", 2), ("heun", 3)] and rows[0]["all_3_s"] > 0


def test_the_noise_moves_smoothly_over_the_map_and_keeps_unit_variance():
    """Neighbouring cells start from nearby noise (so a pad drag changes the timbre gradually); distant points and
    the per-cell mode (noise_lattice 0) get unrelated noise; blends keep unit variance."""
    from dataclasses import replace

    cfg = replace(tiny_cfg(), noise_lattice=0.25)
    layer = torch.tensor([2])

    def corr(a, b):
        return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])

    here = point_noise(cfg, torch.tensor([[0.31, -0.13]]), layer)[0]
    near = point_noise(cfg, torch.tensor([[0.33, -0.13]]), layer)[0]  # the next 0.02 cell
    far = point_noise(cfg, torch.tensor([[-0.6, 0.7]]), layer)[0]
    assert corr(here, near) > 0.9 and abs(corr(here, far)) < 0.2
    mid = point_noise(cfg, torch.tensor([[0.125, 0.125]]), layer)[0]  # an equal blend of 4 lattice noises
    assert abs(float(mid.std()) - 1.0) < 0.15
    cells = replace(cfg, noise_lattice=0.0)
    assert abs(corr(point_noise(cells, torch.tensor([[0.31, -0.13]]), layer)[0],
                    point_noise(cells, torch.tensor([[0.33, -0.13]]), layer)[0])) < 0.2


def test_shared_layer_noise_starts_every_velocity_layer_of_a_point_from_one_noise():
    """layer_noise "shared": soft and hard notes of a point start from the same noise (one instrument at two
    dynamics); "per_layer" (the default, older bundles) keeps one noise per layer; anything else is refused."""
    from dataclasses import replace

    pts = torch.tensor([[0.3, -0.1]] * 4)
    layers = torch.arange(4)
    shared = point_noise(replace(tiny_cfg(), layer_noise="shared"), pts, layers)
    assert all(torch.equal(shared[0], shared[i]) for i in range(4))
    per_layer = point_noise(tiny_cfg(), pts, layers)
    assert not torch.equal(per_layer[0], per_layer[3])
    hundred = tiny_cfg().velocity_layers.index(100)
    assert torch.equal(per_layer[hundred], shared[0])  # velocity 100's noise is the shared one: its notes stay
    net = tiny(layer_noise="shared")
    soft, hard = net.generate(pts[:2], torch.tensor([60, 60]), torch.tensor([40, 127]))
    assert not torch.allclose(soft, hard, atol=1e-4)  # the velocity condition still makes a difference
    with pytest.raises(ValueError, match="layer_noise"):
        tiny_cfg(layer_noise="per_note").validate()
