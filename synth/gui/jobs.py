"""Long jobs off the UI thread, with progress and cancel.

A job is a plain function ``work(report, cancelled) -> result``: it calls ``report(done, total, text)`` now and
then and returns early when ``cancelled()`` is true. ``JobThread`` runs it in a QThread and signals back;
``run_with_progress`` shows a cancellable progress dialog for it.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

Work = Callable[[Callable[[int, int, str], None], Callable[[], bool]], Any]


class JobCancelled(Exception):
    """A job may raise this to stop; it is reported as cancelled, not failed."""


class JobThread(QThread):
    progress = Signal(int, int, str)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, work: Work, parent=None) -> None:
        super().__init__(parent)
        self._work = work
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        try:
            result = self._work(self.progress.emit, self._cancel.is_set)
        except JobCancelled:
            self.cancelled.emit()
            return
        except Exception as exc:  # a job's error is shown to the player, never kills the app
            self.failed.emit(f"{exc}\n\n{traceback.format_exc(limit=3)}")
            return
        if self._cancel.is_set():
            self.cancelled.emit()
        else:
            self.succeeded.emit(result)


def run_with_progress(parent: QWidget, title: str, work: Work,
                      on_done: Callable[[Any], None] | None = None,
                      on_error: Callable[[str], None] | None = None) -> JobThread:
    """Start ``work`` in a thread behind a cancellable progress dialog; returns the running thread."""
    dialog = QProgressDialog(title, "Cancel", 0, 100, parent)
    dialog.setWindowTitle(title)
    dialog.setMinimumDuration(0)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    job = JobThread(work, parent)

    def show_progress(done: int, total: int, text: str) -> None:
        dialog.setMaximum(max(1, total))
        dialog.setValue(min(done, max(1, total)))
        if text:
            dialog.setLabelText(text)

    def finish() -> None:
        dialog.close()
        dialog.deleteLater()

    job.progress.connect(show_progress)
    dialog.canceled.connect(job.cancel)
    job.succeeded.connect(lambda result: on_done(result) if on_done else None)
    job.failed.connect(lambda message: on_error(message) if on_error else None)
    job.finished.connect(finish)
    job.finished.connect(job.deleteLater)
    job.start()
    dialog.show()
    return job
