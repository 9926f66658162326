"""Screenshots of the instrument window for the README: ``python scripts/screenshot.py``.

Writes docs/screenshot.png (Qt offscreen) and docs/screenshot-xvfb.png (a real X server under xvfb-run, when
installed). Uses the bundled model at models/default; when it is missing, a tiny random bundle (its map has only a
few instruments: rerun this once a trained model is bundled). No audio device or MIDI port is opened, unless
``--audio DEVICE`` asks for one (e.g. ``--audio jack`` while a JACK server runs: the status strip then shows the
device, latency and level of the held chord); the default runs use it when a JACK server answers.

    python scripts/screenshot.py                       # both screenshots, 1280x800
    python scripts/screenshot.py --platform offscreen --out docs/screenshot.png
    python scripts/screenshot.py --platform offscreen --size 760x520 --out /tmp/small.png   # a small window
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHORD = (60, 64, 67)  # shown held on the keyboard
SIZE = (1280, 800)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(ROOT / "models" / "default"))
    parser.add_argument("--platform", choices=("offscreen", "xcb"), default=None,
                        help="take one screenshot on this Qt platform (default: offscreen, then xcb under xvfb-run)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="window size, WIDTHxHEIGHT (default 1280x800)")
    parser.add_argument("--audio", default=None, metavar="DEVICE", help="play through this audio device (e.g. jack)")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.platform is None:
        return take_both(args.bundle, args.audio or ("jack" if jack_running() else None))
    out = Path(args.out or ROOT / "docs" / ("screenshot.png" if args.platform == "offscreen" else "screenshot-xvfb.png"))
    return take(args.platform, Path(args.bundle), out, size, args.audio)


def jack_running() -> bool:
    return shutil.which("jack_lsp") is not None and subprocess.call(
        ["jack_lsp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ,
                                                                                 "JACK_NO_START_SERVER": "1"}) == 0


def take_both(bundle: str, audio: str | None = None) -> int:
    script = [sys.executable, str(Path(__file__).resolve()), "--bundle", bundle] + (["--audio", audio] if audio else [])
    status = subprocess.call(script + ["--platform", "offscreen", "--out", str(ROOT / "docs" / "screenshot.png")])
    if shutil.which("xvfb-run") is None:
        print("xvfb-run is not installed: skipped docs/screenshot-xvfb.png", file=sys.stderr)
        return status
    xvfb = ["xvfb-run", "-a", "-s", f"-screen 0 {SIZE[0]}x{SIZE[1]}x24"]
    return status or subprocess.call(xvfb + script + ["--platform", "xcb",
                                                      "--out", str(ROOT / "docs" / "screenshot-xvfb.png")])


def take(platform: str, bundle: Path, out: Path, size: tuple[int, int] = SIZE, audio: str | None = None) -> int:
    os.environ["QT_QPA_PLATFORM"] = platform
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    from synth.gui.engine_adapter import OpenOptions, open_engine
    from synth.gui.main_window import MainWindow
    from synth.presets import PresetLibrary

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as scratch:
        if not (bundle / "bundle.json").is_file():
            bundle = tiny_bundle(Path(scratch))
        adapter = open_engine(OpenOptions(bundle=bundle, audio=audio is not None, device=audio,
                                          midi=audio is not None, use_grid=False))
        window = MainWindow(adapter, PresetLibrary(user_dir=Path(scratch) / "presets"))
        window.resize(*size)
        window.show()
        stage(app, window, adapter)
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(out))
        adapter.close()
    print(f"{out}: {'saved' if ok else 'FAILED'} ({platform}, {window.width()}x{window.height()}, "
          f"model {adapter.model_name})")
    return 0 if ok else 1


def tiny_bundle(folder: Path) -> Path:
    from synth.model.bundle import build_tiny_bundle

    print("models/default has no bundle: using a tiny random bundle for the screenshot", file=sys.stderr)
    return Path(build_tiny_bundle(folder / "tiny"))


def stage(app, window, adapter) -> None:
    """The first-launch factory preset, a chord held, the notes generated: what a player sees mid-performance."""
    adapter.start()  # without --audio: the generation worker only
    for pitch in CHORD:
        window.play_note(pitch, 100)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        app.processEvents()
        done, total = adapter.cache_progress()
        if total and done >= total:
            break
        time.sleep(0.05)
    settle = time.monotonic() + 0.6  # the status strip's meters follow the chord for a few polls
    while time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.02)
    window.poll_engine()
    app.processEvents()


if __name__ == "__main__":
    raise SystemExit(main())
