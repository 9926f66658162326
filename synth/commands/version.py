"""``synth version``: versions of the package and of the libraries that decide how it runs."""

from __future__ import annotations

import argparse
import json
import platform


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def collect() -> dict[str, str]:
    import numpy
    import torch

    import synth

    info = {
        "synth": synth.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    try:
        import encodec  # noqa: F401  (import must succeed: torchaudio's CUDA extension is a known trap)

        info["encodec"] = "ok"
    except Exception as exc:  # report, do not crash: this command is what users run to diagnose installs
        # the app still plays: the bundled codec takes encodec's SEANet layers without torchaudio (codec.bundled)
        info["encodec"] = f"import failed: {exc} (the bundled codec does not need it; encodec-24khz and training do)"
    return info


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            print(f"{key:8} {value}")
    return 0
