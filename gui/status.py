"""The status bar's permanent part: fallback warning, model name, generation device, the note cache's progress."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar


class EngineStatus:
    def __init__(self, bar: QStatusBar, adapter) -> None:
        self.fallback_label = QLabel()
        self.fallback_label.setStyleSheet("color: #e8a33d; font-weight: bold;")
        if adapter.fallback_reason:
            self.fallback_label.setText("Demo sound: no model loaded")
            self.fallback_label.setToolTip(adapter.fallback_reason)
        self.model_label = QLabel(f"Model: {adapter.model_name}")
        self.device_label = QLabel()
        self.cache_bar = QProgressBar()
        self.cache_bar.setFixedWidth(170)
        self.cache_bar.setFormat("notes %v/%m")
        self.cache_bar.setToolTip("Notes generated for the current timbre point, one per pitch of the model")
        for widget in (self.fallback_label, self.model_label, self.device_label, self.cache_bar):
            bar.addPermanentWidget(widget)
        self.update(adapter)

    def update(self, adapter) -> None:
        done, total = adapter.cache_progress()
        self.cache_bar.setMaximum(max(1, total))
        self.cache_bar.setValue(min(done, max(1, total)))
        self.device_label.setText(f"Generation: {adapter.generation_device}")
