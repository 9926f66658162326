"""The pGESAM model: the timbre VAE (stage 1), the generator (stage 2) and the model bundle.

Kept free of imports so that ``import synth.model.x`` costs only what ``x`` needs.
"""
