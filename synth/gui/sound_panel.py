"""The panel beside the pad: the sound of the timbre (gain, attack, release, and "character" on bundles that play the
flow sampler; the point is the pad's), where the cursor is, what is near it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel

from synth.timbre import ATTACK_MS_RANGE, CHARACTER_RANGE, GAIN_DB_RANGE, RELEASE_MS_RANGE, Timbre

HELP = ("Drag on the map to move the timbre; arrows nudge it (Shift: more).\n"
        "Play: a w s e d f t g y h u j k; z / x: octave down / up. Esc: panic.")


class SoundPanel(QGroupBox):
    soundChanged = Signal(float, float, float)  # gain dB, attack ms, release ms
    characterChanged = Signal(float)  # the flow sampler's guidance, 0-8
    edited = Signal(str)  # the player changed "gain", "attack", "release" or "character" (one undo step per run)

    def __init__(self, gain_db: float, attack_ms: float, release_ms: float, parent=None) -> None:
        super().__init__("Sound", parent)
        self.gain_spin = _spin(*GAIN_DB_RANGE, 0.5, " dB", gain_db)
        self.attack_spin = _spin(*ATTACK_MS_RANGE, 1.0, " ms", attack_ms)
        self.release_spin = _spin(*RELEASE_MS_RANGE, 10.0, " ms", release_ms)
        self.character_spin = _spin(*CHARACTER_RANGE, 0.25, "", 1.0)
        self.character_spin.setToolTip(
            "Character: how strongly the model leans into the timbre at the cursor (the flow sampler's guidance).\n"
            "0 = loose, 1 = plain, higher = more pronounced and brighter. Changing it generates the notes again.")
        self._character_available = False
        self.regions_check = QCheckBox("Show family regions")
        self.regions_check.setChecked(True)
        self.point_label = QLabel()
        self.nearest_label = QLabel()
        self.nearest_label.setWordWrap(True)
        self.nearest_label.setTextFormat(Qt.RichText)
        self.octave_label = QLabel()
        self._lay_out()
        for spin, field in ((self.gain_spin, "gain"), (self.attack_spin, "attack"), (self.release_spin, "release")):
            spin.valueChanged.connect(self._emit_sound)
            spin.valueChanged.connect(lambda _value, field=field: self.edited.emit(field))
        self.character_spin.valueChanged.connect(self._emit_character)
        self.character_spin.valueChanged.connect(lambda _value: self.edited.emit("character"))
        self.set_character_available(False)
        self.setFixedWidth(270)

    def _lay_out(self) -> None:
        form = QFormLayout(self)
        self._form = form
        form.addRow("Gain", self.gain_spin)
        form.addRow("Attack", self.attack_spin)
        form.addRow("Release", self.release_spin)
        form.addRow("Character", self.character_spin)
        form.addRow(self.regions_check)
        form.addRow("Point", self.point_label)
        form.addRow("Near", self.nearest_label)
        form.addRow("Keys", self.octave_label)
        help_text = QLabel(HELP)
        help_text.setWordWrap(True)
        help_text.setStyleSheet("color: #888;")
        form.addRow(help_text)

    def timbre_at(self, x: float, y: float) -> Timbre:
        """The timbre these controls make at the point (x, y); ``character`` None when the control is hidden."""
        return Timbre(x, y, self.gain_spin.value(), self.attack_spin.value(), self.release_spin.value(),
                      self.character())

    def set_timbre(self, timbre: Timbre) -> None:
        """Show a timbre's gain and envelope (emits ``soundChanged`` once), then its character when it has one and
        the control is shown (emits ``characterChanged``). The point is the pad's to show."""
        for spin, value in ((self.gain_spin, timbre.gain_db), (self.attack_spin, timbre.attack_ms),
                            (self.release_spin, timbre.release_ms)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self._emit_sound()
        self.set_character(timbre.character)

    # ------------------------------------------------------------ character (flow bundles only)

    def set_character_available(self, available: bool, default: float | None = None) -> None:
        """Show the control (at ``default``) when the bundle plays the flow sampler; hide it otherwise."""
        self._character_available = bool(available)
        self._form.setRowVisible(self.character_spin, self._character_available)
        if available and default is not None:
            self.set_character(default, emit=False)

    def character(self) -> float | None:
        return self.character_spin.value() if self._character_available else None

    def set_character(self, value: float | None, emit: bool = True) -> None:
        if not self._character_available or value is None:
            return
        self.character_spin.blockSignals(True)
        self.character_spin.setValue(float(value))
        self.character_spin.blockSignals(False)
        if emit:
            self._emit_character()

    def _emit_character(self) -> None:
        if self._character_available:
            self.characterChanged.emit(self.character_spin.value())

    def show_point(self, x: float, y: float, near: list[tuple[str, str]]) -> None:
        self.point_label.setText(f"x {x:+.3f}   y {y:+.3f}")
        names = [f"{name} <span style='color:#888'>({family})</span>" for name, family in near]
        self.nearest_label.setText("<br>".join(names) or "—")

    def show_octave(self, text: str) -> None:
        self.octave_label.setText(text)

    def _emit_sound(self) -> None:
        self.soundChanged.emit(self.gain_spin.value(), self.attack_spin.value(), self.release_spin.value())


def _spin(low: float, high: float, step: float, suffix: str, value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setSuffix(suffix)
    spin.setValue(value)
    spin.setKeyboardTracking(False)
    return spin
