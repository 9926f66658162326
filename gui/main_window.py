"""The instrument window: preset bar on top, the XY pad with a sound panel, the keyboard below, status at the bottom.

Everything it plays goes through the engine adapter (``gui.engine_adapter``). The letter row plays notes whenever
the window is active and no text field has focus; Esc is panic (in the window and the settings dialog).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractSpinBox, QApplication, QComboBox, QHBoxLayout, QLineEdit, QMainWindow, QMessageBox, QPlainTextEdit,
    QTextEdit, QVBoxLayout, QWidget,
)

from gui.keyboard import ComputerKeys, PianoKeyboard, note_name
from gui.mapdata import nearest, to_map_points
from gui.pad import TimbrePad
from gui.presetbar import PresetBar
from gui.settings import SettingsDialog
from gui.sound_panel import SoundPanel
from gui.status import EngineStatus
from gui.throttle import Throttle
from synth.presets import Preset, PresetEntry, PresetLibrary, family_centroids, on_map

POLL_MS = 50
TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)


class MainWindow(QMainWindow):
    def __init__(self, adapter, library: PresetLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.adapter = adapter
        self.setWindowTitle(f"pGESAM synth — {adapter.model_name}")
        self.gui_held: set[int] = set()
        self.pad = TimbrePad()
        self.keyboard = PianoKeyboard(*self._keyboard_range())
        self.keyboard.set_model_range(*adapter.pitch_range)
        self.keys = ComputerKeys(self.play_note, self.stop_note)
        self.keys.on_octave_changed = self._on_octave_changed
        self.preset_bar = PresetBar(library, self.current_preset)
        self.preset_bar.place = self._place_on_map
        self.point_throttle = Throttle(adapter.set_point, interval_ms=20, parent=self)
        self.sound_panel = SoundPanel(*adapter.sound())
        self._build_layout()
        self._build_status_bar()
        self._build_menus()
        from gui.export_dialogs import install_export_actions  # Tools: export timbre, render MIDI file
        install_export_actions(self)
        self._connect()
        self._start_pad()
        self._poll_timer = QTimer(self)
        self._poll_timer.timeout.connect(self.poll_engine)
        self._poll_timer.start(POLL_MS)
        QApplication.instance().installEventFilter(self)
        self.resize(1120, 760)
        self.pad.setFocus()  # typing plays at once

    # ------------------------------------------------------------ building

    def _keyboard_range(self) -> tuple[int, int]:
        """Four octaves from C2 (MIDI 36) to C6, widened to the model's range when it is wider (at most C1-C8)."""
        low, high = self.adapter.pitch_range
        low, high = max(24, min(low, 36)), min(108, max(high, 84))
        return low - low % 12, high - high % 12

    def _build_layout(self) -> None:
        middle = QHBoxLayout()
        middle.addWidget(self.pad, 1)
        middle.addWidget(self.sound_panel)
        body = QVBoxLayout()
        body.addWidget(self.preset_bar)
        body.addLayout(middle, 1)
        body.addWidget(self.keyboard)
        central = QWidget()
        central.setLayout(body)
        self.setCentralWidget(central)

    def _build_status_bar(self) -> None:
        self.status = EngineStatus(self.statusBar(), self.adapter)
        self.cache_bar = self.status.cache_bar
        self.device_label = self.status.device_label
        self.fallback_label = self.status.fallback_label

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.settings_action = _action(self, "&Settings…", self.open_settings, QKeySequence.Preferences)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(_action(self, "&Quit", self.close, QKeySequence.Quit))
        play_menu = self.menuBar().addMenu("&Play")
        play_menu.addAction(_action(self, "&Panic (all notes off)", self.panic))
        play_menu.addAction(_action(self, "Octave &down (z)", lambda: self.keys.shift_octave(-1)))
        play_menu.addAction(_action(self, "Octave &up (x)", lambda: self.keys.shift_octave(1)))
        self.tools_menu = self.menuBar().addMenu("&Tools")
        self.tools_menu.menuAction().setVisible(False)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(_action(self, "&About", self._about))
        panic = QShortcut(QKeySequence(Qt.Key_Escape), self)  # in dialogs Esc keeps meaning "cancel"
        panic.setContext(Qt.WindowShortcut)
        panic.activated.connect(self.panic)
        self.add_tool("&Prerender map grid…", self.prerender_grid)

    def prerender_grid(self):
        """Tools > Prerender map grid: a cancellable background job (see ``gui.prerender``)."""
        from gui.prerender import start_prerender

        self.grid_job = start_prerender(self)
        return self.grid_job

    def add_tool(self, text: str, slot) -> QAction:
        """For features that add themselves to the window (export, render, prerender)."""
        action = _action(self, text, slot)
        self.tools_menu.addAction(action)
        self.tools_menu.menuAction().setVisible(True)
        return action

    def _connect(self) -> None:
        self.pad.pointChanged.connect(self._on_point)
        self.keyboard.noteOn.connect(self.play_note)
        self.keyboard.noteOff.connect(self.stop_note)
        self.preset_bar.presetChosen.connect(self.apply_preset)
        self.preset_bar.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.sound_panel.soundChanged.connect(self.adapter.set_sound)
        self.sound_panel.regions_check.toggled.connect(self.pad.set_regions_visible)

    def _start_pad(self) -> None:
        empty_text = "Demo tones: no model loaded\n(x: darker to brighter, y: fuller to hollower)"
        self.pad.set_instruments(to_map_points(self.adapter.instruments), empty_bounds=self.adapter.map_bounds,
                                 empty_text=empty_text)
        x, y = self.adapter.point
        self.pad.set_point(x, y, emit=False)
        self._show_point(x, y)
        self._on_octave_changed(self.keys.base)
        errors = self.preset_bar.library.errors
        if errors:
            self.statusBar().showMessage(f"{len(errors)} preset file(s) skipped: {errors[0].message}", 15000)

    # ------------------------------------------------------------ playing

    def play_note(self, pitch: int, velocity: int) -> None:
        self.gui_held.add(pitch)
        self.adapter.note_on(pitch, velocity)
        self._show_held()

    def stop_note(self, pitch: int) -> None:
        self.gui_held.discard(pitch)
        self.adapter.note_off(pitch)
        self._show_held()

    def panic(self) -> None:
        self.keys.held.clear()
        self.gui_held.clear()
        self.adapter.panic()
        self._show_held()
        self.statusBar().showMessage("Panic: all notes off", 3000)

    def _show_held(self) -> None:
        self.keyboard.set_held(self.gui_held | set(self.adapter.held_notes()))

    def _on_octave_changed(self, base: int) -> None:
        self.keyboard.set_marked_base(base)
        self.sound_panel.show_octave(f"a = {note_name(base)} (MIDI {base})")

    # ------------------------------------------------------------ timbre and presets

    def _on_point(self, x: float, y: float) -> None:
        self.point_throttle.push(x, y)
        self._show_point(x, y)

    def _show_point(self, x: float, y: float) -> None:
        near = [(p.name, p.family) for p, _ in nearest(self.pad.points, x, y)]
        self.sound_panel.show_point(x, y, near)

    def apply_preset(self, preset: Preset) -> None:
        self.sound_panel.set_sound(preset.gain_db, preset.attack_ms, preset.release_ms)
        self.pad.set_point(preset.x, preset.y)
        self.point_throttle.flush()
        self.statusBar().showMessage(f"Preset “{preset.name}”", 4000)

    def _place_on_map(self, entry: PresetEntry) -> Preset:
        """Factory presets made for another model's map sit at their family's centroid on this one."""
        if entry.is_user:
            return entry.preset
        return on_map(entry.preset, family_centroids(self.adapter.instruments), self.adapter.map_hash)

    def current_preset(self, name: str) -> Preset:
        x, y = self.pad.point
        near = nearest(self.pad.points, x, y, 1)
        tags = (near[0][0].family,) if near else ()
        gain_db, attack_ms, release_ms = self.sound_panel.sound()
        return Preset(name=name, x=round(x, 4), y=round(y, 4), gain_db=gain_db, attack_ms=attack_ms,
                      release_ms=release_ms, tags=tags, map_hash=self.adapter.map_hash)

    # ------------------------------------------------------------ engine status

    def poll_engine(self) -> None:
        self.adapter.poll_meters()
        self.status.update(self.adapter)
        self._show_held()
        error = self.adapter.take_error()
        if error:
            self.statusBar().showMessage(error, 10000)

    def open_settings(self) -> SettingsDialog:
        self.keys.release_all()
        dialog = SettingsDialog(self.adapter, self)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.open()
        self.settings_dialog = dialog
        return dialog

    def _about(self) -> None:
        QMessageBox.about(self, "pGESAM synth", f"pGESAM neural synthesizer\nModel: {self.adapter.model_name}\n"
                          f"Generation on {self.adapter.generation_device}")

    # ------------------------------------------------------------ computer keyboard and focus

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.KeyPress and event.key() == Qt.Key_Escape and _in_window(watched, self):
            self.panic()  # normally the Esc shortcut fires first; this covers a window the system never activated
            return True
        if kind in (QEvent.KeyPress, QEvent.KeyRelease) and self._keys_for_us(watched):
            if kind == QEvent.KeyPress:
                return self.keys.press(event.key(), event.isAutoRepeat())
            return self.keys.release(event.key(), event.isAutoRepeat())
        if kind == QEvent.ApplicationDeactivate:
            self.keys.release_all()
        return False

    def _keys_for_us(self, watched: QObject) -> bool:
        if not _in_window(watched, self):
            return False
        if event_modifiers_block():
            return False
        focus = QApplication.focusWidget()
        if isinstance(focus, TEXT_INPUTS) or (isinstance(focus, QComboBox) and focus.isEditable()):
            return False
        return True

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.ActivationChange and not self.isActiveWindow():
            self.keys.release_all()
        super().changeEvent(event)

    def focusOutEvent(self, event) -> None:
        self.keys.release_all()
        super().focusOutEvent(event)

    def closeEvent(self, event) -> None:
        self._poll_timer.stop()
        QApplication.instance().removeEventFilter(self)
        self.keys.release_all()
        self.adapter.panic()
        super().closeEvent(event)


def _in_window(watched: QObject, window: QWidget) -> bool:
    return isinstance(watched, QWidget) and watched.window() is window


def event_modifiers_block() -> bool:
    """Ctrl/Alt/Meta chords are shortcuts, not notes."""
    modifiers = QApplication.keyboardModifiers()
    return bool(modifiers & (Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier))


def _action(parent: QWidget, text: str, slot, shortcut=None) -> QAction:
    action = QAction(text, parent)
    action.triggered.connect(slot)
    if shortcut is not None:
        action.setShortcut(shortcut)
    return action
