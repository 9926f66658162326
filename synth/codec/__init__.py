"""Codecs: waveform <-> ``[T, D]`` embedding frames (see ``base.Codec``).

``load_codec("encodec-24khz", checkpoint=...)`` gives Meta's pretrained EnCodec; ``load_codec(folder)`` gives a codec
trained here (a folder with ``config.json`` + ``codec.pt``, e.g. ``models/default/codec``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from synth.codec.base import Codec, CodecError


def _encodec(**kw) -> Codec:
    from synth.codec.encodec_24khz import EncodecCodec

    return EncodecCodec(**kw)


REGISTRY: dict[str, Callable[..., Codec]] = {"encodec-24khz": _encodec}


def load_codec(name_or_dir: str | Path, **kw) -> Codec:
    """A codec by registry name or by folder. Keyword arguments go to the codec (checkpoint=, device=...)."""
    key = str(name_or_dir)
    if key in REGISTRY:
        return REGISTRY[key](**kw)
    folder = Path(name_or_dir)
    if folder.is_dir():
        from synth.codec.bundled import load_bundled

        return load_bundled(folder, **{k: v for k, v in kw.items() if k == "device"})
    raise CodecError(f"unknown codec {key!r}: use one of {sorted(REGISTRY)} or a folder with config.json + codec.pt")


__all__ = ["Codec", "CodecError", "REGISTRY", "load_codec"]
