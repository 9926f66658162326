"""Instrument notes in NSynth's layout: the SoundFont dataset builder, the reader shared with real NSynth, the family
taxonomy and the instrument-disjoint splits. Imports nothing from the rest of ``synth`` (data is the bottom layer)."""
