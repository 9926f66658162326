"""Render single notes of General MIDI SoundFonts with pyfluidsynth, offline (no audio driver).

Why these choices:
- Reverb and chorus are off so notes are dry: the codec and the model should learn the instrument, not a room.
- Audio comes out as float32 through ``fluid_synth_write_float`` (pyfluidsynth only wraps the int16 writer, which
  clips and dithers); the build decides the final gain and checks the peak itself.
- Between notes every voice is killed and a short stretch of silence is rendered, so release tails and
  modulation state never leak into the next note.
- Stereo presets (panned samples) are folded to mono by averaging the two channels.
- fluidsynth applies MIDI events at the start of its next 64-sample block. Every note-on is sent at a block
  boundary (the silence before it is padded to one), so a note's onset is sample-exact and a preset renders the same
  audio whatever was rendered before it. Without this, onsets jittered by up to 63 samples with the render history,
  and identical presets of two fonts failed the duplicate check.
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
from dataclasses import dataclass

import numpy as np

FLUID_BLOCK = 64  # fluidsynth's internal block size (FLUID_BUFSIZE)
SOUNDFONT_DIRS: tuple[str, ...] = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts")

# Short names of the Debian fonts; unknown fonts get their sanitized file stem.
_KNOWN_SHORT: dict[str, str] = {
    "FluidR3_GM": "fluidr3",
    "FluidR3Mono_GM": "fluidr3mono",
    "OPL-3_FM_128M": "opl3",
    "TimGM6mb": "timgm6mb",
    "sf_GMbank": "csound",
    "MuseScore_General_Lite": "msglite",
    "MuseScore_General_Full": "msgfull",
    "MuseScore_General": "msgeneral",
}
# Fonts whose every preset is a synthesizer (FM): their NSynth source is "synthetic".
SYNTHETIC_FONTS: frozenset[str] = frozenset({"opl3"})


@dataclass(frozen=True)
class SoundFont:
    short: str
    path: str


@dataclass(frozen=True)
class RenderConfig:
    sample_rate: int = 24000
    duration: float = 4.0
    held: float = 3.0
    gain: float = 2.0  # fluidsynth's synth.gain; measured peaks at 2.0 are ~0.2-0.6, louder instruments are scaled
    flush: float = 0.25  # seconds of silence rendered after each note with all voices killed

    def fingerprint(self) -> str:
        return f"sr{self.sample_rate}-d{self.duration}-h{self.held}-g{self.gain}"


def short_name(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    return _KNOWN_SHORT.get(stem) or re.sub(r"[^a-z0-9]+", "", stem.lower())


def discover_fonts(dirs: tuple[str, ...] = SOUNDFONT_DIRS) -> list[SoundFont]:
    """Installed .sf2/.sf3 fonts, one entry per real file (Debian's alternatives symlinks resolve to their target)."""
    found: dict[str, SoundFont] = {}
    for folder in dirs:
        for path in sorted(glob.glob(os.path.join(folder, "*.sf[23]"))):
            real = os.path.realpath(path)
            if os.path.isfile(real):
                found.setdefault(real, SoundFont(short_name(real), real))
    return sorted(found.values(), key=lambda f: f.short)


def resolve_fonts(names: list[str] | None) -> list[SoundFont]:
    """Fonts chosen by short name or path (None: every installed font)."""
    installed = discover_fonts()
    if not names:
        return installed
    by_short = {f.short: f for f in installed}
    out = []
    for name in names:
        if name in by_short:
            out.append(by_short[name])
        elif os.path.isfile(name):
            out.append(SoundFont(short_name(name), os.path.realpath(name)))
        else:
            known = ", ".join(sorted(by_short)) or "none"
            raise FileNotFoundError(f"SoundFont {name!r} not found (installed: {known})")
    return out


def _write_float():
    import fluidsynth

    fn = fluidsynth._fl.fluid_synth_write_float
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                   ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


class FontRenderer:
    """One fluidsynth instance with one font loaded; renders notes on MIDI channel 0."""

    def __init__(self, font: SoundFont, config: RenderConfig) -> None:
        import fluidsynth

        self.font = font
        self.config = config
        settings = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 256,
                    "synth.cpu-cores": 1}
        self._synth = fluidsynth.Synth(gain=config.gain, samplerate=float(config.sample_rate), **settings)
        self._sfid = self._synth.sfload(font.path)
        if self._sfid < 0:
            raise RuntimeError(f"fluidsynth could not load {font.path}")
        self._write = _write_float()
        self._program: int | None = None
        self._position = 0  # samples rendered so far, to place note-ons on block boundaries

    def close(self) -> None:
        self._synth.delete()

    def __enter__(self) -> "FontRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def preset_name(self, program: int) -> str | None:
        """Name of the font's bank-0 preset for a program, None when the font lacks it."""
        return self._synth.sfpreset_name(self._sfid, 0, program)

    def _samples(self, n: int) -> np.ndarray:
        left = np.zeros(n, np.float32)
        right = np.zeros(n, np.float32)
        done = 0
        while done < n:  # fluidsynth renders in blocks; write in chunks to stay well inside its limits
            k = min(8192, n - done)
            self._write(self._synth.synth, k, left[done:].ctypes.data, 0, 1, right[done:].ctypes.data, 0, 1)
            done += k
        self._position += n
        return 0.5 * (left + right)

    def _reset(self) -> None:
        self._synth.all_sounds_off(0)
        self._synth.all_notes_off(0)
        self._synth.cc(0, 121, 0)  # reset all controllers (pitch bend, modulation, expression)
        flush = int(self.config.flush * self.config.sample_rate)
        self._samples(flush + (-(self._position + flush)) % FLUID_BLOCK)

    def render(self, program: int, pitch: int, velocity: int) -> np.ndarray:
        """One note: ``held`` seconds on, then released until ``duration``; float32 mono."""
        cfg = self.config
        if self._program != program:
            if self._synth.program_select(0, self._sfid, 0, program) != 0:
                raise ValueError(f"{self.font.short} has no preset for program {program}")
            self._program = program
        self._reset()
        n_total = int(round(cfg.duration * cfg.sample_rate))
        n_held = int(round(cfg.held * cfg.sample_rate))
        self._synth.noteon(0, pitch, velocity)
        held = self._samples(n_held)
        self._synth.noteoff(0, pitch)
        tail = self._samples(n_total - n_held)
        return np.concatenate([held, tail])
