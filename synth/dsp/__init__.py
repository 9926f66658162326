"""Signal helpers without learned weights (the YIN pitch tracker and the codec's pitch feature; ``resample``, the
runtime's one resampler), shared by the dataset gate (``synth.data``), the codec, the engine and the evaluations:
the bottom layer, importing no other part of ``synth``."""
