"""pGESAM neural synthesizer: timbre map + pitch-conditioned generator turned into a playable instrument."""

__version__ = "0.1.0"
