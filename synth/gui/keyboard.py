"""The on-screen keyboard and computer-keyboard play.

``PianoKeyboard`` draws keys, plays them on click (velocity from how low on the key you press; dragging glides
from key to key) and shows notes held from anywhere (MIDI, computer keys). It shows the model's whole range (88
keys for MIDI 21-108), scrolling when the window is too narrow for all of them. ``ComputerKeys`` maps the letter row
``a w s e d f t g y h u j k`` to a chromatic octave from C3 (MIDI 48); ``z``/``x`` shift the octave. It ignores
auto-repeat and releases its held keys when the octave changes or the window loses focus.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

BLACK_PITCH_CLASSES = {1, 3, 6, 8, 10}
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
LETTER_OFFSETS = {
    Qt.Key_A: 0, Qt.Key_W: 1, Qt.Key_S: 2, Qt.Key_E: 3, Qt.Key_D: 4, Qt.Key_F: 5, Qt.Key_T: 6,
    Qt.Key_G: 7, Qt.Key_Y: 8, Qt.Key_H: 9, Qt.Key_U: 10, Qt.Key_J: 11, Qt.Key_K: 12,
}
DEFAULT_BASE = 48  # C3 on the letter a
HELD_COLOUR = QColor("#4fa3ff")
MIN_WHITE_KEY_WIDTH = 14.0  # pixels: narrower keys cannot be hit reliably; the view scrolls instead


def note_name(pitch: int) -> str:
    """MIDI 60 -> C4 (so 48, the letter a, is C3)."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def is_black(pitch: int) -> bool:
    return pitch % 12 in BLACK_PITCH_CLASSES


class PianoKeyboard(QWidget):
    """Keys ``low``-``high`` (widened to the model's range by ``set_model_range``: 88 keys for MIDI 21-108).

    Every key gets at least ``MIN_WHITE_KEY_WIDTH`` pixels: when the widget is wide enough (the default window is,
    for 88 keys) all keys show, stretched to the width; a narrower one shows as many octaves as fit and scrolls
    (mouse wheel, or ``scroll_octaves``), a wider window showing more. The view keeps the computer keys' octave in
    sight when resized and follows a note held out of view (a MIDI keyboard plays the whole range); arrows at the
    edges say there are more keys, lit when a held note is beyond them.
    """

    noteOn = Signal(int, int)
    noteOff = Signal(int)

    def __init__(self, low: int = 36, high: int = 84, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.low, self.high = _white_bounds(low, high)
        self.held: set[int] = set()
        self.marked_base: int | None = DEFAULT_BASE
        self.model_range: tuple[int, int] | None = None  # keys outside it are re-pitched from the nearest note
        self._mouse_note: int | None = None
        self._first_white = 0  # index (in white_keys) of the leftmost white key in view
        self._whites = self._white_list()
        self.setMinimumHeight(90)
        self.setMinimumWidth(int(7 * MIN_WHITE_KEY_WIDTH))  # an octave at least
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMouseTracking(False)

    def sizeHint(self) -> QSize:
        return QSize(900, 110)

    # -------------------------------------------------------- geometry

    def keys(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    def is_black_key(self, pitch: int) -> bool:
        return is_black(pitch)

    def _white_list(self) -> list[int]:
        return [p for p in range(self.low, self.high + 1) if not is_black(p)]

    def white_keys(self) -> list[int]:
        return list(self._whites)

    def visible_white_count(self) -> int:
        """How many white keys fit at ``MIN_WHITE_KEY_WIDTH`` (all of them when the widget is wide enough)."""
        fits = int(self.width() // MIN_WHITE_KEY_WIDTH)
        return max(1, min(len(self._whites), fits))

    def white_key_width(self) -> float:
        return self.width() / self.visible_white_count()

    def _max_first(self) -> int:
        return len(self._whites) - self.visible_white_count()

    def visible_range(self) -> tuple[int, int]:
        """(lowest, highest) white key in view."""
        first = min(self._first_white, self._max_first())
        return self._whites[first], self._whites[first + self.visible_white_count() - 1]

    def is_visible_key(self, pitch: int) -> bool:
        if not self.low <= pitch <= self.high:
            return False
        rect = self.key_rect(pitch)
        return rect.left() >= -0.5 and rect.right() <= self.width() + 0.5

    def key_rect(self, pitch: int) -> QRectF:
        width = self.white_key_width()
        first = min(self._first_white, self._max_first())
        if not is_black(pitch):
            return QRectF((self._whites.index(pitch) - first) * width, 0, width, self.height() - 1)
        left = (self._whites.index(pitch - 1) - first) * width
        return QRectF(left + width * 0.65, 0, width * 0.7, self.height() * 0.6)

    def _keys_in_view(self) -> list[int]:
        low, high = self.visible_range()
        return list(range(max(self.low, low - 1), min(self.high, high + 1) + 1))

    def pitch_at(self, x: float, y: float) -> int | None:
        in_view = self._keys_in_view()
        for pitch in in_view:
            if is_black(pitch) and self.key_rect(pitch).contains(x, y):
                return pitch
        for pitch in in_view:
            if not is_black(pitch) and self.key_rect(pitch).contains(x, y):
                return pitch
        return None

    def velocity_at(self, pitch: int, y: float) -> int:
        rect = self.key_rect(pitch)
        depth = (y - rect.top()) / max(1.0, rect.height())
        return max(1, min(127, int(40 + 87 * depth)))

    # -------------------------------------------------------- scrolling

    def scroll_to_white(self, index: int) -> None:
        first = max(0, min(int(index), self._max_first()))
        if first != self._first_white:
            self._first_white = first
            self.update()

    def scroll_octaves(self, octaves: int) -> None:
        self.scroll_to_white(min(self._first_white, self._max_first()) + 7 * int(octaves))

    def ensure_visible(self, low: int, high: int | None = None) -> None:
        """Scroll (as little as needed) so that keys ``low``-``high`` are in view; centred when they do not fit."""
        high = low if high is None else high
        lo_white = self._white_index(max(low, self.low), down=True)
        hi_white = self._white_index(min(high, self.high), down=False)
        count = self.visible_white_count()
        first = min(self._first_white, self._max_first())
        if hi_white - lo_white + 1 > count:
            first = (lo_white + hi_white + 1 - count) // 2
        elif lo_white < first:
            first = lo_white
        elif hi_white >= first + count:
            first = hi_white - count + 1
        self.scroll_to_white(first)

    def _white_index(self, pitch: int, down: bool) -> int:
        """Index of the white key ``pitch`` (a black key: the white one below it, or above it when not ``down``)."""
        if is_black(pitch):
            pitch = pitch - 1 if down else pitch + 1
        pitch = min(max(pitch, self._whites[0]), self._whites[-1])
        return self._whites.index(pitch)

    def wheelEvent(self, event) -> None:
        """Wheel up (or right) shows higher keys, two white keys a notch."""
        delta = event.angleDelta()
        steps = (delta.y() or delta.x()) / 120.0
        if steps and len(self._whites) > self.visible_white_count():
            move = int(round(steps * 2)) or (1 if steps > 0 else -1)
            self.scroll_to_white(min(self._first_white, self._max_first()) + move)
            event.accept()
        else:
            event.ignore()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._first_white = min(self._first_white, self._max_first())
        if self.marked_base is not None and self.low <= self.marked_base <= self.high:
            self.ensure_visible(self.marked_base, min(self.high, self.marked_base + 12))

    # -------------------------------------------------------- state shown

    def set_held(self, pitches) -> None:
        pitches = set(pitches)
        if pitches != self.held:
            new = sorted(p for p in pitches - self.held if self.low <= p <= self.high)
            self.held = pitches
            if self._mouse_note is None:  # never scroll under a dragging mouse
                for pitch in new:
                    if not self.is_visible_key(pitch):
                        self.ensure_visible(pitch)
            self.update()

    def set_range(self, low: int, high: int) -> None:
        """Show keys ``low``-``high`` (widened to white keys at both ends)."""
        low, high = _white_bounds(low, high)
        if (low, high) != (self.low, self.high):
            keep = self.visible_range()[0]
            self.low, self.high = low, high
            self._whites = self._white_list()
            self._first_white = self._white_index(min(max(keep, low), high), down=True)
            self._first_white = min(self._first_white, self._max_first())
            self.update()

    def set_model_range(self, low: int, high: int) -> None:
        """The model's range: the keyboard widens to show all of it (keys beyond it stay, shaded)."""
        self.model_range = (low, high)
        self.set_range(min(self.low, low), max(self.high, high))
        self.setToolTip(f"The model generates {note_name(low)}-{note_name(high)} "
                        f"({high - low + 1} keys); keys outside are re-pitched from the nearest generated note "
                        "(shaded). Scroll for more keys when the window is narrow.")
        if self.marked_base is not None:
            self.ensure_visible(self.marked_base, min(self.high, self.marked_base + 12))
        self.update()

    def outside_model(self, pitch: int) -> bool:
        return self.model_range is not None and not self.model_range[0] <= pitch <= self.model_range[1]

    def set_marked_base(self, base: int | None) -> None:
        self.marked_base = base
        if base is not None and self.low <= base <= self.high:
            self.ensure_visible(base, min(self.high, base + 12))
        self.update()

    # -------------------------------------------------------- painting

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setFont(QFont(self.font().family(), 7))
        in_view = self._keys_in_view()
        for pitch in in_view:
            if not is_black(pitch):
                self._paint_key(painter, pitch, QColor("#d8d8d2" if self.outside_model(pitch) else "#f6f6f2"))
        for pitch in in_view:
            if is_black(pitch):
                self._paint_key(painter, pitch, QColor("#4a4d56" if self.outside_model(pitch) else "#22242a"))
        self._paint_edges(painter)
        painter.end()

    def _paint_edges(self, painter: QPainter) -> None:
        """Arrows where more keys lie beyond the view; lit when a held note is out there."""
        low, high = self.visible_range()
        for more, beyond, left in ((low > self.low, any(p < low for p in self.held), True),
                                   (high < self.high, any(p > high for p in self.held), False)):
            if not more:
                continue
            width, height = 10.0, self.height() * 0.6
            x = 0.0 if left else self.width() - width
            painter.setPen(Qt.NoPen)
            painter.setBrush(HELD_COLOUR if beyond else QColor(60, 64, 74, 170))
            painter.drawRect(QRectF(x, 0, width, height))
            painter.setPen(QColor("#ffffff"))
            painter.drawText(QRectF(x, 0, width, height), Qt.AlignCenter, "<" if left else ">")

    def _paint_key(self, painter: QPainter, pitch: int, colour: QColor) -> None:
        rect = self.key_rect(pitch)
        fill = HELD_COLOUR if pitch in self.held else colour
        painter.setPen(QPen(QColor("#555a66"), 1))
        painter.setBrush(fill)
        painter.drawRoundedRect(rect.adjusted(0.5, -2, -0.5, -0.5), 3, 3)
        if not is_black(pitch) and pitch % 12 == 0:
            painter.setPen(QColor("#555a66"))
            painter.drawText(rect.adjusted(0, 0, 0, -4), Qt.AlignHCenter | Qt.AlignBottom, note_name(pitch))
        if self.marked_base is not None and pitch == self.marked_base:
            painter.setPen(QPen(QColor("#e8a33d"), 3))
            painter.drawLine(rect.bottomLeft() + _up(3), rect.bottomRight() + _up(3))

    # -------------------------------------------------------- mouse

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.LeftButton:
            return
        pos = event.position()
        self._press(self.pitch_at(pos.x(), pos.y()), pos.y())

    def mouseMoveEvent(self, event) -> None:
        if not event.buttons() & Qt.LeftButton:
            return
        pos = event.position()
        pitch = self.pitch_at(pos.x(), pos.y())
        if pitch != self._mouse_note:
            self._release_mouse_note()
            self._press(pitch, pos.y())

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self._release_mouse_note()

    def _press(self, pitch: int | None, y: float) -> None:
        if pitch is None:
            return
        self._mouse_note = pitch
        self.noteOn.emit(pitch, self.velocity_at(pitch, y))

    def _release_mouse_note(self) -> None:
        if self._mouse_note is not None:
            pitch, self._mouse_note = self._mouse_note, None
            self.noteOff.emit(pitch)


def _white_bounds(low: int, high: int) -> tuple[int, int]:
    """``low``-``high`` within MIDI 0-127, widened so that both ends are white keys (a black key is drawn over the
    white key below it, which must exist)."""
    low, high = max(0, int(low)), min(127, int(high))
    if is_black(low):
        low -= 1
    if is_black(high):
        high += 1
    return low, max(low, high)


def _up(pixels: float):
    from PySide6.QtCore import QPointF

    return QPointF(0, -pixels)


class ComputerKeys:
    """Maps Qt key events to notes. Feed it key presses/releases; it calls ``note_on``/``note_off``."""

    def __init__(self, note_on: Callable[[int, int], None], note_off: Callable[[int], None],
                 base: int = DEFAULT_BASE, velocity: int = 100) -> None:
        self._note_on, self._note_off = note_on, note_off
        self.base = base
        self.velocity = velocity
        self.held: dict[int, int] = {}  # Qt key -> pitch sounding
        self.on_octave_changed: Callable[[int], None] | None = None

    def handles(self, key: int) -> bool:
        return key in LETTER_OFFSETS or key in (Qt.Key_Z, Qt.Key_X)

    def press(self, key: int, auto_repeat: bool = False) -> bool:
        """True when the key is ours (so the caller can consume the event)."""
        if not self.handles(key):
            return False
        if auto_repeat:
            return True
        if key in (Qt.Key_Z, Qt.Key_X):
            self.shift_octave(-1 if key == Qt.Key_Z else 1)
            return True
        pitch = self.base + LETTER_OFFSETS[key]
        if key not in self.held and 0 <= pitch <= 127:
            self.held[key] = pitch
            self._note_on(pitch, self.velocity)
        return True

    def release(self, key: int, auto_repeat: bool = False) -> bool:
        if not self.handles(key):
            return False
        if not auto_repeat and key in self.held:
            self._note_off(self.held.pop(key))
        return True

    def shift_octave(self, step: int) -> None:
        base = self.base + 12 * step
        if not 0 <= base <= 120:
            return
        self.release_all()
        self.base = base
        if self.on_octave_changed is not None:
            self.on_octave_changed(base)

    def release_all(self) -> None:
        for key in list(self.held):
            self._note_off(self.held.pop(key))
