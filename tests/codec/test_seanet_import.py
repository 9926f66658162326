"""The bundled codec needs only encodec's SEANet layers, not the encodec package's __init__ (which imports torchaudio)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bundled_codec_loads_when_torchaudio_does_not():
    """A fresh venv gets a torchaudio whose compiled extension does not load beside its torch (pipx, found here); the
    bundled codec needs only encodec's SEANet layers, so it loads without running encodec's __init__ (which imports
    torchaudio). A full ``import encodec`` still fails as before (Meta's codec needs it), not masked."""
    code = """if True:
        import sys
        sys.modules["torchaudio"] = None  # what a broken torchaudio amounts to: `import torchaudio` raises
        import torch
        from synth.codec import load_codec
        codec = load_codec(sys.argv[1])
        wave = codec.decode(torch.zeros(1, 8, codec.dim))
        assert wave.shape[0] == 1 and torch.isfinite(wave).all()
        try:
            import encodec
        except ImportError:
            print("encodec itself still needs torchaudio")
        print("codec ok")
    """
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "models" / "default" / "codec")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["encodec itself still needs torchaudio", "codec ok"], done.stdout
