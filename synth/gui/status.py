"""The status strip at the bottom of the window, always visible: audio device, end-to-end latency, output level,
xruns, MIDI input, where notes are generated (CPU/GPU) and how far; above the pad a banner that says what to do when
there is no audio output. Everything is read from the engine adapter's public methods and attributes."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

METER_FLOOR_DB = -60.0
METER_FALL_DB_PER_S = 24.0  # the meter falls back this fast after a peak, so short peaks stay readable
NO_AUDIO_FIX = ("Fix: start your sound server (PipeWire, PulseAudio or JACK) or plug in the audio interface, then "
                "pick it in File ▸ Settings ▸ Audio output (or restart the app). Until then keys light up but "
                "nothing sounds.")


class LevelMeter(QWidget):
    """Output peak in dBFS with a falling hold: green, yellow above -12 dB, red above -3 dB."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._db = METER_FLOOR_DB
        self.setFixedSize(110, 14)
        self.setToolTip("Output level (peak, dBFS)")

    def sizeHint(self) -> QSize:
        return QSize(110, 14)

    def value(self) -> float:
        return self._db

    def push(self, peak_db: float, seconds: float) -> None:
        fallen = self._db - METER_FALL_DB_PER_S * max(0.0, seconds)
        new = max(METER_FLOOR_DB, min(0.0, peak_db if math.isfinite(peak_db) else METER_FLOOR_DB))
        self._db = max(new, fallen, METER_FLOOR_DB)
        self.setToolTip(f"Output level: {self._db:.1f} dBFS" if self._db > METER_FLOOR_DB else "Output level: silent")
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#23262d"))
        fraction = (self._db - METER_FLOOR_DB) / -METER_FLOOR_DB
        colour = "#d9453b" if self._db > -3 else "#e8c23d" if self._db > -12 else "#4cc36b"
        painter.fillRect(QRectF(0, 0, fraction * self.width(), self.height()), QColor(colour))
        painter.setPen(QColor("#555a66"))
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        painter.end()


class StatusStrip(QFrame):
    settingsRequested = Signal()

    def __init__(self, adapter, parent=None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.StyledPanel)
        self.fallback_label = QLabel()
        self.fallback_label.setStyleSheet("color: #e8a33d; font-weight: bold;")
        if adapter.fallback_reason:
            self.fallback_label.setText("Demo sound: no model loaded")
            self.fallback_label.setToolTip(adapter.fallback_reason)
        self.fallback_label.setVisible(bool(adapter.fallback_reason))
        self.audio_label = QLabel()
        self.latency_label = QLabel("Latency —")
        self.latency_label.setToolTip("From a key press to the sound: the audio device's output latency plus up to "
                                      "one block before the engine reads the key")
        self.level_meter = LevelMeter()
        self.xrun_label = QLabel("Xruns 0")
        self.xrun_label.setToolTip("Audio blocks that came too late (heard as clicks). A larger block size in "
                                   "File ▸ Settings helps.")
        self.midi_label = QLabel()
        self.model_label = QLabel(f"Model: {adapter.model_name}")
        self.generation_label = QLabel()
        self.cache_bar = QProgressBar()
        self.cache_bar.setFixedWidth(150)
        self.cache_bar.setFormat("notes %v/%m")
        self.cache_bar.setToolTip("Notes generated for the current timbre point (every pitch and velocity layer "
                                  "of the model); keys play stand-ins until theirs is ready")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.setSpacing(12)
        for widget in (self.fallback_label, self.audio_label, self.latency_label, self.level_meter, self.xrun_label,
                       self.midi_label):
            layout.addWidget(widget)
        layout.addStretch(1)
        for widget in (self.model_label, self.generation_label, self.cache_bar):
            layout.addWidget(widget)
        self.banner = self._build_banner()
        self._device_key: tuple | None = None
        self._device_text = ""
        self.refresh(adapter)

    def _build_banner(self) -> QFrame:
        banner = QFrame()
        banner.setStyleSheet("QFrame { background: #5a1d1d; border: 1px solid #b33b3b; border-radius: 3px; }"
                             "QLabel { color: #ffe3e3; border: none; }")
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        self.banner_label.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Minimum)
        settings = QPushButton("Settings…")
        settings.clicked.connect(self.settingsRequested)
        row = QHBoxLayout(banner)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.banner_label, 1)
        row.addWidget(settings, 0, Qt.AlignVCenter)
        banner.setVisible(False)
        return banner

    # ------------------------------------------------------------ updates (the window's poll timer)

    def refresh(self, adapter, seconds: float = 0.05) -> None:
        meters = adapter.meters or {}
        engine = adapter.engine
        running = engine.audio_running
        self._show_device(adapter, running)
        latency_ms = float(meters.get("latency_ms", 0.0) or 0.0)
        if latency_ms > 0:  # the stream reports it only while it runs
            block_ms = 1000.0 * engine.block_size / engine.sample_rate
            self.latency_label.setText(f"Latency {latency_ms + block_ms:.1f} ms")
        else:
            self.latency_label.setText("Latency —")
        self.level_meter.push(adapter.peak_db(), seconds)
        self.xrun_label.setText(f"Xruns {adapter.xruns()}")
        self.xrun_label.setStyleSheet("color: #e8a33d;" if adapter.xruns() else "")
        done, total = adapter.cache_progress()
        self.cache_bar.setMaximum(max(1, total))
        self.cache_bar.setValue(min(done, max(1, total)))
        # while the pad is dragged the held notes follow it with previews; the exact notes come when it rests
        self.cache_bar.setFormat("following the pad" if meters.get("previewing") else "notes %v/%m")
        self.generation_label.setText(f"Generation: {adapter.generation_device}")
        self._show_midi(adapter)
        self._show_banner(adapter)

    def _show_device(self, adapter, running: bool) -> None:
        engine = adapter.engine
        key = (id(engine), running, adapter.audio_error)
        if key == self._device_key:
            return
        self._device_key = key
        if running:
            hostapi = engine.audio_hostapi()
            name = _device_name(adapter, engine)
            text = f"Audio: {name}" + (f" ({hostapi})" if hostapi and hostapi not in name else "")
            self.audio_label.setStyleSheet("")
        elif adapter.audio_error:
            text = "Audio: none"
            self.audio_label.setStyleSheet("color: #ff8a80; font-weight: bold;")
        else:
            text = "Audio: off"
            self.audio_label.setStyleSheet("")
        self.audio_label.setText(text)
        self.audio_label.setToolTip(adapter.audio_error or text)

    def _show_midi(self, adapter) -> None:
        port = adapter.engine.midi_port_name
        wanted = adapter.settings().get("midi_port")
        if port is None:
            text = "MIDI: off"
        elif wanted and wanted != "virtual":
            text = f"MIDI: {wanted}"
        else:
            text = f"MIDI: {port}"
        if text != self.midi_label.text():
            self.midi_label.setText(text)
            self.midi_label.setToolTip("MIDI input. Connect a keyboard to the virtual port, or choose one in "
                                       "File ▸ Settings ▸ MIDI input.")

    def _show_banner(self, adapter) -> None:
        error = adapter.audio_error
        if error and not adapter.engine.audio_running:
            text = f"<b>{_escape(error)}</b><br>{_escape(NO_AUDIO_FIX)}"
            if self.banner_label.text() != text:
                self.banner_label.setText(text)
            self.banner.setVisible(True)
        else:
            self.banner.setVisible(False)


def _device_name(adapter, engine) -> str:
    """The open stream's device as PortAudio names it (the device list is read once per engine)."""
    index = engine.audio_device_index
    for label, number in adapter.audio_devices():
        if number == index:
            return label.split(" — ")[0]
    return "default output" if engine.device is None else str(engine.device)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
