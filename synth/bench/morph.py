"""``synth bench morph --json``: live morphing through JACK (issue 19), with nothing prepared (no grid on disk).

A child process runs the engine on a private JACK server (dummy backend, realtime, ``--period`` frames at 48 kHz;
``--server running`` uses the running server at its own period), holds 4 notes and drags the pad along a path for
``--seconds`` (set_point at 60 Hz, as the window's pad does while the mouse moves), then lets it rest. Measured:

- timbre updates: every time the held notes got new buffers for a newer point during the drag (the worker's preview
  swaps; the voices crossfade to a new buffer at their next block), the interval between updates (p50, p95, max)
  and from the drag's start to the first update;
- underruns: PortAudio underflows of the engine's stream and JACK xruns seen by a recorder client, during the drag;
- callback load (callback time / block time): mean and max during the drag;
- drag end to exact: from the last pad move until every held note plays its exact note for the resting point;
- whether the sound followed the finger: the recorded output's spectral centroid along the drag against the
  centroid of the exact notes generated offline at the same path points (Pearson r; 1 = follows exactly).

Two drags are measured: ``fresh`` (a new engine, a cold note cache, the drag starting as soon as the held notes
sound) and ``again`` (the same engine, a second drag along the reversed path). Last line: one JSON object.
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

import numpy as np

from synth.resources import default_bundle

RATE = 48000
HELD = (48, 55, 60, 64)  # a C major chord over two octaves (in every bundle's range: clamped to it otherwise)
MOVE_HZ = 60.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the final JSON line")
    parser.add_argument("--period", type=int, default=512, help="JACK period in frames (target: 0 underruns at 512)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the drag")
    parser.add_argument("--bundle", default=str(default_bundle()), help="model bundle (a tiny random one if missing)")
    parser.add_argument("--demo", action="store_true", help="the built-in demo source with a simulated model cost")
    parser.add_argument("--demo-cost", type=float, default=0.25, help="simulated seconds per note with --demo")
    parser.add_argument("--server", choices=("private", "running"), default="private")
    parser.add_argument("--separate-process", action="store_true",
                        help="the model in a process of its own (synth.engine.remote_source)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.child:
        print(json.dumps(_child(args)), flush=True)
        return 0
    cmd = [sys.executable, "-m", "synth", "bench", "morph", "--child", "--seconds", str(args.seconds), "--bundle",
           args.bundle, "--demo-cost", str(args.demo_cost)] + (["--demo"] if args.demo else []) + (
        ["--separate-process"] if args.separate_process else [])
    attempts, lines, done = [], [], None
    for attempt in range(2):  # a JACK client that a loaded dummy server never lets in hangs; try once more, fresh
        outcome = _measure(args, cmd)
        if isinstance(outcome, int):
            return outcome
        done, lines, note = outcome
        if lines:
            break
        attempts.append(note)
        print(f"bench morph: attempt {attempt + 1}: {note}", file=sys.stderr)
    if not lines:
        print(f"bench morph: no measurement ({'; '.join(attempts)})", file=sys.stderr)
        return 1
    result = json.loads(lines[-1])
    result["server"] = ("the running JACK server" if args.server == "running"
                        else "a private JACK server (dummy backend, -R) started by the bench")
    result["failed_attempts"] = attempts
    if not args.json:
        for phase in ("fresh", "again"):
            r = result.get(phase, {})
            print(f"{phase}: updates every {r.get('interval_ms', {}).get('p50')} ms (p95 "
                  f"{r.get('interval_ms', {}).get('p95')}), underruns {r.get('underflows')}, exact "
                  f"{r.get('drag_end_to_exact_ms')} ms after the drag", file=sys.stderr)
    print(json.dumps(result))
    return 0


def _measure(args: argparse.Namespace, cmd: list[str]):
    """One child run on its own server: (completed process or None, JSON lines, what went wrong) or an exit code."""
    from synth.bench.engine import _jack_period_of_running_server, _start_private_server, _stop_private_server

    env = dict(os.environ, JACK_NO_START_SERVER="1")
    server = None
    if args.server == "running":
        period = _jack_period_of_running_server()
        if period is None:
            print("bench morph: --server running, but no JACK server answers", file=sys.stderr)
            return 2
        env.pop("JACK_DEFAULT_SERVER", None)
    else:
        period = args.period
        name = f"pgesam-morph-{os.getpid()}-{time.monotonic_ns() % 100000}"
        try:
            server = _start_private_server(period, name)
        except (OSError, RuntimeError) as exc:
            print(f"bench morph: could not start jackd ({exc}); Debian: apt-get install jackd2", file=sys.stderr)
            return 2
        env["JACK_DEFAULT_SERVER"] = name
    try:
        done = subprocess.run(cmd + ["--period", str(period)], env=env, capture_output=True, text=True,
                              timeout=args.seconds * 4 + 150)
    except subprocess.TimeoutExpired as exc:
        return None, [], f"the measuring process did not finish in {exc.timeout:.0f} s (a JACK client never opened?)"
    finally:
        if server is not None:
            _stop_private_server(server)
    lines = [ln for ln in done.stdout.strip().splitlines() if ln.startswith("{")]
    return done, lines, "" if lines else f"exit {done.returncode}: {done.stderr[-3000:]}"


# --------------------------------------------------------------------------------------------------- child side
def _path(t: float, bounds) -> tuple[float, float]:
    """The drag: one smooth sweep across the map and a little back, ``t`` in [0, 1]."""
    (x0, x1), (y0, y1) = bounds
    u = 0.5 - 0.5 * math.cos(math.pi * min(max(t, 0.0), 1.0))  # eased, as a hand moves
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, 0.4 * (x1 - x0), 0.4 * (y1 - y0)
    return cx - rx + 2 * rx * u, cy + ry * math.sin(2 * math.pi * u)


def centroid(x: np.ndarray, rate: int = RATE, win: int = 2048, hop: int = 512) -> np.ndarray:
    """Spectral centroid (Hz) per window; NaN where the window is silent."""
    n = (len(x) - win) // hop + 1
    if n <= 0:
        return np.zeros(0)
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(win), axis=1))
    freqs = np.fft.rfftfreq(win, 1.0 / rate)
    total = spec.sum(axis=1)
    out = (spec * freqs).sum(axis=1) / np.maximum(total, 1e-12)
    out[total < 1e-6 * max(float(total.max()), 1e-12)] = np.nan
    return out


def _pct(values, q):
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def _child(args: argparse.Namespace) -> dict:
    import faulthandler

    from synth.engine.midi_io import jack_server_running

    # a hang (a JACK client the server never lets in) ends with every thread's stack on stderr, before the parent's
    # timeout, so the parent can say where it hung
    faulthandler.dump_traceback_later(args.seconds * 4 + 130, exit=True)

    if not jack_server_running():
        return {"error": "no JACK server"}
    import sounddevice  # noqa: F401  (imported only now that the server runs: PortAudio scans at import)
    import torch

    from synth.bench.engine import _Recorder
    from synth.engine.sources import SineNoteSource, source_bounds

    torch.set_num_threads(1)
    period = int(args.period)
    tmp = Path(tempfile.mkdtemp(prefix="pgesam-morph-"))
    if args.demo:
        source, what = SineNoteSource(pitch_range=(48, 72), delay_per_note=args.demo_cost), \
            f"demo source, {args.demo_cost} s per note simulated"
    elif args.separate_process and (Path(args.bundle) / "bundle.json").exists():
        from synth.engine.bundle_source import open_bundle

        source, what = (open_bundle(args.bundle, disk_cache=False, separate_process=True),
                        f"bundle {args.bundle} in a process of its own")
    else:
        from synth.bench.engine import _model_source

        source, what = _model_source(args.bundle, tmp)
    torch.set_num_threads(1)  # _model_source leaves cores-1 threads: here one, the trainings beside us need theirs
    lo, hi = source.pitch_range
    held = sorted({min(max(p, lo), hi) for p in HELD})
    bounds = getattr(source, "map_bounds", None) or source_bounds(source)
    result: dict = {"bench": "morph", "period": period, "period_ms": round(1000 * period / RATE, 2),
                    "source": what, "play_path": getattr(source, "play_path", "demo"),
                    "held": held, "drag_s": args.seconds, "moves_per_s": MOVE_HZ, "grid": "none (nothing prepared)",
                    "cpu_count": os.cpu_count()}
    from synth.bench.engine import _all_output_ports, _output_ports_of_new_client
    from synth.engine.engine import Engine

    # The engine (its MIDI clients) opens before the recorder: python-rtmidi opens a JACK client holding the GIL,
    # and a JACK client with a Python process callback already in this process (the recorder) then cannot finish
    # its cycle, so the server never lets the new client in: a deadlock seen 3 times in 5 runs under load.
    before = _all_output_ports()
    engine = Engine(source, sample_rate=RATE, block_size=period, device="jack", midi_client="pgesam-morph",
                    use_grid=False)
    engine.start()
    rec = _Recorder("morph-rec")
    rec.connect(_output_ports_of_new_client(before))
    try:
        engine.set_point(*_path(0.0, bounds))
        for p in held:
            engine.note_on(p, 100)
        from synth.bench.engine import _wait

        _wait(lambda: all(engine.slots[p].tag[1:] == ("exact",) for p in held), 120)
        rec.recording = True
        time.sleep(0.3)
        result["fresh"] = _drag(engine, rec, bounds, held, args.seconds, reverse=False)
        time.sleep(0.5)
        result["again"] = _drag(engine, rec, bounds, held, args.seconds, reverse=True)
        result["reference_points"] = _REF_POINTS
        result["worker_errors"] = engine.worker.errors[-3:]
    finally:
        rec.recording = False
        engine.stop()
        rec.close()
    result["centroid_reference"] = _reference(source, bounds, held, result)
    if hasattr(source, "close"):  # the model's own process
        source.close()
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)
    result["targets"] = {"interval_p95_ms": 50, "underflows": 0, "drag_end_to_exact_ms": 1000}
    return result


_REF_POINTS = 7  # path points where the exact notes' centroid is computed for the follow check


def _drag(engine, rec, bounds, held, seconds, reverse: bool) -> dict:
    worker, audio = engine.worker, engine.audio
    t_of = (lambda u: 1.0 - u) if reverse else (lambda u: u)
    xr0, jx0 = audio.xruns, rec.xruns
    audio.max_load = 0.0
    loads = []
    frame0 = rec.now
    start = time.perf_counter()
    moves = []  # (seconds since start, jack frame, u)
    next_move = start
    while True:
        now = time.perf_counter()
        u = (now - start) / seconds
        if u > 1.0:
            break
        engine.set_point(*_path(t_of(u), bounds))
        moves.append((now - start, rec.now, t_of(u)))
        loads.append(audio.load)
        next_move += 1.0 / MOVE_HZ
        time.sleep(max(0.0, next_move - time.perf_counter()))
    engine.set_point(*_path(t_of(1.0), bounds))
    end = time.perf_counter()
    frame_end = rec.now
    ok = _wait_exact(engine, held)
    exact_ms = round(1000 * worker.exact_latency, 1) if ok and worker.exact_latency is not None else None
    time.sleep(0.3)
    log = [e for e in list(worker.preview_log) if start <= e[1] <= end]
    swaps = [e[1] for e in log]
    intervals = 1000 * np.diff(swaps) if len(swaps) > 1 else np.zeros(0)
    computes = [1000 * (e[1] - e[0]) for e in log]
    recorded = rec.audio(frame0, frame_end + int(0.3 * RATE))
    return {
        "moves": len(moves), "timbre_updates": len(swaps),
        "interval_ms": {"p50": _pct(intervals, 50), "p95": _pct(intervals, 95), "max": _pct(intervals, 100)},
        "first_update_ms": round(1000 * (swaps[0] - start), 1) if swaps else None,
        "preview_compute_ms": {"p50": _pct(computes, 50), "p95": _pct(computes, 95)},
        "underflows": audio.xruns - xr0, "jack_xruns": rec.xruns - jx0,
        "callback_load": {"mean": round(float(np.mean(loads)), 4) if loads else None,
                          "max": round(audio.max_load, 4)},
        "drag_end_to_exact_ms": exact_ms,
        "_centroid_track": _track(recorded, frame0, moves),
    }


def _wait_exact(engine, held, timeout: float = 30.0) -> bool:
    from synth.bench.engine import _wait

    worker = engine.worker
    return _wait(lambda: worker.exact_latency is not None, timeout)


def _track(recorded: np.ndarray, frame0: int, moves) -> list[tuple[float, float]]:
    """(path position u, recorded centroid) at each reference point of the path, taken 0.1 s after the pad passed it
    (the time a preview needs to be computed and crossfaded in)."""
    cents = centroid(recorded)
    out = []
    for k in range(_REF_POINTS):
        u = k / (_REF_POINTS - 1)
        t_pass, frame = min(((abs(m[2] - u), m[1]) for m in moves), default=(None, None))
        if frame is None:
            continue
        at = (frame - frame0) + int(0.1 * RATE)
        i = min(max(0, at // 512 - 2), max(0, len(cents) - 5))
        window = cents[i:i + 5]
        value = float(np.nanmedian(window)) if np.isfinite(window).any() else float("nan")
        out.append((u, value))
    return out


def _reference(source, bounds, held, result: dict) -> dict:
    """The exact notes' centroid at each reference point (generated offline, mixed as the voices would), and how well
    each drag's recorded centroid followed it."""
    from synth.engine.buffers import resample

    ref = []
    for k in range(_REF_POINTS):
        u = k / (_REF_POINTS - 1)
        notes = np.asarray(source.generate(_path(u, bounds), held, 100), dtype=np.float32)
        mix = resample(notes.sum(axis=0), source.sample_rate, RATE)
        part = mix[int(1.0 * RATE):int(2.5 * RATE)]  # the held part the voices loop over
        ref.append(float(np.nanmedian(centroid(part))))
    out = {"exact_centroid_hz": [round(c, 1) for c in ref]}
    for phase in ("fresh", "again"):
        track = result.get(phase, {}).pop("_centroid_track", [])
        if not track:
            continue
        heard = np.array([c for _, c in track])
        expect = np.array([ref[int(round(u * (_REF_POINTS - 1)))] for u, _ in track])
        good = np.isfinite(heard) & np.isfinite(expect)
        r = float(np.corrcoef(heard[good], expect[good])[0, 1]) if good.sum() >= 3 and np.std(heard[good]) > 0 \
            and np.std(expect[good]) > 0 else None
        result[phase]["centroid_follow"] = {"recorded_hz": [round(c, 1) for c in heard],
                                            "pearson_r": None if r is None else round(r, 3)}
    return out
