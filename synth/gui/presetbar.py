"""The preset bar: choose, step through, save, save as, revert, rename and delete presets; A/B compare.

The bar owns no sound state: ``current_state(name)`` (given by the window) turns what is playing into a Preset to
save, and ``presetChosen`` hands a loaded preset back to the window, which keeps the undo history and tells the bar
whether the sound differs from the preset (``set_modified``: the "modified" mark, Revert enabled). Switching presets
never asks: the edit stays in the undo history (Ctrl+Z brings it back), as soft synths that let players browse while
they play do. Factory presets are never written: saving under a factory name saves "<name> (mine)". Errors are
shown, never raised.
"""

from __future__ import annotations

import sys
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QHBoxLayout, QInputDialog, QLabel, QMessageBox, QPushButton,
                               QWidget)

from synth.presets import Preset, PresetEntry, PresetError, PresetLibrary

USER_MARK = "★ "
SIDES = ("A", "B")


class PresetBar(QWidget):
    presetChosen = Signal(object)  # Preset, placed on the current map
    aboutToLoad = Signal()  # before the selection changes (the window records the edit it leaves in the history)
    message = Signal(str)
    saved = Signal(str)  # the name a save wrote (the window's reference for "modified")
    listChanged = Signal()  # presets added, renamed or removed (the map redraws them)
    revertRequested = Signal()
    command = Signal(object)  # a QUndoCommand for the window's history (deleting a preset)
    compareChosen = Signal(str)  # "A" or "B"
    compareCopy = Signal()  # copy the side shown to the other one

    def __init__(self, library: PresetLibrary, current_state: Callable[[str], Preset], parent=None) -> None:
        super().__init__(parent)
        self.library = library
        self._current_state = current_state
        self.current_name: str | None = None
        self.modified = False
        self.place: Callable[[PresetEntry], Preset] = lambda entry: entry.preset  # the window puts it on its map
        self.last_error: str | None = None
        self.error_box: QMessageBox | None = None
        self._shown_errors: tuple = ()
        self.combo = QComboBox()
        self.combo.setMinimumWidth(180)
        self.combo.setPlaceholderText("Choose a preset…")
        self.combo.activated.connect(self._on_activated)
        self.modified_label = QLabel("● modified")
        self.modified_label.setStyleSheet("color: #e8a33d; font-weight: bold;")
        self.modified_label.setToolTip("The sound differs from the preset as stored: Save keeps it, Revert "
                                       "discards it, Ctrl+Z steps back")
        self.modified_label.setVisible(False)
        self.buttons = {
            "prev": self._button("◀", "Previous preset", lambda: self.step(-1)),
            "next": self._button("▶", "Next preset", lambda: self.step(1)),
            "save": self._button("Save", "Save the current sound under this preset's name (a factory preset is "
                                         "saved as your own copy)", self.save),
            "save_as": self._button("Save as…", "Save the current sound as a new preset", self.save_as),
            "revert": self._button("Revert", "Discard your changes: back to the preset as stored (factory presets "
                                             "as shipped)", self.revertRequested.emit),
            "rename": self._button("Rename…", "Rename this user preset", self.rename),
            "delete": self._button("Delete", "Delete this user preset (Ctrl+Z brings it back)", self.delete),
        }
        for key in ("prev", "next"):
            self.buttons[key].setFixedWidth(34)
        self.buttons["revert"].setEnabled(False)
        self.ab_buttons = {side: self._button(side, f"Compare: hear sound {side} (each side keeps its own sound "
                                                    f"and undo history)", None) for side in SIDES}
        self.ab_group = QButtonGroup(self)
        self.ab_group.setExclusive(True)
        for side, button in self.ab_buttons.items():
            button.setCheckable(True)
            button.setFixedWidth(30)
            button.clicked.connect(lambda _checked=False, side=side: self.compareChosen.emit(side))
            self.ab_group.addButton(button)
        self.ab_buttons["A"].setChecked(True)
        self.copy_button = self._button("Copy A→B", "Copy the sound shown to the other side", self.compareCopy.emit)
        self._layout_widgets()
        self.refresh()

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        if slot is not None:
            button.clicked.connect(lambda _checked=False: slot())
        return button

    def _layout_widgets(self) -> None:
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(QLabel("Preset"))
        layout.addWidget(self.buttons["prev"])
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.buttons["next"])
        layout.addWidget(self.modified_label)
        for key in ("save", "save_as", "revert", "rename", "delete"):
            layout.addWidget(self.buttons[key])
        layout.addSpacing(10)
        compare = QLabel("Compare")
        compare.setStyleSheet("color: #888;")
        layout.addWidget(compare)
        for side in SIDES:
            layout.addWidget(self.ab_buttons[side])
        layout.addWidget(self.copy_button)

    # ------------------------------------------------------------ listing

    def refresh(self, name: str | None = None) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        for entry in self.library.entries:
            self.combo.addItem((USER_MARK if entry.is_user else "") + entry.name, entry.name)
        self.combo.blockSignals(False)
        self.select(name if name is not None else self.current_name)
        errors = tuple((str(e.path), e.message) for e in self.library.errors)
        tip = "Presets: yours (★) first, then the factory ones"
        if errors:
            tip += "\n\n" + skipped_message(self.library.errors) + "\n" + "\n".join(m for _, m in errors)
        self.combo.setToolTip(tip)
        if errors and errors != self._shown_errors:
            self.message.emit(skipped_message(self.library.errors))
            for _, text in errors:
                print(f"run_synth: skipped preset file {text}", file=sys.stderr)
        self._shown_errors = errors
        self.listChanged.emit()

    def select(self, name: str | None) -> None:
        index = self.combo.findData(name) if name is not None else -1
        self.combo.setCurrentIndex(index)
        self.current_name = name if index >= 0 else None
        entry = self.library.find(name) if name else None
        user = entry is not None and entry.is_user
        self.buttons["rename"].setEnabled(user)
        self.buttons["delete"].setEnabled(user)
        self.buttons["revert"].setEnabled(self.modified and entry is not None)

    def set_modified(self, modified: bool) -> None:
        self.modified = bool(modified)
        self.modified_label.setVisible(self.modified)
        self.buttons["revert"].setEnabled(self.modified and self.current_name is not None)

    def show_compare(self, side: str) -> None:
        self.ab_buttons[side].setChecked(True)
        other = SIDES[1 - SIDES.index(side)]
        self.copy_button.setText(f"Copy {side}→{other}")

    def load(self, name: str) -> None:
        entry = self.library.find(name)
        if entry is None:
            self._error(f"no preset named {name!r}")
            return
        self.aboutToLoad.emit()
        self.select(name)
        self.presetChosen.emit(self.place(entry))

    def _on_activated(self, index: int) -> None:
        self.load(self.combo.itemData(index))

    def step(self, direction: int) -> None:
        preset = self.library.neighbour(self.current_name, direction)
        if preset is not None:
            self.load(preset.name)

    # ------------------------------------------------------------ changes

    def save(self) -> None:
        name = self.current_name
        entry = self.library.find(name) if name else None
        if entry is None or not entry.is_user:
            self.save_as()
            return
        self._apply(lambda: self.library.save(self._current_state(name)), f"Saved preset “{name}”")

    def save_as(self) -> None:
        current = self.library.find(self.current_name) if self.current_name else None
        if current is not None and not current.is_user:
            suggestion = self.library.copy_name(current.name)
        else:
            suggestion = f"{self.current_name} (mine)" if self.current_name else "My sound"
        name = self._ask_name("Save preset as", suggestion)
        if name is None:
            return
        overwrite = False
        existing = self.library.find(name)
        if existing is not None and existing.is_user:
            if not self._confirm(f"Replace your preset “{name}”?"):
                return
            overwrite = True
        if self.library.is_factory_name(name):
            def done(entry):
                return (f"“{name}” is a factory preset and stays as shipped: your version is saved as "
                        f"“{entry.name}”")
        else:
            def done(entry):
                return f"Saved preset “{entry.name}”"
        self._apply(lambda: self.library.save_as(self._current_state(name), name, overwrite=overwrite), done)

    def rename(self) -> None:
        old = self.current_name
        new = self._ask_name("Rename preset", old or "")
        if old is None or new is None or new == old:
            return
        self._apply(lambda: self.library.rename(old, new), f"Renamed “{old}” to “{new}”")

    def delete(self) -> None:
        name = self.current_name
        entry = self.library.find(name) if name else None
        if entry is None or not self._confirm(f"Delete your preset “{name}”?"):
            return
        if self.delete_now(name):
            from synth.gui.history import DeletePresetCommand

            self.command.emit(DeletePresetCommand(self, entry.preset))
            self.message.emit(f"Deleted preset “{name}” (Ctrl+Z brings it back)")

    def delete_now(self, name: str) -> bool:
        try:
            self.library.delete(name)
        except PresetError as exc:
            self._error(str(exc))
            return False
        if self.current_name == name:
            self.current_name = None
        self.refresh()
        return True

    def restore_deleted(self, preset: Preset) -> None:
        """Undo of a delete: the preset is written back under its name."""
        try:
            entry = self.library.save(preset)
        except PresetError as exc:
            self._error(str(exc))
            return
        self.refresh()
        self.message.emit(f"Preset “{entry.name}” is back")

    def _apply(self, change, done_message) -> None:
        try:
            entry = change()
        except PresetError as exc:
            self._error(str(exc))
            return
        self.refresh(name=entry.name)
        self.saved.emit(entry.name)
        self.message.emit(done_message(entry) if callable(done_message) else done_message)

    # ------------------------------------------------------------ dialogs (tests replace these)

    def _ask_name(self, title: str, suggestion: str) -> str | None:
        name, ok = QInputDialog.getText(self, title, "Name:", text=suggestion)
        name = name.strip()
        return name if ok and name else None

    def _confirm(self, question: str) -> bool:
        return QMessageBox.question(self, "Presets", question) == QMessageBox.Yes

    def _error(self, text: str) -> None:
        """Shown without blocking: the player can keep playing while the message is up."""
        self.message.emit(text)
        self.last_error = text
        box = QMessageBox(QMessageBox.Warning, "Presets", text, QMessageBox.Ok, self)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()
        self.error_box = box


def skipped_message(errors) -> str:
    """One line naming every skipped preset file: "3 preset files skipped: a.json (not valid JSON), b.json (...)"."""
    parts = []
    for error in errors:
        reason = error.message
        prefix = f"{error.path}: "
        reason = reason[len(prefix):] if reason.startswith(prefix) else reason
        parts.append(f"{error.path.name} ({reason.split(' (')[0][:60]})")
    count = len(parts)
    return f"{count} preset file{'s' if count != 1 else ''} skipped: " + ", ".join(parts)
