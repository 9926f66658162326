"""Build the SoundFont note dataset in NSynth's layout: render, gate, deduplicate, split, write.

Two passes. The first renders and measures every instrument of every font (pitch gate, duplicate check); the
second, once every training instrument is known, drops held-out instruments that measurably share a recording with
a training instrument (some fonts reuse one sample for two GM programs, e.g. tremolo strings and string ensemble 2)
and then writes the audio of the kept ones.

Incremental by design: each instrument's measurements live in ``<root>/.build/<instrument_str>.json`` (written
atomically), so a rerun renders and gates only notes it has not measured, and an interrupted build (Ctrl-C) keeps
every finished instrument. ``examples.json`` of each split is rewritten atomically at the end, also after an
interruption, and lists only notes whose audio file is written.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from synth.atomic import UMASK, atomic_write, clean_stale, write_text
from synth.data.families import FAMILIES, GM_NAMES, SOURCES, drop_reason, family_of_program, source_of_program
from synth.data.gate import GateConfig, NoteMeasure, decide_grid, measure, note_status
from synth.data.render import SYNTHETIC_FONTS, FontRenderer, RenderConfig, SoundFont, resolve_fonts
from synth.data.splits import SPLITS, split_of_program

PEAK_LIMIT = 0.99
PROBE_SECONDS = 1.0
STATE_VERSION = 1
AUDIO_VERSION = 2  # bump when rendering changes in a way the measurements survive (v2: block-aligned onsets)
LEAK_CORR = 0.9


@dataclass
class BuildConfig:
    """What to render. Every instrument gets its *core*: every pitch of ``pitches`` at ``core_velocity`` (the
    paper's grid, MIDI 48-72 at velocity 100). With ``wide`` set it also gets a sample of the rest of the keyboard
    and of the other velocity layers (see ``note_grid``), so the data covers MIDI 21-108 and four velocities at
    ~2.7x the notes of the core instead of the 14x a full 88 x 4 grid would cost to render, gate and encode."""

    root: Path
    fonts: list[str] | None = None
    programs: list[int] | None = None
    pitches: tuple[int, ...] = tuple(range(48, 73))
    velocities: tuple[int, ...] = (100,)
    render: RenderConfig = field(default_factory=RenderConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    duplicate_corr: float = 0.99
    progress: bool = True
    wide: "WideGrid | None" = None


@dataclass(frozen=True)
class WideGrid:
    """The sampled part of the grid beyond the core (``note_grid``).

    - range: the keys of ``key_range`` outside the core, every ``range_stride``-th one at the core velocity;
    - layers: each velocity of ``layers`` other than the core velocity at every ``layer_stride``-th key of the
      whole range (core included).
    Each instrument starts both strides at its own offset (from a hash of its name), so across ~400 instruments
    every key and every layer is covered many times while each instrument renders ~70 notes.
    """

    key_range: tuple[int, int] = (21, 108)
    range_stride: int = 3
    layers: tuple[int, ...] = (40, 70, 100, 127)
    layer_stride: int = 12

    def fingerprint(self) -> str:
        return f"k{self.key_range[0]}-{self.key_range[1]}s{self.range_stride}l{'.'.join(map(str, self.layers))}s{self.layer_stride}"


def _offset(name: str, salt: str, modulo: int) -> int:
    """A stable per-instrument offset (Python's hash() is salted per process; this must not be)."""
    import zlib

    return zlib.crc32(f"{name}|{salt}".encode()) % modulo


def note_grid(name: str, cfg: BuildConfig) -> list[tuple[int, int, bool]]:
    """(pitch, velocity, is_core) of every note an instrument renders: the core first, in grid order."""
    core_vel = 100 if cfg.wide is not None else None
    if cfg.wide is None:
        return [(p, v, True) for v in cfg.velocities for p in cfg.pitches]
    core = [(p, core_vel, True) for p in cfg.pitches]
    w = cfg.wide
    lo, hi = w.key_range
    inside = set(cfg.pitches)
    off = _offset(name, "range", w.range_stride)
    extra = [(p, core_vel, False) for p in range(lo + off, hi + 1, w.range_stride) if p not in inside]
    for i, vel in enumerate(v for v in w.layers if v != core_vel):
        off = _offset(name, f"layer{vel}", w.layer_stride)
        extra += [(p, vel, False) for p in range(lo + off, hi + 1, w.layer_stride)]
    return core + extra


def instrument_name(font: SoundFont, program: int) -> str:
    return f"{font.short}_{program:03d}_{GM_NAMES[program]}"


def note_name(instrument_str: str, pitch: int, velocity: int) -> str:
    return f"{instrument_str}-{pitch:03d}-{velocity:03d}"


def _atomic_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=1), fsync=False, file_mode=UMASK)


def _atomic_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    with atomic_write(path, fsync=False, file_mode=UMASK) as handle:  # thousands of notes: no fsync each
        sf.write(handle, audio, sample_rate, subtype="PCM_16", format="WAV")


class Instrument:
    """One (font, program): its record on disk and the audio rendered in this run."""

    def __init__(self, cfg: BuildConfig, font: SoundFont, program: int) -> None:
        self.cfg, self.font, self.program = cfg, font, program
        self.name = instrument_name(font, program)
        self.path = cfg.root / ".build" / f"{self.name}.json"
        self.audio: dict[str, np.ndarray] = {}
        self.state = self._load()

    def _fingerprint(self) -> str:
        # the grid is not part of it: measurements are per note, so widening the grid re-gates only the new notes
        return f"v{STATE_VERSION}-{self.cfg.render.fingerprint()}-{self.cfg.gate.fingerprint()}-{self.font.path}"

    def _load(self) -> dict:
        fresh = {"instrument_str": self.name, "fingerprint": self._fingerprint(), "notes": {}, "written": {},
                 "scale": 1.0}
        if not self.path.exists():
            return fresh
        with open(self.path) as f:
            state = json.load(f)
        return state if state.get("fingerprint") == fresh["fingerprint"] else fresh

    def grid(self) -> list[tuple[str, int, int]]:
        return [(note_name(self.name, p, v), p, v) for p, v, _ in note_grid(self.name, self.cfg)]

    def core_mask(self) -> list[bool]:
        return [c for _, _, c in note_grid(self.name, self.cfg)]

    def measures(self) -> list[NoteMeasure]:
        return [NoteMeasure.from_dict(self.state["notes"][n]["measure"]) for n, _, _ in self.grid()]

    def save(self) -> None:
        _atomic_json(self.path, self.state)


@dataclass
class Timings:
    render: float = 0.0
    gate: float = 0.0
    write: float = 0.0
    notes_rendered: int = 0
    notes_gated: int = 0


class Builder:
    def __init__(self, cfg: BuildConfig) -> None:
        self.cfg = cfg
        self.t = Timings()
        self.kept: list[Instrument] = []
        self.dropped: dict[str, dict] = {}
        self.skipped_programs: dict[str, list] = defaultdict(list)
        self.probes = np.zeros((0, 0), np.float32)  # one normalized probe per row, for the duplicate check
        self.probe_names: list[str] = []

    # -- one instrument ---------------------------------------------------------------------------------------
    def _render(self, renderer: FontRenderer, inst: Instrument, notes: list[tuple[str, int, int]]) -> None:
        t0 = time.perf_counter()
        for note, pitch, velocity in notes:
            if note not in inst.audio:
                inst.audio[note] = renderer.render(inst.program, pitch, velocity)
                self.t.notes_rendered += 1
        self.t.render += time.perf_counter() - t0

    def _gate(self, renderer: FontRenderer, inst: Instrument) -> None:
        todo = [g for g in inst.grid() if g[0] not in inst.state["notes"]]
        if not todo:
            return
        self._render(renderer, inst, todo)
        t0 = time.perf_counter()
        audio = np.stack([inst.audio[n] for n, _, _ in todo])
        rc = self.cfg.render
        results = measure(audio, [p for _, p, _ in todo], rc.sample_rate, rc.held, self.cfg.gate)
        for (note, pitch, velocity), m in zip(todo, results):
            inst.state["notes"][note] = {"pitch": pitch, "velocity": velocity, "measure": m.to_dict()}
        self.t.gate += time.perf_counter() - t0
        self.t.notes_gated += len(todo)

    def _probe(self, renderer: FontRenderer, inst: Instrument) -> np.ndarray:
        """The first second of the note nearest middle C, normalized: compared to find duplicate presets before
        spending the pitch tracker on them (MuseScore General Lite renders sample-identical to Full)."""
        note, pitch, velocity = min(inst.grid(), key=lambda g: (abs(g[1] - 60), abs(g[2] - 100)))
        self._render(renderer, inst, [(note, pitch, velocity)])
        x = inst.audio[note][: int(PROBE_SECONDS * self.cfg.render.sample_rate)].astype(np.float32)
        return x / max(float(np.linalg.norm(x)), 1e-12)

    def _duplicate_of(self, probe: np.ndarray) -> tuple[str | None, float]:
        if not self.probe_names:
            return None, 0.0
        corr = np.abs(self.probes[: len(self.probe_names)] @ probe)
        i = int(np.argmax(corr))
        return (self.probe_names[i] if corr[i] >= self.cfg.duplicate_corr else None), float(corr[i])

    def _add_probe(self, probe: np.ndarray, name: str) -> None:
        n = len(self.probe_names)
        if n == len(self.probes):  # grow by doubling: the check runs once per instrument
            grown = np.zeros((max(64, 2 * n), probe.size), np.float32)
            if n:
                grown[:n] = self.probes[:n]
            self.probes = grown
        self.probes[n] = probe
        self.probe_names.append(name)

    def leak_check(self, threshold: float = 0.9) -> dict:
        """Measured sample sharing across splits: for each held-out instrument, its highest probe correlation with
        any training instrument. Onset-aligned notes of one pitch correlate up to ~0.6 even from different recordings;
        a shared sample is near 1, so pairs above 0.9 are reported as likely shared recordings."""
        row = {name: i for i, name in enumerate(self.probe_names)}
        train = [row[i.name] for i in self.kept if i.state["split"] == "train"]
        if not train:
            return {"max_corr": 0.0, "pairs_above": {}}
        pairs = {}
        worst = 0.0
        for inst in self.kept:
            if inst.state["split"] == "train":
                continue
            corr = np.abs(self.probes[train] @ self.probes[row[inst.name]])
            j = int(np.argmax(corr))
            worst = max(worst, float(corr[j]))
            if corr[j] >= threshold:
                pairs[inst.name] = [self.probe_names[train[j]], round(float(corr[j]), 3)]
        return {"threshold": threshold, "max_corr": round(worst, 4), "pairs_above": pairs}

    def _plan(self, inst: Instrument) -> tuple[float, list[tuple[str, int, int]]]:
        """(gain to apply, notes whose file must be (re)written)."""
        split = inst.state["split"]
        kept = [g for g, k in zip(inst.grid(), inst.state["keep"]) if k]
        peak = max(inst.state["notes"][n]["measure"]["peak"] for n, _, _ in kept)
        scale = min(1.0, PEAK_LIMIT / max(peak, 1e-12))
        audio_dir = self.cfg.root / f"nsynth-{split}" / "audio"
        written = inst.state["written"]
        stale = inst.state.get("scale") != scale or inst.state.get("audio_version") != AUDIO_VERSION
        return scale, [g for g in kept if stale or written.get(g[0]) != split
                       or not (audio_dir / f"{g[0]}.wav").exists()]

    def _pending(self, inst: Instrument) -> bool:
        kept = {n for (n, _, _), k in zip(inst.grid(), inst.state["keep"]) if k}
        return bool(self._plan(inst)[1]) or bool(set(inst.state["written"]) - kept)

    def _write(self, renderer: FontRenderer, inst: Instrument, keep: list[bool], split: str) -> None:
        scale, todo = self._plan(inst)
        audio_dir = self.cfg.root / f"nsynth-{split}" / "audio"
        audio_dir.mkdir(parents=True, exist_ok=True)
        written = inst.state["written"]
        if todo and (inst.state.get("scale") != scale or inst.state.get("audio_version") != AUDIO_VERSION):
            written.clear()  # every old file is stale; what is not rewritten now must not be listed
        self._render(renderer, inst, todo)
        t0 = time.perf_counter()
        for note, _, _ in todo:
            if written.get(note) not in (None, split):  # the split rule changed: move, do not duplicate
                (self.cfg.root / f"nsynth-{written[note]}" / "audio" / f"{note}.wav").unlink(missing_ok=True)
            _atomic_wav(audio_dir / f"{note}.wav", inst.audio[note] * scale, self.cfg.render.sample_rate)
            written[note] = split
        self._remove(inst, keep_notes={n for (n, _, _), k in zip(inst.grid(), keep) if k})
        inst.state["scale"] = scale
        inst.state["audio_version"] = AUDIO_VERSION
        self.t.write += time.perf_counter() - t0

    def _remove(self, inst: Instrument, keep_notes: set[str]) -> None:
        """Delete audio this instrument wrote earlier that is no longer part of the dataset."""
        written = inst.state["written"]
        for note, split in list(written.items()):
            if note not in keep_notes:
                path = self.cfg.root / f"nsynth-{split}" / "audio" / f"{note}.wav"
                path.unlink(missing_ok=True)
                del written[note]

    def instrument(self, renderer: FontRenderer, program: int) -> None:
        font = renderer.font
        inst = Instrument(self.cfg, font, program)
        if renderer.preset_name(program) is None:
            self.dropped[inst.name] = {"reason": "no_preset"}
            return
        probe = self._probe(renderer, inst)
        dup, corr = self._duplicate_of(probe)
        if dup is not None:
            reason, detail = "duplicate", {"duplicate_of": dup, "corr": round(corr, 4)}
            keep = [False] * len(inst.grid())
        else:
            self._gate(renderer, inst)
            measures = inst.measures()
            reason, keep = decide_grid(measures, inst.core_mask(), self.cfg.gate)
            detail = {"status": dict(Counter(note_status(m, self.cfg.gate) for m in measures))}
        if dup is None:  # duplicates of dropped presets are caught too, before the tracker runs
            self._add_probe(probe, inst.name)
        if reason is None:
            inst.state.pop("drop", None), inst.state.pop("detail", None)
            inst.state.update(kept=True, keep=keep, split=split_of_program(program), preset=renderer.preset_name(program))
            self.kept.append(inst)
        else:
            self._drop(inst, reason, detail)
        inst.audio.clear()
        inst.save()

    def _drop(self, inst: Instrument, reason: str, detail: dict) -> None:
        self._remove(inst, keep_notes=set())
        inst.state.pop("split", None)
        inst.state.update(kept=False, keep=[False] * len(inst.grid()), drop=reason, detail=detail)
        self.dropped[inst.name] = {"reason": reason, **detail}

    def drop_leaks(self) -> None:
        """Drop held-out instruments whose probe is nearly identical (corr >= LEAK_CORR) to a training
        instrument's: the same recording must not be in train and in valid/test."""
        for name, (partner, corr) in self.leak_check(LEAK_CORR)["pairs_above"].items():
            inst = next(i for i in self.kept if i.name == name)
            self.kept.remove(inst)
            self._drop(inst, "shares_sample_with_train", {"train_instrument": partner, "corr": corr})
            inst.save()

    def write_all(self, fonts: list[SoundFont]) -> None:
        """Second pass: write the audio of kept instruments that lack it (one font open at a time)."""
        from tqdm import tqdm

        todo = [i for i in self.kept if self._pending(i)]
        bar = tqdm(total=len(todo), unit="inst", desc="write", disable=not self.cfg.progress or not todo)
        for font in fonts:
            mine = [i for i in todo if i.font == font]
            if not mine:
                continue
            with FontRenderer(font, self.cfg.render) as renderer:
                for inst in mine:
                    self._write(renderer, inst, inst.state["keep"], inst.state["split"])
                    inst.audio.clear()
                    inst.save()
                    bar.update(1)
        bar.close()

    # -- whole build --------------------------------------------------------------------------------------------
    def programs(self) -> list[int]:
        chosen = self.cfg.programs if self.cfg.programs is not None else range(128)
        out = []
        for program in chosen:
            if family_of_program(program) is None:
                self.skipped_programs[drop_reason(program)].append(program)
            else:
                out.append(program)
        return out

    def run(self, fonts: list[SoundFont]) -> dict:
        from tqdm import tqdm

        t_start = time.perf_counter()
        for folder, _dirs, _files in os.walk(self.cfg.root):  # temp files of a build that was killed
            clean_stale(Path(folder))
        for tmp in glob.glob(str(self.cfg.root / "**" / "*.tmp"), recursive=True):  # names before the pid tag
            os.unlink(tmp)
        programs = self.programs()
        bar = tqdm(total=len(fonts) * len(programs), unit="inst", disable=not self.cfg.progress)
        try:
            for font in fonts:
                bar.set_description(font.short)
                with FontRenderer(font, self.cfg.render) as renderer:
                    for program in programs:
                        self.instrument(renderer, program)
                        bar.update(1)
            bar.close()
            self.drop_leaks()
            self.write_all(fonts)
        finally:
            bar.close()
            write_examples(self.cfg, self.kept)
        report = self.report(fonts, time.perf_counter() - t_start)
        _atomic_json(self.cfg.root / "build_report.json", report)
        return report

    def coverage(self) -> dict:
        """Kept notes of the training split per velocity and per octave (MIDI 12k..12k+11): how well the sampled
        grid covers the keyboard and the layers."""
        by_vel: Counter = Counter()
        by_octave: Counter = Counter()
        for inst in self.kept:
            if inst.state["split"] != "train":
                continue
            for (_, pitch, vel), k in zip(inst.grid(), inst.state["keep"]):
                if k:
                    by_vel[vel] += 1
                    by_octave[f"{12 * (pitch // 12)}-{12 * (pitch // 12) + 11}"] += 1
        return {"train_notes_by_velocity": dict(sorted(by_vel.items())),
                "train_notes_by_octave": dict(sorted(by_octave.items(), key=lambda kv: int(kv[0].split("-")[0])))}

    def report(self, fonts: list[SoundFont], total: float) -> dict:
        notes_dropped: Counter = Counter()
        counts: dict = {s: {f: {"instruments": 0, "notes": 0} for f in FAMILIES} for s in SPLITS}
        peaks, scaled = [], {}
        for inst in self.kept:
            split, family = inst.state["split"], family_of_program(inst.program)
            counts[split][family]["instruments"] += 1
            counts[split][family]["notes"] += sum(inst.state["keep"])
            for m, k in zip(inst.measures(), inst.state["keep"]):
                peaks.append(m.peak)
                if not k:
                    notes_dropped[note_status(m, self.cfg.gate)] += 1
            if inst.state["scale"] < 1.0:
                scaled[inst.name] = round(inst.state["scale"], 4)
        n_notes = {s: sum(c["notes"] for c in counts[s].values()) for s in SPLITS}
        n_inst = {s: sum(c["instruments"] for c in counts[s].values()) for s in SPLITS}
        return {
            "config": {"root": str(self.cfg.root), "pitches": [min(self.cfg.pitches), max(self.cfg.pitches)],
                       "velocities": list(self.cfg.velocities),
                       "wide": asdict(self.cfg.wide) if self.cfg.wide else None, "render": asdict(self.cfg.render),
                       "gate": asdict(self.cfg.gate), "duplicate_corr": self.cfg.duplicate_corr},
            "fonts": [asdict(f) for f in fonts],
            "programs_not_rendered": {k: v for k, v in self.skipped_programs.items()},
            "instruments_kept": len(self.kept),
            "instruments_dropped": dict(Counter(d["reason"] for d in self.dropped.values())),
            "notes_in_dropped_instruments": dict(sum((Counter({d["reason"]: len(note_grid(name, self.cfg))})
                                                      for name, d in self.dropped.items()), Counter())),
            "coverage": self.coverage(),
            "dropped": self.dropped,
            "notes_kept": n_notes,
            "instruments_per_split": n_inst,
            "notes_dropped_in_kept_instruments": dict(notes_dropped),
            "counts": counts,
            "leak_check": self.leak_check(LEAK_CORR),
            "peak": {"max": float(max(peaks, default=0.0)), "p50": float(np.median(peaks)) if peaks else 0.0,
                     "gain": self.cfg.render.gain, "instruments_scaled_down": scaled},
            "timings_s": {"total": round(total, 1), "render": round(self.t.render, 1), "gate": round(self.t.gate, 1),
                          "write": round(self.t.write, 1), "notes_rendered": self.t.notes_rendered,
                          "notes_gated": self.t.notes_gated,
                          "gate_ms_per_note": round(1000 * self.t.gate / max(self.t.notes_gated, 1), 1)},
        }


def example_fields(inst: Instrument, note: str, instrument_id: int) -> dict:
    entry = inst.state["notes"][note]
    family = family_of_program(inst.program)
    source = source_of_program(inst.program, inst.font.short in SYNTHETIC_FONTS)
    m = entry["measure"]
    return {
        "note_str": note, "instrument_str": inst.name, "instrument": instrument_id,
        "instrument_family": FAMILIES.index(family), "instrument_family_str": family,
        "instrument_source": SOURCES.index(source), "instrument_source_str": source,
        "pitch": entry["pitch"], "velocity": entry["velocity"], "sample_rate": inst.cfg.render.sample_rate,
        "soundfont": inst.font.short, "program": inst.program, "f0_hz": round(m["f0"], 2),
        "gain": round(inst.state["scale"], 4),
    }


def write_examples(cfg: BuildConfig, kept: list[Instrument]) -> None:
    """examples.json of each split from the kept instruments' written notes (instrument ids: sorted order of
    instrument_str, stable within one build)."""
    ids = {name: i for i, name in enumerate(sorted(inst.name for inst in kept))}
    per_split: dict[str, dict] = {s: {} for s in SPLITS}
    for inst in sorted(kept, key=lambda i: i.name):
        for (note, _, _), k in zip(inst.grid(), inst.state["keep"]):
            if k and inst.state["written"].get(note) == inst.state["split"]:
                per_split[inst.state["split"]][note] = example_fields(inst, note, ids[inst.name])
    for split, examples in per_split.items():
        _atomic_json(cfg.root / f"nsynth-{split}" / "examples.json", examples)


def build(cfg: BuildConfig) -> dict:
    """Render, gate and write the dataset; returns the build report (also saved as build_report.json)."""
    cfg.root.mkdir(parents=True, exist_ok=True)
    return Builder(cfg).run(resolve_fonts(cfg.fonts))
