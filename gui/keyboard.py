"""The on-screen keyboard and computer-keyboard play.

``PianoKeyboard`` draws keys, plays them on click (velocity from how low on the key you press; dragging glides
from key to key) and shows notes held from anywhere (MIDI, computer keys). ``ComputerKeys`` maps the letter row
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


def note_name(pitch: int) -> str:
    """MIDI 60 -> C4 (so 48, the letter a, is C3)."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def is_black(pitch: int) -> bool:
    return pitch % 12 in BLACK_PITCH_CLASSES


class PianoKeyboard(QWidget):
    noteOn = Signal(int, int)
    noteOff = Signal(int)

    def __init__(self, low: int = 36, high: int = 84, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.low, self.high = low, high
        self.held: set[int] = set()
        self.marked_base: int | None = DEFAULT_BASE
        self.model_range: tuple[int, int] | None = None  # keys outside it are re-pitched from the nearest note
        self._mouse_note: int | None = None
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMouseTracking(False)

    def sizeHint(self) -> QSize:
        return QSize(900, 110)

    # -------------------------------------------------------- geometry

    def white_keys(self) -> list[int]:
        return [p for p in range(self.low, self.high + 1) if not is_black(p)]

    def key_rect(self, pitch: int) -> QRectF:
        whites = self.white_keys()
        width = self.width() / max(1, len(whites))
        if not is_black(pitch):
            return QRectF(whites.index(pitch) * width, 0, width, self.height() - 1)
        left = whites.index(pitch - 1) * width
        return QRectF(left + width * 0.65, 0, width * 0.7, self.height() * 0.6)

    def pitch_at(self, x: float, y: float) -> int | None:
        for pitch in range(self.low, self.high + 1):
            if is_black(pitch) and self.key_rect(pitch).contains(x, y):
                return pitch
        for pitch in self.white_keys():
            if self.key_rect(pitch).contains(x, y):
                return pitch
        return None

    def velocity_at(self, pitch: int, y: float) -> int:
        rect = self.key_rect(pitch)
        depth = (y - rect.top()) / max(1.0, rect.height())
        return max(1, min(127, int(40 + 87 * depth)))

    # -------------------------------------------------------- state shown

    def set_held(self, pitches) -> None:
        pitches = set(pitches)
        if pitches != self.held:
            self.held = pitches
            self.update()

    def set_model_range(self, low: int, high: int) -> None:
        self.model_range = (low, high)
        self.setToolTip(f"The model generates {note_name(low)}-{note_name(high)}; "
                        "keys outside are re-pitched from the nearest generated note (shaded)")
        self.update()

    def outside_model(self, pitch: int) -> bool:
        return self.model_range is not None and not self.model_range[0] <= pitch <= self.model_range[1]

    def set_marked_base(self, base: int | None) -> None:
        self.marked_base = base
        self.update()

    # -------------------------------------------------------- painting

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setFont(QFont(self.font().family(), 7))
        for pitch in self.white_keys():
            self._paint_key(painter, pitch, QColor("#d8d8d2" if self.outside_model(pitch) else "#f6f6f2"))
        for pitch in range(self.low, self.high + 1):
            if is_black(pitch):
                self._paint_key(painter, pitch, QColor("#4a4d56" if self.outside_model(pitch) else "#22242a"))
        painter.end()

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
