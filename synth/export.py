"""Exporting the notes of one timbre as WAV files or an SFZ instrument any sampler or DAW can load.

Loudness (documented, never normalized per note): each sample is the model's raw output at the requested velocity
times the master gain (``ExportRequest.level_db``: the timbre's gain unless ``gain_db`` overrides it). A quiet
pitch stays quiet, so the pack plays with the same balance across the keyboard as the live instrument. The peak of every note and of the
whole pack is reported (and written to ``<name>.export.json``); 24-bit files clip above 0 dBFS, so a pack whose peak is
over 0 dBFS says so and float WAV keeps it intact.

Pitches and names are exact for every key: the file ``<name>_<pitch>_<note>.wav`` (and its region's
``pitch_keycenter``) sounds at that pitch. The model generates only its ``pitch_range`` (a model asked for another
pitch plays the nearest one it knows, which used to write a C5 into "C6" and "C7" files); a pitch outside it is
re-pitched from the nearest generated note (resampled: a note an octave up lasts half as long, its formants move
with it), which is what the live instrument plays for that key, and the export warns which notes were re-pitched
(``ExportResult.warnings``, ``repitched_from`` in the manifest). Why not refuse: the pack then plays like the
instrument on every key the player asked for, and a full-keyboard pack from a model with a narrow range stays
possible, labelled honestly.

Velocity: notes are generated at the requested velocity; a velocity-conditioned model gives the timbre and level of
the layer nearest it (``velocity_layer`` in the manifest), one that ignores velocity its only (velocity-100) note.

Files (``-o DIR``): ``--format wav`` writes ``DIR/<name>_<pitch>.wav`` per note; ``--format sfz`` writes
``DIR/<name>.sfz`` and the samples in ``DIR/samples/``. Each region covers the keys around its note (key ranges
meet halfway between exported pitches and reach up to an octave past the ends), has its ``pitch_keycenter``, a
``loop_continuous`` loop inside the held (sustain) part of the note (the live engine's own loop, crossfade baked
into the sample, so it is seamless), and the preset's attack and release as
``ampeg_attack`` / ``ampeg_release``. The full note with its release tail stays in the file.

Writes are atomic: everything is rendered into a staging folder beside the target first, then moved into place
(the whole folder with one rename when the target does not exist yet, else file by file with ``os.replace``).
Existing files are never overwritten without ``force``; unrelated files in the target are left alone. Staging
folders and temp files of an export or render that was killed are removed when the next one to the same target
starts. The timbre (``synth.timbre.Timbre``) is valid by construction; the gain override and sample rate must be
finite and in range (checked before any work): a NaN gain used to reach the manifest as invalid JSON.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from synth.atomic import atomic_write, clean_stale, temp_dir_for, write_text
from synth.dsp.resample import resample
from synth.engine.buffers import NoteBuffer, prepare_note_buffer
from synth.engine.sources import velocity_layers_of
from synth.engine.velocity import nearest_layer
from synth.timbre import Timbre
from synth.validate import MASTER_GAIN_DB_RANGE, InputError, finite_in_range


WAV_SUBTYPES = {"pcm24": "PCM_24", "float": "FLOAT"}
NOTE_NAMES = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")
FILE_MODE, DIR_MODE = 0o644, 0o755  # temp files are private (0600); finished files get the usual modes
BATCH_PITCHES = 8  # pitches generated per call: big enough to batch, small enough for progress and cancel
SAMPLE_RATE_RANGE = (8000, 192000)  # what WAV players and soxr handle; 0 or 10^9 crashed inside soxr


class ExportError(Exception):
    """The export cannot be done (target exists, bad pitch list, write failure); the message says why."""


class ExportCancelled(Exception):
    """The user cancelled; nothing was written."""


@dataclass(frozen=True)
class ExportRequest:
    """What to export: a timbre (its point, gain and envelope), pitches, and how the files should look."""

    timbre: Timbre
    out_dir: Path
    pitches: tuple[int, ...] = tuple(range(48, 73))  # the command line and the dialog default to the model's range
    velocity: int = 100
    format: str = "sfz"
    name: str = "pgesam"
    gain_db: float | None = None  # the pack's master gain (--gain-db, -96 to 24 dB); None: the timbre's gain
    sample_format: str = "pcm24"
    sample_rate: int = 48000
    force: bool = False

    @property
    def level_db(self) -> float:
        """The gain every note is written with."""
        return self.timbre.gain_db if self.gain_db is None else self.gain_db


@dataclass
class NoteFile:
    pitch: int
    path: Path
    peak_dbfs: float
    loop: tuple[int, int] | None
    repitched_from: int | None = None  # the generated pitch this note was re-pitched from (outside the model's range)


@dataclass
class ExportResult:
    out_dir: Path
    notes: list[NoteFile] = field(default_factory=list)
    sfz_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    velocity_layers: tuple[int, ...] = (100,)  # the source's (the notes are those of the layer nearest the velocity)

    @property
    def peak_dbfs(self) -> float:
        return max((n.peak_dbfs for n in self.notes), default=-math.inf)

    @property
    def repitched(self) -> dict[int, int]:
        """Exported pitch -> the generated pitch it was re-pitched from, for notes outside the model's range."""
        return {n.pitch: n.repitched_from for n in self.notes if n.repitched_from is not None}


# ---------------------------------------------------------------- audio files (also used by synth.render)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_24") -> None:
    """Write a WAV atomically (``synth.atomic``: temp file in the same folder, fsync, rename): a crash never leaves
    half a file.

    ``audio`` is [samples] or [samples, channels]; 24-bit PCM clips at +-1.0, float keeps everything.
    """
    import soundfile

    with atomic_write(path, file_mode=FILE_MODE) as handle:
        data = np.clip(audio, -1.0, 1.0) if subtype.startswith("PCM") else audio
        soundfile.write(handle, np.asarray(data, dtype=np.float32), int(sample_rate), subtype=subtype, format="WAV")


def peak_dbfs(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio), initial=0.0))
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


# ---------------------------------------------------------------- arguments


def parse_pitches(text: str) -> tuple[int, ...]:
    """``"48-72"``, ``"60"`` or ``"48,52,55-60"`` to sorted unique MIDI pitches (0-127)."""
    pitches: set[int] = set()
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        match = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", part)
        if not match:
            raise ExportError(f"bad pitch list {text!r}: use forms like 60, 48-72 or 48,55,60-64")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if low > high or high > 127:
            raise ExportError(f"bad pitch range {part!r}: need low <= high <= 127")
        pitches.update(range(low, high + 1))
    if not pitches:
        raise ExportError("no pitches to export")
    return tuple(sorted(pitches))


def note_name(pitch: int) -> str:
    """MIDI 60 -> C4 (the file names sort by pitch number first, the name is for people)."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    return stem or "pgesam"


# ---------------------------------------------------------------- planning the files


def planned_files(request: ExportRequest) -> dict[int, Path]:
    """Relative path of each pitch's sample, the layout both formats share."""
    stem = safe_stem(request.name)
    folder = Path("samples") if request.format == "sfz" else Path(".")
    return {p: folder / f"{stem}_{p:03d}_{note_name(p)}.wav" for p in request.pitches}


def manifest_path(request: ExportRequest) -> Path:
    return Path(f"{safe_stem(request.name)}.export.json")


def all_outputs(request: ExportRequest) -> list[Path]:
    outputs = list(planned_files(request).values()) + [manifest_path(request)]
    if request.format == "sfz":
        outputs.append(Path(f"{safe_stem(request.name)}.sfz"))
    return outputs


def check_request(request: ExportRequest) -> None:
    """Refuse numbers no export can use (NaN, inf, off the map, absurd rates) with ``ExportError`` naming them."""
    if not isinstance(request.timbre, Timbre):
        raise ExportError(f"timbre: expected a Timbre, got {type(request.timbre).__name__}")
    try:
        finite_in_range(request.level_db, *MASTER_GAIN_DB_RANGE, "gain_db")
        rate = finite_in_range(request.sample_rate, *SAMPLE_RATE_RANGE, "sample_rate")
        velocity = finite_in_range(request.velocity, 1, 127, "velocity")
    except InputError as exc:
        raise ExportError(str(exc)) from None
    if rate != int(rate) or velocity != int(velocity):
        raise ExportError("sample_rate and velocity must be whole numbers")


def check_target(request: ExportRequest) -> None:
    """Refuse before any work is done when files would be overwritten without ``force`` (or numbers are bad)."""
    check_request(request)
    target = Path(request.out_dir)
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} exists and is not a folder")
    if request.format not in ("wav", "sfz"):
        raise ExportError(f"unknown format {request.format!r}: use wav or sfz")
    if request.sample_format not in WAV_SUBTYPES:
        raise ExportError(f"unknown sample format {request.sample_format!r}: use " + " or ".join(WAV_SUBTYPES))
    clashes = [str(target / rel) for rel in all_outputs(request) if (target / rel).exists()]
    if clashes and not request.force:
        more = f" and {len(clashes) - 3} more" if len(clashes) > 3 else ""
        raise ExportError(f"would overwrite {', '.join(clashes[:3])}{more}; pass --force to replace them")


# ---------------------------------------------------------------- the export


def export_notes(source, request: ExportRequest, progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> ExportResult:
    """Generate every pitch through ``source`` (a NoteSource) and write the pack atomically."""
    check_target(request)
    target = Path(request.out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target.parent, target=target.name)  # staging folders of exports that were killed
    staging = temp_dir_for(target)
    os.chmod(staging, DIR_MODE)
    try:
        result = _write_pack(source, request, staging, progress, cancelled)
        _move_into_place(staging, target, all_outputs(request))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _relocate(result, staging, target)


def _write_pack(source, request, staging: Path, progress, cancelled) -> ExportResult:
    files = planned_files(request)
    result = ExportResult(out_dir=staging, velocity_layers=velocity_layers_of(source))
    gain = 10.0 ** (request.level_db / 20.0)
    pitches = list(request.pitches)
    for start in range(0, len(pitches), BATCH_PITCHES):
        if cancelled is not None and cancelled():
            raise ExportCancelled("export cancelled")
        batch = pitches[start:start + BATCH_PITCHES]
        for note in generate_notes(source, request.timbre.point, batch, request.velocity, request.sample_rate):
            written = _write_note(staging / files[note.pitch], note, gain, request)
            written.repitched_from = generated_pitch(source, note.pitch)
            if written.repitched_from == note.pitch:
                written.repitched_from = None
            result.notes.append(written)
        if progress is not None:
            progress(min(start + len(batch), len(pitches)), len(pitches))
    if result.repitched:
        result.warnings.append(repitch_warning(source, result.repitched))
    if request.format == "sfz":
        result.sfz_path = staging / f"{safe_stem(request.name)}.sfz"
        write_text(result.sfz_path, sfz_text(request, result.notes, staging), file_mode=FILE_MODE)
    write_text(staging / manifest_path(request), json.dumps(manifest(request, result, staging), indent=2),
               file_mode=FILE_MODE)
    return result


def generated_pitch(source, pitch: int) -> int:
    """The pitch the source generates for ``pitch``: itself inside its ``pitch_range``, else the nearest end."""
    low, high = source.pitch_range
    return min(max(int(pitch), int(low)), int(high))


def repitch(wave: np.ndarray, semitones: int, sample_rate: int) -> np.ndarray:
    """``wave`` played ``semitones`` higher at the same sample rate (libsoxr, HQ: band-limited both ways), as a
    sampler would: ``semitones`` up makes it ``2 ** (semitones / 12)`` times shorter."""
    ratio = 2.0 ** (semitones / 12.0)
    return resample(wave, sample_rate * ratio, sample_rate)


def repitch_warning(source, repitched: dict[int, int]) -> str:
    low, high = (int(p) for p in source.pitch_range)
    notes = ", ".join(f"{p} ({note_name(p)}) from {q} ({note_name(q)})" for p, q in sorted(repitched.items()))
    return (f"{len(repitched)} note(s) outside the model's range {low}-{high} ({note_name(low)}-{note_name(high)}) "
            f"were re-pitched from the nearest generated note, as the live instrument plays them (shorter above, "
            f"longer below, formants shifted): {notes}")


def generate_notes(source, xy: tuple[float, float], pitches: Sequence[int], velocity: int,
                   sample_rate: int) -> list[NoteBuffer]:
    """Notes as the engine plays them: resampled to ``sample_rate`` with the engine's sustain loop prepared, each
    at exactly its pitch (outside the source's ``pitch_range``: re-pitched from the nearest generated note).

    Going through ``prepare_note_buffer`` (the voices' own preparation) means the exported loop is the one the live
    instrument loops, crossfade included, so the loop is seamless in any player. Without the live voices' decay
    across wraps (``decay_loop=False``): a sample player applies no per-wrap gain, and a crossfade toward a quieter
    loop start would step the level at every wrap.
    """
    made = list(dict.fromkeys(generated_pitch(source, p) for p in pitches))
    waves = dict(zip(made, np.asarray(source.generate(xy, made, velocity), dtype=np.float32)))
    held = float(getattr(source, "held_seconds", 3.0))
    rate = int(source.sample_rate)
    notes = []
    for pitch in pitches:
        base = generated_pitch(source, pitch)
        wave, note_held = waves[base], held
        if base != pitch:  # the model cannot make this pitch: re-pitch its nearest note, the held part with it
            wave = repitch(wave, pitch - base, rate)
            note_held = held * 2.0 ** ((base - pitch) / 12.0)
        notes.append(prepare_note_buffer(wave, rate, int(sample_rate), pitch, held_seconds=note_held,
                                         decay_loop=False))
    return notes


def _write_note(path: Path, note: NoteBuffer, gain: float, request: ExportRequest) -> NoteFile:
    wave = note.data[: note.length] * np.float32(gain)
    write_wav(path, wave, request.sample_rate, WAV_SUBTYPES[request.sample_format])
    loop = (note.loop_start, note.loop_end - 1) if note.loop_end > 0 else None
    return NoteFile(pitch=note.pitch, path=path, peak_dbfs=peak_dbfs(wave), loop=loop)


def _move_into_place(staging: Path, target: Path, outputs: list[Path]) -> None:
    """One rename for a new folder; otherwise file by file (each ``os.replace`` is atomic)."""
    if not target.exists():
        os.rename(staging, target)
        staging.mkdir()  # the caller's cleanup expects the staging folder
        return
    for rel in outputs:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, target / rel)


def _relocate(result: ExportResult, staging: Path, target: Path) -> ExportResult:
    for note in result.notes:
        note.path = target / note.path.relative_to(staging)
    if result.sfz_path is not None:
        result.sfz_path = target / result.sfz_path.relative_to(staging)
    result.out_dir = target
    return result


# ---------------------------------------------------------------- loops and SFZ


def key_ranges(pitches: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Key range of each exported pitch: halfway to its neighbours, up to an octave past the outer notes."""
    ordered = sorted(pitches)
    ranges = {}
    for i, pitch in enumerate(ordered):
        lo = ordered[i - 1] + (pitch - ordered[i - 1]) // 2 + 1 if i else max(0, pitch - 12)
        hi = pitch + (ordered[i + 1] - pitch) // 2 if i + 1 < len(ordered) else min(127, pitch + 12)
        ranges[pitch] = (lo, hi)
    return ranges


def sfz_text(request: ExportRequest, notes: Sequence[NoteFile], root: Path) -> str:
    ranges = key_ranges([n.pitch for n in notes])
    timbre = request.timbre
    lines = [
        f"// {request.name}: pGESAM synth timbre at ({timbre.x:.4f}, {timbre.y:.4f}), velocity {request.velocity}",
        f"// Loudness: the model's raw output times the master gain ({request.level_db:+.1f} dB), no per-note",
        "// normalization. Loops lie in the held part of each note; the release tail stays in the file.",
        "<control>",
        "<global>",
        f"ampeg_attack={timbre.attack_ms / 1000.0:.4f}",
        f"ampeg_release={timbre.release_ms / 1000.0:.4f}",
        "// velocity scales the amplitude linearly, like the live instrument's default velocity curve",
        "amp_velcurve_1=0.0079",
        "amp_velcurve_127=1",
        "",
    ]
    moved = [f"{n.pitch} from {n.repitched_from}" for n in sorted(notes, key=lambda n: n.pitch)
             if n.repitched_from is not None]
    if moved:
        lines.insert(3, "// Outside the model's range, re-pitched from the nearest generated note: " + ", ".join(moved))
    for note in sorted(notes, key=lambda n: n.pitch):
        lo, hi = ranges[note.pitch]
        sample = note.path.relative_to(root).as_posix()
        region = f"<region> sample={sample} lokey={lo} hikey={hi} pitch_keycenter={note.pitch}"
        if note.loop is not None:
            region += f" loop_mode=loop_continuous loop_start={note.loop[0]} loop_end={note.loop[1]}"
        else:
            region += " loop_mode=no_loop"
        lines.append(region)
    return "\n".join(lines) + "\n"


def manifest(request: ExportRequest, result: ExportResult, root: Path) -> dict:
    """``<name>.export.json``: the settings and the loudness of every note, for people and scripts."""
    return {
        "name": request.name,
        "xy": list(request.timbre.point),
        "velocity": request.velocity,
        "velocity_layer": nearest_layer(request.velocity, result.velocity_layers),
        "velocity_layers": list(result.velocity_layers),
        "sample_rate": request.sample_rate,
        "sample_format": request.sample_format,
        "gain_db": request.level_db,
        "loudness": "model raw output x master gain; no per-note normalization",
        "peak_dbfs": _finite(result.peak_dbfs),
        "notes": [
            {"pitch": n.pitch, "file": n.path.relative_to(root).as_posix(), "peak_dbfs": _finite(n.peak_dbfs),
             "loop": list(n.loop) if n.loop else None, "repitched_from": n.repitched_from}
            for n in result.notes
        ],
        "warnings": list(result.warnings),
    }


def _finite(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None
