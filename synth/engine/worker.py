"""The generation worker: keeps the pitch slots of every velocity layer filled with buffers for the current point.

Two threads (three with ``preview``), all fed by one coalescing request (``request(x, y)`` only stores the newest
point: a pad drag of 200 moves costs one generation, not 200):

- the grid thread answers a move at once: it loads the nearest prerendered grid point (``note_cache.GridStore``,
  memory-mapped) and swaps its notes into the slots, held pitches first, so the change is audible within a few
  milliseconds even when the model needs seconds;
- the generation thread computes the exact point with the ``NoteSource`` (the model; CUDA when the source uses it),
  in small batches ordered by urgency. The work is every key of the source's ``pitch_range`` at every velocity layer
  (``velocity_layers_of(source)``; one layer for models that ignore velocity), as (pitch, layer) pairs: the pairs
  held right now, then the recently played ones (most recent first), then the whole range around the held and
  played keys (nearest key first) at the layer of the most recently played note, then the other layers, nearest
  that layer first. Priorities are re-read before each batch, so a key pressed mid-way jumps the queue. A batch is
  one ``generate`` call, so it holds one layer: the held pairs of the first held pair's layer, else consecutive
  pairs of one layer from the order. A newer point abandons the rest of the old one, every layer of it.
- the preview thread (``preview=True`` and a source with ``preview()``; issue 19: live morphing with nothing
  prepared) follows a drag: at each newest point it asks the source for a fast approximation of the held notes only
  (the model: the nearest exact notes moved by the VAE decoder's change, decoded by the codec, tens of ms for four
  notes) and swaps them in. While previews answer, the generation thread waits until the point has rested for
  ``settle`` seconds, so it does not spend the CPU on exact notes for points the finger has already left. A preview
  computed for an older point still replaces anything older than it (it is nearer the finger than what plays),
  never what a newer point put there. When the source has ``preview_tail`` and the held slots already play a note,
  only the part from just before the sustain loop is made and spliced onto the start of what the slot plays
  (``buffers.splice_note_buffer``): held voices play from the loop on, and the note's first 0.8 s were 30% of a
  preview's decode. Between rounds, when the source has ``refine_preview`` (the flow sampler), the thread runs one
  piece of a refined preview: the flow sampler's notes in a few steps at the newest point, from the same seeded
  noise as the exact notes, spread over several rounds so each interval between updates grows by one piece only.
  A finished refinement becomes the source's refined anchor: later previews are moved from it (near the finger)
  instead of from the exact notes where the drag started, whose moved frames hardly change brightness on the flow
  bundle. One made for the point the finger rests on is swapped in itself (kind "refined": above a preview of that
  point, below its exact note); refinements follow one another, each started at the newest point, so the anchor
  never goes back to an older point.

Stand-ins: until a layer's own note of a key is generated, its slot plays the nearest generated layer's note of
that key (the same audio, shared, at the level ratio of the two layers: ``buffers.stand_in``), so a soft note
struck before its layer is ready is not silent, and after a pad move every layer follows the new point with the
first layer generated. Rank of what a slot holds for the current point: its own exact note, then a stand-in from
an exact note (nearest layer first), then the grid (its own layer before stand-ins of it); an older point's
buffer is always replaced.

Hand-over to the audio thread is a single reference store ``slot.buffer = new`` (atomic under the GIL); voices on
that slot crossfade to the new buffer at their next block. The worker's own lock only orders the two worker
threads (an exact buffer must never be replaced by a grid approximation of the same point); the audio callback
never takes it. Pitches outside the model's range share the slot buffer of the nearest generated pitch (the voice
re-pitches it).

Priority callables return ``(held, recent)``: items are ``(pitch, velocity)`` pairs, or plain pitches meaning the
default layer (the one nearest ``velocity``, 100 by default).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Sequence, Union

import numpy as np

from synth.engine.buffers import SPLICE_MARGIN_S, SPLICE_SEAM_S, BufferSlot, loop_region, stand_in
from synth.engine.note_cache import GridStore, NoteCache
from synth.engine.sources import NoteSource, source_hash, velocity_layers_of
from synth.engine.velocity import layer_index_table, nearest_layer

PriorityItem = Union[int, tuple[int, int]]  # a pitch (default layer) or (pitch, velocity)
Priority = Callable[[], tuple[Sequence[PriorityItem], Sequence[PriorityItem]]]  # -> (held, recently played)
Item = tuple[int, int]  # (pitch in the model's range, layer index)
# What a slot holds for the current point, best first (see the module docstring).
_RANK = {"exact": 3, "stand-in": 2, "refined": 1.75, "preview": 1.5, "grid": 1}
MAX_PREVIEW_NOTES = 8  # held (pitch, layer) pairs a preview follows; more held keys wait for their exact notes
# During a drag a piece of a refined preview runs after a preview round only when that round plus a piece (the least
# of the latest) took at most this long, so the interval between updates keeps to its target (p95 <= 50 ms with 4
# held notes). bench morph on the 2-core CPU under load (rounds 19-31 ms at p50, a piece 5-10 ms), medians of 3 runs:
# a piece after every round: interval p95 45-68 ms (4 configurations, mostly above 50); 40 ms: 46-57; 35 ms: 43-47
# (6 runs, every one <= 48), fresh-drag r 0.74; 30 ms: the pieces hardly ran in the fresh drag (r 0.31). At rest
# every piece runs.
REFINE_BUDGET_S = 0.035


class GenerationWorker:
    def __init__(self, source: NoteSource, cache: NoteCache, slots: Sequence, *,
                 grid: GridStore | None = None, priority: Priority | None = None, batch_size: int = 4,
                 velocity: int = 100, preview: bool = False, settle: float = 0.15) -> None:
        """``slots``: the 128 slots of one layer (the default one; the worker makes the other layers' slots), or
        one list of 128 per layer of the source (``layer_slots``). ``preview``: follow drags with the source's
        ``preview()`` (when it has one), and start exact generation only after the point rested ``settle`` s."""
        self.source = source
        self.cache = cache
        self.grid = grid if grid is not None and grid.spec is not None else None
        self.priority = priority or (lambda: ((), ()))
        self.batch_size = max(1, int(batch_size))
        self.velocity = int(velocity)
        self.bundle = source_hash(source)
        self.layers = velocity_layers_of(source)
        self._layer_of = layer_index_table(self.layers)
        self.default_layer = self.layers.index(nearest_layer(self.velocity, self.layers))
        self.layer_slots = self._layer_slots(slots)
        self.slots = self.layer_slots[self.default_layer]
        lo, hi = source.pitch_range
        self.pitches = list(range(int(lo), int(hi) + 1))
        self._lock = threading.Lock()  # orders slot swaps between the two worker threads only
        self._target: tuple[float, float, int] | None = None
        self._serial = 0
        self._gen_wake = threading.Event()
        self._grid_wake = threading.Event()
        self._preview_fn = getattr(source, "preview", None) if preview else None
        # the preview from just before the sustain loop on, spliced onto what the slot plays (issue 19)
        self._preview_tail_fn = getattr(source, "preview_tail", None) if self._preview_fn is not None else None
        # the source's refined previews: a few flow steps, one per preview round (None: it has none)
        self._refine_fn = getattr(source, "refine_preview", None) if self._preview_fn is not None else None
        loop_start, _, crossfade = loop_region(float(getattr(cache, "held_seconds", 3.0)))
        self.preview_start_s = loop_start - crossfade - SPLICE_MARGIN_S - SPLICE_SEAM_S - 0.01
        self.settle = max(0.0, float(settle)) if self._preview_fn is not None else 0.0
        self._preview_wake = threading.Event()
        # (started, finished, serial, notes) of each preview swap round, newest last: what ``bench morph`` reads
        self.preview_log: deque[tuple[float, float, int, int]] = deque(maxlen=4096)
        self.preview_notes = 0
        self.refine_steps = 0  # refinement steps run (``refine_preview`` calls)
        # (finished, serial of the point it was made for) of each refinement finished, newest last
        self.refine_log: deque[tuple[float, int]] = deque(maxlen=4096)
        self.refined_notes = 0  # refined previews swapped in (at the point they were made for)
        self.refine_skips = 0  # pieces left out after a round that used the time (``REFINE_BUDGET_S``)
        self.refine_budget_s = REFINE_BUDGET_S
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._done: set[Item] = set()  # (pitch, layer index) exact for the current serial
        self._order_memo: tuple[tuple, tuple[list[Item], list[Item]]] | None = None
        self.generated_notes = 0
        self.errors: list[str] = []  # the latest 20 messages, each naming the source
        self.error_count = 0  # every failure so far (the list is capped; readers compare counts)
        self._label = str(getattr(source, "label", None) or type(source).__name__)
        # timings of the latest request (seconds after request(); None until reached)
        self.requested_at = 0.0
        self.grid_latency: float | None = None  # first held (or first) pitch swapped from the grid
        self.exact_latency: float | None = None  # every held (pitch, layer) exact
        self.complete_latency: float | None = None  # whole range exact, every layer

    def _layer_slots(self, slots: Sequence) -> list[list[BufferSlot]]:
        if slots and not isinstance(slots[0], BufferSlot):  # one list per layer
            if len(slots) != len(self.layers) or any(len(s) != 128 for s in slots):
                raise ValueError(f"need {len(self.layers)} lists of 128 slots (layers {self.layers})")
            return [list(s) if not isinstance(s, list) else s for s in slots]
        if len(slots) != 128:
            raise ValueError(f"need 128 slots, got {len(slots)}")
        own = slots if isinstance(slots, list) else list(slots)  # the caller's list itself: it sees every swap
        return [own if i == self.default_layer else [BufferSlot() for _ in range(128)]
                for i in range(len(self.layers))]

    # --------------------------------------------------------------------------------------------- control
    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        loops = [("gen-worker", self._gen_loop), ("grid-worker", self._grid_loop)]
        if self._preview_fn is not None:
            loops.append(("preview-worker", self._preview_loop))
        for name, fn in loops:
            t = threading.Thread(target=fn, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._gen_wake.set()
        self._grid_wake.set()
        self._preview_wake.set()
        for t in self._threads:
            t.join(timeout=10.0)
        self._threads = []

    @property
    def serial(self) -> int:
        """The number of the latest requested point (slot tags carry the serial of the point they were made for)."""
        return self._serial

    @property
    def previews_enabled(self) -> bool:
        """Drags are followed with the source's ``preview`` (``preview=True`` and a source that has one)."""
        return self._preview_fn is not None

    def threads_alive(self) -> bool:
        """Every thread ``start()`` started still runs (False before ``start()``)."""
        threads = list(self._threads)
        return bool(threads) and all(t.is_alive() for t in threads)

    def request(self, x: float, y: float) -> None:
        """Ask for the slots to follow point (x, y). Returns at once; older pending points are dropped."""
        with self._lock:
            self._serial += 1
            self._target = (float(x), float(y), self._serial)
            self._done = set()
            self.requested_at = time.perf_counter()
            self.grid_latency = self.exact_latency = self.complete_latency = None
        self._grid_wake.set()
        self._preview_wake.set()
        self._gen_wake.set()

    def poke(self) -> None:
        """A key went down whose slot may be empty: re-read priorities now."""
        self._gen_wake.set()

    @property
    def target(self) -> tuple[float, float] | None:
        t = self._target
        return None if t is None else (t[0], t[1])

    def progress(self) -> tuple[int, int]:
        """(notes exact for the current point, notes in the model's range times its velocity layers)."""
        return len(self._done), len(self.pitches) * len(self.layers)

    def previewing(self, within: float = 0.5) -> bool:
        """Whether held notes got a preview in the last ``within`` seconds (the pad is being dragged)."""
        log = self.preview_log
        try:
            return time.perf_counter() - log[-1][1] < within
        except IndexError:
            return False

    def idle(self) -> bool:
        return self._target is not None and len(self._done) == len(self.pitches) * len(self.layers)

    # --------------------------------------------------------------------------------------------- helpers
    def _in_range(self, pitch: int) -> int:
        return min(max(int(pitch), self.pitches[0]), self.pitches[-1])

    def _slot_pitches(self, pitch: int) -> range:
        """MIDI pitches whose slot takes the buffer generated for ``pitch`` (edges cover everything beyond)."""
        lo = 0 if pitch == self.pitches[0] else pitch
        hi = 127 if pitch == self.pitches[-1] else pitch
        return range(lo, hi + 1)

    def _item(self, entry: PriorityItem) -> Item:
        if isinstance(entry, (tuple, list)):
            pitch, velocity = entry[0], entry[1]
            return self._in_range(pitch), self._layer_of[min(max(int(velocity), 0), 127)]
        return self._in_range(entry), self.default_layer

    def _order(self) -> tuple[list[Item], list[Item]]:
        """(held pairs, every (pitch, layer) pair in urgency order), in the model's range, without duplicates."""
        held, recent = self.priority()
        memo_key = (tuple(held), tuple(recent))
        memo = self._order_memo
        if memo is not None and memo[0] == memo_key:
            return memo[1]
        held_items = list(dict.fromkeys(self._item(e) for e in held))
        recent_items = [self._item(e) for e in recent]
        order = list(dict.fromkeys(held_items + recent_items))
        anchors = sorted({p for p, _ in order}) or [(self.pitches[0] + self.pitches[-1]) // 2]
        latest = recent_items[0] if recent_items else held_items[0] if held_items else (0, self.default_layer)
        layer_value = self.layers[latest[1]]
        layer_order = sorted(range(len(self.layers)), key=lambda i: (abs(self.layers[i] - layer_value), i))
        pitch_order = sorted(self.pitches, key=lambda p: (min(abs(p - a) for a in anchors), p))
        seen = set(order)
        for layer in layer_order:
            for p in pitch_order:
                if (p, layer) not in seen:
                    order.append((p, layer))
        result = (held_items, order)
        self._order_memo = (memo_key, result)
        return result

    def _replaces(self, tag: tuple, serial: int, kind: str, distance: int) -> bool:
        """Whether a buffer of ``kind`` borrowed from ``distance`` velocity away beats what a slot holds."""
        if len(tag) < 2 or tag[0] != serial:
            return True
        old_distance = tag[2] if len(tag) > 2 else 0
        return (_RANK[kind], -distance) >= (_RANK[tag[1]], -old_distance)

    def swap_in(self, pitch: int, layer: int, buffer, serial: int, kind: str) -> bool:
        """Put ``buffer`` (the note of ``pitch`` at layer index ``layer``, of ``kind`` exact or grid) into its slots
        and stand-ins of it into the other layers' slots where they are better than what those hold. False (nothing
        swapped) when ``serial`` is not the latest point's. Any thread (the worker's own call it)."""
        with self._lock:
            if serial != self._serial:
                return False
            source_value = self.layers[layer]
            for target, slots in enumerate(self.layer_slots):
                distance = abs(self.layers[target] - source_value)
                what = kind if distance == 0 or kind == "grid" else "stand-in"
                tag = (serial, what) if distance == 0 else (serial, what, distance)
                shared = buffer if distance == 0 else None
                for q in self._slot_pitches(pitch):
                    slot = slots[q]
                    if not self._replaces(slot.tag, serial, what, distance):
                        continue
                    if shared is None:  # one stand-in object per (pitch, layer), at the level of its layer
                        shared = stand_in(buffer, self.layers[target] / source_value)
                    slot.buffer = shared  # the atomic hand-over to the audio thread
                    slot.tag = tag
            if kind == "exact":
                self._done.add((pitch, layer))
            return True

    def swap_in_preview(self, pitch: int, layer: int, buffer, serial: int, kind: str = "preview") -> bool:
        """Put a preview of ``serial`` (``kind`` "preview", or "refined": the refined preview made at that point) into
        the slots of (pitch, layer) unless they hold something of a newer point or something as good or better of the
        same point (no stand-ins: a preview is made for held notes, in their own layer). Returns whether it swapped.
        Any thread."""
        swapped = False
        with self._lock:
            for q in self._slot_pitches(pitch):
                slot = self.layer_slots[layer][q]
                tag = slot.tag
                if len(tag) >= 2 and (tag[0] > serial or (tag[0] == serial and _RANK[tag[1]] >= _RANK[kind])):
                    continue
                slot.buffer = buffer  # the atomic hand-over to the audio thread
                slot.tag = (serial, kind)
                swapped = True
        return swapped

    # --------------------------------------------------------------------------------------------- threads
    def _preview_loop(self) -> None:
        """Rounds of previews, each for the newest point, and between them one step of a refinement (the source's
        ``refine_preview``: a few-step flow sample at the newest point when it started). A finished refinement becomes
        the source's refined anchor, so the next rounds move from it instead of from the far exact notes; one made at
        the point the finger rests on is swapped in itself, as kind "refined" (above a preview of the same point). A
        round runs only for a point not yet previewed (or a refined preview not yet swapped in): while the finger
        rests, the thread only steps the refinement."""
        previewed = None  # (serial, kind) of the latest round
        refined = None  # (serial, layer, pitches) of the newest finished refinement
        busy = False  # a refinement is under way, or finished and not swapped in: go on without waiting
        underway = False  # the source's refinement under way is one this loop continues (not left behind)
        # a refinement piece's time: the least of the latest 8 (what it costs when nothing else runs; a mean would be
        # poisoned by pieces that ran beside the exact notes' generation, and a piece left out is never measured)
        pieces: deque[float] = deque(maxlen=8)
        while not self._stop.is_set():
            if not busy:
                self._preview_wake.wait()
            self._preview_wake.clear()
            busy = False
            target = self._target
            if self._stop.is_set() or target is None:
                continue
            x, y, serial = target
            held, _ = self._order()
            done = self._done
            todo = [item for item in held if item not in done][:MAX_PREVIEW_NOTES]
            if not todo:
                underway = False  # a refinement left unfinished (the exact notes came) is not continued later
                continue
            groups = [(layer, [p for p, li in todo if li == layer]) for layer in dict.fromkeys(li for _, li in todo)]
            first = (serial, groups[0][0], tuple(groups[0][1]))
            kind = "refined" if refined == first else "preview"
            round_s = None
            if previewed != (serial, kind):
                # a refined round swaps the refined group only: the others' previews of this point are as they were
                started = time.perf_counter()
                self._preview_rounds(x, y, serial, groups[:1] if kind == "refined" else groups, kind)
                previewed = (serial, kind)
                round_s = time.perf_counter() - started
            if self._refine_fn is None or refined == first or self._stop.is_set():
                continue
            if kind == "preview" and round_s is not None and round_s + min(pieces, default=0.0) > self.refine_budget_s:
                self.refine_skips += 1  # no time left before the next update: the next round first
                busy = True  # (at once if the finger rests)
                continue
            layer, pitches = groups[0]
            velocity = self.velocity if len(self.layers) == 1 else self.layers[layer]
            started = time.perf_counter()
            try:
                out = self._refine_fn((x, y), pitches, velocity, serial, not underway)
            except Exception as exc:  # the cheap previews still follow; report it like a generation error
                underway = False
                self.errors.append(f"{self._label} (refined preview): {type(exc).__name__}: {exc}")
                del self.errors[:-20]
                self.error_count += 1
                self._stop.wait(0.5)
                continue
            if out is None:  # the source has nothing better than its previews
                self._refine_fn = None
                continue
            pieces.append(time.perf_counter() - started)
            tag, finished = out
            self.refine_steps += 1
            underway = not finished
            if finished:
                self.refine_log.append((time.perf_counter(), int(tag)))
                refined = (int(tag), layer, tuple(pitches))
            busy = True

    def _preview_rounds(self, x: float, y: float, serial: int, groups, kind: str) -> None:
        started = time.perf_counter()
        count = 0
        for layer, pitches in groups:
            velocity = self.velocity if len(self.layers) == 1 else self.layers[layer]
            try:
                count += self._preview_round(x, y, serial, layer, pitches, velocity, kind)
            except Exception as exc:  # the exact notes still follow; report it like a generation error
                self.errors.append(f"{self._label} (preview): {type(exc).__name__}: {exc}")
                del self.errors[:-20]
                self.error_count += 1
                self._stop.wait(0.5)
                break
        if count:
            self.preview_notes += count
            if kind == "refined":
                self.refined_notes += count
            self.preview_log.append((started, time.perf_counter(), serial, count))

    def _preview_round(self, x: float, y: float, serial: int, layer: int, pitches: list[int], velocity: int,
                       kind: str = "preview") -> int:
        """Previews of ``pitches`` (one layer) swapped in; returns how many swapped. When the source can (its
        ``preview_tail``) and every slot plays a buffer whose start can stay (``splice_note_buffer``), only the part
        from just before the sustain loop is made: the held voices play there, and the codec's synthesis of the note's
        first 0.8 s (NSynth) is a third of a preview's cost."""
        rate = self.source.sample_rate
        heads = [self.layer_slots[layer][p].buffer for p in pitches]
        usable = all(h is not None and h.level == 1.0 and h.sample_rate == self.cache.sample_rate for h in heads)
        if self._preview_tail_fn is not None and self.preview_start_s > 0 and usable:
            offset, audio = self._preview_tail_fn((x, y), pitches, velocity, self.preview_start_s)
            audio = np.asarray(audio, dtype=np.float32)
        else:
            offset, audio = 0, np.asarray(self._preview_fn((x, y), pitches, velocity), dtype=np.float32)
        count, whole = 0, []
        for row, p in enumerate(pitches):
            if offset > 0:
                buffer = self.cache.prepare_tail(audio[row], offset, rate, p, heads[row])
                if buffer is None:  # this slot's buffer cannot give the start (too short): the whole note below
                    whole.append(p)
                    continue
            else:
                buffer = self.cache.prepare(audio[row], rate, p)  # not kept in the LRU
            count += int(self.swap_in_preview(p, layer, buffer, serial, kind))
        if whole:
            audio = np.asarray(self._preview_fn((x, y), whole, velocity), dtype=np.float32)
            for row, p in enumerate(whole):
                count += int(self.swap_in_preview(p, layer, self.cache.prepare(audio[row], rate, p), serial, kind))
        return count

    def _settled(self) -> bool:
        """Wait (previews on) until the newest point has rested ``settle`` s; False when stopping."""
        while self.settle > 0 and not self._stop.is_set():
            wait = self.settle - (time.perf_counter() - self.requested_at)
            if wait <= 0:
                break
            self._stop.wait(min(wait, 0.05))
        return not self._stop.is_set()

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
            layer = self._layer_of[min(max(int(spec.velocity), 0), 127)]
            _, order = self._order()
            for p in dict.fromkeys(p for p, _ in order):  # each pitch once, most urgent first
                if self._target is None or self._target[2] != serial or self._stop.is_set():
                    break
                if all((p, li) in self._done for li in range(len(self.layers))) or p not in rows:
                    continue
                key = self.cache.layer_key(self.bundle + ":grid", gx, gy, p, spec.velocity)
                buf = self.cache.get(key)
                if buf is None:
                    buf = self.cache.insert(key, np.asarray(data[rows[p]], dtype=np.float32), spec.sample_rate)
                if self.swap_in(p, layer, buf, serial, "grid") and self.grid_latency is None:
                    self.grid_latency = time.perf_counter() - self.requested_at

    def _gen_loop(self) -> None:
        while not self._stop.is_set():
            self._gen_wake.wait()
            self._gen_wake.clear()
            if not self._settled():
                continue
            target = self._target
            if self._stop.is_set() or target is None:
                continue
            x, y, serial = target
            while not self._stop.is_set() and self._target is not None and self._target[2] == serial:
                held, order = self._order()
                done = self._done
                todo = [item for item in order if item not in done]
                if not todo:
                    if self.complete_latency is None:
                        self.complete_latency = time.perf_counter() - self.requested_at
                    break
                held_todo = [item for item in held if item not in done]
                layer, pitches = self._next_batch(held_todo, todo)
                try:
                    self._generate(x, y, serial, layer, pitches)
                except Exception as exc:  # keep the instrument playing with what it has; report the error
                    self.errors.append(f"{self._label}: {type(exc).__name__}: {exc}")
                    del self.errors[:-20]
                    self.error_count += 1
                    time.sleep(0.5)
                    break
                if self.exact_latency is None and all(item in self._done for item in held):
                    self.exact_latency = time.perf_counter() - self.requested_at

    def _next_batch(self, held_todo: list[Item], todo: list[Item]) -> tuple[int, list[int]]:
        """One layer's pitches for the next ``generate`` call: the held ones of the first held pair's layer (all
        equally urgent), else the consecutive run of one layer at the head of the order (strict priority)."""
        if held_todo:
            layer = held_todo[0][1]
            return layer, [p for p, li in held_todo if li == layer][: self.batch_size]
        layer = todo[0][1]
        pitches = []
        for p, li in todo:
            if li != layer or len(pitches) == self.batch_size:
                break
            pitches.append(p)
        return layer, pitches

    def _generate(self, x: float, y: float, serial: int, layer: int, batch: list[int]) -> None:
        value = self.layers[layer]
        # one layer: generate at the worker's velocity, as before layers existed (the source ignores it anyway)
        velocity = self.velocity if len(self.layers) == 1 else value
        keys = {p: self.cache.layer_key(self.bundle, x, y, p, value) for p in batch}
        buffers = {p: self.cache.get(k) for p, k in keys.items()}
        missing = [p for p, b in buffers.items() if b is None]
        if missing:
            audio = np.asarray(self.source.generate((x, y), missing, velocity), dtype=np.float32)
            self.generated_notes += len(missing)
            for row, p in enumerate(missing):
                buffers[p] = self.cache.insert(keys[p], audio[row], self.source.sample_rate)
        for p in batch:
            self.swap_in(p, layer, buffers[p], serial, "exact")
