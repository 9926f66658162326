"""Prerendering the on-disk note grid from the window, as a cancellable job with progress.

Same grid as ``synth prerender`` (``synth.engine.prerender_cli``): the same ``GridSpec`` over the same map bounds,
so a grid started in the window and finished on the command line (or the other way round) resumes, never restarts.
"""

from __future__ import annotations

import numpy as np

from synth.gui.jobs import JobCancelled, JobThread, Work, run_with_progress
from synth.engine.note_cache import GridSpec, GridStore
from synth.engine.sources import source_bounds

DEFAULT_GRID_SIZE = 9


def grid_spec(source, size: int, velocity: int = 100) -> GridSpec:
    low, high = source.pitch_range
    return GridSpec(size=int(size), bounds=source_bounds(source), pitches=tuple(range(int(low), int(high) + 1)),
                    sample_rate=int(source.sample_rate), velocity=velocity)


def prerender_work(source, store: GridStore, size: int = DEFAULT_GRID_SIZE, batch: int = 25) -> Work:
    """A job (see ``synth.gui.jobs``) that fills ``store`` point by point; finished points are kept when cancelled."""

    def work(report, cancelled) -> dict:
        spec = grid_spec(source, size)
        store.create(spec)
        todo = [(i, j) for i in range(spec.size) for j in range(spec.size) if not store.has(i, j)]
        for done, (i, j) in enumerate(todo):
            if cancelled():
                raise JobCancelled()
            report(done, len(todo), f"Rendering grid point {done + 1} of {len(todo)}")
            store.save(i, j, render_point(source, spec, spec.point(i, j), batch))
        report(len(todo), len(todo), "Done")
        return {"rendered": len(todo), "points": spec.size * spec.size, "folder": str(store.dir)}

    return work


def render_point(source, spec: GridSpec, xy: tuple[float, float], batch: int) -> np.ndarray:
    pitches = list(spec.pitches)
    rows = [np.asarray(source.generate(xy, pitches[k : k + batch], spec.velocity), np.float32)
            for k in range(0, len(pitches), max(1, batch))]
    return np.concatenate(rows, axis=0)


def start_prerender(window, size: int = DEFAULT_GRID_SIZE) -> JobThread:
    """Run the prerender behind a progress dialog; the window's status bar says how it ended."""
    adapter = window.adapter
    store = adapter.grid_store()
    status = window.statusBar()

    def done(summary: dict) -> None:
        adapter.use_grid(store)
        status.showMessage(f"Grid ready: {summary['points']} points in {summary['folder']}", 10000)

    def failed(message: str) -> None:
        status.showMessage(f"Prerender failed: {message.splitlines()[0] if message else 'unknown error'}", 15000)

    job = run_with_progress(window, "Prerendering the map grid", prerender_work(adapter.engine.source, store, size),
                            on_done=done, on_error=failed)
    job.cancelled.connect(lambda: status.showMessage(
        "Prerender cancelled; finished points are kept and it resumes next time", 10000))
    return job
