"""The GM program -> NSynth family map and the instrument-disjoint split rule."""

from __future__ import annotations

from synth.data.families import FAMILIES, GM_NAMES, drop_reason, family_index, family_of_program, source_of_program
from synth.data.splits import assign, program_splits, split_of_program


def test_families_are_nsynths_sorted_with_nsynths_indices():
    assert FAMILIES == tuple(sorted(FAMILIES))
    assert len(FAMILIES) == 11
    assert family_index("bass") == 0 and family_index("synth_lead") == 9 and family_index("vocal") == 10


def test_gm_groups_map_to_families():
    assert len(GM_NAMES) == 128
    expected = {0: "keyboard", 7: "keyboard", 11: "mallet", 16: "organ", 19: "organ", 21: "reed", 24: "guitar",
                33: "bass", 38: "bass", 40: "string", 46: "string", 48: "string", 52: "vocal", 56: "brass",
                65: "reed", 73: "flute", 80: "synth_lead", 88: "synth_lead", 104: "guitar", 108: "mallet",
                109: "reed", 110: "string", 114: "mallet"}
    for program, family in expected.items():
        assert family_of_program(program) == family, GM_NAMES[program]


def test_effects_and_unpitched_percussion_are_dropped_with_a_reason():
    for program in (47, 55, 96, 103, 113, 115, 119, 120, 127):
        assert family_of_program(program) is None
        assert drop_reason(program) in {"unpitched_percussion", "sound_effect", "synth_effect"}
    assert drop_reason(0) is None


def test_sources():
    assert source_of_program(0) == "acoustic"
    assert source_of_program(4) == "electronic"
    assert source_of_program(81) == "synthetic"
    assert source_of_program(0, synthetic_font=True) == "synthetic"


def test_split_is_deterministic_disjoint_and_stratified():
    splits = program_splits()
    assert splits == dict(program_splits.__wrapped__())  # same answer when recomputed
    kept = [p for p in range(128) if family_of_program(p) is not None]
    assert sorted(splits) == kept
    for family in FAMILIES:
        members = [splits[p] for p in kept if family_of_program(p) == family]
        assert "test" in members and "train" in members, family
    counts = {s: list(splits.values()).count(s) for s in ("train", "valid", "test")}
    assert 0.7 <= counts["train"] / len(kept) <= 0.85
    assert split_of_program(0) == "train"  # the reference piano stays in training


def test_assign_rule_on_small_families():
    assert sorted(assign([1, 2, 3]).values()) == ["test", "train", "train"]
    got = assign(list(range(10)))
    assert sorted(got.values()).count("test") == 1 and sorted(got.values()).count("valid") == 1
    assert assign(list(range(10))) == assign(list(reversed(range(10))))
