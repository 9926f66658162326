"""Application entry point: ``python run_synth.py [--bundle models/default] [--midi-port NAME] [--device DEV]``.

``--smoke-test`` opens the window offscreen, plays one note through the engine (into JACK when a server runs, else
without a sound card) and checks that it is not silent: exit 0, or 1 with a message saying what failed. A bundle
(a folder with bundle.json) that does not load fails it; without one it runs on the demo tones and says so.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_synth.py", description="pGESAM neural synthesizer")
    parser.add_argument("--bundle", default="models/default", help="model bundle folder (default: models/default)")
    parser.add_argument("--midi-port", default=None, help="MIDI keyboard to connect to (name or part of it)")
    parser.add_argument("--device", default=None, help="audio output device (index, name or part of it, or 'jack')")
    parser.add_argument("--smoke-test", action="store_true",
                        help="open the window offscreen, play one note, check it is not silent, exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication

    from gui.engine_adapter import OpenOptions, open_engine
    from gui.main_window import MainWindow
    from synth.presets import PresetLibrary

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("pgesam-synth")
    through_jack = args.smoke_test and _jack_running()
    options = OpenOptions(bundle=args.bundle, device=args.device, midi_port=args.midi_port,
                          audio=through_jack or not args.smoke_test, midi=not args.smoke_test)
    adapter = open_engine(options)
    if adapter.fallback_reason:
        print(f"run_synth: {adapter.fallback_reason}", file=sys.stderr)
        if args.smoke_test and (Path(args.bundle) / "bundle.json").exists():
            print(f"smoke test FAILED: the model bundle at {args.bundle} does not load", file=sys.stderr)
            return 1
    window = MainWindow(adapter, PresetLibrary())
    window.show()
    if args.smoke_test:
        from gui.smoke import run_smoke_test

        return run_smoke_test(app, window, adapter, through_jack=through_jack)
    return run_window(app, window, adapter)


def run_window(app, window, adapter) -> int:
    """The normal run: last session restored, audio and MIDI on, session saved on quit."""
    from gui import session

    for problem in session.restore(window, session.load()):
        window.statusBar().showMessage(f"Last session: {problem}", 10000)
    adapter.start()
    try:
        return app.exec()
    finally:
        error = session.save(window)
        if error:
            print(f"run_synth: {error}", file=sys.stderr)
        adapter.close()


def _jack_running() -> bool:
    from synth.engine.midi_io import jack_server_running

    return jack_server_running()
