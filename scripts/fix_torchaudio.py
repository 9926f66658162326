"""Make ``import torchaudio`` (and so ``import encodec``) work beside a CPU build of torch.

Why: ``encodec`` depends on torchaudio. Beside the CPU torch wheel, pip picks a torchaudio whose compiled extension
is a CUDA build; loading it fails (``libc10_cuda.so: cannot open shared object file``) and takes the whole import
down. torchaudio treats a *missing* extension as optional and falls back to its pure-Python code, which is all
encodec uses (resampling). So when, and only when, the extension fails to load, move its libraries aside.
Nothing is deleted: they are kept in ``torchaudio/_disabled_lib`` and can be moved back.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path


def torchaudio_imports() -> tuple[bool, str]:
    probe = subprocess.run([sys.executable, "-c", "import torchaudio"], capture_output=True, text=True)
    return probe.returncode == 0, probe.stderr.strip().splitlines()[-1:] and probe.stderr.strip().splitlines()[-1] or ""


def main() -> int:
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or spec.origin is None:
        return 0
    ok, error = torchaudio_imports()
    if ok:
        return 0
    lib_dir = Path(spec.origin).parent / "lib"
    disabled = lib_dir.parent / "_disabled_lib"
    disabled.mkdir(exist_ok=True)
    moved = [p for p in lib_dir.glob("*.so")]
    for path in moved:
        shutil.move(str(path), disabled / path.name)
    ok, error_after = torchaudio_imports()
    print(f"fix_torchaudio: extension failed to load ({error}); moved {len(moved)} libraries to {disabled}")
    if not ok:
        print(f"fix_torchaudio: torchaudio still fails to import: {error_after}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
