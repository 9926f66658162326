"""Evaluation: measurements shared by the codec, generator and latent-map stages."""
