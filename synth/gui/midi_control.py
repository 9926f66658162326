"""MIDI control of the window: CCs move the pad (MIDI learn from the pad's context menu), program change n loads the
n-th preset in the list. Polled from the window's timer, so smoothing and pad moves stay off the audio thread."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from synth.engine.cc_control import AXES, CCControl, to_map


class MidiControl:
    def __init__(self, window) -> None:
        self.window = window
        self.cc = CCControl()
        pad = window.pad
        pad.setContextMenuPolicy(Qt.ActionsContextMenu)  # right-click on the pad: learn / forget
        self.actions: dict[str, QAction] = {}
        for axis in AXES:
            action = QAction(f"Learn {axis.upper()} from MIDI CC (move a knob)", pad)
            action.triggered.connect(lambda _=False, a=axis: self.learn(a))
            pad.addAction(action)
            self.actions[axis] = action
        forget = QAction("Forget MIDI CC bindings", pad)
        forget.triggered.connect(self.forget)
        pad.addAction(forget)

    def learn(self, axis: str) -> None:
        self.cc.learn(axis)
        self.window.statusBar().showMessage(f"MIDI learn: move a knob or the mod wheel to control pad {axis.upper()}",
                                            10000)

    def load(self, data) -> None:
        """Bindings from the session (the menu texts name them)."""
        self.cc.load(data)
        self._show_bindings()

    def forget(self) -> None:
        for axis in AXES:
            self.cc.bind(axis, None)
        self._show_bindings()

    def _show_bindings(self) -> None:
        for axis, action in self.actions.items():
            cc = self.cc.bindings[axis]
            bound = f" — now CC{cc}" if cc is not None else ""
            action.setText(f"Learn {axis.upper()} from MIDI CC (move a knob){bound}")

    def poll(self, dt: float) -> None:
        engine = self.window.adapter.engine
        if engine is not getattr(self, "_engine", None):  # rebuilt (new block size...): its counts start afresh
            self.cc.restart()
            self._engine = engine
        learning = self.cc.learning
        moved, program = self.cc.poll(engine.cc_values, engine.cc_counts, dt)
        if learning is not None and self.cc.learning is None:
            self._show_bindings()
            self.window.statusBar().showMessage(f"Pad {learning.upper()} follows CC{self.cc.bindings[learning]}",
                                                5000)
        if moved:
            self._move_pad(moved)
        if program:
            self._load_program(engine.program)

    def _move_pad(self, moved: dict[str, float]) -> None:
        x0, x1, y0, y1 = self.window.pad.extent  # the knob's full travel spans the pad the player sees
        x, y = self.window.pad.point
        x = to_map(moved["x"], (x0, x1)) if "x" in moved else x
        y = to_map(moved["y"], (y0, y1)) if "y" in moved else y
        self.window.pad.set_point(x, y)

    def _load_program(self, program: int) -> None:
        bar = self.window.preset_bar
        entries = bar.library.entries
        if program < len(entries):
            bar.load(entries[program].name)
        else:
            self.window.statusBar().showMessage(f"Program change {program}: there are only {len(entries)} presets",
                                                5000)
