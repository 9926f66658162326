"""The preset bar: choose, step through, save, save as, rename and delete presets.

The bar owns no sound state: ``current_state(name)`` (given by the window) turns what is playing into a Preset to
save, and ``presetChosen`` hands a loaded preset back to the window. Errors are shown, never raised.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QInputDialog, QLabel, QMessageBox, QPushButton, QWidget

from synth.presets import Preset, PresetEntry, PresetError, PresetLibrary

USER_MARK = "★ "


class PresetBar(QWidget):
    presetChosen = Signal(object)  # Preset
    message = Signal(str)

    def __init__(self, library: PresetLibrary, current_state: Callable[[str], Preset], parent=None) -> None:
        super().__init__(parent)
        self.library = library
        self._current_state = current_state
        self.current_name: str | None = None
        self.place: Callable[[PresetEntry], Preset] = lambda entry: entry.preset  # the window puts it on its map
        self.last_error: str | None = None
        self.error_box: QMessageBox | None = None
        self.combo = QComboBox()
        self.combo.setMinimumWidth(220)
        self.combo.setPlaceholderText("Choose a preset…")
        self.combo.setToolTip("Presets: yours (★) first, then the factory ones")
        self.combo.activated.connect(self._on_activated)
        self.buttons = {
            "prev": self._button("◀", "Previous preset", lambda: self.step(-1)),
            "next": self._button("▶", "Next preset", lambda: self.step(1)),
            "save": self._button("Save", "Save the current sound under this preset's name", self.save),
            "save_as": self._button("Save as…", "Save the current sound as a new preset", self.save_as),
            "rename": self._button("Rename…", "Rename this user preset", self.rename),
            "delete": self._button("Delete", "Delete this user preset", self.delete),
        }
        self._layout_widgets()
        self.refresh()

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    def _layout_widgets(self) -> None:
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Preset"))
        layout.addWidget(self.buttons["prev"])
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.buttons["next"])
        for key in ("save", "save_as", "rename", "delete"):
            layout.addWidget(self.buttons[key])

    # ------------------------------------------------------------ listing

    def refresh(self, name: str | None = None) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        for entry in self.library.entries:
            self.combo.addItem((USER_MARK if entry.is_user else "") + entry.name, entry.name)
        self.combo.blockSignals(False)
        self.select(name if name is not None else self.current_name)
        for error in self.library.errors:
            self.message.emit(f"Skipped preset file: {error.message}")

    def select(self, name: str | None) -> None:
        index = self.combo.findData(name) if name is not None else -1
        self.combo.setCurrentIndex(index)
        self.current_name = name if index >= 0 else None
        entry = self.library.find(name) if name else None
        user = entry is not None and entry.is_user
        self.buttons["rename"].setEnabled(user)
        self.buttons["delete"].setEnabled(user)

    def load(self, name: str) -> None:
        entry = self.library.find(name)
        if entry is None:
            self._error(f"no preset named {name!r}")
            return
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
        self._apply(lambda: self.library.save_as(self._current_state(name), name, overwrite=overwrite),
                    f"Saved preset “{name}”")

    def rename(self) -> None:
        old = self.current_name
        new = self._ask_name("Rename preset", old or "")
        if old is None or new is None or new == old:
            return
        self._apply(lambda: self.library.rename(old, new), f"Renamed “{old}” to “{new}”")

    def delete(self) -> None:
        name = self.current_name
        if name is None or not self._confirm(f"Delete your preset “{name}”?"):
            return
        try:
            self.library.delete(name)
        except PresetError as exc:
            self._error(str(exc))
            return
        self.current_name = None
        self.refresh()
        self.message.emit(f"Deleted preset “{name}”")

    def _apply(self, change, done_message: str) -> None:
        try:
            entry = change()
        except PresetError as exc:
            self._error(str(exc))
            return
        self.refresh(name=entry.name)
        self.message.emit(done_message)

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
