"""``synth bench engine``: the real-time engine measured through JACK, per period size.

For each period size (256, 512, 1024 frames at 48 kHz) a child process runs the engine on a JACK server and
measures, from a JACK recorder listening to the engine's output ports:

1. MIDI-to-audio latency (median, p95): a virtual keyboard sends note-ons at random phases of the period, stamped
   with JACK frame time; latency is the time until the note's first sample reaches the recorder. (This is the path
   through the engine to its output port; a sound card adds its own output latency, reported as
   ``output_latency_ms`` by PortAudio.) Played from the demo source, whose notes have an instant attack.
2. Pad move to audible change from the prerendered grid: a held demo note, a far pad move, and the time until the
   note's spectrum is half-way to the new timbre in the recording. The demo source simulates a model cost
   (``--demo-cost`` seconds per note) so the grid, not the exact point, answers first; the time to the exact point
   for the held note under that simulated cost is reported beside it.
3. Stress with the model (``--bundle`` when it exists, else a tiny random bundle through the real Synthesizer):
   time to the exact point for one held note (real model cost), then 32 voices held while the worker regenerates
   the whole range at a new point as soon as it finishes the previous one, for ``--seconds``: underruns (PortAudio
   underflows and JACK xruns the recorder saw), callback load (mean, max), regenerations done.

Servers: by default the bench starts its own JACK server per period (dummy backend, realtime, under a private server
name, so a JACK server that other programs use is never touched). ``--server running`` instead measures on the
already running default server, at its own period only, and says so. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from synth.resources import default_bundle

RATE = 48000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the final JSON line")
    parser.add_argument("--periods", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--seconds", type=float, default=30.0, help="stress duration per period (target: 60)")
    parser.add_argument("--trials", type=int, default=30, help="note-ons for the latency statistics")
    parser.add_argument("--bundle", default=str(default_bundle()), help="model for the stress part (tiny if missing)")
    parser.add_argument("--demo-cost", type=float, default=0.25, help="simulated seconds per note (grid part)")
    parser.add_argument("--server", choices=("private", "running"), default="private")
    parser.add_argument("--child-period", type=int, default=None, help=argparse.SUPPRESS)


# ------------------------------------------------------------------------------------------------- parent side
def _jack_period_of_running_server() -> int | None:
    try:
        out = subprocess.run(["jack_bufsize"], capture_output=True, text=True, timeout=5).stdout
        return int(out.strip().split()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


def _start_private_server(period: int, name: str) -> subprocess.Popen:
    log = open(Path(tempfile.gettempdir()) / f"{name}.log", "w")
    proc = subprocess.Popen(["jackd", "-n", name, "-R", "-d", "dummy", "-r", str(RATE), "-p", str(period)],
                            stdout=log, stderr=subprocess.STDOUT)
    env = dict(os.environ, JACK_DEFAULT_SERVER=name)
    for _ in range(100):
        if subprocess.run(["jack_lsp"], env=env, capture_output=True).returncode == 0:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"jackd -n {name} did not start (see {log.name})")


def _stop_private_server(server: subprocess.Popen) -> None:
    """Stop a server from ``_start_private_server``: terminate, and kill it if it has not gone within 10 s."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def _run_child(args: argparse.Namespace, period: int, env: dict) -> dict:
    cmd = [sys.executable, "-m", "synth", "bench", "engine", "--child-period", str(period), "--seconds",
           str(args.seconds), "--trials", str(args.trials), "--bundle", args.bundle, "--demo-cost",
           str(args.demo_cost)]
    # The child prints its partial result after each phase: if it hangs (a JACK client the server zombified can
    # block PortAudio's stop), what it measured so far is still reported.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=args.seconds + 240)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        timed_out = True
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
    if not lines:
        return {"period": period, "error": (err or out)[-2000:], "timed_out": timed_out}
    result = json.loads(lines[-1])
    if timed_out or proc.returncode != 0:
        result["incomplete"] = "child timed out" if timed_out else f"child exit {proc.returncode}: {err[-500:]}"
    return result


def run(args: argparse.Namespace) -> int:
    if args.child_period:
        print(json.dumps(_child(args)))
        return 0
    if shutil.which("jackd") is None:
        print("bench engine: jackd not found (Debian: apt-get install jackd2)", file=sys.stderr)
        return 2
    results = []
    note = ""
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    if args.server == "running":
        period = _jack_period_of_running_server()
        if period is None:
            print("bench engine: --server running, but no JACK server answers", file=sys.stderr)
            return 2
        note = f"measured on the running JACK server only, at its period of {period} frames"
        env.pop("JACK_DEFAULT_SERVER", None)
        results.append(_run_child(args, period, env))
    else:
        note = "private JACK servers (dummy backend, -R), one per period, started and stopped by the bench"
        for period in args.periods:
            name = f"pgesam-bench-{os.getpid()}-{period}"
            server = _start_private_server(period, name)
            try:
                if not args.json:
                    print(f"bench engine: period {period} ...", file=sys.stderr)
                results.append(_run_child(args, period, dict(env, JACK_DEFAULT_SERVER=name)))
            finally:
                _stop_private_server(server)
    summary = {"bench": "engine", "sample_rate": RATE, "servers": note, "cpu_count": os.cpu_count(),
               "load_avg_1min": round(os.getloadavg()[0], 2), "periods": results}
    if not args.json:
        for r in results:
            print(json.dumps(r, indent=1), file=sys.stderr)
    print(json.dumps(summary))
    return 0


# ------------------------------------------------------------------------------------------------- child side
class _Recorder:
    """JACK client recording two inputs; blocks are kept with their JACK frame time (gaps = xruns)."""

    def __init__(self, name: str) -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.ports = [self.client.inports.register(f"in_{i}") for i in range(2)]
        self.blocks: list[tuple[int, np.ndarray]] = []
        self.xruns = 0
        self.recording = False
        self._lock = threading.Lock()
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    def _xrun(self, _delay) -> None:
        self.xruns += 1

    def _process(self, frames: int) -> None:
        if self.recording:
            block = self.ports[0].get_array().copy()
            with self._lock:
                self.blocks.append((self.client.last_frame_time, block))

    def connect(self, sources: list[str]) -> None:
        for src, port in zip(sources, self.ports):
            self.client.connect(src, port)

    @property
    def now(self) -> int:
        return int(self.client.frame_time)

    def audio(self, start: int, end: int) -> np.ndarray:
        out = np.zeros(max(0, end - start), np.float32)
        with self._lock:
            blocks = list(self.blocks)
        for first, b in blocks:
            lo, hi = max(first, start), min(first + len(b), end)
            if lo < hi:
                out[lo - start:hi - start] = b[lo - first:hi - first]
        return out

    def trim(self, keep_after: int) -> None:
        with self._lock:
            self.blocks = [(f, b) for f, b in self.blocks if f + len(b) > keep_after]

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def _output_ports_of_new_client(before: set[str]) -> list[str]:
    import jack

    c = jack.Client("bench-portwatch", no_start_server=True)
    try:
        for _ in range(500):
            names = sorted(p.name for p in c.get_ports(is_output=True, is_audio=True))
            fresh = [n for n in names if n not in before and n.startswith("PortAudio")]
            if fresh:
                return fresh[:2]
            time.sleep(0.02)
        raise TimeoutError("the engine's PortAudio output ports did not appear")
    finally:
        c.close()


def _all_output_ports() -> set[str]:
    import jack

    c = jack.Client("bench-portlist", no_start_server=True)
    try:
        return {p.name for p in c.get_ports(is_output=True, is_audio=True)}
    finally:
        c.close()


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(pred())


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def _open_engine(source, period: int, grid_root: Path | None, rec: _Recorder):
    from synth.engine.engine import Engine

    before = _all_output_ports()
    engine = Engine(source, sample_rate=RATE, block_size=period, device="jack", midi_client=f"pgesam-bench",
                    grid_root=grid_root, use_grid=grid_root is not None)
    engine.update_settings(release=0.02)
    engine.start()
    rec.connect(_output_ports_of_new_client(before))
    return engine


def _keyboard(port: str):
    import rtmidi

    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench-kbd")
    for _ in range(300):
        ports = out.get_ports()
        if port in ports:
            out.open_port(ports.index(port))
            return out
        time.sleep(0.02)
    raise TimeoutError(f"MIDI port {port} did not appear")


def _brightness(x: np.ndarray, f0: float, win: int = 480, hop: int = 120) -> np.ndarray:
    """Per-window share of energy above 1.5 x f0 (the demo timbre's brightness)."""
    n = (len(x) - win) // hop
    if n <= 0:
        return np.zeros(0)
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(win), 4096, axis=1)) ** 2
    cut = int(1.5 * f0 / RATE * 4096)
    return spec[:, cut:].sum(axis=1) / np.maximum(spec.sum(axis=1), 1e-12)


def _child(args: argparse.Namespace) -> dict:
    from synth.engine.midi_io import jack_server_running

    period = int(args.child_period)
    if not jack_server_running():
        return {"period": period, "error": "no JACK server"}
    import sounddevice  # noqa: F401  (imported only now that the server runs: PortAudio scans at import)

    from synth.engine.note_cache import GridStore
    from synth.engine.prerender_cli import prerender
    from synth.engine.sources import SineNoteSource

    result: dict = {"period": period, "period_ms": round(1000 * period / RATE, 2)}
    rec = _Recorder("bench-rec")
    tmp = Path(tempfile.mkdtemp(prefix="pgesam-bench-"))
    try:
        # ---------------------------------------------------------------- 1 + 2: latency and grid, demo source
        demo = SineNoteSource(pitch_range=(48, 72), delay_per_note=args.demo_cost)
        prerender(SineNoteSource(pitch_range=(48, 72)), GridStore(demo.hash, tmp), 5, progress=False)
        engine = _open_engine(demo, period, tmp, rec)
        try:
            engine.set_point(-1.0, -1.0)  # a grid point: every pitch is there at once, exact ones follow
            _wait(engine.worker.idle, 60)
            kbd = _keyboard(engine.midi_port_name)
            time.sleep(0.5)
            rec.recording = True
            time.sleep(0.3)
            engine.meters()
            engine.audio.max_load = 0.0  # start-up (imports, first generation) is not the steady state measured
            xr0 = engine.xruns
            lat = []
            rng = np.random.default_rng(0)
            for k in range(args.trials):
                time.sleep(float(rng.uniform(0, period / RATE)))  # random phase within the period
                t0 = rec.now
                kbd.send_message([0x90, 60 + k % 12, 100])
                time.sleep(0.12)
                kbd.send_message([0x80, 60 + k % 12, 0])
                time.sleep(0.08)
                heard = rec.audio(t0, t0 + int(0.12 * RATE))
                loud = np.flatnonzero(np.abs(heard) > 1e-3)
                if len(loud):
                    lat.append(1000.0 * loud[0] / RATE)
                rec.trim(rec.now - RATE)
            m = engine.meters()
            result["latency_ms"] = {"median": _pct(lat, 50), "p95": _pct(lat, 95), "max": _pct(lat, 100),
                                    "trials": args.trials, "heard": len(lat),
                                    "target_median": round(1000 * period / RATE + 3, 2)}
            result["output_latency_ms"] = round(m["latency_ms"], 2)
            result["idle_callback_load"] = {"last": round(m["load"], 4), "max": round(m["max_load"], 4)}
            result["latency_phase_underflows"] = engine.xruns - xr0
            # pad move with a held note: grid answer (acoustic) and exact answer (worker)
            grid_ms, exact_ms = [], []
            for k, (src_pt, dst_pt) in enumerate((((-1, -1), (0.95, 0.95)), ((0.95, 0.95), (-0.95, -0.95)),
                                                  ((-0.95, -0.95), (1, 1)))):
                kbd.send_message([0x90, 57, 100])
                _wait(lambda: engine.slots[57].tag[1:] == ("exact",), 10)
                time.sleep(0.3)
                t_move = rec.now
                engine.set_point(*dst_pt)
                _wait(lambda: engine.worker.exact_latency is not None, 10)
                exact_ms.append(1000 * (engine.worker.exact_latency or float("nan")))
                time.sleep(0.3)
                seg = rec.audio(t_move - RATE // 5, t_move + int(0.5 * RATE))
                b = _brightness(seg, 220.0)
                if len(b) > 20:
                    before, after = float(np.median(b[:20])), float(np.median(b[-20:]))
                    mid = before + 0.5 * (after - before)
                    crossed = np.flatnonzero((b - mid) * np.sign(after - before) > 0)
                    crossed = crossed[crossed * 120 + 240 > RATE // 5]
                    if len(crossed) and abs(after - before) > 0.02:
                        grid_ms.append(1000 * ((crossed[0] * 120 + 240) - RATE // 5) / RATE)
                kbd.send_message([0x80, 57, 0])
                time.sleep(0.1)
            result["pad_to_audible_grid_ms"] = {"median": _pct(grid_ms, 50), "max": _pct(grid_ms, 100),
                                                "moves": len(grid_ms), "target": 50}
            result["pad_to_exact_ms_demo_simulated_cost"] = {"median": _pct(exact_ms, 50),
                                                             "cost_per_note_s": args.demo_cost}
            print(json.dumps(result), flush=True)
            kbd.close_port()
            del kbd
        finally:
            rec.recording = False
            engine.stop()
            time.sleep(0.3)

        # ---------------------------------------------------------------- 3: stress with the model
        source, what = _model_source(args.bundle, tmp)
        result["model"] = what
        engine = _open_engine(source, period, None, rec)
        try:
            _wait(engine.worker.idle, 120)
            lo, hi = source.pitch_range
            exact = []
            for k in range(4):
                engine.note_on(lo + (hi - lo) // 2)
                time.sleep(0.1)
                engine.set_point(0.3 * (-1) ** k, 0.2 * k - 0.3)
                _wait(lambda: engine.worker.exact_latency is not None, 30)
                exact.append(1000 * (engine.worker.exact_latency or float("nan")))
                engine.note_off(lo + (hi - lo) // 2)
                _wait(engine.worker.idle, 60)
            result["pad_to_exact_ms_model_held_note"] = {"median": _pct(exact, 50), "max": _pct(exact, 100),
                                                         "target": 1000}
            print(json.dumps(result), flush=True)
            pitches = [lo - 6 + int(round(i * (hi - lo + 12) / 31)) for i in range(32)]
            for p in pitches:
                engine.note_on(p, 90)
            engine.sustain(True)
            time.sleep(1.0)
            engine.meters()
            audio = engine.audio
            # baseline: the same 32 voices with the worker idle, to tell generation-induced underruns from the
            # machine's own (other processes competing for the 2 cores)
            base = max(5.0, args.seconds / 4)
            xr0, jx0, cb0 = audio.xruns, rec.xruns, audio.callbacks
            audio.max_load = 0.0
            time.sleep(base)
            result["baseline_no_generation"] = {"seconds": base, "underflows": audio.xruns - xr0,
                                                "jack_xruns": rec.xruns - jx0, "max_load": round(audio.max_load, 4),
                                                "load_avg_1min": round(os.getloadavg()[0], 2)}
            audio.max_load = 0.0
            xr0, jx0, cb0 = audio.xruns, rec.xruns, audio.callbacks
            loads = []
            regen = 0
            t_end = time.monotonic() + args.seconds
            rng = np.random.default_rng(1)
            while time.monotonic() < t_end:
                engine.set_point(*rng.uniform(-1, 1, 2))
                regen += 1
                while not engine.worker.idle() and time.monotonic() < t_end:
                    time.sleep(0.01)
                    loads.append(audio.load)
                if engine.mixer.active_voices < 32:  # keep 32 voices sounding (long holds loop)
                    for p in pitches:
                        engine.note_on(p, 90)
            result["stress"] = {
                "seconds": args.seconds, "voices": engine.mixer.active_voices,
                "regenerations": regen, "notes_generated": engine.worker.generated_notes,
                "underflows": audio.xruns - xr0, "jack_xruns": rec.xruns - jx0,
                "callbacks": audio.callbacks - cb0,
                "callback_load": {"mean": round(float(np.mean(loads)), 4) if loads else None,
                                  "p99": _pct(loads, 99), "max": round(audio.max_load, 4)},
                "worker_errors": engine.worker.errors[-3:], "load_avg_1min": round(os.getloadavg()[0], 2)}
            print(json.dumps(result), flush=True)
        finally:
            engine.stop()
    finally:
        rec.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _model_source(bundle: str, tmp: Path):
    from synth.engine.bundle_source import open_bundle
    from synth.model.bundle import build_tiny_bundle

    if (Path(bundle) / "bundle.json").exists():
        path, what = Path(bundle), f"bundle {bundle}"
    else:
        path, what = build_tiny_bundle(tmp / "tiny"), "tiny random bundle (no models/default yet)"
    return open_bundle(path, disk_cache=False, separate_process=False), what
