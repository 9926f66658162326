"""The desktop app (PySide6 + pyqtgraph). Imports flow one way: gui -> synth.engine."""
