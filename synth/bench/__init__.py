"""Benchmarks: each module is a ``synth bench <name>`` command that prints one JSON object as its last line."""
