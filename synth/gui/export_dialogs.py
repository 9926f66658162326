"""Tools > "Export current timbre…" and "Render MIDI file…": the command-line export and render, in the window.

Both run as jobs (``synth.gui.jobs``: a QThread with progress signals and a cancel flag that the export and render loops
check between batches of notes and blocks of audio), so the instrument keeps playing while they work. They use the
engine's own note source, and the render shares the live note cache, so notes the player already heard at the
current point are not generated again.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QMessageBox,
    QPushButton, QSpinBox, QWidget,
)

from synth.gui.jobs import JobCancelled, run_with_progress
from synth.export import ExportCancelled, ExportError, ExportRequest, check_target, export_notes, parse_pitches
from synth.render import NoteBank, RenderCancelled, default_program_map, render_midi

SAMPLE_FORMATS = (("24-bit PCM", "pcm24"), ("32-bit float", "float"))


def install_export_actions(window) -> None:
    """Add the two actions to the window's Tools menu (``MainWindow.add_tool``)."""
    window.add_tool("Export current timbre…", lambda: ExportDialog(window).open())
    window.add_tool("Render MIDI file…", lambda: RenderDialog(window).open())


# ---------------------------------------------------------------- jobs (plain functions, testable without dialogs)


def export_work(source, request: ExportRequest):
    """A ``synth.gui.jobs`` work function exporting ``request`` from ``source``."""
    def work(report, cancelled):
        try:
            return export_notes(source, request, progress=lambda done, total: report(done, total,
                                f"Generating note {done} of {total}"), cancelled=cancelled)
        except ExportCancelled as exc:
            raise JobCancelled(str(exc)) from exc
    return work


def render_work(source, midi: Path, wav: Path, program_map, sample_format: str, cache=None,
                sample_rate: int = 48000):
    """A ``synth.gui.jobs`` work function rendering ``midi`` to ``wav`` (sharing ``cache`` when its rate matches)."""
    def work(report, cancelled):
        def progress(stage: str, done: int, total: int) -> None:
            if stage == "generate":
                report(done, total, f"Generating note {done} of {total}")
            else:
                report(done, total, f"Mixing {100 * done // max(1, total)} %")
        try:
            return render_midi(midi, wav, source, program_map, sample_rate=sample_rate, sample_format=sample_format,
                               bank=NoteBank(source, sample_rate, cache=cache), progress=progress,
                               cancelled=cancelled)
        except RenderCancelled as exc:
            raise JobCancelled(str(exc)) from exc
    return work


# ---------------------------------------------------------------- dialogs


def _folder_row(edit: QLineEdit, browse) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    layout.addWidget(button)
    return row


def _format_combo() -> QComboBox:
    combo = QComboBox()
    for label, value in SAMPLE_FORMATS:
        combo.addItem(label, value)
    return combo


class ExportDialog(QDialog):
    """Export the window's current point, gain and envelope as WAV files or an SFZ instrument."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("Export current timbre")
        name = getattr(getattr(window, "preset_bar", None), "current_name", None) or "pgesam timbre"
        self.name_edit = QLineEdit(name)
        low, high = _pitch_range(window)
        self.pitches_edit = QLineEdit(f"{low}-{high}")  # every key the model generates
        self.pitches_edit.setToolTip(f"MIDI pitches, e.g. 48-72 or 36,48,60-64. The model generates {low}-{high}; "
                                     "pitches outside are re-pitched from the nearest generated note (the export "
                                     "says which).")
        self.velocity_spin = QSpinBox()
        self.velocity_spin.setRange(1, 127)
        self.velocity_spin.setValue(100)
        layers = tuple(getattr(getattr(window, "adapter", None), "velocity_layers", (100,)))
        self.velocity_spin.setToolTip(
            f"The notes are generated at this velocity: the model's velocity layers are {', '.join(map(str, layers))}"
            " (the nearest one gives timbre and level)" if len(layers) > 1 else
            "This model ignores velocity (one layer); samplers scale the level by the played velocity")
        self.format_combo = QComboBox()
        self.format_combo.addItem("SFZ instrument (samples + .sfz)", "sfz")
        self.format_combo.addItem("WAV files (one per note)", "wav")
        self.sample_combo = _format_combo()
        self.folder_edit = QLineEdit(str(Path.home() / "pgesam-exports" / name.replace(" ", "_")))
        self.force_check = QCheckBox("Replace files of an earlier export")
        form = QFormLayout(self)
        for label, widget in (("Name", self.name_edit), ("Pitches", self.pitches_edit),
                              ("Velocity", self.velocity_spin), ("Format", self.format_combo),
                              ("Samples", self.sample_combo),
                              ("Folder", _folder_row(self.folder_edit, self._browse)), ("", self.force_check)):
            form.addRow(label, widget)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self._start)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.job = None

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def request(self) -> ExportRequest:
        return ExportRequest(self.window_.preset_timbre(), out_dir=Path(self.folder_edit.text()).expanduser(),
                             pitches=parse_pitches(self.pitches_edit.text()), velocity=self.velocity_spin.value(),
                             format=self.format_combo.currentData(),
                             name=self.name_edit.text().strip() or "pgesam timbre",
                             sample_format=self.sample_combo.currentData(), force=self.force_check.isChecked())

    def _start(self) -> None:
        try:
            request = self.request()
            check_target(request)
        except ExportError as exc:
            QMessageBox.warning(self, "Export", str(exc))
            return
        self.accept()
        window = self.window_
        self.job = run_with_progress(window, "Exporting notes", export_work(window.adapter.engine.source, request),
                                     on_done=lambda result: _report_export(window, result),
                                     on_error=lambda message: QMessageBox.warning(window, "Export failed", message))


def _pitch_range(window) -> tuple[int, int]:
    try:
        low, high = window.adapter.pitch_range
        return int(low), int(high)
    except Exception:  # a window without a model behind it (tests): the old default
        return 48, 72


def _report_export(window, result) -> None:
    what = result.sfz_path.name if result.sfz_path else f"{len(result.notes)} WAV files"
    moved = result.repitched
    note = (f"; {len(moved)} note(s) outside the model's range re-pitched from the nearest generated note"
            if moved else "")
    window.statusBar().showMessage(f"Exported {what} to {result.out_dir} (peak {result.peak_dbfs:.1f} dBFS){note}",
                                   15000)


class RenderDialog(QDialog):
    """Render a MIDI file with the General MIDI family map, or with the current timbre on every channel."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("Render MIDI file")
        self.midi_edit = QLineEdit()
        self.wav_edit = QLineEdit()
        self.map_combo = QComboBox()
        self.map_combo.addItem("General MIDI families on the map", "families")
        self.map_combo.addItem("Current timbre on every channel", "current")
        self.sample_combo = _format_combo()
        self.force_check = QCheckBox("Replace an existing WAV file")
        form = QFormLayout(self)
        form.addRow("MIDI file", _folder_row(self.midi_edit, self._browse_midi))
        form.addRow("WAV file", _folder_row(self.wav_edit, self._browse_wav))
        form.addRow("Timbres", self.map_combo)
        form.addRow("Samples", self.sample_combo)
        form.addRow("", self.force_check)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self._start)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.job = None

    def _browse_midi(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "MIDI file", self.midi_edit.text(), "MIDI files (*.mid *.midi)")
        if path:
            self.midi_edit.setText(path)
            if not self.wav_edit.text():
                self.wav_edit.setText(str(Path(path).with_suffix(".wav")))

    def _browse_wav(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Render to", self.wav_edit.text(), "WAV files (*.wav)")
        if path:
            self.wav_edit.setText(path)
            self.force_check.setChecked(True)  # the file dialog already asked about replacing it

    def program_map(self):
        adapter = self.window_.adapter
        program_map = default_program_map(adapter.instruments or None)
        if self.map_combo.currentData() == "current":
            program_map.everything = self.window_.current_preset("current timbre")
        return program_map

    def _start(self) -> None:
        midi, wav = Path(self.midi_edit.text()).expanduser(), Path(self.wav_edit.text()).expanduser()
        problem = ("Choose a MIDI file." if not midi.is_file() else "Choose a WAV file to write." if not
                   self.wav_edit.text() else f"{wav} exists; tick “Replace” to overwrite it." if wav.exists() and
                   not self.force_check.isChecked() else None)
        if problem:
            QMessageBox.warning(self, "Render", problem)
            return
        self.accept()
        window, engine = self.window_, self.window_.adapter.engine
        work = render_work(engine.source, midi, wav, self.program_map(), self.sample_combo.currentData(),
                           cache=engine.cache)
        self.job = run_with_progress(window, "Rendering MIDI file", work,
                                     on_done=lambda result: _report_render(window, result),
                                     on_error=lambda message: QMessageBox.warning(window, "Render failed", message))


def _report_render(window, result) -> None:
    window.statusBar().showMessage(f"Rendered {result.out_path.name}: {result.duration:.1f} s, {result.notes} notes, "
                                   f"peak {result.peak_dbfs:.1f} dBFS, {result.realtime_factor:.0f}x real time",
                                   15000)
