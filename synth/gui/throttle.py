"""Forward a rapidly changing value at most once per interval, always delivering the last one."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer


class Throttle(QObject):
    """``push(*args)`` calls ``target(*args)`` at once when idle, else once the interval has passed (latest wins)."""

    def __init__(self, target: Callable[..., Any], interval_ms: int = 20, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._target = target
        self._pending: tuple | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._deliver_pending)

    def push(self, *args: Any) -> None:
        if self._timer.isActive():
            self._pending = args
            return
        self._target(*args)
        self._timer.start()

    def flush(self) -> None:
        if self._pending is not None:
            self._timer.stop()
            self._deliver_pending()

    def _deliver_pending(self) -> None:
        if self._pending is None:
            return
        args, self._pending = self._pending, None
        self._target(*args)
        self._timer.start()
