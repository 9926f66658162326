"""The instrument window: preset bar on top (with A/B compare), the XY pad over the timbre map with its legend and
a sound panel, the keyboard below, a status strip at the bottom (audio device, latency, level, xruns, generation).

Everything it plays goes through the engine adapter (``synth.gui.engine_adapter``). The letter row plays notes whenever
the window is active and no text field has focus; Esc is panic (in the window and the settings dialog). Ctrl+Z /
Ctrl+Shift+Z undo and redo pad moves, sound edits and preset changes (``synth.gui.history``); the preset shown is marked
"modified" while the sound differs from it. At first launch a factory preset is chosen (the session restores the
last sound afterwards, see ``synth.gui.session``).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut, QUndoGroup, QUndoStack
from PySide6.QtWidgets import (
    QAbstractSpinBox, QApplication, QComboBox, QHBoxLayout, QLineEdit, QMainWindow, QMessageBox, QPlainTextEdit,
    QTextEdit, QVBoxLayout, QWidget,
)

from synth.gui.history import SoundState, StateCommand
from synth.gui.keyboard import ComputerKeys, PianoKeyboard, note_name
from synth.gui.midi_control import MidiControl
from synth.gui.mapdata import family_label, nearest, to_map_points
from synth.gui.pad import TimbrePad, sounding_labels
from synth.gui.presetbar import PresetBar, skipped_message
from synth.gui.settings import SettingsDialog
from synth.gui.sound_panel import SoundPanel
from synth.gui.status import StatusStrip
from synth.gui.throttle import Throttle
from synth.presets import Preset, PresetEntry, PresetLibrary, family_centroids, on_map
from synth.timbre import Timbre

POLL_MS = 50
TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)
SIDES = ("A", "B")


class MainWindow(QMainWindow):
    def __init__(self, adapter, library: PresetLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.adapter = adapter
        self.gui_held: dict[int, int] = {}  # pitch -> velocity of notes played from the window
        self.pad = TimbrePad()
        self.keyboard = PianoKeyboard(*self._keyboard_range())
        self.keyboard.set_model_range(*adapter.pitch_range)
        self.keys = ComputerKeys(self.play_note, self.stop_note)
        self.keys.on_octave_changed = self._on_octave_changed
        self.preset_bar = PresetBar(library, self.current_preset)
        self.preset_bar.place = self._place_on_map
        self.point_throttle = Throttle(adapter.set_point, interval_ms=20, parent=self)
        self.sound_panel = SoundPanel(*adapter.sound())
        self.default_character = self._bundle_character()
        self.sound_panel.set_character_available(self.default_character is not None, self.default_character)
        self._centroids = family_centroids(adapter.instruments)
        self.undo_group = QUndoGroup(self)
        self.undo_stacks = {side: QUndoStack(self) for side in SIDES}
        for stack in self.undo_stacks.values():
            self.undo_group.addStack(stack)
        self.undo_group.setActiveStack(self.undo_stacks["A"])
        self.compare_side = "A"
        self.compare_states: dict[str, SoundState | None] = {side: None for side in SIDES}
        self._applying = False
        self._committed: SoundState | None = None
        self._left_edit: str | None = None
        self._build_layout()
        self._build_menus()
        from synth.gui.export_dialogs import install_export_actions  # Tools: export timbre, render MIDI file
        install_export_actions(self)
        self._connect()
        self._start_pad()
        self.midi_control = MidiControl(self)
        self._poll_timer = QTimer(self)
        self._poll_timer.timeout.connect(self.poll_engine)
        self._poll_timer.start(POLL_MS)
        QApplication.instance().installEventFilter(self)
        self.resize(1180, 780)
        self.pad.setFocus()  # typing plays at once

    # ------------------------------------------------------------ building

    def _keyboard_range(self) -> tuple[int, int]:
        """Four octaves from C2 (MIDI 36) to C6, widened to the model's range when it is wider (at most C1-C8)."""
        low, high = self.adapter.pitch_range
        low, high = max(24, min(low, 36)), min(108, max(high, 84))
        return low - low % 12, high - high % 12

    def _build_layout(self) -> None:
        self.status_strip = StatusStrip(self.adapter)
        self.cache_bar = self.status_strip.cache_bar
        self.device_label = self.status_strip.generation_label
        self.fallback_label = self.status_strip.fallback_label
        map_column = QVBoxLayout()
        map_column.setSpacing(0)
        map_column.addWidget(self.pad, 1)
        map_column.addWidget(self.pad.legend)  # below the map: never over it, wraps in a narrow window
        middle = QHBoxLayout()
        middle.addLayout(map_column, 1)
        middle.addWidget(self.sound_panel)
        body = QVBoxLayout()
        body.addWidget(self.preset_bar)
        body.addWidget(self.status_strip.banner)
        body.addLayout(middle, 1)
        body.addWidget(self.keyboard)
        body.addWidget(self.status_strip)
        central = QWidget()
        central.setLayout(body)
        self.setCentralWidget(central)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.settings_action = _action(self, "&Settings…", self.open_settings, QKeySequence.Preferences)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(_action(self, "&Quit", self.close, QKeySequence.Quit))
        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = self.undo_group.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence.Undo])
        self.redo_action = self.undo_group.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for action in (self.undo_action, self.redo_action):
            action.setShortcutContext(Qt.WindowShortcut)
            edit_menu.addAction(action)
            self.addAction(action)  # the shortcuts work while the menu bar is hidden or the pad has focus
        edit_menu.addSeparator()
        edit_menu.addAction(_action(self, "Re&vert preset", self.revert_preset))
        edit_menu.addAction(_action(self, "Compare: switch &A/B", self.toggle_compare, QKeySequence("Ctrl+B")))
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
        # No "prerender" tool (issue 19): held notes follow a drag with previews, nothing needs preparing. A grid
        # made with `synth prerender` is still used when it exists.

    def add_tool(self, text: str, slot) -> QAction:
        """For features that add themselves to the window (export, render)."""
        action = _action(self, text, slot)
        self.tools_menu.addAction(action)
        self.tools_menu.menuAction().setVisible(True)
        return action

    def _connect(self) -> None:
        self.pad.pointChanged.connect(self._on_point)
        self.pad.moveFinished.connect(self._commit)
        self.keyboard.noteOn.connect(self.play_note)
        self.keyboard.noteOff.connect(self.stop_note)
        bar = self.preset_bar
        bar.aboutToLoad.connect(self._before_preset_load)
        bar.presetChosen.connect(self.apply_preset)
        bar.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        bar.saved.connect(self._on_saved)
        bar.listChanged.connect(self._draw_presets)
        bar.revertRequested.connect(self.revert_preset)
        bar.command.connect(lambda command: self.undo_group.activeStack().push(command))
        bar.compareChosen.connect(self.switch_compare)
        bar.compareCopy.connect(self.copy_compare)
        self.sound_panel.soundChanged.connect(self.adapter.set_sound)
        self.sound_panel.soundChanged.connect(lambda *_: self._update_modified())
        self.sound_panel.characterChanged.connect(self._set_character)
        self.sound_panel.edited.connect(self._commit)
        self.sound_panel.regions_check.toggled.connect(self.pad.set_regions_visible)
        self.status_strip.settingsRequested.connect(self.open_settings)

    def _start_pad(self) -> None:
        empty_text = "Demo tones: no model loaded\n(x: darker to brighter, y: fuller to hollower)"
        self.pad.set_instruments(to_map_points(self.adapter.instruments), empty_bounds=self.adapter.map_bounds,
                                 empty_text=empty_text)
        x, y = self.adapter.point
        self.pad.set_point(x, y, emit=False)
        self._show_point(x, y)
        self._on_octave_changed(self.keys.base)
        self._draw_presets()
        first = self.preset_bar.library.first_launch_entry({p.family for p in self.pad.points})
        if first is not None:  # the session (restored after this) puts the last sound back on later launches
            self.preset_bar.load(first.name)
        self.reset_history()
        errors = self.preset_bar.library.errors
        if errors:
            self.statusBar().showMessage(skipped_message(errors), 15000)

    # ------------------------------------------------------------ playing

    def play_note(self, pitch: int, velocity: int) -> None:
        self.gui_held[pitch] = velocity
        self.adapter.note_on(pitch, velocity)
        self._show_held()

    def stop_note(self, pitch: int) -> None:
        self.gui_held.pop(pitch, None)
        self.adapter.note_off(pitch)
        self._show_held()

    def panic(self) -> None:
        self.keys.held.clear()
        self.gui_held.clear()
        self.adapter.panic()
        self._show_held()
        self.statusBar().showMessage("Panic: all notes off", 3000)

    def _show_held(self) -> None:
        held = set(self.gui_held) | set(self.adapter.held_notes())
        self.keyboard.set_held(held)
        self._show_sounding(held)

    def _show_sounding(self, held: set[int]) -> None:
        """Ring the map point each held note plays from: the point its current note buffer was generated for (the
        cursor once generation has caught up; a grid point or the previous point while it has not)."""
        engine = self.adapter.engine
        points: dict[int, tuple[float, float] | None] = {}
        for pitch in held:
            try:
                point = engine.sounding_point(pitch, self.gui_held.get(pitch, 100))
            except Exception:  # an engine being rebuilt by the settings dialog
                point = None
            points[pitch] = self.pad._clamp(*point) if point is not None else None
        self.pad.set_sounding(sounding_labels(points))

    def _on_octave_changed(self, base: int) -> None:
        self.keyboard.set_marked_base(base)
        self.sound_panel.show_octave(f"a = {note_name(base)} (MIDI {base})")

    # ------------------------------------------------------------ timbre

    def _on_point(self, x: float, y: float) -> None:
        self.point_throttle.push(x, y)
        self._show_point(x, y)
        self._update_modified()

    def _show_point(self, x: float, y: float) -> None:
        near = [(p.label, family_label(p.family)) for p, _ in nearest(self.pad.points, x, y)]
        self.sound_panel.show_point(x, y, near)

    def _bundle_character(self) -> float | None:
        """The bundle's guidance when it plays the flow sampler (the "character" control), else None (hidden)."""
        return self.adapter.character

    def _set_character(self, value: float) -> None:
        """The flow sampler's guidance; notes made with the old one are dropped and the current point generated
        again (``Engine.set_character``)."""
        current = self.adapter.character
        if current is None or self.default_character is None or float(current) == float(value):
            self._update_modified()
            return
        try:
            self.adapter.set_character(float(value))
        except Exception as exc:
            self.statusBar().showMessage(f"Could not set the character: {exc}", 8000)
        self._update_modified()

    # ------------------------------------------------------------ presets

    def _place_on_map(self, entry: PresetEntry) -> Preset:
        """Factory presets made for another model's map sit at their family's centroid on this one."""
        if entry.is_user:
            return entry.preset
        return on_map(entry.preset, self._centroids, self.adapter.map_hash)

    def timbre(self) -> Timbre:
        """What plays now: the pad's point with the sound panel's gain, envelope and character."""
        return self.sound_panel.timbre_at(*self.pad.point)

    def show_timbre(self, timbre: Timbre) -> None:
        """Put a whole timbre on the window (sound panel, then the pad's point); the engine follows."""
        self.sound_panel.set_timbre(timbre)
        self.pad.set_point(timbre.x, timbre.y)
        self.point_throttle.flush()

    def preset_timbre(self) -> Timbre:
        """The timbre as a preset keeps it: the point to 4 decimals, no character at the bundle's default (the
        preset then follows the default of whatever bundle plays it)."""
        timbre = self.timbre()
        character = timbre.character
        if character is not None and self.default_character is not None and character == self.default_character:
            character = None
        return replace(timbre, x=round(timbre.x, 4), y=round(timbre.y, 4), character=character)

    def current_preset(self, name: str) -> Preset:
        x, y = self.pad.point
        near = nearest(self.pad.points, x, y, 1)
        tags = (near[0][0].family,) if near else ()
        return Preset(name, self.preset_timbre(), tags=tags, map_hash=self.adapter.map_hash)

    def _played(self, preset: Preset) -> Timbre:
        """A preset's timbre as this window plays it: its point inside the pad, the bundle's default character
        when it has none (None where the bundle has no character control)."""
        timbre = preset.timbre
        character = None
        if self.default_character is not None:
            character = timbre.character if timbre.character is not None else self.default_character
        return replace(timbre.at(*self.pad._clamp(timbre.x, timbre.y)), character=character)

    def _preset_state(self, name: str | None) -> SoundState | None:
        """The sound preset ``name`` stands for on this map (the reference of the "modified" mark)."""
        entry = self.preset_bar.library.find(name) if name else None
        if entry is None:
            return None
        return SoundState(entry.name, self._played(self._place_on_map(entry)))

    def _before_preset_load(self) -> None:
        self._commit("edit")  # an edit not yet in the history becomes its own step, under the preset it was made on
        self._left_edit = self.preset_bar.current_name if self.preset_bar.modified else None

    def apply_preset(self, preset: Preset) -> None:
        self._put_preset_values(preset)
        self._commit("preset", f"preset “{preset.name}”")
        left, self._left_edit = self._left_edit, None
        if left and left != preset.name:
            text = (f"Preset “{preset.name}”. Your changes to “{left}” were not saved: Ctrl+Z brings them back "
                    f"(or Save them first)")
            self.statusBar().showMessage(text, 10000)
        else:
            self.statusBar().showMessage(f"Preset “{preset.name}”", 4000)

    def _put_preset_values(self, preset: Preset) -> None:
        timbre = preset.timbre
        if self.default_character is not None and timbre.character is None:
            timbre = replace(timbre, character=self.default_character)
        self.show_timbre(timbre)
        self._update_modified()

    def revert_preset(self) -> None:
        """Back to the preset as stored (a factory one as shipped: factory files are never written)."""
        name = self.preset_bar.current_name
        entry = self.preset_bar.library.find(name) if name else None
        if entry is None:
            return
        self._commit("edit")
        self._put_preset_values(self._place_on_map(entry))
        self._commit("revert", f"revert “{name}”")
        self.statusBar().showMessage(f"Reverted to “{name}” as stored (Ctrl+Z undoes the revert)", 6000)

    def _on_saved(self, name: str) -> None:
        self._committed = self.sound_state()
        self._update_modified()

    def _draw_presets(self) -> None:
        placed = [self._place_on_map(entry) for entry in self.preset_bar.library.entries]
        self.pad.set_presets([(p.name, *p.timbre.point) for p in placed], self.preset_bar.current_name)

    def _update_modified(self) -> None:
        if self._applying:
            return
        name = self.preset_bar.current_name
        reference = self._preset_state(name)
        modified = reference is not None and not self.sound_state().same_sound(reference)
        self.preset_bar.set_modified(modified)
        self.pad.set_current_preset(name)
        title = f"pGESAM synth — {self.adapter.model_name}"
        if name:
            title += f" — {name}" + (" *" if modified else "")
        self.setWindowTitle(title)

    # ------------------------------------------------------------ undo, redo, A/B

    def sound_state(self) -> SoundState:
        return SoundState(self.preset_bar.current_name, self.timbre())

    def apply_state(self, state: SoundState) -> None:
        """Put a whole sound back (undo, redo, A/B): preset shown, values, point; the engine follows."""
        self._applying = True
        try:
            self.preset_bar.select(state.preset)
            self.show_timbre(state.timbre)
        finally:
            self._applying = False
        self._committed = self.sound_state()
        self._update_modified()

    def _commit(self, kind: str = "edit", text: str | None = None) -> None:
        """One step in the active side's history when the sound changed since the last step."""
        if self._applying:
            return
        now = self.sound_state()
        before = self._committed
        if before is None:
            self._committed = now
            return
        if now == before:
            return
        self._committed = now
        labels = {"drag": "move on the map", "nudge": "nudge on the map", "preset": "preset", "revert": "revert"}
        command = StateCommand(text or labels.get(kind, f"change {kind}"), before, now, self.apply_state, kind)
        self.undo_group.activeStack().push(command)

    def reset_history(self) -> None:
        """Start the history here (after start-up, a restored session): nothing to undo yet."""
        for stack in self.undo_stacks.values():
            stack.clear()
        self.compare_states = {side: None for side in SIDES}
        self._committed = self.sound_state()
        self._update_modified()

    def switch_compare(self, side: str) -> None:
        """Hear side ``side`` of the A/B compare; a side never used starts as a copy of the other."""
        if side == self.compare_side:
            self.preset_bar.show_compare(side)
            return
        self._commit("edit")
        self.compare_states[self.compare_side] = self.sound_state()
        target = self.compare_states[side] or self.compare_states[self.compare_side]
        self.compare_side = side
        self.undo_group.setActiveStack(self.undo_stacks[side])
        self.apply_state(target)
        self.preset_bar.show_compare(side)
        self.statusBar().showMessage(f"Compare: sound {side}", 3000)

    def toggle_compare(self) -> None:
        self.switch_compare("B" if self.compare_side == "A" else "A")

    def copy_compare(self) -> None:
        other = "B" if self.compare_side == "A" else "A"
        self._commit("edit")
        self.compare_states[other] = self.sound_state()
        self.statusBar().showMessage(f"Copied sound {self.compare_side} to {other}", 4000)

    # ------------------------------------------------------------ engine status

    def poll_engine(self) -> None:
        self.adapter.poll_meters()
        self.midi_control.poll(POLL_MS / 1000.0)
        self.status_strip.refresh(self.adapter, POLL_MS / 1000.0)
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
