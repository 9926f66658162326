"""``synth bench morph --json``: live morphing through JACK (issue 19), with nothing prepared (no grid on disk).

A child process runs the engine on a private JACK server (dummy backend, realtime, ``--period`` frames at 48 kHz;
``--server running`` uses the running server at its own period), holds 4 notes and drags the pad along a path for
``--seconds`` (set_point at 60 Hz, as the window's pad does while the mouse moves), then lets it rest. The path
(``path`` in the JSON) is a straight, eased line from the darkest to the brightest family of the bundle's map: each
family's point is the mean map point of its instruments (bundle.json), its brightness the spectral centroid of a
chord generated there (``_drag_ends``; a source without families, the demo one, goes left to right). Measured:

- timbre updates: every time the held notes got new buffers for a newer point during the drag (the worker's preview
  swaps; the voices crossfade to a new buffer at their next block), the interval between updates (p50, p95, max)
  and from the drag's start to the first update; ``refinements``: the refined previews (a few flow steps at the
  newest point, which later previews move from) finished during the drag;
- underruns: PortAudio underflows of the engine's stream and JACK xruns seen by a recorder client, during the drag;
- callback load (callback time / block time): mean and max during the drag;
- drag end to exact: from the last pad move until every held note plays its exact note for the resting point;
- whether the sound followed the finger (``centroid_follow``): the recorded output's spectral centroid at 13 points
  of the path, ``follow_lag_s`` after the pad passed each (median of 5 windows of 43 ms), against
  - the exact notes generated offline at those points (``pearson_r``, ``spearman_r``; ``centroid_reference`` gives
    their centroids and range: a drag whose exact notes barely change cannot show anything), and
  - what should be heard there (``expected_hz``, ``vs_expected``): the buffers the worker made for the point nearest
    each reference point (the previews during a drag), mixed as the voices read them at that moment (a note's
    brightness changes along its sustain loop; ``median_error_pct``: the median |recorded - expected| / expected).
    This is the engine's part: it delivers what it computed, in time.
    ``expected_vs_exact`` is the previews' part: how well a preview's brightness follows the exact note's.

Why not as before (until issue 19's bench fix): the path swept the map's bounding box with a sine wiggle, where the
exact notes' centroid jumps about (450-2000 Hz with no trend), and the recorded centroid was compared at 7 points
with each exact note's median over its whole loop, though the voices sound one place of it: Pearson r ranged from
-0.57 to 0.63 over 8 runs.

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
            follow = r.get("centroid_follow", {})
            print(f"  centroid follow: r {follow.get('pearson_r')} (rank {follow.get('spearman_r')}) against the "
                  f"exact notes, r {follow.get('vs_expected', {}).get('pearson_r')} against the previews made for "
                  f"the points; previews against exact r {follow.get('expected_vs_exact', {}).get('pearson_r')}",
                  file=sys.stderr)
        ref = result.get("centroid_reference", {})
        print(f"exact notes along the path: {ref.get('exact_range_hz')} Hz (x{ref.get('exact_range_ratio')})",
              file=sys.stderr)
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
def _path(t: float, ends) -> tuple[float, float]:
    """The drag: a straight line from ``ends[0]`` to ``ends[1]``, eased as a hand moves; ``t`` in [0, 1]."""
    (ax, ay), (bx, by) = ends
    u = 0.5 - 0.5 * math.cos(math.pi * min(max(t, 0.0), 1.0))
    return ax + (bx - ax) * u, ay + (by - ay) * u


def _drag_ends(source, bounds, held) -> dict:
    """The drag's two ends: the darkest and the brightest family of the bundle's map, so that the exact notes along
    the drag differ clearly in brightness. Each family's point is the mean map point of its instruments
    (bundle.json's ``instruments``); the brightness of a point is the spectral centroid of the chord two semitones
    above the held one (``_chord_centroid``), generated there (not the held keys themselves: the model source keeps
    every exact note it makes as a preview anchor of its pitch, and the drag must start with the start point's
    only). A source without families (the demo source: x sets its spectral tilt) is dragged from left to right
    through the middle of its map."""
    families: dict[str, list[tuple[float, float]]] = {}
    for inst in getattr(source, "instruments", None) or ():
        if math.isfinite(inst.x) and math.isfinite(inst.y):
            families.setdefault(str(inst.family), []).append((float(inst.x), float(inst.y)))
    if len(families) < 2:
        (x0, x1), (y0, y1) = bounds
        cy = (y0 + y1) / 2
        return {"how": "no instrument families: left to right through the middle of the map",
                "from": {"xy": [x0 + 0.1 * (x1 - x0), cy]}, "to": {"xy": [x1 - 0.1 * (x1 - x0), cy]}}
    lo, hi = source.pitch_range
    probe = sorted({min(max(p + 2, lo), hi) for p in held})
    points = []
    for family, pts in sorted(families.items()):
        xy = (float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts])))
        points.append((_chord_centroid(source, xy, probe), family, xy))
    points = [p for p in points if math.isfinite(p[0])]
    dark, bright = min(points), max(points)
    return {"how": "the darkest and the brightest family centre (mean map point of a family's instruments), by the "
                   f"spectral centroid of the chord {probe} generated at each of {len(points)} family centres",
            "from": {"family": dark[1], "xy": [round(v, 5) for v in dark[2]], "probe_centroid_hz": round(dark[0], 1)},
            "to": {"family": bright[1], "xy": [round(v, 5) for v in bright[2]],
                   "probe_centroid_hz": round(bright[0], 1)}}


def _chord_centroid(source, xy, pitches) -> float:
    """Median spectral centroid of the exact notes of ``pitches`` at ``xy``, mixed, over the held part the voices
    loop (1.0-2.5 s of a note)."""
    from synth.engine.buffers import resample

    notes = np.asarray(source.generate(xy, list(pitches), 100), dtype=np.float32)
    mix = resample(notes.sum(axis=0), source.sample_rate, RATE)
    c = centroid(mix[int(1.0 * RATE):int(2.5 * RATE)])
    return float(np.nanmedian(c)) if np.isfinite(c).any() else float("nan")


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
    path = _drag_ends(source, bounds, held)
    ends = (tuple(path["from"]["xy"]), tuple(path["to"]["xy"]))
    result: dict = {"bench": "morph", "period": period, "period_ms": round(1000 * period / RATE, 2),
                    "source": what, "play_path": getattr(source, "play_path", "demo"),
                    "held": held, "drag_s": args.seconds, "moves_per_s": MOVE_HZ, "grid": "none (nothing prepared)",
                    "cpu_count": os.cpu_count(), "path": path}
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
        engine.set_point(*_path(0.0, ends))
        for p in held:
            engine.note_on(p, 100)
        from synth.bench.engine import _wait

        _wait(lambda: all(engine.slots[p].tag[1:] == ("exact",) for p in held), 120)
        rec.recording = True
        time.sleep(0.3)
        result["fresh"] = _drag(engine, rec, ends, held, args.seconds, reverse=False)
        time.sleep(0.5)
        result["again"] = _drag(engine, rec, ends, held, args.seconds, reverse=True)
        result["reference_points"] = _REF_POINTS
        result["follow_lag_s"] = _LAG_S
        result["worker_errors"] = engine.worker.errors[-3:]
    finally:
        rec.recording = False
        engine.stop()
        rec.close()
    result["centroid_reference"] = _reference(source, ends, held, result)
    if hasattr(source, "close"):  # the model's own process
        source.close()
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)
    result["targets"] = {"interval_p95_ms": 50, "underflows": 0, "drag_end_to_exact_ms": 1000}
    return result


_REF_POINTS = 13  # path points where the recorded centroid is compared with what should be heard there
_LAG_S = 0.1  # the sound at a point is measured this long after the finger passed it (preview, crossfade, blocks)
_TRACK_WIN, _TRACK_HOP, _TRACK_N = 2048, 512, 5  # centroid windows (43 ms), median of 5 (85 ms in all)


def _drag(engine, rec, ends, held, seconds, reverse: bool) -> dict:
    worker, audio, mixer = engine.worker, engine.audio, engine.mixer
    t_of = (lambda u: 1.0 - u) if reverse else (lambda u: u)
    xr0, jx0 = audio.xruns, rec.xruns
    pieces0, skips0 = getattr(worker, "refine_steps", 0), getattr(worker, "refine_skips", 0)
    audio.max_load = 0.0
    loads = []
    frame0 = rec.now
    start = time.perf_counter()
    moves = []  # (seconds since start, jack frame, u)
    serial_u: dict[int, float] = {}  # the path position of each requested point
    voices = []  # (jack frame, {pitch: (read position, gain)}) of the held voices, at each move
    captured: dict[int, tuple[float, dict]] = {}  # reference point -> (u of the preview, {pitch: its buffer})
    next_move = start
    while True:
        now = time.perf_counter()
        u = (now - start) / seconds
        if u > 1.0:
            break
        engine.set_point(*_path(t_of(u), ends))
        moves.append((now - start, rec.now, t_of(u)))
        serial_u[worker.serial] = t_of(u)
        voices.append((rec.now, {v.pitch: (float(v.pos), float(v.gain * v.loop_gain * v.env))
                                 for v in list(mixer.voices) if v.state and v.pitch in held}))
        _capture(engine, held, serial_u, captured)
        loads.append(audio.load)
        next_move += 1.0 / MOVE_HZ
        time.sleep(max(0.0, next_move - time.perf_counter()))
    engine.set_point(*_path(t_of(1.0), ends))
    serial_u[worker.serial] = t_of(1.0)
    end = time.perf_counter()
    pieces, skips = getattr(worker, "refine_steps", 0) - pieces0, getattr(worker, "refine_skips", 0) - skips0
    frame_end = rec.now
    _capture(engine, held, serial_u, captured)
    ok = _wait_exact(engine, held)
    exact_ms = round(1000 * worker.exact_latency, 1) if ok and worker.exact_latency is not None else None
    time.sleep(0.3)
    log = [e for e in list(worker.preview_log) if start <= e[1] <= end]
    swaps = [e[1] for e in log]
    intervals = 1000 * np.diff(swaps) if len(swaps) > 1 else np.zeros(0)
    computes = [1000 * (e[1] - e[0]) for e in log]
    refines = [e for e in list(getattr(worker, "refine_log", ())) if start <= e[0] <= end]
    recorded = rec.audio(frame0, frame_end + int(0.3 * RATE))
    return {
        "moves": len(moves), "timbre_updates": len(swaps),
        "interval_ms": {"p50": _pct(intervals, 50), "p95": _pct(intervals, 95), "max": _pct(intervals, 100)},
        "first_update_ms": round(1000 * (swaps[0] - start), 1) if swaps else None,
        "preview_compute_ms": {"p50": _pct(computes, 50), "p95": _pct(computes, 95)},
        # refined previews (a few flow steps) finished during the drag, their pieces run, and pieces left out
        "refinements": len(refines), "refine_pieces": pieces, "refine_pieces_skipped": skips,
        "underflows": audio.xruns - xr0, "jack_xruns": rec.xruns - jx0,
        "callback_load": {"mean": round(float(np.mean(loads)), 4) if loads else None,
                          "max": round(audio.max_load, 4)},
        "drag_end_to_exact_ms": exact_ms,
        "_centroid_track": _track(recorded, frame0, moves, voices, captured),
    }


def _capture(engine, held, serial_u: dict, captured: dict) -> None:
    """Keep, for each reference point, the held slots' buffers made for the requested point nearest to it (what the
    voices should play once the finger has passed it): all held slots must hold buffers of one point."""
    tags = {p: engine.slots[p].tag for p in held}
    serials = {t[0] for t in tags.values() if len(t) >= 2}
    if len(serials) != 1:
        return
    u = serial_u.get(serials.pop())
    if u is None:
        return
    k = int(round(u * (_REF_POINTS - 1)))
    if k not in captured or abs(u - k / (_REF_POINTS - 1)) < abs(captured[k][0] - k / (_REF_POINTS - 1)):
        captured[k] = (u, {p: engine.slots[p].buffer for p in held})


def _wait_exact(engine, held, timeout: float = 30.0) -> bool:
    from synth.bench.engine import _wait

    worker = engine.worker
    return _wait(lambda: worker.exact_latency is not None, timeout)


def _median_centroid(x: np.ndarray) -> float:
    cents = centroid(x, win=_TRACK_WIN, hop=_TRACK_HOP)
    return float(np.nanmedian(cents)) if np.isfinite(cents).any() else float("nan")


def _read(buf, pos: float, n: int) -> np.ndarray:
    """``n`` samples of a held voice's buffer from read position ``pos`` on (rate 1, wrapping in its loop)."""
    idx = np.floor(pos).astype(np.int64) + np.arange(n)
    if buf.loop_end > buf.loop_start:
        over = idx >= buf.loop_end
        idx[over] = buf.loop_start + (idx[over] - buf.loop_start) % (buf.loop_end - buf.loop_start)
    return buf.data[np.clip(idx, 0, len(buf.data) - 1)]


def _track(recorded: np.ndarray, frame0: int, moves, voices, captured) -> list[tuple[float, float, float]]:
    """(path position u, recorded centroid, expected centroid) at each reference point, ``_LAG_S`` after the pad
    passed it. Recorded: the median over ``_TRACK_N`` windows there. Expected: the same windows of the mix of the
    buffers the worker made for that point (``_capture``), read where the held voices were then (a note's
    brightness changes along its sustain loop, and the voices are at one place in it)."""
    span = _TRACK_WIN + (_TRACK_N - 1) * _TRACK_HOP
    out = []
    for k in range(_REF_POINTS):
        u = k / (_REF_POINTS - 1)
        frame = min(((abs(m[2] - u), m[1]) for m in moves), default=(None, None))[1]
        if frame is None:
            continue
        at = frame + int(_LAG_S * RATE) - span // 2 + _TRACK_WIN // 2  # the windows are centred _LAG_S after
        lo = min(max(0, at - frame0), max(0, len(recorded) - span))
        heard = _median_centroid(recorded[lo:lo + span])
        expect = float("nan")
        if k in captured and voices:
            vframe, state = min(voices, key=lambda v: abs(v[0] - (frame0 + lo)))
            mix = np.zeros(span, np.float32)
            for pitch, buf in captured[k][1].items():
                if buf is not None and pitch in state:
                    pos, gain = state[pitch]
                    mix += gain * _read(buf, pos + (frame0 + lo - vframe), span)
            expect = _median_centroid(mix)
        out.append((u, heard, expect))
    return out


def _finite_or_none(v: float, digits: int = 1):
    return round(float(v), digits) if v is not None and math.isfinite(v) else None


def _correlations(a, b) -> dict:
    """Pearson and Spearman (rank) r of two sequences over their points finite in both; None when undefined."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    good = np.isfinite(a) & np.isfinite(b)
    a, b = a[good], b[good]

    def pearson(x, y):
        return round(float(np.corrcoef(x, y)[0, 1]), 3) if len(x) >= 3 and np.std(x) > 0 and np.std(y) > 0 else None

    def ranks(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for value in np.unique(x):  # ties share their mean rank
            r[x == value] = r[x == value].mean()
        return r

    return {"pearson_r": pearson(a, b), "spearman_r": pearson(ranks(a), ranks(b)) if len(a) else None,
            "points": int(good.sum())}


def _reference(source, ends, held, result: dict) -> dict:
    """The exact notes' centroid at each reference point (generated offline, mixed as the voices would, median over
    the held part they loop), and how well each drag's recorded centroid followed it and the previews."""
    exact = [_chord_centroid(source, _path(k / (_REF_POINTS - 1), ends), held) for k in range(_REF_POINTS)]
    good = [c for c in exact if math.isfinite(c)]
    out = {"exact_centroid_hz": [_finite_or_none(c) for c in exact],
           "exact_range_hz": [_finite_or_none(min(good)), _finite_or_none(max(good))] if good else None,
           "exact_range_ratio": round(max(good) / min(good), 2) if good and min(good) > 0 else None}
    for phase in ("fresh", "again"):
        track = result.get(phase, {}).pop("_centroid_track", [])
        if not track:
            continue
        heard = [c for _, c, _ in track]
        expect = [e for _, _, e in track]
        ref = [exact[int(round(u * (_REF_POINTS - 1)))] for u, _, _ in track]
        vs_exact = _correlations(heard, ref)
        vs_preview = _correlations(heard, expect)
        both = [(h, e) for h, e in zip(heard, expect) if math.isfinite(h) and math.isfinite(e) and e > 0]
        # robust where the previews barely change (r is then noise): one point the worker left at once (an exact
        # note made mid-drag when the moves stalled, replaced by the next preview) cannot spoil it
        vs_preview["median_error_pct"] = round(float(np.median([100 * abs(h - e) / e for h, e in both])), 1) \
            if both else None
        result[phase]["centroid_follow"] = {
            "recorded_hz": [_finite_or_none(c) for c in heard],
            "pearson_r": vs_exact["pearson_r"], "spearman_r": vs_exact["spearman_r"],
            "expected_hz": [_finite_or_none(c) for c in expect],
            "vs_expected": vs_preview,
            "expected_vs_exact": _correlations(expect, ref),
        }
    return out
