"""Presets: JSON round trip, user-first listing, save/save as/rename/delete, atomic writes, bad files skipped."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from synth import presets as presets_module
from synth.presets import (
    FACTORY_DIR,
    Preset,
    PresetError,
    PresetLibrary,
    family_centroids,
    place_at_centroids,
    place_factory_presets,
    read_preset,
    write_preset,
)
from synth.timbre import Timbre
from synth.validate import InputError


@pytest.fixture
def dirs(tmp_path):
    user, factory = tmp_path / "user", tmp_path / "factory"
    factory.mkdir()
    write_preset(Preset("Keys", Timbre(0.5, -0.5), tags=("keyboard",)), factory / "Keys.json")
    write_preset(Preset("Bass", Timbre(-1.0, 1.0), tags=("bass",)), factory / "Bass.json")
    return user, factory


@pytest.fixture
def library(dirs):
    user, factory = dirs
    return PresetLibrary(user_dir=user, factory_dir=factory)


def test_json_round_trip(tmp_path):
    preset = Preset("Warm", Timbre(0.25, -1.5, gain_db=-3.0, attack_ms=20, release_ms=800), notes="n",
                    tags=("string",))
    write_preset(preset, tmp_path / "warm.json")
    assert read_preset(tmp_path / "warm.json") == preset
    assert json.loads((tmp_path / "warm.json").read_text())["kind"] == "pgesam-synth-preset"


def test_factory_presets_in_repo_are_valid():
    library = PresetLibrary(user_dir=Path("/nonexistent/user"), factory_dir=FACTORY_DIR)
    assert library.errors == []
    assert len(library.entries) >= 8
    assert len({(e.preset.timbre.x, e.preset.timbre.y) for e in library.entries}) == len(library.entries)


def test_user_presets_listed_first_and_never_hide_a_factory_one(library, dirs):
    library.save(Preset("Zither", Timbre(0.0, 0.0)))
    entry = library.save(Preset("Keys", Timbre(2.0, 2.0)))  # a factory name: saved as the player's own copy
    assert entry.name == "Keys (mine)" and entry.is_user and entry.preset.timbre.x == 2.0
    assert library.names() == ["Keys (mine)", "Zither", "Bass", "Keys"]
    assert not library.find("Keys").is_user and library.get("Keys").timbre.x == 0.5
    assert library.save(Preset("Keys", Timbre(3.0, 3.0))).name == "Keys (mine 2)"
    with pytest.raises(PresetError, match="factory"):
        library.rename("Zither", "Bass")
    assert json.loads((dirs[1] / "Keys.json").read_text())["x"] == 0.5


def test_an_old_user_file_named_like_a_factory_preset_is_listed_as_a_copy(library):
    write_preset(Preset("Keys", Timbre(2.0, 2.0)), library.user_dir / "Keys.json")
    library.reload()
    assert library.names() == ["Keys (mine)", "Bass", "Keys"]
    assert library.get("Keys (mine)").timbre.x == 2.0 and library.get("Keys").timbre.x == 0.5
    mine = library.get("Keys (mine)")
    library.save(replace(mine, timbre=replace(mine.timbre, gain_db=-3.0)))  # saved in place, under its listed name
    assert [p.name for p in library.user_dir.glob("*.json")] == ["Keys.json"]
    assert read_preset(library.user_dir / "Keys.json").name == "Keys (mine)"


def test_factory_version_for_revert(library):
    library.save(Preset("Keys", Timbre(2.0, 2.0)))
    assert library.factory("Keys").timbre.x == 0.5
    assert library.factory("Keys (mine)") is None


def test_first_launch_preset_is_a_factory_one(library, dirs):
    assert library.first_launch_entry(families={"bass"}).name == "Bass"
    assert library.first_launch_entry(families=set()).name in ("Bass", "Keys")
    assert not library.first_launch_entry(families={"keyboard"}).is_user


def test_character_is_optional_and_round_trips(tmp_path):
    preset = Preset("Strong", Timbre(0.1, 0.2, character=3.5))
    write_preset(preset, tmp_path / "s.json")
    assert read_preset(tmp_path / "s.json").timbre.character == 3.5
    old = Preset("Old", Timbre(0.1, 0.2))
    write_preset(old, tmp_path / "o.json")
    assert "character" not in json.loads((tmp_path / "o.json").read_text())
    assert read_preset(tmp_path / "o.json").timbre.character is None
    for bad in (-1.0, 8.5, "strong", float("nan")):
        data = {**preset.to_dict(), "character": bad}
        with pytest.raises(PresetError, match="character"):
            Preset.from_dict(data)


def test_save_as_rename_delete(library):
    library.save_as(library.get("Keys"), "My Keys")
    assert library.find("My Keys").is_user
    with pytest.raises(PresetError, match="already exists"):
        library.save_as(library.get("Bass"), "My Keys")
    library.rename("My Keys", "Soft Keys")
    assert "My Keys" not in library.names() and library.get("Soft Keys").timbre.x == 0.5
    assert [p.name for p in library.user_dir.glob("*.json")] == ["Soft_Keys.json"]
    library.delete("Soft Keys")
    assert library.names() == ["Bass", "Keys"]


def test_factory_presets_cannot_be_renamed_or_deleted(library, dirs):
    with pytest.raises(PresetError, match="factory"):
        library.delete("Keys")
    with pytest.raises(PresetError, match="factory"):
        library.rename("Bass", "B2")
    assert (dirs[1] / "Keys.json").exists()


def test_previous_next_wrap_around(library):
    library.save(Preset("Alpha", Timbre(0, 0)))
    assert library.names() == ["Alpha", "Bass", "Keys"]
    assert library.neighbour("Alpha", 1).name == "Bass"
    assert library.neighbour("Keys", 1).name == "Alpha"
    assert library.neighbour("Alpha", -1).name == "Keys"
    assert library.neighbour(None, 1).name == "Alpha"


def test_corrupt_and_foreign_files_are_reported_and_skipped(library, dirs):
    user = dirs[0]
    user.mkdir()
    (user / "broken.json").write_text("{ not json")
    (user / "foreign.json").write_text(json.dumps({"hello": "world"}))
    (user / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (user / "list.json").write_text("[1, 2]")
    bad_range = Preset("Loud", Timbre(0, 0)).to_dict() | {"gain_db": 99}
    (user / "loud.json").write_text(json.dumps(bad_range))
    newer = Preset("Future", Timbre(0, 0)).to_dict() | {"version": 99}
    (user / "future.json").write_text(json.dumps(newer))
    library.reload()
    assert library.names() == ["Bass", "Keys"]
    messages = {e.path.name: e.message for e in library.errors}
    assert set(messages) == {"broken.json", "foreign.json", "binary.json", "list.json", "loud.json", "future.json"}
    assert "not valid JSON" in messages["broken.json"]
    assert "not a pGESAM synth preset" in messages["foreign.json"]
    assert "gain_db" in messages["loud.json"]
    assert "newer" in messages["future.json"]


def test_save_does_not_overwrite_an_unreadable_file(library, dirs):
    user = dirs[0]
    user.mkdir()
    (user / "Lead.json").write_text("{ corrupt")
    library.reload()
    entry = library.save(Preset("Lead", Timbre(0, 0)))
    assert entry.path.name == "Lead-2.json"
    assert (user / "Lead.json").read_text() == "{ corrupt"


def test_disk_full_leaves_old_file_intact(library, monkeypatch):
    library.save(Preset("Pad", Timbre(1.0, 1.0)))
    path = library.find("Pad").path
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(presets_module.os, "fsync", full)
    with pytest.raises(PresetError, match="No space left") as info:
        library.save(Preset("Pad", Timbre(2.0, 2.0)))
    assert "previous file is unchanged" in str(info.value)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["Pad.json"], "the temp file is cleaned up"


def test_permission_error_is_a_clear_preset_error(library, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr("tempfile.mkstemp", denied)
    with pytest.raises(PresetError, match="Permission denied"):
        library.save(Preset("Pad", Timbre(0, 0)))
    assert "Pad" not in library.names()


def test_invalid_names_and_values_are_refused(library):
    with pytest.raises(PresetError, match="name"):
        library.save(Preset("  ", Timbre(0, 0)))
    with pytest.raises(InputError, match="release_ms"):  # a bad timbre cannot be made, let alone saved
        library.save(Preset("Long", Timbre(0, 0, release_ms=-1)))
    assert library.find("Long") is None


def test_unusual_names_get_safe_file_names(library):
    entry = library.save(Preset("../../etc/passwd ♫", Timbre(0, 0)))
    assert entry.path.parent == library.user_dir
    assert library.get("../../etc/passwd ♫").name == "../../etc/passwd ♫"


def test_factory_presets_placed_at_family_centroids(tmp_path, dirs):
    from synth.model.instrument import Instrument

    instruments = [
        Instrument("piano_a", "keyboard", 1.0, 2.0, "train"),
        Instrument("piano_b", "keyboard", 3.0, 4.0, "train"),
        Instrument("piano_held_out", "keyboard", 100.0, 100.0, "test"),
        Instrument.from_json({"name": "bass_a", "family": "bass", "x": -2.0, "y": -2.0, "split": "train"}),
    ]
    centroids = family_centroids(instruments)
    assert centroids == {"keyboard": (2.0, 3.0), "bass": (-2.0, -2.0)}
    lonely = Preset("Flute", Timbre(9.0, 9.0), tags=("flute",))
    assert place_at_centroids([lonely], centroids) == [lonely]
    moved = {p.name: p.timbre.point for p in place_factory_presets(instruments, dirs[1], map_hash="m1")}
    assert moved == {"Keys": (2.0, 3.0), "Bass": (-2.0, -2.0)}
    assert read_preset(dirs[1] / "Keys.json") == Preset("Keys", Timbre(2.0, 3.0), tags=("keyboard",), map_hash="m1")


def test_factory_presets_follow_the_current_map():
    from synth.presets import on_map

    centroids = {"keyboard": (2.0, 3.0)}
    old = Preset("Keys", Timbre(0.5, 0.5), tags=("keyboard",), map_hash="oldmap")
    assert (on_map(old, centroids, "newmap").timbre.x, on_map(old, centroids, "newmap").timbre.y) == (2.0, 3.0)
    assert on_map(old, centroids, "oldmap") == old, "a preset placed for this map stays put"
    assert on_map(Preset("Odd", Timbre(1.0, 1.0), tags=("organ",)), centroids, "newmap").timbre.x == 1.0
    assert on_map(old, centroids, "") == old


def test_map_hash_round_trips(tmp_path):
    preset = Preset("P", Timbre(0.0, 0.0), map_hash="abc123")
    write_preset(preset, tmp_path / "p.json")
    assert read_preset(tmp_path / "p.json").map_hash == "abc123"


def test_place_command_reads_the_map_from_bundle_json(tmp_path, dirs, capsys):
    from synth.model.bundle import BUNDLE_JSON, FORMAT, FORMAT_VERSION
    from synth.presets import _main

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    # the shipped bundle.json (a complete, valid listing and configs) with a one-instrument map; place reads only
    # bundle.json, so no weight file needs to be there
    shipped = json.loads((Path(__file__).parents[1] / "models" / "default" / BUNDLE_JSON).read_text())
    info = {**shipped,
            "instruments": [{"name": "p", "family": "keyboard", "x": 0.25, "y": -0.5, "split": "train"}]}
    assert info["format"] == FORMAT and info["format_version"] == FORMAT_VERSION
    (bundle / BUNDLE_JSON).write_text(json.dumps(info))
    assert _main(["place", "--bundle", str(bundle), "--factory-dir", str(dirs[1])]) == 0
    assert read_preset(dirs[1] / "Keys.json") == Preset("Keys", Timbre(0.25, -0.5), tags=("keyboard",),
                                                        map_hash=shipped["hash"])
    assert read_preset(dirs[1] / "Bass.json").map_hash == "", "a family the map lacks stays as it was"
    assert "Keys: (0.250, -0.500)" in capsys.readouterr().out
    assert _main(["place", "--bundle", str(tmp_path / "missing"), "--factory-dir", str(dirs[1])]) == 2
