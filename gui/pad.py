"""The XY pad: the timbre map with its instruments, and a cursor the player drags to move the timbre live.

Press or drag with the left button anywhere on the map to move the cursor; arrow keys nudge it (Shift: 10x).
Hovering shows the names of the nearest instruments. ``pointChanged`` fires on every move; the window throttles
what it forwards to the engine, so dragging never waits for generation.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QToolTip

from gui.mapdata import MapPoint, bounds, family_colours, nearest, region_image

ARROW_STEPS = {Qt.Key_Left: (-1, 0), Qt.Key_Right: (1, 0), Qt.Key_Up: (0, 1), Qt.Key_Down: (0, -1)}
LEGEND_COLUMNS = 6
LEGEND_ROOM = 0.22  # extra view height below the map for the legend, as a fraction of the map's height
FINE_STEP = 0.005  # of the visible span per arrow press; Shift multiplies by 10


class TimbrePad(pg.PlotWidget):
    pointChanged = Signal(float, float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent, background="#15171c")
        self.points: list[MapPoint] = []
        self.extent = bounds([])
        self._dragging = False
        self._scatter_items: list[pg.ScatterPlotItem] = []
        self._region: pg.ImageItem | None = None
        self._empty_label: pg.TextItem | None = None
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMouseTracking(True)
        self._setup_plot()
        self._cursor = pg.TargetItem(pos=(0.0, 0.0), size=22, movable=False,
                                     pen=pg.mkPen("#ffffff", width=2), brush=pg.mkBrush(255, 255, 255, 40))
        self._cursor.setZValue(10)
        self._cross_x = pg.InfiniteLine(angle=90, pen=pg.mkPen(255, 255, 255, 60, style=Qt.DashLine))
        self._cross_y = pg.InfiniteLine(angle=0, pen=pg.mkPen(255, 255, 255, 60, style=Qt.DashLine))
        for item in (self._cross_x, self._cross_y, self._cursor):
            self.plotItem.addItem(item, ignoreBounds=True)
        self._point = (0.0, 0.0)

    def _setup_plot(self) -> None:
        plot = self.plotItem
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.vb.setMouseEnabled(x=False, y=False)
        plot.vb.setAspectLocked(True)
        plot.showGrid(x=True, y=True, alpha=0.12)
        plot.setLabel("bottom", "timbre x")
        plot.setLabel("left", "timbre y")
        self._legend = plot.addLegend(offset=(6, -6), labelTextColor="#d8dbe2", brush=pg.mkBrush(20, 22, 28, 210),
                                      colCount=LEGEND_COLUMNS, verSpacing=-6, horSpacing=12)

    # ------------------------------------------------------------ content

    def set_instruments(self, points: list[MapPoint], show_regions: bool = True,
                        empty_bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
                        empty_text: str = "") -> None:
        """Draw the map; with no instruments the pad spans ``empty_bounds`` and shows ``empty_text``."""
        self.points = list(points)
        self.extent = bounds(self.points)
        if not self.points and empty_bounds is not None:
            (x0, x1), (y0, y1) = empty_bounds
            self.extent = (x0, x1, y0, y1)
        self._show_empty_text(empty_text if not self.points else "")
        for item in self._scatter_items:
            self.plotItem.removeItem(item)
        self._scatter_items = []
        self._legend.clear()
        colours = family_colours(self.points)
        self._draw_regions(colours, show_regions)
        for family, colour in colours.items():
            self._add_family(family, colour)
        self._add_held_out()
        self._fit_view()

    def _fit_view(self) -> None:
        """Show the whole map with room at the bottom for the legend."""
        xmin, xmax, ymin, ymax = self.extent
        rows = -(-len(self._legend.items) // LEGEND_COLUMNS) if self._legend.items else 0
        ymin -= (ymax - ymin) * LEGEND_ROOM * rows / 2
        self.plotItem.vb.setRange(QRectF(xmin, ymin, xmax - xmin, ymax - ymin), padding=0.02)

    def _add_family(self, family: str, colour: str) -> None:
        members = [p for p in self.points if p.family == family and not p.held_out]
        if not members:
            return
        item = pg.ScatterPlotItem(
            [p.x for p in members], [p.y for p in members], size=9, symbol="o", name=family,
            pen=pg.mkPen(QColor(colour).darker(160), width=1), brush=pg.mkBrush(colour), hoverable=False,
        )
        self._add_scatter(item)

    def _add_held_out(self) -> None:
        held = [p for p in self.points if p.held_out]
        if not held:
            return
        colours = family_colours(self.points)
        item = pg.ScatterPlotItem(
            [p.x for p in held], [p.y for p in held], size=12, symbol="star", name="held out",
            pen=[pg.mkPen("#ffffff", width=1.2) for _ in held], brush=[pg.mkBrush(colours[p.family]) for p in held],
        )
        self._add_scatter(item)

    def _add_scatter(self, item: pg.ScatterPlotItem) -> None:
        self.plotItem.addItem(item)
        self._scatter_items.append(item)

    def _draw_regions(self, colours: dict[str, str], show: bool) -> None:
        if self._region is not None:
            self.plotItem.removeItem(self._region)
            self._region = None
        xmin, xmax, ymin, ymax = self.extent
        width, height = xmax - xmin, ymax - ymin
        xmin, xmax, ymin, ymax = xmin - width, xmax + width, ymin - height, ymax + height
        image = region_image(self.points, colours, (xmin, xmax, ymin, ymax), size=480) if show else None
        if image is None:
            return
        self._region = pg.ImageItem(image, axisOrder="row-major")
        self._region.setRect(QRectF(xmin, ymin, xmax - xmin, ymax - ymin))
        self._region.setZValue(-10)
        self.plotItem.addItem(self._region, ignoreBounds=True)

    def _show_empty_text(self, text: str) -> None:
        if self._empty_label is not None:
            self.plotItem.removeItem(self._empty_label)
            self._empty_label = None
        if not text:
            return
        xmin, xmax, ymin, ymax = self.extent
        self._empty_label = pg.TextItem(text, color="#e8a33d", anchor=(0.5, 0.5))
        self._empty_label.setPos((xmin + xmax) / 2, ymin + 0.9 * (ymax - ymin))
        self.plotItem.addItem(self._empty_label, ignoreBounds=True)

    def set_regions_visible(self, visible: bool) -> None:
        if self._region is not None:
            self._region.setVisible(visible)

    # ------------------------------------------------------------ the cursor

    @property
    def point(self) -> tuple[float, float]:
        return self._point

    def set_point(self, x: float, y: float, emit: bool = True) -> None:
        x, y = self._clamp(x, y)
        if (x, y) == self._point:
            return
        self._point = (x, y)
        self._cursor.setPos(x, y)
        self._cross_x.setValue(x)
        self._cross_y.setValue(y)
        if emit:
            self.pointChanged.emit(x, y)

    def _clamp(self, x: float, y: float) -> tuple[float, float]:
        xmin, xmax, ymin, ymax = self.extent
        return float(np.clip(x, xmin, xmax)), float(np.clip(y, ymin, ymax))

    def nearest_names(self, x: float, y: float, count: int = 3) -> list[str]:
        return [f"{p.name} ({p.family}{', held out' if p.held_out else ''})" for p, _ in nearest(self.points, x, y, count)]

    # ------------------------------------------------------------ mouse and keys

    def _to_map(self, event) -> QPointF:
        scene_pos = self.mapToScene(event.position().toPoint())
        return self.plotItem.vb.mapSceneToView(scene_pos)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self._dragging = True
            self.setFocus(Qt.MouseFocusReason)
            pos = self._to_map(event)
            self.set_point(pos.x(), pos.y())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        pos = self._to_map(event)
        if self._dragging and event.buttons() & Qt.LeftButton:
            self.set_point(pos.x(), pos.y())
            event.accept()
            return
        self._show_hover(event, pos)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.LeftButton and self._dragging:
            self._dragging = False
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def _show_hover(self, event, pos: QPointF) -> None:
        names = self.nearest_names(pos.x(), pos.y())
        if names:
            text = "Nearest instruments:\n" + "\n".join(names)
            QToolTip.showText(event.globalPosition().toPoint(), text, self)

    def keyPressEvent(self, event) -> None:
        step = ARROW_STEPS.get(event.key())
        if step is None:
            super().keyPressEvent(event)
            return
        xmin, xmax, ymin, ymax = self.extent
        scale = FINE_STEP * (10 if event.modifiers() & Qt.ShiftModifier else 1)
        x, y = self._point
        self.set_point(x + step[0] * scale * (xmax - xmin), y + step[1] * scale * (ymax - ymin))
        event.accept()
