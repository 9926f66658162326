"""Presets: a name and a timbre (``synth.timbre.Timbre``: a point on the map, gain, envelope and the optional
character), stored as one JSON file each.

Factory presets ship in ``presets/`` (read-only); user presets live in
``platformdirs.user_config_dir("pgesam-synth")/presets`` and are listed first. Factory presets are never written nor
hidden: saving under a factory name saves the player's own copy, "<name> (mine)", and an old user file that carries a
factory name is listed as that copy; the factory version stays available (``PresetLibrary.factory``, to revert to).
A preset is checked when it is made (its timbre by ``Timbre``, its name here), so a bad one never exists. The
file holds the timbre's fields flat beside the name (``Timbre.to_dict``), as files always did; ``character`` (the
flow sampler's guidance, 0-8) is absent in older files and means the bundle's default. Writes are atomic
(``synth.atomic``: temp file in the same folder, fsync, ``os.replace``): a failed save leaves the old file intact
and raises :class:`PresetError`; temp files of a save that was killed are removed when the library next opens. A
rename rewrites the file in place, then renames the file itself, so at every instant exactly one file holds the
preset. A corrupt, foreign or crafted file (deep nesting, huge numbers, a point off the map) is
collected in :attr:`PresetLibrary.errors` with a message naming it, and skipped, never raised.

``python -m synth.presets place --bundle models/default`` moves the factory presets to the family centroids of a
bundle's training instruments (run it after a new model is bundled: the map changes with every training run).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from synth.atomic import clean_stale, fsync_dir, write_text
from synth.resources import default_bundle, factory_presets_dir
from synth.timbre import (ATTACK_MS_RANGE, CHARACTER_RANGE, GAIN_DB_RANGE, MAP_COORD_RANGE,  # noqa: F401 (re-exported)
                          RELEASE_MS_RANGE, Timbre)
from synth.validate import InputError, load_json_file

PRESET_KIND = "pgesam-synth-preset"
PRESET_VERSION = 1
FACTORY_DIR = factory_presets_dir()  # presets/ in a checkout, the installed copy otherwise

COPY_MARK = "mine"  # saving under a factory name gives "<name> (mine)", then "(mine 2)"...
# Shown at first launch (no session yet): the first of these the map has a family for, else the first factory one.
FIRST_LAUNCH_PRESETS = ("Grand Keys", "Bowed Strings", "Synth Lead")
MAX_NAME_LENGTH = 80
MAX_PRESET_BYTES = 1 << 20


class PresetError(Exception):
    """A preset could not be read, validated or written; the message says which file and why."""


@dataclass(frozen=True)
class Preset:
    """A named timbre; ``tags[0]`` is the family it is meant for, ``map_hash`` the bundle whose map its point is on
    ("" = unknown). Made only valid (else :class:`PresetError`)."""

    name: str
    timbre: Timbre
    notes: str = ""
    tags: tuple[str, ...] = ()
    map_hash: str = ""
    version: int = PRESET_VERSION

    def __post_init__(self) -> None:
        check_name(self.name)
        if not isinstance(self.timbre, Timbre):
            raise PresetError(f"preset {self.name!r}: its timbre must be a Timbre, got {type(self.timbre).__name__}")

    def to_dict(self) -> dict:
        """The file's fields, in the order files always had them (the timbre's flat beside the name)."""
        sound = self.timbre.to_dict()
        character = sound.pop("character", None)
        data = {"kind": PRESET_KIND, "name": self.name, **sound, "notes": self.notes, "tags": list(self.tags),
                "map_hash": self.map_hash, "version": self.version}
        if character is not None:  # files without it stay readable by older versions of the app, unchanged
            data["character"] = character
        return data

    @classmethod
    def from_dict(cls, data: object) -> "Preset":
        if not isinstance(data, dict) or data.get("kind") != PRESET_KIND:
            raise PresetError(f"not a pGESAM synth preset (expected \"kind\": \"{PRESET_KIND}\")")
        version = data.get("version", PRESET_VERSION)
        if not isinstance(version, int) or version > PRESET_VERSION:
            raise PresetError(f"preset version {version!r} is newer than this app understands ({PRESET_VERSION})")
        name = _text(data, "name")
        try:
            timbre = Timbre.from_dict(data)
        except InputError as exc:
            raise PresetError(str(exc)) from None
        return cls(name=name, timbre=timbre, notes=_text(data, "notes", ""), tags=_tags(data),
                   map_hash=_text(data, "map_hash", ""), version=PRESET_VERSION)

    @property
    def family(self) -> str:
        """The family this preset is meant to sit in (its first tag), used to place factory presets."""
        return self.tags[0] if self.tags else ""


def check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise PresetError("a preset needs a name")
    if len(name) > MAX_NAME_LENGTH:
        raise PresetError(f"preset name is longer than {MAX_NAME_LENGTH} characters")


def _text(data: dict, key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise PresetError(f"field {key!r} must be text, got {value!r}")
    return value


def _tags(data: dict) -> tuple[str, ...]:
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise PresetError(f"field 'tags' must be a list of text, got {tags!r}")
    return tuple(tags)


# ---------------------------------------------------------------- files


def read_preset(path: Path) -> Preset:
    try:
        data = load_json_file(path, max_bytes=MAX_PRESET_BYTES)
    except InputError as exc:  # its message starts with the path
        raise PresetError(str(exc)) from None
    try:
        return Preset.from_dict(data)
    except PresetError as exc:
        raise PresetError(f"{path}: {exc}") from exc


def write_preset(preset: Preset, path: Path) -> None:
    """Write atomically: the old file stays as it was unless the whole new file reached the disk."""
    text = json.dumps(preset.to_dict(), indent=2) + "\n"
    write_text_atomic(Path(path), text, what=f"preset {preset.name!r}")


def write_text_atomic(path: Path, text: str, what: str = "file") -> None:
    """``synth.atomic.write_text`` (fsynced, folder too) with a failure as :class:`PresetError` naming ``what``."""
    try:
        write_text(Path(path), text, sync_dir=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PresetError(f"could not save {what} to {path}: {reason}; the previous file is unchanged") from exc


def file_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    return stem or "preset"


def default_user_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("pgesam-synth")) / "presets"


# ---------------------------------------------------------------- the library


@dataclass(frozen=True)
class PresetEntry:
    preset: Preset
    path: Path
    is_user: bool

    @property
    def name(self) -> str:
        return self.preset.name


@dataclass(frozen=True)
class LoadError:
    path: Path
    message: str


@dataclass
class PresetLibrary:
    """User presets first (by name), then factory presets; names are unique (a user file named like a factory preset is
    listed as the player's copy, "<name> (mine)")."""

    user_dir: Path = field(default_factory=default_user_dir)
    factory_dir: Path = FACTORY_DIR
    entries: list[PresetEntry] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    _factory_names: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.user_dir = Path(self.user_dir)
        self.factory_dir = Path(self.factory_dir)
        clean_stale(self.user_dir)  # temp files of saves that were killed: the library opens once per start
        self.reload()

    def reload(self) -> None:
        self.errors = []
        factory = self._scan(self.factory_dir, is_user=False)
        self._factory_names = {entry.name for entry in factory}
        user = []
        taken = set(self._factory_names)
        for entry in self._scan(self.user_dir, is_user=True):
            if entry.name in self._factory_names:  # an older app let a user file take a factory name: list it as a copy
                entry = PresetEntry(replace(entry.preset, name=self._copy_name(entry.name, taken)), entry.path, True)
            taken.add(entry.name)
            user.append(entry)
        user.sort(key=lambda e: e.name.casefold())
        self.entries = user + factory

    def _scan(self, folder: Path, is_user: bool) -> list[PresetEntry]:
        found: dict[str, PresetEntry] = {}
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                preset = read_preset(path)
            except PresetError as exc:
                self.errors.append(LoadError(path, str(exc)))
                continue
            if preset.name in found:
                self.errors.append(LoadError(path, f"{path}: duplicate preset name {preset.name!r}, skipped"))
                continue
            found[preset.name] = PresetEntry(preset, path, is_user)
        return sorted(found.values(), key=lambda e: e.name.casefold())

    # -- queries

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def find(self, name: str) -> PresetEntry | None:
        return next((entry for entry in self.entries if entry.name == name), None)

    def is_factory_name(self, name: str) -> bool:
        return name in self._factory_names

    def factory(self, name: str) -> Preset | None:
        """The factory preset ``name`` as shipped (None when it is not a factory preset)."""
        entry = self.find(name)
        return entry.preset if entry is not None and not entry.is_user else None

    def first_launch_entry(self, families: Iterable[str] = ()) -> PresetEntry | None:
        """The preset to show when the app starts for the first time: a factory one whose family the map has."""
        families = set(families)
        factory = [e for e in self.entries if not e.is_user]
        preferred = [self.find(name) for name in FIRST_LAUNCH_PRESETS]
        for entry in [e for e in preferred if e is not None and not e.is_user] + factory:
            if entry.preset.family in families:
                return entry
        return (factory or self.entries or [None])[0]

    def copy_name(self, name: str) -> str:
        """The name a copy of ``name`` is saved under: "<name> (mine)", "<name> (mine 2)"... (one not taken)."""
        return self._copy_name(name, set(self.names()))

    @staticmethod
    def _copy_name(name: str, taken: set[str]) -> str:
        base = name[: MAX_NAME_LENGTH - len(COPY_MARK) - 8]
        candidate, number = f"{base} ({COPY_MARK})", 2
        while candidate in taken:
            candidate = f"{base} ({COPY_MARK} {number})"
            number += 1
        return candidate

    def get(self, name: str) -> Preset:
        entry = self.find(name)
        if entry is None:
            raise PresetError(f"no preset named {name!r}")
        return entry.preset

    def neighbour(self, name: str | None, step: int) -> Preset | None:
        """The preset ``step`` places after (or before, when negative) ``name``, wrapping around."""
        if not self.entries:
            return None
        names = self.names()
        index = names.index(name) if name in names else (-1 if step > 0 else 0)
        return self.entries[(index + step) % len(self.entries)].preset

    # -- changes (user presets only; factory files are never written)

    def save(self, preset: Preset) -> PresetEntry:
        """Save under the preset's own name, replacing a user preset of that name. A factory name is never taken
        over: the preset is saved as the player's copy (``copy_name``); the returned entry has the name used."""
        if self.is_factory_name(preset.name):
            preset = replace(preset, name=self.copy_name(preset.name))
        entry = self.find(preset.name)
        path = entry.path if entry is not None and entry.is_user else self._free_path(preset.name)
        write_preset(preset, path)
        self.reload()
        return self.find(preset.name)

    def save_as(self, preset: Preset, name: str, overwrite: bool = False) -> PresetEntry:
        check_name(name)
        existing = self.find(name)
        if existing is not None and existing.is_user and not overwrite:
            raise PresetError(f"a user preset named {name!r} already exists")
        return self.save(replace(preset, name=name))

    def rename(self, old: str, new: str) -> PresetEntry:
        entry = self._user_entry(old)
        check_name(new)
        if new == old:
            return entry
        if self.is_factory_name(new):
            raise PresetError(f"{new!r} is the name of a factory preset; choose another name")
        other = self.find(new)
        if other is not None and other.is_user:
            raise PresetError(f"a user preset named {new!r} already exists")
        path = self._free_path(new, allow=entry.path)
        # In place first, then move the file itself: both steps are atomic, so a kill at any point leaves one
        # file holding the preset (under the old name or the new); writing a new file and deleting the old one
        # would leave two presets in between.
        write_preset(replace(entry.preset, name=new), entry.path)
        if path != entry.path:
            try:
                os.rename(entry.path, path)
                fsync_dir(path.parent)
            except OSError:
                pass  # renamed inside the file already; only its file name keeps the old stem
        self.reload()
        return self.find(new)

    def delete(self, name: str) -> None:
        entry = self._user_entry(name)
        try:
            entry.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PresetError(f"could not delete {entry.path}: {exc.strerror or exc}") from exc
        self.reload()

    def _user_entry(self, name: str) -> PresetEntry:
        entry = self.find(name)
        if entry is None:
            raise PresetError(f"no preset named {name!r}")
        if not entry.is_user:
            raise PresetError(f"{name!r} is a factory preset; save a copy with \"Save as\" to change it")
        return entry

    def _free_path(self, name: str, allow: Path | None = None) -> Path:
        stem = file_stem(name)
        used = {e.path for e in self.entries if e.is_user} | {err.path for err in self.errors}
        candidate = self.user_dir / f"{stem}.json"
        number = 2
        while (candidate in used or candidate.exists()) and candidate != allow:
            candidate = self.user_dir / f"{stem}-{number}.json"
            number += 1
        return candidate


# ---------------------------------------------------------------- factory presets placed on a bundle's map

if TYPE_CHECKING:
    from synth.model.instrument import Instrument


def family_centroids(instruments: Iterable[Instrument]) -> dict[str, tuple[float, float]]:
    """Mean (x, y) per family of the training instruments (``synth.model.instrument.Instrument``)."""
    sums: dict[str, list[float]] = {}
    for item in instruments:
        if item.held_out:
            continue
        acc = sums.setdefault(item.family, [0.0, 0.0, 0.0])
        acc[0] += item.x
        acc[1] += item.y
        acc[2] += 1
    return {family: (sx / n, sy / n) for family, (sx, sy, n) in sums.items()}


def place_at_centroids(presets: Sequence[Preset], centroids: dict[str, tuple[float, float]]) -> list[Preset]:
    """Move each preset to its family's centroid; a preset whose family the map lacks stays where it was."""
    placed = []
    for preset in presets:
        point = centroids.get(preset.family)
        if point is None:
            placed.append(preset)
        else:
            placed.append(replace(preset, timbre=preset.timbre.at(round(point[0], 4), round(point[1], 4))))
    return placed


def place_factory_presets(instruments: Iterable[Instrument], factory_dir: Path = FACTORY_DIR, map_hash: str = "") -> list[Preset]:
    """Rewrite the factory preset files so each sits at its family's centroid on this map (the bundle ``map_hash``)."""
    centroids = family_centroids(instruments)
    library = PresetLibrary(user_dir=Path(factory_dir) / ".none", factory_dir=factory_dir)
    moved = []
    for entry in library.entries:
        (preset,) = place_at_centroids([entry.preset], centroids)
        if preset.family in centroids:
            preset = replace(preset, map_hash=map_hash)
        write_preset(preset, entry.path)
        moved.append(preset)
    return moved


def on_map(preset: Preset, centroids: dict[str, tuple[float, float]], map_hash: str) -> Preset:
    """A factory preset as it sits on the current map: placed for another map (or none), it moves to its family's
    centroid on this one, so factory presets stay meaningful when the model is retrained."""
    if not map_hash or preset.map_hash == map_hash or preset.family not in centroids:
        return preset
    (placed,) = place_at_centroids([preset], centroids)
    return replace(placed, map_hash=map_hash)


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m synth.presets")
    sub = parser.add_subparsers(dest="command", required=True)
    place = sub.add_parser("place", help="move factory presets to the family centroids of a bundle's map")
    place.add_argument("--bundle", default=str(default_bundle()))
    place.add_argument("--factory-dir", default=str(FACTORY_DIR))
    args = parser.parse_args(argv)
    from synth.model.bundle import BundleError, read_bundle_info
    from synth.model.instrument import parse_instruments

    try:
        info = read_bundle_info(args.bundle)  # the map is in bundle.json: no weights need loading
    except BundleError as exc:
        print(f"presets place: {exc}", file=sys.stderr)
        return 2
    map_hash = str(info.get("hash", ""))
    instruments = parse_instruments(info.get("instruments", []))  # read_bundle_info checked them
    for preset in place_factory_presets(instruments, Path(args.factory_dir), map_hash=map_hash):
        print(f"{preset.name}: ({preset.timbre.x:.3f}, {preset.timbre.y:.3f}) [{preset.family}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
