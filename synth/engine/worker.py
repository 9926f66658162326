"""The generation worker: keeps the 128 pitch slots filled with buffers for the current timbre point.

Two threads, both fed by one coalescing request (``request(x, y)`` only stores the newest point: a pad drag of 200
moves costs one generation, not 200):

- the grid thread answers a move at once: it loads the nearest prerendered grid point (``note_cache.GridStore``,
  memory-mapped) and swaps its notes into the slots, held pitches first, so the change is audible within a few
  milliseconds even when the model needs seconds;
- the generation thread computes the exact point with the ``NoteSource`` (the model; CUDA when the source uses it),
  in small batches ordered by urgency: pitches held right now, then recently played ones, then the rest of the
  model's range. Priorities are re-read before each batch, so a key pressed mid-way jumps the queue. A newer point
  abandons the rest of the old one.

Hand-over to the audio thread is a single reference store ``slot.buffer = new`` (atomic under the GIL); voices on
that slot crossfade to the new buffer at their next block. The worker's own lock only orders the two worker
threads (an exact buffer must never be replaced by a grid approximation of the same point); the audio callback
never takes it. Pitches outside the model's range share the slot buffer of the nearest generated pitch (the voice
re-pitches it).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Sequence

import numpy as np

from synth.engine.buffers import BufferSlot
from synth.engine.note_cache import GridStore, NoteCache
from synth.engine.sources import NoteSource, source_hash

Priority = Callable[[], tuple[Sequence[int], Sequence[int]]]  # -> (held pitches, recently played pitches)


class GenerationWorker:
    def __init__(self, source: NoteSource, cache: NoteCache, slots: list[BufferSlot], *,
                 grid: GridStore | None = None, priority: Priority | None = None, batch_size: int = 4,
                 velocity: int = 100) -> None:
        self.source = source
        self.cache = cache
        self.slots = slots
        self.grid = grid if grid is not None and grid.spec is not None else None
        self.priority = priority or (lambda: ((), ()))
        self.batch_size = max(1, int(batch_size))
        self.velocity = int(velocity)
        self.bundle = source_hash(source)
        lo, hi = source.pitch_range
        self.pitches = list(range(int(lo), int(hi) + 1))
        self._lock = threading.Lock()  # orders slot swaps between the two worker threads only
        self._target: tuple[float, float, int] | None = None
        self._serial = 0
        self._gen_wake = threading.Event()
        self._grid_wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._done: set[int] = set()  # pitches exact for the current serial
        self.generated_notes = 0
        self.errors: list[str] = []  # the latest 20 messages, each naming the source
        self.error_count = 0  # every failure so far (the list is capped; readers compare counts)
        self._label = str(getattr(source, "label", None) or type(source).__name__)
        # timings of the latest request (seconds after request(); None until reached)
        self.requested_at = 0.0
        self.grid_latency: float | None = None  # first held (or first) pitch swapped from the grid
        self.exact_latency: float | None = None  # every held pitch exact
        self.complete_latency: float | None = None  # whole range exact

    # --------------------------------------------------------------------------------------------- control
    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for name, fn in (("gen-worker", self._gen_loop), ("grid-worker", self._grid_loop)):
            t = threading.Thread(target=fn, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._gen_wake.set()
        self._grid_wake.set()
        for t in self._threads:
            t.join(timeout=10.0)
        self._threads = []

    def request(self, x: float, y: float) -> None:
        """Ask for the slots to follow point (x, y). Returns at once; older pending points are dropped."""
        with self._lock:
            self._serial += 1
            self._target = (float(x), float(y), self._serial)
            self._done = set()
            self.requested_at = time.perf_counter()
            self.grid_latency = self.exact_latency = self.complete_latency = None
        self._grid_wake.set()
        self._gen_wake.set()

    def poke(self) -> None:
        """A key went down whose slot may be empty: re-read priorities now."""
        self._gen_wake.set()

    @property
    def target(self) -> tuple[float, float] | None:
        t = self._target
        return None if t is None else (t[0], t[1])

    def progress(self) -> tuple[int, int]:
        """(pitches exact for the current point, pitches in the model's range)."""
        return len(self._done), len(self.pitches)

    def idle(self) -> bool:
        return self._target is not None and len(self._done) == len(self.pitches)

    # --------------------------------------------------------------------------------------------- helpers
    def _in_range(self, pitch: int) -> int:
        return min(max(int(pitch), self.pitches[0]), self.pitches[-1])

    def _slot_pitches(self, pitch: int) -> range:
        """MIDI pitches whose slot takes the buffer generated for ``pitch`` (edges cover everything beyond)."""
        lo = 0 if pitch == self.pitches[0] else pitch
        hi = 127 if pitch == self.pitches[-1] else pitch
        return range(lo, hi + 1)

    def _order(self) -> tuple[list[int], list[int]]:
        """(held pitches, everything in urgency order) mapped into the model's range, without duplicates."""
        held, recent = self.priority()
        held_in = list(dict.fromkeys(self._in_range(p) for p in held))
        order = list(held_in)
        for p in recent:
            q = self._in_range(p)
            if q not in order:
                order.append(q)
        anchor = order[0] if order else (self.pitches[0] + self.pitches[-1]) // 2
        for p in sorted(self.pitches, key=lambda p: (abs(p - anchor), p)):
            if p not in order:
                order.append(p)
        return held_in, order

    def _swap(self, pitch: int, buffer, serial: int, kind: str) -> bool:
        with self._lock:
            if serial != self._serial:
                return False
            for q in self._slot_pitches(pitch):
                slot = self.slots[q]
                if kind == "grid" and slot.tag == (serial, "exact"):
                    continue
                slot.buffer = buffer  # the atomic hand-over to the audio thread
                slot.tag = (serial, kind)
            if kind == "exact":
                self._done.add(pitch)
            return True

    # --------------------------------------------------------------------------------------------- threads
    def _grid_loop(self) -> None:
        while not self._stop.is_set():
            self._grid_wake.wait()
            self._grid_wake.clear()
            target = self._target
            if self._stop.is_set() or target is None or self.grid is None:
                continue
            x, y, serial = target
            spec = self.grid.spec
            i, j = spec.nearest(x, y)
            data = self.grid.load(i, j)
            if data is None:
                continue
            gx, gy = spec.point(i, j)
            rows = {p: r for r, p in enumerate(spec.pitches)}
            held, order = self._order()
            for p in order:
                if self._target is None or self._target[2] != serial or self._stop.is_set():
                    break
                if p in self._done or p not in rows:
                    continue
                key = self.cache.key(self.bundle + ":grid", gx, gy, p, spec.velocity)
                buf = self.cache.get(key)
                if buf is None:
                    buf = self.cache.insert(key, np.asarray(data[rows[p]], dtype=np.float32), spec.sample_rate)
                if self._swap(p, buf, serial, "grid") and self.grid_latency is None:
                    self.grid_latency = time.perf_counter() - self.requested_at

    def _gen_loop(self) -> None:
        while not self._stop.is_set():
            self._gen_wake.wait()
            self._gen_wake.clear()
            target = self._target
            if self._stop.is_set() or target is None:
                continue
            x, y, serial = target
            while not self._stop.is_set() and self._target is not None and self._target[2] == serial:
                held, order = self._order()
                todo = [p for p in order if p not in self._done]
                if not todo:
                    if self.complete_latency is None:
                        self.complete_latency = time.perf_counter() - self.requested_at
                    break
                held_todo = [p for p in held if p not in self._done]
                batch = (held_todo or todo)[: self.batch_size]
                try:
                    self._generate(x, y, serial, batch)
                except Exception as exc:  # keep the instrument playing with what it has; report the error
                    self.errors.append(f"{self._label}: {type(exc).__name__}: {exc}")
                    del self.errors[:-20]
                    self.error_count += 1
                    time.sleep(0.5)
                    break
                if self.exact_latency is None and all(p in self._done for p in held):
                    self.exact_latency = time.perf_counter() - self.requested_at

    def _generate(self, x: float, y: float, serial: int, batch: list[int]) -> None:
        keys = {p: self.cache.key(self.bundle, x, y, p, self.velocity) for p in batch}
        buffers = {p: self.cache.get(k) for p, k in keys.items()}
        missing = [p for p, b in buffers.items() if b is None]
        if missing:
            audio = np.asarray(self.source.generate((x, y), missing, self.velocity), dtype=np.float32)
            self.generated_notes += len(missing)
            for row, p in enumerate(missing):
                buffers[p] = self.cache.insert(keys[p], audio[row], self.source.sample_rate)
        for p in batch:
            self._swap(p, buffers[p], serial, "exact")
