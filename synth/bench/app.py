"""``synth bench app --json``: the real window (Qt offscreen) on JACK, notes played and the pad dragged, with the
engine's underruns, callback load and the callback's GIL wait read from the engine (issue 19).

A child process opens the app as ``run_synth.py`` does (``open_engine`` + ``MainWindow``; MIDI port, audio stream on a
private JACK server at ``--period`` frames, dummy backend, realtime), waits until the first point is generated, then
runs four phases of ``--seconds`` each (``--phases`` picks some, e.g. ``play_drag`` alone for the issue's 10 minutes):

1. ``idle``: the window open, nothing played;
2. ``play_drag``: a 4-note chord held (a new chord every 2 s) while the pad is dragged in circles at 60 moves a second
   through the pad's own ``set_point`` (so the window repaints the cursor, rings and status as for a mouse drag);
3. ``drag_only``: the pad dragged with no key held (painting and pad moves, no previews to compute);
4. ``play_drag_hidden``: chords and drag with the window hidden (no painting), to separate painting from generation.

Per phase: PortAudio underflows, callbacks, callback load (mean, max), GIL wait (p50, p99, max ms: PortAudio's stream
time at the start of our Python callback minus the time PortAudio invoked it; see ``AudioOutput``) and how many
callbacks waited more than half a block for the interpreter, timbre updates (previews) and exact notes generated.
If underflows come with long GIL waits, the interpreter is the cause; if the waits stay short, it is not: each
underflow is listed with the longest GIL wait and load of the 4 callbacks before it and a ``cause`` ("interpreter":
over half a block; "outside": our callback was on time, see ``AudioOutput.xrun_context``), and ``max_ms_phase`` is
the longest GIL wait of the whole phase (the percentiles cover only the last 8192 callbacks).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synth.resources import default_bundle

RATE = 48000
CHORDS = ((48, 55, 60, 64), (45, 52, 57, 60), (41, 48, 53, 57), (43, 50, 55, 59))
PHASES = ("idle", "play_drag", "drag_only", "play_drag_hidden")


def _phase_list(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [n for n in names if n not in PHASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown phase {', '.join(unknown) or '(none)'}; choose from {', '.join(PHASES)}")
    return names


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the final JSON line")
    parser.add_argument("--period", type=int, default=512, help="JACK period in frames")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase (the issue asks 10 min)")
    parser.add_argument("--bundle", default=str(default_bundle()), help="model bundle (the demo source if missing)")
    parser.add_argument("--phases", type=_phase_list, default=PHASES,
                        help=f"comma list of the phases to run, in this order (default all: {','.join(PHASES)})")
    parser.add_argument("--gil-probe", action="store_true",
                        help="sample which lines other threads are on when the interpreter was held over 3 ms "
                             "(synth.bench.gil_probe; a diagnostic that costs a little itself)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.child:
        print(json.dumps(_child(args)), flush=True)
        return 0
    from synth.bench.engine import _start_private_server, _stop_private_server

    name = f"pgesam-app-{os.getpid()}"
    try:
        server = _start_private_server(args.period, name)
    except (OSError, RuntimeError) as exc:
        print(f"bench app: could not start jackd ({exc}); Debian: apt-get install jackd2", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        env = dict(os.environ, JACK_NO_START_SERVER="1", JACK_DEFAULT_SERVER=name, QT_QPA_PLATFORM="offscreen",
                   XDG_CONFIG_HOME=str(Path(tmp) / "config"), SYNTH_NOTE_CACHE=str(Path(tmp) / "notes"))
        cmd = [sys.executable, "-m", "synth", "bench", "app", "--child", "--period", str(args.period), "--seconds",
               str(args.seconds), "--bundle", args.bundle, "--phases", ",".join(args.phases)]
        if args.gil_probe:
            cmd.append("--gil-probe")
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=len(args.phases) * args.seconds + 300)
        except subprocess.TimeoutExpired as exc:
            print(f"bench app: the app did not finish in {exc.timeout:.0f} s", file=sys.stderr)
            return 1
        finally:
            _stop_private_server(server)
    lines = [ln for ln in done.stdout.strip().splitlines() if ln.startswith("{")]
    if not lines:
        print(f"bench app: the app process failed ({done.returncode}):\n{done.stderr[-3000:]}", file=sys.stderr)
        return 1
    result = json.loads(lines[-1])
    if not args.json:
        for phase in args.phases:
            r = result.get(phase, {})
            print(f"{phase}: underflows {r.get('underflows')}, max load {r.get('callback_load', {}).get('max')}, "
                  f"GIL wait p99 {r.get('gil_wait', {}).get('p99_ms')} ms", file=sys.stderr)
    print(json.dumps(result))
    return 0


def _stamped(cause: dict, mark: dict, block_ms: float) -> dict:
    """An underflow record with its wall-clock time (``at_unix``: the phase's start plus its callbacks' duration), so
    that it can be set beside another JACK server's xruns (a C client's) to tell the machine from the app."""
    return {**cause, "at_unix": round(mark["wall"] + (cause["callback"] - mark["callbacks"]) * block_ms / 1000, 2)}


def _child(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from synth.gui.engine_adapter import OpenOptions, open_engine
    from synth.gui.main_window import MainWindow
    from synth.presets import PresetLibrary

    app = QApplication.instance() or QApplication(sys.argv[:1])
    adapter = open_engine(OpenOptions(bundle=args.bundle, device="jack", block_size=int(args.period),
                                      midi_client="pgesam-benchapp", use_grid=False))
    window = MainWindow(adapter, PresetLibrary())
    window.show()
    adapter.start()
    engine = adapter.engine
    result: dict = {"bench": "app", "period": int(args.period), "period_ms": round(1000 * args.period / RATE, 2),
                    "model": adapter.model_name, "fallback": adapter.fallback_reason, "audio_error": adapter.audio_error,
                    "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    "audio_process": bool(engine.audio_process),
                    "host_realtime": bool(getattr(engine.audio, "realtime", False)),
                    "phase_seconds": args.seconds}
    if engine.audio is None:
        result["error"] = "no audio stream"
        return result
    deadline = time.monotonic() + 180
    while not engine.worker.idle() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    (x0, x1), (y0, y1) = getattr(engine.source, "map_bounds", None) or ((-1.0, 1.0), (-1.0, 1.0))
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, 0.35 * (x1 - x0), 0.35 * (y1 - y0)
    state = {"phase": 0, "start": 0.0, "chord": None, "loads": [], "marks": {}}
    phases = tuple(args.phases)

    def mark() -> dict:
        audio = engine.audio
        return {"xruns": audio.xruns, "callbacks": audio.callbacks, "gil": audio.gil_count,
                "previews": engine.worker.preview_notes, "generated": engine.worker.generated_notes,
                "t": time.perf_counter(), "wall": time.time()}

    def finish(name: str) -> None:
        m0, m1, audio = state["marks"], mark(), engine.audio
        loads = state["loads"]
        gil = audio.gil_wait_stats(m0["gil"])
        block_ms = 1000 * args.period / RATE
        ring = audio.gil_waits_ms(m0["gil"], m1["gil"])
        result[name] = {
            "seconds": round(m1["t"] - m0["t"], 2), "underflows": m1["xruns"] - m0["xruns"],
            "callbacks": m1["callbacks"] - m0["callbacks"],
            "callback_load": {"mean": round(float(np.mean(loads)), 4) if loads else None,
                              "max": round(audio.max_load, 4)},
            "gil_wait": {**gil, "over_half_block": int((ring > 0.5 * block_ms).sum()),
                         "max_ms_phase": round(1000 * audio.max_gil_wait, 3)},
            "underflow_causes": [_stamped(cause, m0, block_ms) for cause in audio.xrun_context(m0["xruns"])],
            "timbre_updates": m1["previews"] - m0["previews"], "notes_generated": m1["generated"] - m0["generated"],
            "load_avg_1min": round(os.getloadavg()[0], 2)}

    def begin(index: int) -> None:
        state["phase"], state["start"], state["loads"] = index, time.perf_counter(), []
        engine.audio.max_load = 0.0
        engine.audio.max_gil_wait = 0.0  # the ring keeps only the last 8192 callbacks; this covers the whole phase
        if phases[index] == "play_drag_hidden":
            window.hide()
        state["marks"] = mark()

    def step() -> None:
        now = time.perf_counter()
        name = phases[state["phase"]]
        state["loads"].append(engine.audio.load)
        elapsed = now - state["start"]
        if name != "idle":
            chord = CHORDS[int(elapsed // 2.0) % len(CHORDS)] if name != "drag_only" else None
            if chord != state["chord"]:
                for p in state["chord"] or ():
                    adapter.note_off(p)
                for p in chord or ():
                    adapter.note_on(p, 100)
                state["chord"] = chord
            angle = 2 * math.pi * elapsed / 3.0  # one circle every 3 s
            window.pad.set_point(cx + rx * math.cos(angle), cy + ry * math.sin(angle))
        if elapsed >= args.seconds:
            finish(name)
            for p in state["chord"] or ():
                adapter.note_off(p)
            state["chord"] = None
            if state["phase"] + 1 < len(phases):
                begin(state["phase"] + 1)
            else:
                timer.stop()
                app.quit()

    probe = None
    if args.gil_probe:
        from synth.bench.gil_probe import GilProbe

        probe = GilProbe().start()
    timer = QTimer()
    timer.setInterval(16)
    timer.timeout.connect(step)
    begin(0)
    timer.start()
    app.exec()
    if probe is not None:
        probe.stop()
        result["gil_probe"] = probe.report()
    result["worker_errors"] = engine.worker.errors[-3:]
    result["targets"] = {"underflows": 0}
    adapter.close()
    return result
