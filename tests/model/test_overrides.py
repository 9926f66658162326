"""``--set KEY=VALUE`` parsing shared by the training commands."""

from __future__ import annotations

import pytest

from synth.model.generator import GeneratorConfig
from synth.model.overrides import apply_overrides
from synth.model.vae import VAEConfig


def test_values_take_the_type_of_the_field():
    cfg = apply_overrides(VAEConfig(), ["w_nei=12", "epochs=3", "enc_channels=16,8", "no_kl=true",
                                        "no_fam=1"])
    assert cfg.w_nei == 12.0 and cfg.epochs == 3 and cfg.enc_channels == (16, 8)
    assert cfg.no_kl is True and cfg.no_fam is True


def test_false_means_false():  # bool("false") is True: the parser must not use it
    cfg = apply_overrides(GeneratorConfig(refine_vae=True), ["refine_vae=false"])
    assert cfg.refine_vae is False
    assert apply_overrides(GeneratorConfig(), ["refine_vae=On"]).refine_vae is True


@pytest.mark.parametrize("item, message", [
    ("no_such_field=1", "KEY one of"),
    ("epochs", "KEY=VALUE"),
    ("epochs=many", "invalid literal"),
    ("no_kl=maybe", "true or false"),
    ("mix_groups=1.0", "mix_groups = '1.0': mix_groups was a retired experiment option .*Retired experiments"),
    ("repel_centroids=false", "repel_centroids was a retired experiment option .*no longer an option"),
])
def test_bad_overrides_say_what_is_wrong(item, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(VAEConfig(), [item])
