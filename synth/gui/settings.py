"""The settings dialog: audio output, MIDI input, playing feel, master gain with meters, panic.

It reads the current values from the engine adapter and hands the changed ones back with
``adapter.apply_settings(**changes)`` when the player presses OK or Apply. The peak meter and xrun count update live.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
    QProgressBar, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget,
)

from synth.engine.velocity import CURVES

SAMPLE_RATES = (44100, 48000, 88200, 96000)
BLOCK_SIZES = (64, 128, 256, 512, 1024, 2048, 4096)
VELOCITY_CURVES = tuple(CURVES)
METER_FLOOR_DB = -60.0


def latency_text(block_size: int, sample_rate: int) -> str:
    return f"{1000.0 * block_size / sample_rate:.1f} ms per block"


class SettingsDialog(QDialog):
    def __init__(self, adapter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.adapter = adapter
        self.initial = adapter.settings()
        layout = QVBoxLayout(self)
        layout.addWidget(self._audio_group())
        layout.addWidget(self._midi_group())
        layout.addWidget(self._output_group())
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d33;")
        layout.addWidget(self.error_label)
        layout.addWidget(self._buttons())
        self._fill_devices()
        self._fill_midi_ports()
        self._load_values(self.initial)
        self._meter_timer = QTimer(self)
        self._meter_timer.timeout.connect(self.update_meters)
        self._meter_timer.start(50)

    # ------------------------------------------------------------ widgets

    def _audio_group(self) -> QGroupBox:
        box = QGroupBox("Audio output")
        form = QFormLayout(box)
        self.device_combo = QComboBox()
        self.sample_rate_combo = QComboBox()
        for rate in SAMPLE_RATES:
            self.sample_rate_combo.addItem(f"{rate} Hz", rate)
        self.block_size_combo = QComboBox()
        for size in BLOCK_SIZES:
            self.block_size_combo.addItem(str(size), size)
        self.latency_label = QLabel()
        self.sample_rate_combo.currentIndexChanged.connect(self._show_latency)
        self.block_size_combo.currentIndexChanged.connect(self._show_latency)
        form.addRow("Device", self.device_combo)
        form.addRow("Sample rate", self.sample_rate_combo)
        form.addRow("Block size", self.block_size_combo)
        form.addRow("Latency", self.latency_label)
        return box

    def _midi_group(self) -> QGroupBox:
        box = QGroupBox("MIDI input")
        form = QFormLayout(box)
        self.midi_combo = QComboBox()
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self._fill_midi_ports)
        row = QHBoxLayout()
        row.addWidget(self.midi_combo, 1)
        row.addWidget(refresh)
        self.bend_spin = QSpinBox()
        self.bend_spin.setRange(1, 24)
        self.bend_spin.setSuffix(" semitones")
        self.curve_combo = QComboBox()
        self.curve_combo.addItems(VELOCITY_CURVES)
        form.addRow("Port", row)
        form.addRow("Pitch-bend range", self.bend_spin)
        form.addRow("Velocity curve", self.curve_combo)
        return box

    def _output_group(self) -> QGroupBox:
        box = QGroupBox("Output level")
        form = QFormLayout(box)
        self.gain_slider = QSlider(Qt.Horizontal)
        self.gain_slider.setRange(-60, 0)
        self.gain_value = QDoubleSpinBox()
        self.gain_value.setRange(-60.0, 0.0)
        self.gain_value.setSuffix(" dB")
        self.gain_slider.valueChanged.connect(lambda v: self.gain_value.setValue(float(v)))
        self.gain_value.valueChanged.connect(lambda v: self.gain_slider.setValue(round(v)))
        self.gain_value.valueChanged.connect(lambda v: self.adapter.apply_settings(master_gain_db=v))
        gain_row = QHBoxLayout()
        gain_row.addWidget(self.gain_slider, 1)
        gain_row.addWidget(self.gain_value)
        self.peak_meter = QProgressBar()
        self.peak_meter.setRange(int(METER_FLOOR_DB * 10), 0)
        self.peak_meter.setFormat("%v")
        self.peak_meter.setTextVisible(True)
        self.xrun_label = QLabel("0")
        panic = QPushButton("Panic (Esc): all notes off")
        panic.clicked.connect(self.adapter.panic)
        form.addRow("Master gain", gain_row)
        form.addRow("Peak", self.peak_meter)
        form.addRow("Xruns", self.xrun_label)
        form.addRow(panic)
        return box

    def _buttons(self) -> QDialogButtonBox:
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Apply | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.Apply).clicked.connect(self.apply)
        return buttons

    # ------------------------------------------------------------ values

    def _fill_devices(self) -> None:
        self.device_combo.clear()
        self.device_combo.addItem("Default output", None)
        for label, index in self.adapter.audio_devices():
            self.device_combo.addItem(label, index)

    def _fill_midi_ports(self) -> None:
        chosen = self.midi_combo.currentData() if self.midi_combo.count() else self.initial.get("midi_port")
        self.midi_combo.clear()
        self.midi_combo.addItem("None", None)
        self.midi_combo.addItem(f"Virtual port ({self.adapter.virtual_port_name()})", "virtual")
        for name in self.adapter.midi_ports():
            self.midi_combo.addItem(name, name)
        _select_data(self.midi_combo, chosen)

    def _load_values(self, values: dict) -> None:
        _select_data(self.device_combo, values.get("device"))
        _select_data(self.sample_rate_combo, values.get("samplerate", 48000))
        _select_data(self.block_size_combo, values.get("blocksize", 1024))
        _select_data(self.midi_combo, values.get("midi_port"))
        self.bend_spin.setValue(int(values.get("bend_range", 2)))
        self.curve_combo.setCurrentText(values.get("velocity_curve", "linear"))
        self.gain_value.blockSignals(True)
        self.gain_value.setValue(float(values.get("master_gain_db", -12.0)))
        self.gain_slider.setValue(round(self.gain_value.value()))
        self.gain_value.blockSignals(False)
        self._show_latency()

    def values(self) -> dict:
        return {
            "device": self.device_combo.currentData(),
            "samplerate": self.sample_rate_combo.currentData(),
            "blocksize": self.block_size_combo.currentData(),
            "midi_port": self.midi_combo.currentData(),
            "bend_range": self.bend_spin.value(),
            "velocity_curve": self.curve_combo.currentText(),
            "master_gain_db": self.gain_value.value(),
        }

    def changes(self) -> dict:
        current = self.adapter.settings()
        return {key: value for key, value in self.values().items() if current.get(key) != value}

    def apply(self) -> bool:
        changes = self.changes()
        if not changes:
            return True
        error = self.adapter.apply_settings(**changes)
        self.error_label.setText(error or "")
        return not error

    def accept(self) -> None:
        if self.apply():
            super().accept()

    def reject(self) -> None:
        if self.adapter.settings().get("master_gain_db") != self.initial.get("master_gain_db"):
            self.adapter.apply_settings(master_gain_db=self.initial.get("master_gain_db"))
        super().reject()

    def _show_latency(self) -> None:
        rate = self.sample_rate_combo.currentData() or 48000
        size = self.block_size_combo.currentData() or 1024
        self.latency_label.setText(latency_text(size, rate))

    def keyPressEvent(self, event) -> None:
        """Esc is panic here too (the dialog closes with Cancel): levels are set while notes may hang."""
        if event.key() == Qt.Key_Escape:
            self.adapter.panic()
            event.accept()
            return
        super().keyPressEvent(event)

    def update_meters(self) -> None:
        peak_db = max(METER_FLOOR_DB, self.adapter.peak_db())
        self.peak_meter.setValue(int(peak_db * 10))
        self.peak_meter.setFormat(f"{peak_db:.1f} dBFS" if peak_db > METER_FLOOR_DB else "silent")
        self.xrun_label.setText(str(self.adapter.xruns()))


def _select_data(combo: QComboBox, data) -> None:
    index = combo.findData(data)
    if index >= 0:
        combo.setCurrentIndex(index)
