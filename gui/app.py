"""Application entry point. Until the instrument window lands this opens a placeholder window."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_synth.py", description="pGESAM neural synthesizer")
    parser.add_argument("--smoke-test", action="store_true", help="open the window, then exit 0")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QLabel

    import synth

    app = QApplication.instance() or QApplication(sys.argv[:1])
    label = QLabel(f"pGESAM synth {synth.__version__}: the instrument window is not built yet.")
    label.setWindowTitle("pGESAM synth")
    label.resize(480, 120)
    label.show()
    if args.smoke_test:
        QTimer.singleShot(200, app.quit)
    return app.exec()
