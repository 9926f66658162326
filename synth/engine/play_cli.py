"""``synth play``: the instrument without a window. Plays the bundled model from a MIDI keyboard until Ctrl-C.

The engine always opens a virtual MIDI input (``pgesam:midi_in``) that a DAW or keyboard can connect to;
``--midi-port NAME`` additionally connects to that keyboard (and reconnects it when it is unplugged and plugged back
in). Without a model bundle it plays the built-in demo tones (``SineNoteSource``) and says so.

Faults it rides out (issue 16):

- the JACK server dies (kill -9 or a normal stop): play says so, waits, and when a server answers again it starts
  itself afresh in the same process (``os.execve``), because PortAudio cannot rescan its host APIs in a process
  whose server died (see synth.engine.audio_io). The new run says "reconnected".
- Ctrl-C (or SIGTERM) always ends it within about a second: stopping runs in a helper thread with a deadline, and
  a dead stream is never stopped at all (that waits forever inside PortAudio); such exits use ``os._exit``.
- a note source that fails: each new error message is printed once instead of "notes 0/25" forever.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from synth.resources import default_bundle

RECONNECT_ENV = "SYNTH_PLAY_RECONNECT"  # set in the re-executed process: how many reconnects so far
STOP_DEADLINE = 0.8  # seconds a normal stop may take before the process leaves without it
METER_PERIOD = 2.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--midi-port", default=None, help="MIDI keyboard port to read (name or part of it)")
    parser.add_argument("--bundle", default=str(default_bundle()),
                        help="model bundle folder (default: the bundled model, %(default)s)")
    parser.add_argument("--demo", action="store_true", help="play the built-in demo tones instead of a model")
    parser.add_argument("--device", default=None, help="audio output device (index or name; default: JACK if "
                                                       "running, else the system default)")
    parser.add_argument("--samplerate", type=int, default=48000)
    parser.add_argument("--blocksize", type=int, default=512, help="frames per audio block (latency vs safety)")
    parser.add_argument("--point", type=float, nargs=2, default=None, metavar=("X", "Y"), help="timbre point")
    parser.add_argument("--channel", type=int, default=None, help="MIDI channel 1-16 (default: omni)")
    parser.add_argument("--gain-db", type=float, default=-12.0, help="master gain in dB (default -12)")
    parser.add_argument("--midi-client", default="pgesam", help="JACK/ALSA client name of the MIDI input")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--list", action="store_true", help="list audio outputs and MIDI ports, then exit")
    parser.add_argument("--cc-x", type=int, default=None, metavar="N", help="MIDI CC that moves the timbre X "
                        "(0-127; 14-bit when N is 0-31 and its LSB CC N+32 is sent too)")
    parser.add_argument("--cc-y", type=int, default=None, metavar="M", help="MIDI CC that moves the timbre Y "
                        "(e.g. 1: the mod wheel)")


def _check_numbers(args: argparse.Namespace) -> None:
    """Every number from the command line, finite and in range (InputError names the flag)."""
    from synth.validate import MASTER_GAIN_DB_RANGE, finite_in_range

    args.gain_db = finite_in_range(args.gain_db, *MASTER_GAIN_DB_RANGE, "--gain-db")
    finite_in_range(args.samplerate, 8000, 384000, "--samplerate")
    finite_in_range(args.blocksize, 16, 16384, "--blocksize")
    if args.channel is not None:
        finite_in_range(args.channel, 1, 16, "--channel")
    if args.duration is not None:
        args.duration = finite_in_range(args.duration, 0.0, 1e7, "--duration")
    if args.point is not None:
        args.point = [finite_in_range(v, -1e3, 1e3, "--point") for v in args.point]
    for flag, cc in (("--cc-x", args.cc_x), ("--cc-y", args.cc_y)):
        if cc is not None:
            finite_in_range(cc, 0, 127, flag)


def _make_engine(args: argparse.Namespace):
    from synth.engine.audio_host import audio_process_default
    from synth.engine.engine import Engine, EngineSettings

    settings = EngineSettings(master_gain_db=args.gain_db,
                              midi_channel=None if args.channel is None else args.channel - 1)
    # the audio callback in a process of its own (synth.engine.audio_host); SYNTH_AUDIO_PROCESS=0 keeps it here
    kw = dict(sample_rate=args.samplerate, block_size=args.blocksize, device=args.device, settings=settings,
              midi_client=args.midi_client, audio_process=audio_process_default(True))
    if not args.demo and (Path(args.bundle) / "bundle.json").exists():
        return Engine.from_bundle(args.bundle, **kw), f"model {args.bundle}"
    if not args.demo:
        print(f"play: no model bundle at {args.bundle!r}; playing the built-in demo tones", file=sys.stderr)
    return Engine.demo(**kw), "demo tones"


class StatusReporter:
    """The lines ``play`` prints while it runs: meters, and each new worker error message once."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self._seen_count = 0
        self._said: set[str] = set()

    def meter_line(self) -> str:
        m = self.engine.meters()
        return (f"voices {m['voices']:2}  peak {m['peak_db']:6.1f} dB  xruns {m['xruns']}  load "
                f"{m['load'] * 100:4.1f}%  notes {m['cache_done']}/{m['cache_total']}")

    def new_errors(self) -> list[str]:
        worker = self.engine.worker
        if worker.error_count == self._seen_count:
            return []
        self._seen_count = worker.error_count
        lines = []
        for message in worker.errors[-3:]:
            if message not in self._said and len(self._said) < 100:
                self._said.add(message)
                lines.append(f"play: note generation failed: {message}")
        return lines


def run(args: argparse.Namespace) -> int:
    from synth.validate import InputError

    if args.list:
        return _list_ports()
    try:
        _check_numbers(args)
    except InputError as exc:
        print(f"play: {exc}", file=sys.stderr)
        return 2
    try:
        engine, what = _make_engine(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a broken bundle: say what is wrong, do not print a traceback at a musician
        print(f"play: cannot load {args.bundle!r}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t_end = time.monotonic() + args.duration if args.duration else None
    if args.point:
        engine.set_point(*args.point)
    failed = _start(engine, args, stop)
    if failed is not None:
        return failed
    _connect_keyboard(engine, args)
    print(f"play: {what} at {engine.sample_rate} Hz, block {engine.block_size}, output latency "
          f"{engine.latency * 1000:.1f} ms; MIDI in: {engine.midi_port_name}"
          + (f" + {args.midi_port}" if args.midi_port else "") + ". Ctrl-C to stop.", file=sys.stderr)
    if os.environ.get(RECONNECT_ENV):
        print("play: reconnected to the audio server", file=sys.stderr)
    return _play(engine, args, stop, t_end)


def _list_ports() -> int:
    from synth.engine.audio_io import list_output_devices
    from synth.engine.midi_io import list_input_ports

    for d in list_output_devices():
        print(f"audio {d['index']:3}: {d['name']} ({d['hostapi']}, {d['channels']} ch)")
    for name in list_input_ports():
        print(f"midi     : {name}")
    return 0


def _start(engine, args: argparse.Namespace, stop: threading.Event) -> int | None:
    """Start audio and MIDI; None when playing. A run that is reconnecting waits for the server again instead."""
    from synth.engine.audio_io import AudioDeviceError

    try:
        engine.start()
        return None
    except AudioDeviceError as exc:
        print(f"play: {exc}", file=sys.stderr)
        if not os.environ.get(RECONNECT_ENV):
            return 2
    return _server_lost(engine, args, stop, None, jack=True)  # the server went again while this run started


def _connect_keyboard(engine, args: argparse.Namespace) -> None:
    if args.midi_port and not engine.connect_midi(args.midi_port, required=False):
        print(f"play: MIDI port {args.midi_port!r} not there yet; it is connected when it appears. "
              f"Available: {engine.midi_ports()}", file=sys.stderr)


def _play(engine, args: argparse.Namespace, stop: threading.Event, t_end: float | None) -> int:
    """The main loop: watch the stream, print meters and new errors, until Ctrl-C or --duration."""
    reporter = StatusReporter(engine)
    next_meter = time.monotonic() + METER_PERIOD
    follow = _cc_follower(engine, args)
    # CC control polls at 50 Hz so the smoothed point glides; without it the loop only watches the stream
    while not stop.wait(0.02 if follow else 0.1):
        now = time.monotonic()
        if follow:
            follow(0.02)
        if engine.audio_lost():
            return _server_lost(engine, args, stop, t_end, jack="JACK" in engine.audio_hostapi())
        for line in reporter.new_errors():
            print(line, file=sys.stderr)
        if now >= next_meter:
            print(reporter.meter_line(), file=sys.stderr)
            next_meter = now + METER_PERIOD
        if t_end is not None and now >= t_end:
            break
    return _shutdown(engine)


def _cc_follower(engine, args: argparse.Namespace):
    """--cc-x/--cc-y: a function that moves the point from the engine's CC store (smoothed, off the audio
    thread), or None."""
    if args.cc_x is None and args.cc_y is None:
        return None
    from synth.engine.cc_control import CCControl, to_map
    from synth.engine.sources import source_bounds

    control = CCControl()
    control.bind("x", args.cc_x)
    control.bind("y", args.cc_y)
    bounds = source_bounds(engine.source)

    def follow(dt: float) -> None:
        moved, _ = control.poll(engine.cc_values, engine.cc_counts, dt)
        if moved:
            x, y = engine.point
            engine.set_point(to_map(moved["x"], bounds[0]) if "x" in moved else x,
                             to_map(moved["y"], bounds[1]) if "y" in moved else y)
    return follow


def _summary(engine) -> str:
    meters = engine.meters()
    summary = {k: meters[k] for k in ("xruns", "max_load", "latency_ms", "bad_blocks")}
    summary["point"] = [float(v) for v in engine.point]  # where the timbre ended (moved by --cc-x/--cc-y)
    return json.dumps(summary)


def _shutdown(engine) -> int:
    """Stop within STOP_DEADLINE: the stop runs in a helper thread; when it overruns, leave without it."""
    summary = _summary(engine)
    stopper = threading.Thread(target=engine.stop, name="play-stop", daemon=True)
    stopper.start()
    stopper.join(STOP_DEADLINE)
    print(summary)
    if stopper.is_alive():
        print("play: stopping took too long; left without waiting", file=sys.stderr)
        _hard_exit(0)
    return 0


def _hard_exit(code: int) -> None:
    """Leave now: no atexit handlers (PortAudio's would wait on a dead stream), no joins of busy threads."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _server_lost(engine, args: argparse.Namespace, stop: threading.Event, t_end: float | None, jack: bool) -> int:
    """The stream died. JACK: wait for a server, then start afresh. Another host API: say so and leave."""
    from synth.engine.midi_io import jack_server_running

    summary = _summary(engine)
    engine.abandon_audio()
    if not jack:
        print("play: the audio output stopped (device gone?); start play again when it is back", file=sys.stderr)
        print(summary)
        _hard_exit(1)
    print("play: the audio server (JACK) is gone: audio stopped. Waiting for it to come back "
          "(Ctrl-C to quit).", file=sys.stderr)
    while not stop.wait(0.5):
        if t_end is not None and time.monotonic() >= t_end:
            break
        if jack_server_running():
            print("play: the audio server is back; reconnecting", file=sys.stderr)
            _relaunch(args, t_end)
    print(summary)
    _hard_exit(0)
    return 0  # not reached


def _relaunch(args: argparse.Namespace, t_end: float | None) -> None:
    """Run ``synth play`` again in this process (same PID, same pipes) with the same options."""
    argv = [sys.executable, "-m", "synth", "play", *_options(args, t_end)]
    env = dict(os.environ)
    env[RECONNECT_ENV] = str(int(env.get(RECONNECT_ENV) or 0) + 1)
    package_root = str(Path(__file__).resolve().parents[2])  # so that -m synth finds this same code
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def _options(args: argparse.Namespace, t_end: float | None) -> list[str]:
    """The command-line options that reproduce ``args`` (with the time left of --duration)."""
    out = ["--bundle", str(args.bundle), "--samplerate", str(args.samplerate), "--blocksize", str(args.blocksize),
           f"--gain-db={float(args.gain_db)!r}", "--midi-client", str(args.midi_client)]
    if args.demo:
        out.append("--demo")
    for flag, value in (("--midi-port", args.midi_port), ("--device", args.device), ("--channel", args.channel),
                        ("--cc-x", args.cc_x), ("--cc-y", args.cc_y)):
        if value is not None:
            out += [flag, str(value)]
    if args.point:
        out += ["--point", *(repr(float(v)) for v in args.point)]
    if t_end is not None:
        out.append(f"--duration={max(0.1, t_end - time.monotonic())!r}")
    return out
