"""The quality gate's decisions (pure rules) and the pitch tracker on synthetic tones."""

from __future__ import annotations

import numpy as np

from synth.data.gate import GateConfig, NoteMeasure, decide, measure, midi_to_hz, note_status

CFG = GateConfig()


def _m(cents: float | None, rms_db: float = -20.0) -> NoteMeasure:
    c = float("nan") if cents is None else cents
    return NoteMeasure(rms_db=rms_db, peak=0.5, f0=0.0 if cents is None else 100.0, cents=c,
                       voiced_frames=0 if cents is None else 9)


def test_note_status():
    assert note_status(_m(10), CFG) == "in_tune"
    assert note_status(_m(-1195), CFG) == "octave"
    assert note_status(_m(300), CFG) == "off_pitch"
    assert note_status(_m(None), CFG) == "unvoiced"
    assert note_status(_m(0, rms_db=-80), CFG) == "silent"


def test_in_tune_instrument_is_kept_with_tracker_octave_errors():
    notes = [_m(5)] * 22 + [_m(1200)] * 2 + [_m(None)]
    reason, keep = decide(notes, CFG)
    assert reason is None
    assert keep == [True] * 24 + [False]


def test_transposed_detuned_silent_and_unvoiced_instruments_are_dropped():
    assert decide([_m(-1200)] * 25, CFG)[0] == "octave_off"
    assert decide([_m(0)] * 12 + [_m(-1200)] * 13, CFG)[0] == "out_of_tune"  # sample switches octave mid-range
    assert decide([_m(0)] * 20 + [_m(700)] * 5, CFG)[0] == "out_of_tune"  # e.g. lead_fifths
    assert decide([_m(0)] * 20 + [_m(0, rms_db=-90)] * 5, CFG)[0] == "silent"
    assert decide([_m(0)] * 15 + [_m(None)] * 10, CFG)[0] == "unvoiced"


def test_crepe_measures_synthetic_tones():
    rate = 24000
    t = np.arange(2 * rate) / rate
    pitches = [48, 60, 72]
    audio = np.stack([0.3 * np.sign(np.sin(2 * np.pi * midi_to_hz(p) * t)) * 0.5 for p in pitches] +
                     [np.zeros_like(t)]).astype(np.float32)
    got = measure(audio, pitches + [60], rate, held=1.5, cfg=CFG)
    assert [note_status(m, CFG) for m in got] == ["in_tune"] * 3 + ["silent"]


def test_wide_grid_decides_on_the_core_and_keeps_other_notes_by_the_note_rule():
    from synth.data.gate import decide_grid

    core = [True] * 25 + [False] * 4
    extras = [_m(3), _m(-1201), _m(400), _m(None)]  # in tune, tracker octave, off pitch, unvoiced
    reason, keep = decide_grid([_m(5)] * 25 + extras, core, CFG)
    assert reason is None and keep == [True] * 25 + [True, True, False, False]
    # extras never rescue or sink the instrument: a detuned core is dropped however good its other notes are
    reason, keep = decide_grid([_m(-1200)] * 25 + [_m(0)] * 4, core, CFG)
    assert reason == "octave_off" and not any(keep)


def test_pitches_outside_crepes_range_are_tracked_by_yin():
    """MIDI 21 (27.5 Hz) and 105 (3.5 kHz) lie outside crepe's bins; the gate measures them with YIN, in tune, and
    a tone a semitone sharp of the asked pitch off pitch."""
    rate = 24000
    t = np.arange(2 * rate) / rate

    def tone(midi):  # a few harmonics below Nyquist, like a real low or high note
        f0 = midi_to_hz(midi)
        return sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6) if k * f0 < rate / 2)

    audio = np.stack([tone(21), tone(105), tone(106)]).astype(np.float32)
    got = measure(audio, [21, 105, 105], rate, held=1.5, cfg=CFG)
    assert [note_status(m, CFG) for m in got] == ["in_tune", "in_tune", "off_pitch"], got
