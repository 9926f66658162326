"""Who holds the interpreter when the audio callback waits for it? A sampling probe for ``synth bench app``.

A daemon thread sleeps 1 ms in a loop; when it wakes more than ``threshold_ms`` late, some other thread held the GIL
(or the machine did not schedule this one). At that moment the holder has just let go, so the line each other thread
is on (``sys._current_frames``) names the call that held it: the probe counts those lines (innermost frame in this
project or a library, plus the caller in ``synth/``), and reports the most frequent with their worst gap.

A diagnostic, not for production: it wakes 1000 times a second, which itself costs a little interpreter time.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])


def _where(frame) -> str:
    """``file:line function`` of the innermost frame, plus the innermost frame inside ``synth/`` when it differs."""
    inner = f"{_short(frame.f_code.co_filename)}:{frame.f_lineno} {frame.f_code.co_name}"
    f = frame
    while f is not None and not f.f_code.co_filename.startswith(_ROOT):
        f = f.f_back
    if f is None or f is frame:
        return inner
    return f"{inner} <- {_short(f.f_code.co_filename)}:{f.f_lineno} {f.f_code.co_name}"


def _short(path: str) -> str:
    for marker in ("site-packages/", "synth/", "lib/python"):
        i = path.find(marker)
        if i >= 0:
            return path[i:] if marker == "synth/" else path[i + len(marker):]
    return path


class GilProbe:
    def __init__(self, threshold_ms: float = 3.0) -> None:
        self.threshold = threshold_ms / 1000.0
        self.late = 0
        self.wakeups = 0
        self.worst: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gil-probe", daemon=True)

    def start(self) -> "GilProbe":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        me = threading.get_ident()
        names = {}
        while not self._stop.is_set():
            t0 = time.perf_counter()
            time.sleep(0.001)
            gap = time.perf_counter() - t0 - 0.001
            self.wakeups += 1
            if gap <= self.threshold:
                continue
            self.late += 1
            if not names or len(names) != threading.active_count():
                names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                key = f"[{names.get(ident, ident)}] {_where(frame)}"
                self.counts[key] += 1
                self.worst[key] = max(self.worst.get(key, 0.0), gap)

    def report(self, top: int = 12) -> dict:
        """Late wakeups and the lines other threads were on at those moments (most frequent first)."""
        return {"wakeups": self.wakeups, "late_over_ms": round(1000 * self.threshold, 2), "late": self.late,
                "threads_at_late_wakeups": [{"where": k, "count": n, "worst_gap_ms": round(1000 * self.worst[k], 2)}
                                            for k, n in self.counts.most_common(top)]}
