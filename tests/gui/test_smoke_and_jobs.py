"""The smoke test (null output here; the JACK path runs in ``run_synth.py --smoke-test``) and cancellable jobs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from gui.jobs import JobThread
from gui.smoke import run_smoke_test
from gui.throttle import Throttle

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_test_hears_a_note_through_a_null_output(window, adapter, capsys):
    assert run_smoke_test(QApplication.instance(), window, adapter, through_jack=False, timeout=30) == 0
    assert "smoke test passed" in capsys.readouterr().out


def test_run_synth_smoke_test_command(tmp_path):
    env = {"QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "run_synth.py", "--smoke-test", "--bundle", str(tmp_path / "none")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "smoke test passed" in done.stdout
    assert "demo tones" in done.stderr, "a missing model is said clearly"


def test_long_job_reports_progress_and_can_be_cancelled(qtbot):
    seen = []

    def work(report, cancelled):
        for i in range(1000):
            if cancelled():
                return "stopped"
            report(i, 1000, f"step {i}")
            time.sleep(0.002)
        return "finished"

    job = JobThread(work)
    job.progress.connect(lambda done, total, text: seen.append(done))
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        job.start()
        qtbot.waitUntil(lambda: len(seen) > 3, timeout=3000)
        job.cancel()
    job.wait(2000)
    assert 3 < len(seen) < 1000


def test_failed_job_reports_its_error(qtbot):
    def work(report, cancelled):
        raise ValueError("no grid for you")

    job = JobThread(work)
    with qtbot.waitSignal(job.failed, timeout=5000) as signal:
        job.start()
    job.wait(2000)
    assert "no grid for you" in signal.args[0]


def test_throttle_forwards_first_and_last(qtbot):
    calls = []
    throttle = Throttle(lambda value: calls.append(value), interval_ms=20)
    for value in range(50):
        throttle.push(value)
    assert calls == [0]
    qtbot.waitUntil(lambda: calls[-1] == 49, timeout=1000)
    assert len(calls) == 2


def test_prerender_job_fills_the_grid_and_can_be_cancelled(qtbot, adapter, tmp_path):
    from gui.prerender import prerender_work

    adapter.grid_root = tmp_path / "grid"
    store = adapter.grid_store()
    thread = JobThread(prerender_work(adapter.engine.source, store, size=2))
    with qtbot.waitSignal(thread.succeeded, timeout=60000) as signal:
        thread.start()
    thread.wait(2000)
    assert signal.args[0]["points"] == 4 and store.progress() == (4, 4)
    adapter.use_grid(store)
    assert adapter.engine.worker.grid is store

    big = adapter.grid_store()
    thread = JobThread(prerender_work(adapter.engine.source, big, size=40))
    seen = []
    thread.progress.connect(lambda done, total, text: seen.append(done))
    with qtbot.waitSignal(thread.cancelled, timeout=60000):
        thread.start()
        qtbot.waitUntil(lambda: len(seen) >= 2, timeout=30000)
        thread.cancel()
    thread.wait(5000)
    done, total = big.progress()
    assert 0 < done < total == 1600, "finished points are kept, the rest is left for next time"


def test_prerender_menu_entry_runs_with_progress_and_reports(window, adapter, qtbot, tmp_path):
    adapter.grid_root = tmp_path / "grid"
    job = window.prerender_grid()
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    job.progress.connect(lambda done, total, text: job.cancel() if done >= 1 else None)
    qtbot.waitUntil(lambda: any("Prerender cancelled" in m or "Grid ready" in m for m in messages), timeout=60000)
    assert adapter.grid_store().progress()[0] >= 1


def test_smoke_test_fails_clearly_on_a_silent_engine(window, adapter, capsys, monkeypatch):
    monkeypatch.setattr(adapter.engine, "process_block", lambda out: out.fill(0.0))
    assert run_smoke_test(QApplication.instance(), window, adapter, through_jack=False, timeout=0.5) == 1
    err = capsys.readouterr().err
    assert "smoke test FAILED" in err and "silent" in err


def test_smoke_test_fails_on_a_bundle_that_does_not_load(tmp_path, capsys, qapp):
    from gui.app import main

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bundle.json").write_text("{}")
    assert main(["--smoke-test", "--bundle", str(broken)]) == 1
    assert "does not load" in capsys.readouterr().err
