"""Rendering MIDI files offline with the live engine's own voices, so what you hear is what you export.

How a file becomes audio:

1. ``synth.midi_file.read_midi`` turns the file into events in seconds (tempo map applied, drums skipped).
2. Every channel/program is mapped to a preset (a name and a ``synth.timbre.Timbre``: a point on the map plus gain
   and envelope): by default the centroid of the bundle's training instruments of the program's General MIDI
   family (a factory preset of that family when the source has no map, e.g. the built-in demo source), named
   "<family> centroid"; ``--map PROGRAM=PRESET`` and ``--preset NAME`` override.
3. Each distinct (timbre point, pitch, velocity layer) the song needs is generated once, batched over pitches, and
   prepared by the engine's ``prepare_note_buffer`` (resampled to the output rate, sustain loop baked in). A note
   plays the note of its velocity's layer (the nearest of the source's ``velocity_layers``, as live), so a
   velocity-conditioned model renders soft notes with its soft timbre; a model that ignores velocity has one layer
   and each (point, pitch) is generated once at velocity 100. The ``NoteBank`` keeps the notes, so a second render
   of the same song (or the live instrument's cache, keyed the same way) starts warm. Pitches outside the model's
   range are played from the nearest generated pitch, as the live mixer does.
4. One ``synth.engine.voices.Mixer`` per MIDI channel (pedal and pitch bend are per channel in MIDI, and in the
   mixer they are global) plays that channel's events sample-accurately: its blocks are split at its own event
   times, and stretches where it is silent are skipped. The channels are summed and the sum goes through the
   engine's ``PeakLimiter`` (master gain, ceiling -0.3 dBFS) in fixed blocks, as in the live audio callback.

Length: the file's duration plus the longest release time of the mapped timbres, after which every voice has faded
(a pedal still down at the end of the file is released there); a song longer than ``max_seconds`` (30 min unless
raised) is refused before any audio is allocated. Output: mono WAV, 24-bit PCM or 32-bit float, written atomically
(the temp file of a render that was killed is removed when the next render to the same file starts).

Numbers from outside (master gain, sample rate, map points typed as ``X,Y``) are checked where they enter, with
``synth.validate``: a NaN gain would otherwise pass the limiter's NaN guard as full-scale DC.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from synth.atomic import clean_stale
from synth.engine.buffers import NoteBuffer
from synth.engine.limiter import PeakLimiter, db_to_gain
from synth.engine.sources import source_hash, velocity_layers_of
from synth.engine.velocity import nearest_layer
from synth.engine.voices import Mixer
from synth.export import WAV_SUBTYPES, peak_dbfs, write_wav
from synth.midi_file import (DEFAULT_MAX_SECONDS, NOTE_OFF, NOTE_ON, PITCH_BEND, PROGRAM, SUSTAIN, MidiEvent,
                             MidiFileError, MidiTimeline, read_midi)
from synth.presets import Preset
from synth.resources import default_bundle
from synth.timbre import MAP_COORD_RANGE, Timbre
from synth.validate import MASTER_GAIN_DB_RANGE, InputError, finite_in_range

SAMPLE_RATE_RANGE = (8000, 192000)  # what WAV players and soxr handle; 0 or 10^9 used to crash inside soxr
BLOCK = 4096  # frames per mixer call offline: large blocks amortise the per-voice Python overhead
MAX_VOICES = 32  # per channel
GENERATION_VELOCITY = 100  # one-layer sources: notes are generated once at this velocity; the curve scales them

# Programs that family_of_program drops (effects, unpitched percussion) still need a sound when a file uses them.
_FALLBACK_FAMILIES = {47: "mallet", 55: "brass"}
_FALLBACK_FAMILY_BY_GROUP = {12: "synth_lead", 14: "mallet", 15: "synth_lead"}


class RenderCancelled(Exception):
    """The user cancelled the render; no file was written."""


# ---------------------------------------------------------------- program -> timbre


def family_for_program(program: int) -> str:
    """General MIDI program -> NSynth family; effects and unpitched programs get the nearest pitched family."""
    from synth.data.families import family_of_program

    family = family_of_program(program)
    if family is None:
        family = _FALLBACK_FAMILIES.get(program) or _FALLBACK_FAMILY_BY_GROUP.get(program // 8, "synth_lead")
    return family


@dataclass
class ProgramMap:
    """Program -> preset (a named timbre): explicit overrides first, then the family defaults, then the map's
    centre."""

    family_timbres: dict[str, Preset]
    overrides: dict[int, Preset] = field(default_factory=dict)
    everything: Preset | None = None  # --preset: one timbre for every channel

    def timbre_for(self, program: int) -> Preset:
        if self.everything is not None:
            return self.everything
        if program in self.overrides:
            return self.overrides[program]
        family = family_for_program(program)
        if family in self.family_timbres:
            return self.family_timbres[family]
        return _centre(self.family_timbres.values())


def _centre(presets: Iterable[Preset]) -> Preset:
    points = [p.timbre.point for p in presets]
    if not points:
        return Preset("centre", Timbre(0.0, 0.0))
    return Preset("centre", Timbre(float(np.mean([p[0] for p in points])), float(np.mean([p[1] for p in points]))))


def family_timbres(instruments: Iterable | None = None, presets: Iterable | None = None) -> dict[str, Preset]:
    """A preset per family: the centroid of the training instruments of that family when a map is known, with the
    envelope and gain of the factory preset of that family; families the map lacks keep the preset itself."""
    from synth.presets import family_centroids

    by_family = {p.family: p for p in (presets or []) if p.family}
    centroids = family_centroids(instruments) if instruments else {}
    timbres = dict(by_family)
    for family, (x, y) in centroids.items():
        base = by_family[family].timbre if family in by_family else Timbre(x, y)
        timbres[family] = Preset(f"{family} centroid", Timbre(x, y, base.gain_db, base.attack_ms, base.release_ms))
    return timbres


def default_program_map(instruments: Iterable | None = None, presets: Iterable | None = None) -> ProgramMap:
    """The GM family map for a bundle's instruments (``ModelBundle.instruments``) and the factory presets."""
    if presets is None:
        presets = _factory_presets()
    return ProgramMap(family_timbres=family_timbres(instruments, presets))


def _factory_presets() -> list:
    from synth.presets import PresetLibrary

    return [entry.preset for entry in PresetLibrary().entries]


# ---------------------------------------------------------------- notes, generated once


class NoteBank:
    """The song's notes, generated through the engine's ``NoteCache`` (same keys, same preparation as live), one per
    (point, pitch, velocity layer of the source).

    ``ensure`` generates whatever the cache lacks, batched over pitches per point, and pins every note the song
    needs in ``song`` (so an LRU eviction in a shared cache cannot pull a buffer out mid-render); lookups during the
    render are then plain dict reads. Pass the live engine's cache to render with what the player already heard;
    keeping one bank between renders is the warm cache.
    """

    def __init__(self, source, sample_rate: int, cache=None) -> None:
        from synth.engine.note_cache import NoteCache

        self.source = source
        self.sample_rate = int(sample_rate)
        held = float(getattr(source, "held_seconds", 3.0))
        self.layers = velocity_layers_of(source)
        if cache is None or cache.sample_rate != self.sample_rate:  # a live cache at another rate cannot serve
            cache = NoteCache(self.sample_rate, held_seconds=held, max_bytes=4 << 30, velocity_layers=self.layers)
        self.cache = cache
        self.song: dict[tuple[float, float, int, int], NoteBuffer] = {}  # (x, y, pitch, layer) -> note
        self.generated = 0
        self.generate_seconds = 0.0

    def source_pitch(self, pitch: int) -> int:
        low, high = self.source.pitch_range
        return int(min(max(pitch, low), high))

    def layer(self, velocity: int) -> int:
        """The velocity layer a note at ``velocity`` plays (the only layer, 100, for most sources)."""
        return nearest_layer(velocity, self.layers)

    def key(self, x: float, y: float, pitch: int, velocity: int = GENERATION_VELOCITY):
        return self.cache.layer_key(source_hash(self.source), x, y, self.source_pitch(pitch), self.layer(velocity))

    def get(self, x: float, y: float, pitch: int, velocity: int = GENERATION_VELOCITY) -> NoteBuffer:
        return self.song[(x, y, self.source_pitch(pitch), self.layer(velocity))]

    def ensure(self, wanted: Iterable[tuple], progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] | None = None, batch: int = 32) -> int:
        """Make every (x, y, pitch[, velocity]) playable (velocity 100 when left out); returns how many notes had
        to be generated. ``batch``: pitches per ``generate`` call; a call costs about the same for 8 or 22 notes on
        the CPU (the shipped generator: 0.49 s for 8, 0.77 s for 22), so a song's timbres go in few calls."""
        missing: dict[tuple[float, float, int], set[int]] = {}  # (x, y, layer) -> pitches
        for x, y, pitch, *rest in wanted:
            p = self.source_pitch(pitch)
            layer = self.layer(int(rest[0]) if rest else GENERATION_VELOCITY)
            buffer = self.song.get((x, y, p, layer)) or self.cache.get(self.key(x, y, p, layer))
            if buffer is None:
                missing.setdefault((x, y, layer), set()).add(p)
            else:
                self.song[(x, y, p, layer)] = buffer
        jobs = [(at, sorted(p)[i:i + batch]) for at, p in missing.items() for i in range(0, len(p), batch)]
        total, done = sum(len(p) for _, p in jobs), 0
        for (x, y, layer), pitches in jobs:
            if cancelled is not None and cancelled():
                raise RenderCancelled("render cancelled")
            self._generate((x, y), pitches, layer)
            done += len(pitches)
            if progress is not None:
                progress(done, total)
        return total

    def _generate(self, xy: tuple[float, float], pitches: Sequence[int], layer: int | None = None) -> None:
        started = time.perf_counter()
        layer = self.layer(GENERATION_VELOCITY) if layer is None else layer
        # one layer: velocity 100 as always (the model ignores it); several: the layer's own velocity
        velocity = GENERATION_VELOCITY if len(self.layers) == 1 else layer
        made_before = getattr(self.source, "generated_notes", None)  # a DiskCachedSource counts what it made
        waves = np.asarray(self.source.generate(xy, list(pitches), velocity), dtype=np.float32)
        made = len(pitches) if made_before is None else self.source.generated_notes - made_before
        for pitch, wave in zip(pitches, waves):
            self.song[(xy[0], xy[1], pitch, layer)] = self.cache.insert(self.key(xy[0], xy[1], pitch, layer), wave,
                                                                         int(self.source.sample_rate))
        self.generated += made
        self.generate_seconds += time.perf_counter() - started


# ---------------------------------------------------------------- the render


@dataclass
class RenderResult:
    audio: np.ndarray
    sample_rate: int
    duration: float
    notes: int
    notes_generated: int
    generate_seconds: float
    mix_seconds: float
    peak_dbfs: float
    out_path: Path | None = None
    channel_timbres: dict[int, str] = field(default_factory=dict)
    skipped_drum_notes: int = 0

    @property
    def realtime_factor(self) -> float:
        spent = self.generate_seconds + self.mix_seconds
        return self.duration / spent if spent > 0 else math.inf


class _Channel:
    """One MIDI channel: its own mixer (pedal and bend are per channel) and its current preset."""

    def __init__(self, sample_rate: int, preset: Preset, layers: Sequence[int] = (GENERATION_VELOCITY,)) -> None:
        self.mixer = Mixer(sample_rate, BLOCK, MAX_VOICES)
        self.mixer.set_velocity_layers(layers)  # the gain of a layered note leaves its level to the model
        self.scratch = np.zeros((BLOCK, 1), dtype=np.float32)
        self.set_preset(preset)

    def set_preset(self, preset: Preset) -> None:
        self.preset = preset
        timbre = preset.timbre
        self.gain = np.float32(db_to_gain(timbre.gain_db))
        self.mixer.attack = timbre.attack_ms / 1000.0
        self.mixer.release = timbre.release_ms / 1000.0


def needed_notes(timeline: MidiTimeline, program_map: ProgramMap) -> set[tuple[float, float, int, int]]:
    """Every (x, y, pitch, velocity) the song plays, with the program active on its channel when the note starts."""
    wanted = set()
    for note in timeline.notes():
        timbre = program_map.timbre_for(note.program).timbre
        wanted.add((timbre.x, timbre.y, note.pitch, int(note.velocity)))
    return wanted


def render_timeline(timeline: MidiTimeline, bank: NoteBank, program_map: ProgramMap,
                    master_gain_db: float = -12.0, progress: Callable[[str, int, int], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> RenderResult:
    """Render a parsed file to a mono float32 array: generate what the bank lacks, then mix and limit.

    ``progress(stage, done, total)`` reports the stages "generate" (notes) and "mix" (frames).
    """
    master_gain_db = finite_in_range(master_gain_db, *MASTER_GAIN_DB_RANGE, "master_gain_db")
    staged = (lambda stage: (lambda done, total: progress(stage, done, total))) if progress else (lambda stage: None)
    generated, gen_seconds = bank.generated, bank.generate_seconds
    bank.ensure(needed_notes(timeline, program_map), progress=staged("generate"), cancelled=cancelled)
    started = time.perf_counter()
    channels = {c: _Channel(bank.sample_rate, program_map.timbre_for(0), bank.layers) for c in timeline.channels()}
    audio = _play(timeline, channels, bank, program_map, master_gain_db, staged("mix"), cancelled)
    return RenderResult(audio=audio, sample_rate=bank.sample_rate, duration=len(audio) / bank.sample_rate,
                        notes=len(timeline.notes()), notes_generated=bank.generated - generated,
                        generate_seconds=bank.generate_seconds - gen_seconds,
                        mix_seconds=time.perf_counter() - started, peak_dbfs=peak_dbfs(audio),
                        channel_timbres={c: ch.preset.name for c, ch in channels.items()},
                        skipped_drum_notes=timeline.skipped_drum_notes)


def tail_seconds(timeline: MidiTimeline, program_map: ProgramMap) -> float:
    """The longest release among the timbres the file can use: after it every voice has faded."""
    programs = {0} | {int(e.value) for e in timeline.events if e.kind == PROGRAM}
    return max(program_map.timbre_for(p).timbre.release_ms for p in programs) / 1000.0


def _play(timeline: MidiTimeline, channels: dict[int, _Channel], bank: NoteBank, program_map: ProgramMap,
          master_gain_db: float, progress, cancelled) -> np.ndarray:
    """Each channel plays its own events into the shared mix (its blocks split only at its own events, so they
    stay long), then the master limiter runs over the sum in fixed blocks, as the live audio callback does."""
    sr = bank.sample_rate
    total = int(math.ceil((timeline.duration + tail_seconds(timeline, program_map)) * sr))
    out = np.zeros((total, 1), dtype=np.float32)
    work = _Progress(progress, total * (len(channels) + 1))
    for number, channel in channels.items():
        events = [e for e in timeline.events if e.channel == number]
        position = 0
        for when, group in _grouped(events, sr):
            position = _mix(channel, out, position, min(when, total), work, cancelled)
            for event in group:
                _apply(channel, event, bank, program_map)
        channel.mixer.all_notes_off()  # the file ended: release keys and pedal, let the tails ring out
        _mix(channel, out, position, total, work, cancelled)
    _limit(out, PeakLimiter(sr, BLOCK, channels=1, master_gain_db=master_gain_db), work, cancelled)
    return out[:, 0]


class _Progress:
    """Frames of work done (every channel, then the limiter) reported as one count."""

    def __init__(self, report, total: int) -> None:
        self.report, self.total, self.done = report, total, 0

    def add(self, frames: int) -> None:
        self.done += frames
        if self.report is not None:
            self.report(self.done, self.total)


def _grouped(events: Sequence[MidiEvent], sr: int):
    """Events grouped by the sample they fall on (chords become one group)."""
    group: list[MidiEvent] = []
    when = -1
    for event in events:
        sample = int(round(event.time * sr))
        if group and sample != when:
            yield when, group
            group = []
        when = sample
        group.append(event)
    if group:
        yield when, group


def _mix(channel: _Channel, out: np.ndarray, start: int, stop: int, work: _Progress, cancelled) -> int:
    """Add one channel's frames [start, stop) to ``out`` in blocks of at most BLOCK; returns stop."""
    position = start
    while position < stop:
        if cancelled is not None and cancelled():
            raise RenderCancelled("render cancelled")
        if not channel.mixer.active_voices:  # silence until the next event: nothing to add
            work.add(stop - position)
            return stop
        frames = min(BLOCK, stop - position)
        scratch = channel.scratch[:frames]
        channel.mixer.render(scratch)
        scratch *= channel.gain
        out[position:position + frames] += scratch
        position += frames
        work.add(frames)
    return position


def _limit(out: np.ndarray, limiter: PeakLimiter, work: _Progress, cancelled) -> None:
    for position in range(0, len(out), BLOCK):
        if cancelled is not None and cancelled():
            raise RenderCancelled("render cancelled")
        block = out[position:position + BLOCK]
        limiter.process(block)
        work.add(len(block))


def _apply(channel: _Channel, event: MidiEvent, bank: NoteBank, program_map: ProgramMap) -> None:
    mixer = channel.mixer
    if event.kind == NOTE_ON:
        t = channel.preset.timbre
        mixer.note_on(event.note, int(event.value), bank.get(t.x, t.y, event.note, int(event.value)))
    elif event.kind == NOTE_OFF:
        mixer.note_off(event.note)
    elif event.kind == SUSTAIN:
        mixer.sustain(event.value >= 0.5)
    elif event.kind == PITCH_BEND:
        mixer.pitch_bend(event.value)
    elif event.kind == PROGRAM:
        channel.set_preset(program_map.timbre_for(int(event.value)))


def render_midi(midi_path: str | Path | MidiTimeline, out_wav: str | Path | None, source,
                program_map: ProgramMap | None = None, *, sample_rate: int = 48000, sample_format: str = "pcm24",
                master_gain_db: float = -12.0, bank: NoteBank | None = None,
                progress: Callable[[str, int, int], None] | None = None, cancelled: Callable[[], bool] | None = None,
                max_seconds: float = DEFAULT_MAX_SECONDS) -> RenderResult:
    """Read (or take an already read timeline), render and (when ``out_wav`` is given) write one MIDI file;
    ``progress(stage, done, total)``. Bad numbers raise ``InputError``, bad files ``MidiFileError``."""
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
    master_gain_db = finite_in_range(master_gain_db, *MASTER_GAIN_DB_RANGE, "master_gain_db")
    if out_wav is not None:
        clean_stale(Path(out_wav).parent, target=Path(out_wav).name)  # left by a render that was killed
    timeline = midi_path if isinstance(midi_path, MidiTimeline) else read_midi(midi_path, max_seconds=max_seconds)
    check_playable(timeline)
    program_map = program_map or default_program_map(getattr(source, "instruments", None))
    bank = bank if bank is not None and bank.sample_rate == sample_rate else NoteBank(source, sample_rate)
    result = render_timeline(timeline, bank, program_map, master_gain_db, progress, cancelled)
    if out_wav is not None:
        write_wav(Path(out_wav), result.audio, sample_rate, WAV_SUBTYPES[sample_format])
        result.out_path = Path(out_wav)
    return result


# ---------------------------------------------------------------- what the command lines share


DEFAULT_BUNDLE = default_bundle()  # models/default in a checkout, the installed copy otherwise


class SourceError(Exception):
    """No note source could be opened (bundle missing or broken); the message says how to fix it."""


@dataclass
class OpenedSource:
    source: object
    instruments: list | None
    description: str


def open_source(bundle: str | Path | None = None, demo: bool = False) -> OpenedSource:
    """The model bundle's synthesizer, or the engine's built-in demo source.

    With no ``bundle`` given, the default bundle is used when installed and the demo source otherwise (as the live
    instrument does); a bundle named explicitly must load, else ``SourceError``.
    """
    from synth.engine.sources import SineNoteSource

    if demo:
        return OpenedSource(SineNoteSource(), None, "built-in demo source (harmonic tones)")
    path = Path(bundle) if bundle is not None else DEFAULT_BUNDLE
    if not (path / "bundle.json").is_file():
        if bundle is not None:
            raise SourceError(f"{path}: not a model bundle (no bundle.json); use --demo for the built-in sound")
        return OpenedSource(SineNoteSource(), None, f"built-in demo source (no model bundle at {path})")
    try:
        from synth.engine.bundle_source import open_bundle

        # with the disk cache on, notes come from it and the model loads only if one is missing (lazy)
        opened = open_bundle(path, lazy=True, spare_core=False)
        return OpenedSource(opened, list(opened.instruments), f"model bundle {path} ({opened.hash})")
    except ImportError as exc:
        raise SourceError(f"cannot load model bundles in this checkout ({exc}); use --demo") from exc
    except Exception as exc:  # BundleError and friends: the bundle's own message says what is wrong
        raise SourceError(f"{path}: {exc}") from exc


def find_preset(name: str):
    """A preset by exact name, then case-insensitively, then by file stem (``Grand_Keys``)."""
    from synth.presets import PresetError, PresetLibrary, file_stem

    library = PresetLibrary()
    for match in (lambda e: e.name == name, lambda e: e.name.casefold() == name.casefold(),
                  lambda e: e.path.stem.casefold() == file_stem(name).casefold()):
        entry = next((e for e in library.entries if match(e)), None)
        if entry is not None:
            return entry.preset
    raise PresetError(f"no preset named {name!r}; presets: {', '.join(library.names()) or 'none'}")


def check_playable(timeline: MidiTimeline) -> None:
    """A file with nothing the instrument can play would render a silent WAV and report success: refuse it."""
    if not any(e.kind == NOTE_ON for e in timeline.events):
        drums = timeline.skipped_drum_notes
        why = f" (its {drums} drum notes on channel 10 are skipped: the map has no drum kit)" if drums else ""
        raise MidiFileError(f"{timeline.path}: no notes to play{why}")


def check_sample_rate(value, name: str) -> int:
    rate = finite_in_range(value, *SAMPLE_RATE_RANGE, name)
    if rate != int(rate):
        raise InputError(f"{name}: {rate:g} is not a whole number of samples per second")
    return int(rate)


def parse_timbre(text: str) -> Preset:
    """``PRESET NAME`` or ``X,Y`` (a raw map point, named "(x, y)") to a preset."""
    parts = text.split(",")
    if len(parts) == 2:
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            pass
        else:
            x, y = (finite_in_range(v, *MAP_COORD_RANGE, f"map point {text!r}: {axis}")
                    for v, axis in ((x, "x"), (y, "y")))
            return Preset(f"({x:g}, {y:g})", Timbre(x, y))
    return find_preset(text.strip())


def apply_overrides(program_map: ProgramMap, mappings: Sequence[str], preset: str | None = None) -> ProgramMap:
    """``--map PROGRAM=PRESET`` / ``--map FAMILY=PRESET`` (PRESET may be ``X,Y``) and ``--preset NAME``."""
    from synth.data.families import FAMILIES

    if preset:
        program_map.everything = parse_timbre(preset)
    for mapping in mappings:
        key, sep, value = mapping.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise ValueError(f"bad --map {mapping!r}: use PROGRAM=PRESET (program 0-127) or FAMILY=PRESET")
        timbre = parse_timbre(value)
        if key.isdigit() and 0 <= int(key) <= 127:
            program_map.overrides[int(key)] = timbre
        elif key in FAMILIES:
            program_map.family_timbres[key] = timbre
        else:
            raise ValueError(f"bad --map {mapping!r}: {key!r} is neither a program 0-127 nor a family "
                             f"({', '.join(FAMILIES)})")
    return program_map
