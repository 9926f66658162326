"""``synth play``: the instrument without a window. Plays the bundled model from a MIDI keyboard until Ctrl-C.

The engine always opens a virtual MIDI input (``pgesam:midi_in``) that a DAW or keyboard can connect to;
``--midi-port NAME`` additionally connects to that keyboard (and reconnects it when it is unplugged and plugged back
in). Without a model bundle it plays the built-in demo tones (``SineNoteSource``) and says so.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--midi-port", default=None, help="MIDI keyboard port to read (name or part of it)")
    parser.add_argument("--bundle", default="models/default", help="model bundle folder (default models/default)")
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


def _make_engine(args: argparse.Namespace):
    from synth.engine.engine import Engine, EngineSettings

    settings = EngineSettings(master_gain_db=args.gain_db,
                              midi_channel=None if args.channel is None else args.channel - 1)
    kw = dict(sample_rate=args.samplerate, block_size=args.blocksize, device=args.device, settings=settings,
              midi_client=args.midi_client)
    if not args.demo and (Path(args.bundle) / "bundle.json").exists():
        return Engine.from_bundle(args.bundle, **kw), f"model {args.bundle}"
    if not args.demo:
        print(f"play: no model bundle at {args.bundle!r}; playing the built-in demo tones", file=sys.stderr)
    return Engine.demo(**kw), "demo tones"


def run(args: argparse.Namespace) -> int:
    from synth.engine.audio_io import AudioDeviceError, list_output_devices
    from synth.engine.midi_io import list_input_ports

    if args.list:
        for d in list_output_devices():
            print(f"audio {d['index']:3}: {d['name']} ({d['hostapi']}, {d['channels']} ch)")
        for name in list_input_ports():
            print(f"midi     : {name}")
        return 0
    try:
        engine, what = _make_engine(args)
    except Exception as exc:  # a broken bundle: say what is wrong, do not print a traceback at a musician
        print(f"play: cannot load {args.bundle!r}: {exc}", file=sys.stderr)
        return 2
    if args.point:
        engine.set_point(*args.point)
    try:
        engine.start()
    except AudioDeviceError as exc:
        print(f"play: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if args.midi_port:
            if not engine.connect_midi(args.midi_port, required=False):
                print(f"play: MIDI port {args.midi_port!r} not there yet; it is connected when it appears. "
                      f"Available: {engine.midi_ports()}", file=sys.stderr)
        print(f"play: {what} at {engine.sample_rate} Hz, block {engine.block_size}, output latency "
              f"{engine.latency * 1000:.1f} ms; MIDI in: {engine.midi_port_name}"
              + (f" + {args.midi_port}" if args.midi_port else "") + ". Ctrl-C to stop.", file=sys.stderr)
        t_end = time.monotonic() + args.duration if args.duration else None
        while not stop.wait(2.0 if t_end is None else min(2.0, max(0.0, t_end - time.monotonic()))):
            m = engine.meters()
            print(f"voices {m['voices']:2}  peak {m['peak_db']:6.1f} dB  xruns {m['xruns']}  load "
                  f"{m['load'] * 100:4.1f}%  notes {m['cache_done']}/{m['cache_total']}", file=sys.stderr)
            if t_end is not None and time.monotonic() >= t_end:
                break
        meters = engine.meters()
    finally:
        engine.stop()
    print(json.dumps({k: meters[k] for k in ("xruns", "max_load", "latency_ms", "bad_blocks")}))
    return 0
