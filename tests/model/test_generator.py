"""Generator: KV-cached generation equals uncached generation, batch independence, teacher forcing consistency."""

from __future__ import annotations

import pytest
import torch

from synth.model.generator import Generator, GeneratorConfig, generate_frames
from synth.model.vae import TimbreVAE, VAEConfig


def tiny(frames_per_step: int = 3, refine_vae: bool = False) -> Generator:
    torch.manual_seed(0)
    cfg = GeneratorConfig(num_frames=20, dim=6, d_model=32, n_layers=2, n_heads=4, frames_per_step=frames_per_step,
                          dropout=0.0, refine_vae=refine_vae)
    return Generator(cfg).eval()


def tiny_refiner(frames_per_step: int = 4) -> Generator:
    """A refining generator with a non-zero output layer (a fresh one outputs exactly its base)."""
    g = tiny(frames_per_step, refine_vae=True)
    torch.nn.init.normal_(g.out.weight, std=0.05)
    return g


def test_kv_cache_equals_uncached():
    for p in (1, 3, 4):
        g = tiny(p)
        z, pitch = torch.randn(3, 2), torch.tensor([48, 60, 72])
        a, b = g.generate(z, pitch), g.generate_uncached(z, pitch)
        assert a.shape == (3, 20, 6)
        assert torch.allclose(a, b, atol=1e-5)


def test_all_frames_and_teacher_forcing_agree():
    g = tiny(4)
    z, pitch = torch.randn(2, 2), torch.tensor([50, 51])
    a = g.generate(z, pitch)
    assert a.shape[1] == 20  # no frame lost
    with torch.no_grad():
        tf = g(z, pitch, a)  # feeding the generated frames back reproduces them
    assert torch.allclose(tf, a, atol=1e-5)
    assert g.generate(z, pitch, 7).shape == (2, 7, 6)


def test_batch_independence():
    g = tiny(2)
    z, pitch = torch.randn(4, 2), torch.tensor([48, 55, 60, 72])
    full = g.generate(z, pitch)
    for i in range(4):
        one = g.generate(z[i : i + 1], pitch[i : i + 1])
        assert torch.allclose(full[i : i + 1], one, atol=1e-5)


def test_condition_matters():
    g = tiny(4)
    pitch = torch.tensor([60])
    a = g.generate(torch.tensor([[0.5, 0.5]]), pitch)
    b = g.generate(torch.tensor([[-0.5, 0.2]]), pitch)
    c = g.generate(torch.tensor([[0.5, 0.5]]), torch.tensor([61]))
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_refining_generator_starts_at_its_base_and_caches_like_uncached():
    g = tiny(4, refine_vae=True)
    z, pitch = torch.randn(3, 2), torch.tensor([48, 60, 72])
    base = torch.randn(3, 20, 6)
    assert torch.equal(g.generate(z, pitch, base=base), base)  # zero-initialised residual: the decoder's frames
    g = tiny_refiner(4)
    a, b = g.generate(z, pitch, base=base), g.generate_uncached(z, pitch, base=base)
    assert not torch.allclose(a, base, atol=1e-3)
    assert torch.allclose(a, b, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(g(z, pitch, a, base=base), a, atol=1e-5)  # teacher forcing on its own output agrees
    other = base.clone()
    other[:, 8:] += 1.0  # a later base patch changes the later output only (causal in the base too)
    c = g.generate(z, pitch, base=other)
    assert torch.allclose(c[:, :8], a[:, :8], atol=1e-6) and not torch.allclose(c[:, 8:], a[:, 8:])


def test_refining_generator_needs_its_base_and_keeps_batch_independence():
    g = tiny_refiner(2)
    z, pitch = torch.randn(4, 2), torch.tensor([48, 55, 60, 72])
    with pytest.raises(ValueError, match="base"):
        g.generate(z, pitch)
    with pytest.raises(ValueError, match="cover"):
        g.generate(z, pitch, base=torch.zeros(4, 5, 6))
    base = torch.randn(4, 20, 6)
    full = g.generate(z, pitch, base=base)
    for i in range(4):
        assert torch.allclose(full[i : i + 1], g.generate(z[i : i + 1], pitch[i : i + 1], base=base[i : i + 1]), atol=1e-5)


def test_generate_frames_hands_the_vae_decoders_frames_to_a_refiner():
    torch.manual_seed(1)
    vae = TimbreVAE(VAEConfig(num_frames=20, dim=6, time_pool=2, enc_channels=(8, 4), pool_bins=2, hidden=16,
                              cls_hidden=8, num_instruments=2)).eval()
    z, pitch = torch.tensor([[0.3, 0.1], [-0.2, 0.4]]), torch.tensor([60, 62])
    with torch.no_grad():
        decoded = vae.decode(z, pitch)
        fresh = tiny(4, refine_vae=True)
        assert torch.equal(generate_frames(fresh, vae, z, pitch), decoded)
        plain = tiny(4)
        assert torch.equal(generate_frames(plain, vae, z, pitch), plain.generate(z, pitch))


def test_rollout_is_generate_with_gradients():
    for g, base in ((tiny(4), None), (tiny_refiner(4), torch.randn(3, 20, 6))):
        z, pitch = torch.randn(3, 2), torch.tensor([48, 60, 72])
        ref = g.generate(z, pitch, base=base)
        out = g.rollout(z, pitch, base=base)
        assert torch.allclose(out, ref, atol=1e-5) and out.requires_grad
        out.square().mean().backward()
        # every layer gets a gradient, the input projection too: it only sees the network's own patches here
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in g.named_parameters() if n != "start")


def test_rollout_training_lowers_the_free_running_error_it_is_trained_on():
    from synth.model.train_generator import free_running_error, training_loss

    torch.manual_seed(0)
    cfg = GeneratorConfig(num_frames=12, dim=4, d_model=16, n_layers=1, n_heads=2, frames_per_step=4, dropout=0.0,
                          tf_weight=0.0, rollout_weight=1.0, rollout_batch=4)
    g = Generator(cfg)
    z, pitch = torch.randn(4, 2), torch.tensor([50, 55, 60, 65])
    x = torch.sin(torch.arange(12.0)[None, :, None] / 3 + z[:, :1, None]).expand(4, 12, 4).contiguous()
    before = free_running_error(g, None, z, pitch, x)
    opt = torch.optim.Adam(g.parameters(), lr=3e-3)
    g.train()
    for _ in range(60):
        loss = training_loss(g, None, z, pitch, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert free_running_error(g, None, z, pitch, x) < 0.5 * before


def test_instrument_point_conditions_every_note_on_its_instruments_mean_mu():
    from synth.model.train_generator import condition_points

    mu = torch.tensor([[0.0, 0.0], [2.0, 2.0], [5.0, 5.0]])
    names = ["b", "a", "b"]
    assert torch.equal(condition_points(GeneratorConfig(), mu, names), mu)
    out = condition_points(GeneratorConfig(instrument_point=True), mu, names)
    assert torch.equal(out, torch.tensor([[2.5, 2.5], [2.0, 2.0], [2.5, 2.5]]))
