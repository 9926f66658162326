"""Application entry point: ``python run_synth.py [--bundle DIR] [--midi-port NAME] [--device DEV]`` in a checkout, or
the ``pgesam-synth`` command of an installed package (``launch``). Without ``--bundle`` it plays the bundled model
(``synth.resources.default_bundle``: ``models/default`` in a checkout, the package's copy when installed).

``--smoke-test`` opens the window offscreen, plays one note through the engine (into JACK when a server runs, else
without a sound card) and checks that it is not silent: exit 0, or 1 with a message saying what failed. A bundle
(a folder with bundle.json) that does not load fails it; without one it runs on the demo tones and says so.

Quitting (closing the window, File > Quit, Ctrl+C or SIGTERM in the terminal) saves the session, stops the audio
stream and exits at once with code 0: the generation worker may be in the middle of a batch, and neither waiting for
it nor the interpreter's teardown with its threads still running (where 1 quit in 7 crashed with ``Fatal Python
error: none_dealloc``) is worth a musician's time. Without a display (no DISPLAY / WAYLAND_DISPLAY, or an X display
nobody serves) the app says so and how to run anyway, instead of Qt's abort.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from synth.resources import default_bundle

QUIT_BUDGET_S = 0.5  # what stopping the engine may take on quit before the process exits anyway


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    prog = os.path.basename(sys.argv[0]) or "run_synth.py"  # run_synth.py, or pgesam-synth when installed
    parser = argparse.ArgumentParser(prog=prog, description="pGESAM neural synthesizer")
    parser.add_argument("--bundle", default=str(default_bundle()),
                        help="model bundle folder (default: the bundled model, %(default)s)")
    parser.add_argument("--midi-port", default=None, help="MIDI keyboard to connect to (name or part of it)")
    parser.add_argument("--device", default=None, help="audio output device (index, name or part of it, or 'jack')")
    parser.add_argument("--smoke-test", action="store_true",
                        help="open the window offscreen, play one note, check it is not silent, exit")
    parser.add_argument("--close-after", type=float, default=None, metavar="SECONDS",
                        help=argparse.SUPPRESS)  # tests and demos: close the window as the player would
    return parser.parse_args(argv)


def display_problem(env=None, platform: str | None = None) -> str | None:
    """Why no window can open here (None when one can, or when another Qt platform is asked for)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0]
    if not platform.startswith("linux") or (qpa and qpa != "xcb" and not qpa.startswith("wayland")):
        return None  # offscreen, minimal, vnc, eglfs...: no display server needed
    runtime = env.get("XDG_RUNTIME_DIR", "")
    wayland = env.get("WAYLAND_DISPLAY")
    if qpa != "xcb" and wayland and (os.path.isabs(wayland) and os.path.exists(wayland)
                                     or not runtime or os.path.exists(os.path.join(runtime, wayland))):
        return None
    display = None if qpa.startswith("wayland") else env.get("DISPLAY")
    how = ("Run it from a desktop session (or `ssh -X`), under a virtual display (`xvfb-run -a python run_synth.py`), "
           "or with QT_QPA_PLATFORM=offscreen to run without a visible window; `python -m synth play` plays "
           "without any window.")
    if not display:
        return f"no display to open the window on: DISPLAY and WAYLAND_DISPLAY are not set. {how}"
    local = display.split(".")[0]
    if local.startswith(":") and local[1:].isdigit():  # a local X server listens on its socket
        if not os.path.exists(f"/tmp/.X11-unix/X{local[1:]}"):
            return f"no display to open the window on: no X server answers at DISPLAY={display}. {how}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    problem = display_problem()
    if problem:
        print(f"run_synth: {problem}", file=sys.stderr)
        return 1
    if not args.smoke_test:  # Ctrl+C while the model loads: out at once, no traceback (the window installs its own)
        signal.signal(signal.SIGINT, lambda *_: (print("\nrun_synth: interrupted", file=sys.stderr), exit_now(130)))

    from PySide6.QtWidgets import QApplication

    from synth.gui.engine_adapter import OpenOptions, open_engine
    from synth.gui.main_window import MainWindow
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
        from synth.gui.smoke import run_smoke_test

        return run_smoke_test(app, window, adapter, through_jack=through_jack)
    return run_window(app, window, adapter, close_after=args.close_after)


def run_window(app, window, adapter, close_after: float | None = None, exit_process: bool = True) -> int:
    """The normal run: last session restored, audio and MIDI on, session saved on quit, then a quick exit (see the
    module docstring; ``exit_process=False`` returns the exit code instead)."""
    from PySide6.QtCore import QTimer

    from synth.gui import session

    for problem in session.restore(window, session.load()):
        window.statusBar().showMessage(f"Last session: {problem}", 10000)
    adapter.start()
    app.lastWindowClosed.connect(lambda: print("run_synth: window closed, quitting", flush=True))
    keep_alive = install_quit_signals(app, window)
    if close_after is not None:
        QTimer.singleShot(int(close_after * 1000), window.close)
    print(f"run_synth: ready: {adapter.model_name}, {audio_summary(adapter)}. Close the window or press Ctrl+C to "
          "quit.", flush=True)
    code = 1
    try:
        code = app.exec()
    finally:
        keep_alive.stop()
        error = session.save(window)
        if error:
            print(f"run_synth: {error}", file=sys.stderr)
        stop_engine(adapter, QUIT_BUDGET_S)
    if exit_process:
        exit_now(code)
    return code


def audio_summary(adapter) -> str:
    if adapter.audio_error:
        return "no audio output (see the window)"
    engine = adapter.engine
    if not engine.audio_running:
        return "no audio output"
    latency = 1000.0 * (engine.latency + engine.block_size / engine.sample_rate)
    midi = engine.midi_port_name
    return f"audio on {engine.audio_hostapi() or 'the default device'} (~{latency:.0f} ms)" + (
        f", MIDI in {midi}" if midi else "")


def install_quit_signals(app, window):
    """Ctrl+C (SIGINT) and SIGTERM close the window like File > Quit; a second Ctrl+C exits at once. Qt's event loop
    runs in C++, so a timer hands control to Python often enough for it to run the handler."""
    from PySide6.QtCore import QTimer

    state = {"asked": False}

    def quit_now(signum, _frame) -> None:
        if state["asked"]:
            os._exit(0 if signum == signal.SIGTERM else 130)
        state["asked"] = True
        name = "Ctrl+C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\nrun_synth: {name}: quitting", flush=True)
        window.close()
        app.quit()

    signal.signal(signal.SIGINT, quit_now)
    signal.signal(signal.SIGTERM, quit_now)
    timer = QTimer()
    timer.timeout.connect(lambda: None)
    timer.start(200)
    return timer


def stop_engine(adapter, budget: float) -> None:
    """Stop audio, MIDI and the worker, waiting at most ``budget`` seconds: a worker inside a long generation batch
    is left to the process exit (it holds no files; notes are only cached in memory)."""
    done = threading.Event()

    def stop() -> None:
        adapter.close()
        done.set()

    started = time.monotonic()
    threading.Thread(target=stop, name="quit", daemon=True).start()
    if not done.wait(budget):
        print(f"run_synth: the note generator was still busy after {time.monotonic() - started:.1f} s; quitting "
              "without waiting for it", file=sys.stderr, flush=True)


def launch() -> None:
    """The ``pgesam-synth`` console command (pyproject.toml [project.scripts]): ``main`` then a quick exit."""
    exit_now(main())


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown (threads of torch and PortAudio still alive make it slow and, now and
    then, crash); everything worth keeping is written by now."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(int(code))


def _jack_running() -> bool:
    from synth.engine.midi_io import jack_server_running

    return jack_server_running()
