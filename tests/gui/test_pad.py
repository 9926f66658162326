"""The XY pad: dragging and arrow keys move the engine's timbre point (throttled), hover names instruments."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt

from synth.gui.mapdata import MapPoint


def pixel_of(pad, x: float, y: float) -> QPoint:
    scene = pad.plotItem.vb.mapViewToScene(QPointF(x, y))
    return pad.mapFromScene(scene)


def map_span(pad):
    xmin, xmax, ymin, ymax = pad.extent
    return xmin, xmax, ymin, ymax


def test_dragging_the_pad_moves_the_engine_point(window, adapter, qtbot):
    pad = window.pad
    xmin, xmax, ymin, ymax = map_span(pad)
    start = (xmin + 0.25 * (xmax - xmin), ymin + 0.3 * (ymax - ymin))
    end = (xmin + 0.7 * (xmax - xmin), ymin + 0.8 * (ymax - ymin))
    qtbot.mousePress(pad.viewport(), Qt.LeftButton, pos=pixel_of(pad, *start))
    qtbot.waitUntil(lambda: abs(adapter.engine.point[0] - start[0]) < 0.02 * (xmax - xmin), timeout=2000)
    for step in range(1, 11):
        t = step / 10
        x, y = start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])
        qtbot.mouseMove(pad.viewport(), pixel_of(pad, x, y))
    qtbot.mouseRelease(pad.viewport(), Qt.LeftButton, pos=pixel_of(pad, *end))
    tolerance = 0.02 * (xmax - xmin)

    def at_end():
        ex, ey = adapter.engine.point
        return abs(ex - end[0]) < tolerance and abs(ey - end[1]) < tolerance

    qtbot.waitUntil(at_end, timeout=2000)  # the throttle delivers the last position
    assert abs(pad.point[0] - end[0]) < tolerance
    assert "x " in window.sound_panel.point_label.text()


def test_pad_moves_are_throttled_but_the_last_one_arrives(window, adapter, qtbot, monkeypatch):
    calls = []
    qtbot.waitUntil(lambda: not window.point_throttle._timer.isActive(), timeout=1000)  # the first-launch preset's move
    monkeypatch.setattr(adapter.engine, "set_point", lambda x, y: calls.append((x, y)))
    xmin, xmax, ymin, ymax = map_span(window.pad)
    targets = [(xmin + (xmax - xmin) * i / 60, (ymin + ymax) / 2) for i in range(1, 60)]
    for x, y in targets:
        window.pad.set_point(x, y)
    assert len(calls) == 1, "a burst of moves reaches the engine once at first"
    qtbot.waitUntil(lambda: calls[-1] == window.pad.point, timeout=1000)
    assert len(calls) <= 3


def test_arrow_keys_nudge_the_point(window, adapter, qtbot):
    pad = window.pad
    x0, y0 = pad.point
    qtbot.keyClick(pad, Qt.Key_Right)
    qtbot.keyClick(pad, Qt.Key_Up, Qt.ShiftModifier)
    x1, y1 = pad.point
    xmin, xmax, ymin, ymax = pad.extent
    assert x1 - x0 == pytest_approx(0.005 * (xmax - xmin))
    assert y1 - y0 == pytest_approx(0.05 * (ymax - ymin))
    qtbot.waitUntil(lambda: adapter.engine.point == pad.point, timeout=1000)


def pytest_approx(value):
    import pytest

    return pytest.approx(value, rel=1e-6, abs=1e-9)


def test_instruments_drawn_by_family_with_new_ones_marked(qtbot):
    from synth.gui.pad import TimbrePad

    pad = TimbrePad()
    qtbot.addWidget(pad)
    points = [MapPoint("piano 1", "keyboard", 0.0, 0.0, False), MapPoint("piano 2", "keyboard", 0.2, 0.1, False),
              MapPoint("piano 3", "keyboard", 0.1, 0.3, False), MapPoint("tuba", "brass", 1.0, 1.0, False),
              MapPoint("new organ", "organ", -1.0, 0.5, True)]
    pad.set_instruments(points)
    legend = pad.legend.plain_text()
    assert legend.index("Brass") < legend.index("Keyboard") < legend.index("not in training")
    assert list(pad.region_items) == ["keyboard"], "family regions are drawn behind the points"
    assert pad.nearest_names(0.9, 0.9)[0] == "Tuba · Brass"
    assert "not in training" in pad.nearest_names(-1.0, 0.5)[0]


def test_hovering_shows_the_nearest_instruments(window, qtbot):
    from PySide6.QtWidgets import QToolTip

    pad = window.pad
    if not pad.points:
        return  # the demo source has no instruments to name
    target = pad.points[0]
    qtbot.mouseMove(pad.viewport(), pixel_of(pad, target.x, target.y))
    qtbot.waitUntil(lambda: QToolTip.isVisible() or bool(QToolTip.text()), timeout=2000)
    assert target.label in QToolTip.text()
