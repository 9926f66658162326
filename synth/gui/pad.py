"""The XY pad: the timbre map with its instruments, family regions and presets, and a cursor the player drags to move
the timbre live.

Press or drag with the left button anywhere on the map to move the cursor; arrow keys nudge it (Shift: 10x).
Hovering names the nearest presets and instruments. ``pointChanged`` fires on every move, ``moveFinished`` once a
drag ends or after a nudge (one step of the undo history); the window throttles what it forwards to the engine, so
dragging never waits for generation. The legend is a separate widget (``legend``) the window lays out below the pad,
so it never covers the map and wraps instead of being clipped in a small window. The map's axes have no meaning a
player can use (a learned latent space), so none are drawn; the view is fitted to the instruments on both axes.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsPolygonItem, QLabel, QSizePolicy, QToolTip

from synth.gui.keyboard import note_name
from synth.gui.mapdata import HELD_OUT_TEXT, MapPoint, bounds, family_colours, family_label, family_regions, nearest

ARROW_STEPS = {Qt.Key_Left: (-1, 0), Qt.Key_Right: (1, 0), Qt.Key_Up: (0, 1), Qt.Key_Down: (0, -1)}
FINE_STEP = 0.005  # of the visible span per arrow press; Shift multiplies by 10
REGION_FILL_ALPHA = 42
REGION_LINE_ALPHA = 150
PRESET_COLOUR = "#f5d76e"
SOUNDING_COLOUR = "#7cf0ff"
PRESET_HOVER_PIXELS = 14
# Where a preset's name may go beside its diamond, tried in turn until it covers no other name: right, left, above,
# below (TextItem anchors: the fraction of the text box pinned to the diamond).
LABEL_ANCHORS = ((-0.08, 0.5), (1.08, 0.5), (0.5, 1.25), (0.5, -0.25), (-0.08, 1.2), (-0.08, -0.2))


class MapLegend(QLabel):
    """Family colours and marks, as wrapping text: lives outside the plot (the window puts it below the pad)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.RichText)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.setStyleSheet("QLabel { color: #c8ccd4; background: #15171c; padding: 3px 6px; }")
        self.setToolTip("Colours: instrument families. Regions: where most of a family lies on the map.")

    def set_entries(self, colours: dict[str, str], held_out: bool, presets: bool) -> None:
        parts = [f"<span style='color:{c}'>●</span>&nbsp;{html.escape(family_label(f))}" for f, c in colours.items()]
        if held_out:
            parts.append(f"<span style='color:#ffffff'>★</span>&nbsp;{HELD_OUT_TEXT.replace(' ', '&nbsp;')}")
        if presets:
            parts.append(f"<span style='color:{PRESET_COLOUR}'>◆</span>&nbsp;preset")
        parts.append(f"<span style='color:{SOUNDING_COLOUR}'>◯</span>&nbsp;sounding&nbsp;notes")
        self.setText(" &nbsp; ".join(parts))

    def plain_text(self) -> str:
        """The legend as read: "● Bass  ● Keyboard  ★ not in training ..."."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.text())).replace("\xa0", " ")


class TimbrePad(pg.PlotWidget):
    pointChanged = Signal(float, float)
    moveFinished = Signal(str)  # "drag" (mouse released) or "nudge" (arrow key): one step for undo

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent, background="#15171c")
        self.points: list[MapPoint] = []
        self.extent = bounds([])
        self.legend = MapLegend()
        self.region_items: dict[str, QGraphicsPolygonItem] = {}
        self.preset_items: dict[str, tuple[pg.ScatterPlotItem, pg.TextItem]] = {}
        self.current_preset: str | None = None
        self.sounding: dict[tuple[float, float], str] = {}
        self.sounding_items: list[pg.TargetItem] = []
        self._presets: list[tuple[str, float, float]] = []
        self._dragging = False
        self._scatter_items: list[pg.ScatterPlotItem] = []
        self._regions_visible = True
        self._empty_label: pg.TextItem | None = None
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(240, 180)
        self._setup_plot()
        self._cursor = pg.TargetItem(pos=(0.0, 0.0), size=22, movable=False,
                                     pen=pg.mkPen("#ffffff", width=2), brush=pg.mkBrush(255, 255, 255, 40))
        self._cursor.setZValue(10)
        # no full-span crosshair lines (the target is one): each move would dirty a whole row and column of the map,
        # and every item under them repaints with the interpreter held (a move's paint: 2.0 -> 1.3 ms of CPU, p50)
        self.plotItem.addItem(self._cursor, ignoreBounds=True)
        self._point = (0.0, 0.0)
        self._label_timer = QTimer(self)  # names are placed once the view's geometry has settled
        self._label_timer.setSingleShot(True)
        self._label_timer.setInterval(0)
        self._label_timer.timeout.connect(self._place_preset_labels)
        self.plotItem.vb.sigResized.connect(self._label_timer.start)
        self.plotItem.vb.sigRangeChanged.connect(self._label_timer.start)

    def _setup_plot(self) -> None:
        plot = self.plotItem
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.hideAxis("bottom")  # a learned latent space: its axes have no unit or meaning to show
        plot.hideAxis("left")
        plot.vb.setMouseEnabled(x=False, y=False)
        plot.vb.setAspectLocked(False)  # stretched to the pad: the dots use its whole space
        plot.vb.setDefaultPadding(0.0)

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
        colours = family_colours(self.points)
        self._regions_visible = show_regions
        self._draw_regions(colours)
        self._add_instruments(colours)
        self.legend.set_entries(colours, any(p.held_out for p in self.points), bool(self._presets))
        self.legend.setVisible(bool(self.points))
        self._fit_view()
        if self._presets:
            self.set_presets(self._presets, self.current_preset)

    def _fit_view(self) -> None:
        xmin, xmax, ymin, ymax = self.extent
        self.plotItem.vb.setRange(QRectF(xmin, ymin, xmax - xmin, ymax - ymin), padding=0.0)

    def _add_instruments(self, colours: dict[str, str]) -> None:
        """Every instrument as one scatter item (family dots, then the held-out stars on top). Why one: pyqtgraph
        paints each item in Python while the interpreter is held, and a drag repaints the map under the cursor at
        every move; one item instead of one per family cut a move's paint from 2.9 to 2.0 ms of CPU (p50, offscreen),
        time the audio callback could otherwise wait for the interpreter (issue 19)."""
        spots = []
        for family, colour in colours.items():
            pen, brush = pg.mkPen(QColor(colour).darker(170), width=1), pg.mkBrush(colour)
            spots += [{"pos": (p.x, p.y), "size": 8, "symbol": "o", "pen": pen, "brush": brush}
                      for p in self.points if p.family == family and not p.held_out]
        star_pen = pg.mkPen("#ffffff", width=1.0)
        spots += [{"pos": (p.x, p.y), "size": 11, "symbol": "star", "pen": star_pen, "brush": pg.mkBrush(colours[p.family])}
                  for p in self.points if p.held_out]
        if spots:
            item = pg.ScatterPlotItem(spots=spots, hoverable=False)
            self.plotItem.addItem(item)
            self._scatter_items.append(item)

    def _draw_regions(self, colours: dict[str, str]) -> None:
        for item in self.region_items.values():
            self.plotItem.removeItem(item)
        self.region_items = {}
        for family, polygon in family_regions(self.points).items():
            colour = QColor(colours[family])
            item = QGraphicsPolygonItem(QPolygonF([QPointF(float(x), float(y)) for x, y in polygon]))
            fill = QColor(colour)
            fill.setAlpha(REGION_FILL_ALPHA)
            line = QColor(colour)
            line.setAlpha(REGION_LINE_ALPHA)
            pen = QPen(line, 1.4)
            pen.setCosmetic(True)  # width in pixels whatever the map's scale
            item.setBrush(fill)
            item.setPen(pen)
            item.setZValue(-10)
            item.setVisible(self._regions_visible)
            item.setToolTip(family_label(family))
            self.plotItem.addItem(item, ignoreBounds=True)
            self.region_items[family] = item

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
        self._regions_visible = bool(visible)
        for item in self.region_items.values():
            item.setVisible(self._regions_visible)

    # ------------------------------------------------------------ presets and sounding notes

    def set_presets(self, presets: list[tuple[str, float, float]], current: str | None) -> None:
        """Draw each preset (name, x, y) as a named diamond; ``current`` stands out."""
        for marker, label in self.preset_items.values():
            self.plotItem.removeItem(marker)
            self.plotItem.removeItem(label)
        self.preset_items = {}
        self._presets = list(presets)
        self.current_preset = current
        for name, x, y in self._presets:
            x, y = self._clamp(x, y)
            chosen = name == current
            marker = pg.ScatterPlotItem([x], [y], size=15 if chosen else 11, symbol="d",
                                        pen=pg.mkPen("#15171c", width=1.2),
                                        brush=pg.mkBrush(PRESET_COLOUR if chosen else "#d9dce3"), hoverable=False)
            marker.setZValue(6 if chosen else 5)
            label = pg.TextItem(name, color=PRESET_COLOUR if chosen else "#e6e8ee", anchor=(-0.08, 0.5),
                                fill=pg.mkBrush(15, 17, 22, 185 if chosen else 150))
            if chosen:
                font = label.textItem.font()
                font.setBold(True)
                label.setFont(font)
            label.setPos(x, y)
            label.setZValue(7 if chosen else 5)
            self.plotItem.addItem(marker, ignoreBounds=True)
            self.plotItem.addItem(label, ignoreBounds=True)
            self.preset_items[name] = (marker, label)
        if self.points:
            self.legend.set_entries(family_colours(self.points), any(p.held_out for p in self.points),
                                    bool(self._presets))
        self._place_preset_labels()
        self._label_timer.start()

    def _place_preset_labels(self, *_args) -> None:
        """Put each preset's name inside the map where it covers no name placed before it (the current preset's
        first); when no place does both, inside the map with the least overlap."""
        vb = self.plotItem.vb
        vb.prepareForPaint()  # the view's transform is updated lazily, at the next paint otherwise
        view = vb.sceneBoundingRect()
        taken = []
        for name in sorted(self.preset_items, key=lambda n: (n != self.current_preset, n)):
            _, label = self.preset_items[name]
            best = None
            for anchor in LABEL_ANCHORS:
                label.setAnchor(anchor)
                label.updateTransform(force=True)
                rect = label.sceneBoundingRect()
                cost = (0 if view.contains(rect) else 1, sum(_overlap(rect, other) for other in taken))
                if best is None or cost < best[0]:
                    best = (cost, anchor, rect)
                if cost == (0, 0):
                    break
            label.setAnchor(best[1])
            label.updateTransform(force=True)
            taken.append(best[2])

    def set_current_preset(self, name: str | None) -> None:
        if name != self.current_preset:
            self.set_presets(self._presets, name)

    def set_sounding(self, sounding: dict[tuple[float, float], str]) -> None:
        """Ring every point a sounding note is playing from, labelled with its notes (e.g. "C4 E4")."""
        if sounding == self.sounding:
            return
        for item in self.sounding_items:
            self.plotItem.removeItem(item)
        self.sounding = dict(sounding)
        self.sounding_items = []
        for (x, y), text in self.sounding.items():
            item = pg.TargetItem(pos=(x, y), size=30, symbol="o", movable=False,
                                 pen=pg.mkPen(SOUNDING_COLOUR, width=2.5), brush=pg.mkBrush(124, 240, 255, 45),
                                 label=text, labelOpts={"color": SOUNDING_COLOUR, "offset": (0, 17),
                                                        "anchor": (0.5, 1.0), "fill": pg.mkBrush(15, 17, 22, 170)})
            item.setZValue(9)
            self.plotItem.addItem(item, ignoreBounds=True)
            self.sounding_items.append(item)

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
        if emit:
            self.pointChanged.emit(x, y)

    def _clamp(self, x: float, y: float) -> tuple[float, float]:
        xmin, xmax, ymin, ymax = self.extent
        return float(np.clip(x, xmin, xmax)), float(np.clip(y, ymin, ymax))

    def nearest_names(self, x: float, y: float, count: int = 3) -> list[str]:
        return [f"{p.label} · {family_label(p.family)}{' · ' + HELD_OUT_TEXT if p.held_out else ''}"
                for p, _ in nearest(self.points, x, y, count)]

    def hover_lines(self, x: float, y: float) -> list[str]:
        """What the tooltip says at (x, y): presets under the pointer, then the nearest instruments."""
        lines = [f"Preset: {name}" for name, px, py in self._presets if self._close_on_screen((x, y), (px, py))]
        names = self.nearest_names(x, y)
        return lines + (["Nearest instruments:"] + names if names else [])

    def _close_on_screen(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        vb = self.plotItem.vb
        pa, pb = vb.mapViewToScene(QPointF(*a)), vb.mapViewToScene(QPointF(*self._clamp(*b)))
        return (pa - pb).manhattanLength() <= PRESET_HOVER_PIXELS

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
            self.moveFinished.emit("drag")
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def _show_hover(self, event, pos: QPointF) -> None:
        lines = self.hover_lines(pos.x(), pos.y())
        if lines:
            QToolTip.showText(event.globalPosition().toPoint(), "\n".join(lines), self)

    def keyPressEvent(self, event) -> None:
        step = ARROW_STEPS.get(event.key())
        if step is None:
            super().keyPressEvent(event)
            return
        xmin, xmax, ymin, ymax = self.extent
        scale = FINE_STEP * (10 if event.modifiers() & Qt.ShiftModifier else 1)
        x, y = self._point
        self.set_point(x + step[0] * scale * (xmax - xmin), y + step[1] * scale * (ymax - ymin))
        self.moveFinished.emit("nudge")
        event.accept()


def _overlap(a: QRectF, b: QRectF) -> float:
    both = a.intersected(b)
    return max(0.0, both.width()) * max(0.0, both.height())


def sounding_labels(points: dict[int, tuple[float, float] | None]) -> dict[tuple[float, float], str]:
    """{pitch: point it plays from (None: not generated yet)} -> {point: "C4 E4"} for ``TimbrePad.set_sounding``."""
    grouped: dict[tuple[float, float], list[int]] = {}
    for pitch, point in sorted(points.items()):
        if point is not None:
            grouped.setdefault(point, []).append(pitch)
    return {point: " ".join(note_name(p) for p in pitches) for point, pitches in grouped.items()}
