"""The instrument family taxonomy and the General MIDI program -> family map.

FAMILIES are NSynth's eleven families, sorted, so a class index is the same integer NSynth itself writes in
``instrument_family`` (bass=0 ... vocal=10). That keeps one classifier head valid for real NSynth and for our
SoundFont notes.

Decisions where General MIDI and NSynth disagree (documented here because the map's colours depend on them):

- Pads (GM 88-95) map to ``synth_lead``. NSynth has no pad family; its ``synth_lead`` class gathers every
  synthesizer patch, pads included. A twelfth class would shift NSynth's integer labels and leave a class that is
  empty on the real data.
- Synth effects (96-103), sound effects (120-127), unpitched percussion (113, 115-119), orchestra hit (55), timpani
  (47) and drum kits (bank 128, never rendered) are dropped: they are effects or noise, not pitched instrument notes.
- Free reeds (accordion 21, harmonica 22, tango accordion 23, bagpipe 109, shanai 111) are ``reed``; reed organ (20)
  stays ``organ``.
- Plucked strings from the ethnic group (sitar, banjo, shamisen, koto) are ``guitar``; fiddle is ``string``; kalimba,
  steel drums and tinkle bell are ``mallet``; harp and the string/synth-string ensembles are ``string``; choir, voice
  oohs and synth voice are ``vocal``.

Sources follow NSynth's three values: synthesizer patches (and every program of an FM font) are ``synthetic``,
electric instruments (electric pianos, drawbar/rock organs, electric guitars and basses) are ``electronic``, the rest
``acoustic``.
"""

from __future__ import annotations

FAMILIES: tuple[str, ...] = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal",
)
SOURCES: tuple[str, ...] = ("acoustic", "electronic", "synthetic")

GM_NAMES: tuple[str, ...] = (
    "acoustic_grand_piano", "bright_acoustic_piano", "electric_grand_piano", "honky_tonk_piano",
    "electric_piano_1", "electric_piano_2", "harpsichord", "clavinet",
    "celesta", "glockenspiel", "music_box", "vibraphone", "marimba", "xylophone", "tubular_bells", "dulcimer",
    "drawbar_organ", "percussive_organ", "rock_organ", "church_organ", "reed_organ", "accordion", "harmonica",
    "tango_accordion",
    "nylon_guitar", "steel_guitar", "jazz_guitar", "clean_guitar", "muted_guitar", "overdriven_guitar",
    "distortion_guitar", "guitar_harmonics",
    "acoustic_bass", "fingered_bass", "picked_bass", "fretless_bass", "slap_bass_1", "slap_bass_2",
    "synth_bass_1", "synth_bass_2",
    "violin", "viola", "cello", "contrabass", "tremolo_strings", "pizzicato_strings", "orchestral_harp", "timpani",
    "string_ensemble_1", "string_ensemble_2", "synth_strings_1", "synth_strings_2", "choir_aahs", "voice_oohs",
    "synth_voice", "orchestra_hit",
    "trumpet", "trombone", "tuba", "muted_trumpet", "french_horn", "brass_section", "synth_brass_1", "synth_brass_2",
    "soprano_sax", "alto_sax", "tenor_sax", "baritone_sax", "oboe", "english_horn", "bassoon", "clarinet",
    "piccolo", "flute", "recorder", "pan_flute", "blown_bottle", "shakuhachi", "whistle", "ocarina",
    "lead_square", "lead_sawtooth", "lead_calliope", "lead_chiff", "lead_charang", "lead_voice", "lead_fifths",
    "lead_bass_lead",
    "pad_new_age", "pad_warm", "pad_polysynth", "pad_choir", "pad_bowed", "pad_metallic", "pad_halo", "pad_sweep",
    "fx_rain", "fx_soundtrack", "fx_crystal", "fx_atmosphere", "fx_brightness", "fx_goblins", "fx_echoes",
    "fx_sci_fi",
    "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shanai",
    "tinkle_bell", "agogo", "steel_drums", "woodblock", "taiko_drum", "melodic_tom", "synth_drum", "reverse_cymbal",
    "guitar_fret_noise", "breath_noise", "seashore", "bird_tweet", "telephone_ring", "helicopter", "applause",
    "gunshot",
)

_GROUP_FAMILY: tuple[str | None, ...] = (
    "keyboard", "mallet", "organ", "guitar", "bass", "string", "string", "brass",
    "reed", "flute", "synth_lead", "synth_lead", None, None, None, None,
)
_OVERRIDES: dict[int, str | None] = {
    21: "reed", 22: "reed", 23: "reed",
    46: "string", 47: None,
    52: "vocal", 53: "vocal", 54: "vocal", 55: None,
    104: "guitar", 105: "guitar", 106: "guitar", 107: "guitar", 108: "mallet", 109: "reed", 110: "string",
    111: "reed", 112: "mallet", 114: "mallet",
}
_DROP_REASONS: dict[int, str] = {47: "unpitched_percussion", 55: "sound_effect"}
_ELECTRONIC: frozenset[int] = frozenset({2, 4, 5, 7, 16, 17, 18, 26, 27, 28, 29, 30, 31, 33, 34, 35, 36, 37})
_SYNTHETIC: frozenset[int] = frozenset({38, 39, 50, 51, 54, 62, 63, *range(80, 104)})


def family_of_program(program: int) -> str | None:
    """NSynth family of a General MIDI program (0-127), or None when the program is not a pitched instrument."""
    if not 0 <= program < 128:
        raise ValueError(f"GM program out of range: {program}")
    if program in _OVERRIDES:
        return _OVERRIDES[program]
    return _GROUP_FAMILY[program // 8]


def drop_reason(program: int) -> str | None:
    """Why a program is never rendered (None when it is an instrument we keep)."""
    if family_of_program(program) is not None:
        return None
    if program in _DROP_REASONS:
        return _DROP_REASONS[program]
    if 96 <= program < 104:
        return "synth_effect"
    if 112 <= program < 120:
        return "unpitched_percussion"
    return "sound_effect"


def source_of_program(program: int, synthetic_font: bool = False) -> str:
    """NSynth source: acoustic, electronic or synthetic (every program of an FM font is synthetic)."""
    if synthetic_font or program in _SYNTHETIC:
        return "synthetic"
    return "electronic" if program in _ELECTRONIC else "acoustic"


def family_index(family: str) -> int:
    """Class index of a family (its position in FAMILIES, equal to NSynth's integer label)."""
    return FAMILIES.index(family)


def programs_by_family() -> dict[str, list[int]]:
    """The kept GM programs of each family, in program order."""
    out: dict[str, list[int]] = {f: [] for f in FAMILIES}
    for program in range(128):
        family = family_of_program(program)
        if family is not None:
            out[family].append(program)
    return out
