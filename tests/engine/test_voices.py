"""The voice mixer without any I/O: pitch, envelopes, stealing, sustain, loop, crossfades, allocation-free render."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from synth.engine.buffers import BufferSlot, prepare_note_buffer
from synth.engine.sources import SineNoteSource
from synth.engine.voices import Mixer
from tests.jackbus import cents, dominant_tone, midi_to_hz

SR = 48000
BLOCK = 512


def sine_note(pitch: int, seconds: float = 4.0, amp: float = 0.5, sr: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    env = np.minimum(t / 0.01, 1.0) * np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) / 0.1))
    return (amp * env * np.sin(2 * np.pi * midi_to_hz(pitch) * t)).astype(np.float32)


def assert_wraps_click_free(audio: np.ndarray, buf) -> None:
    """The played audio is no rougher (second difference) than twice the note's own audio before its loop."""
    own = max_d2(buf.data[: buf.loop_start])
    assert max_d2(audio[SR // 10:]) < 2.0 * own


def decaying_note(pitch: int, db_per_second: float, seconds: float = 4.0, amp: float = 0.5,
                  sr: int = 24000) -> np.ndarray:
    """A piano-like note: exponential decay from the attack on (then the usual release after 3 s)."""
    t = np.arange(int(seconds * sr)) / sr
    return (sine_note(pitch, seconds, amp, sr) * 10.0 ** (-db_per_second * t / 20.0)).astype(np.float32)


def levels_db(audio: np.ndarray, start_s: float, end_s: float, window_s: float = 0.05) -> np.ndarray:
    w = int(window_s * SR)
    frames = audio[int(start_s * SR):int(end_s * SR)]
    frames = frames[: len(frames) // w * w].reshape(-1, w)
    return 20 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-12)


@pytest.fixture(scope="module")
def buf60():
    return prepare_note_buffer(sine_note(60), 24000, SR, 60)


def run(mixer: Mixer, seconds: float, channels: int = 1) -> np.ndarray:
    blocks = int(round(seconds * SR / mixer.block_size))
    out = np.zeros((mixer.block_size, channels), np.float32)
    chunks = []
    for _ in range(blocks):
        mixer.render(out)
        chunks.append(out[:, 0].copy())
    return np.concatenate(chunks)


def max_d2(x: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(x, 2)))) if len(x) > 2 else 0.0


def test_buffer_is_at_device_rate_with_a_loop_inside_the_held_part(buf60):
    assert buf60.sample_rate == SR and buf60.length == 4 * SR
    assert SR * 0.5 < buf60.loop_start < buf60.loop_end <= 3 * SR
    assert np.all(buf60.data[buf60.length:] == 0)


def test_note_sounds_at_its_pitch_and_out_of_range_notes_are_repitched(buf60):
    m = Mixer(SR, BLOCK, 8)
    for pitch in (60, 72, 53):  # same buffer, re-pitched by playback rate
        m.note_on(pitch, 100, buf60)
        audio = run(m, 0.5)
        m.all_sound_off()
        run(m, 0.05)
        tone = dominant_tone(audio[SR // 10:], SR)
        assert abs(cents(tone.frequency, midi_to_hz(pitch))) < 2, (pitch, tone)


def test_pitch_bend_changes_pitch_by_the_bend(buf60):
    m = Mixer(SR, BLOCK, 8)
    m.note_on(60, 100, buf60)
    run(m, 0.1)
    m.pitch_bend(2.0)
    assert abs(cents(dominant_tone(run(m, 0.4), SR).frequency, midi_to_hz(62))) < 2
    m.pitch_wheel(-1.0)
    assert abs(cents(dominant_tone(run(m, 0.4), SR).frequency, midi_to_hz(58))) < 2


def test_envelopes_release_and_steal_are_click_free(buf60):
    # The sine's own second difference is (2 pi f / sr)^2 * amp ~ 0.0015; a click would be ~ the amplitude.
    bound = 3 * (2 * np.pi * midi_to_hz(60) / SR) ** 2 * 0.5
    m = Mixer(SR, BLOCK, 2)
    m.note_on(60, 127, buf60)
    a = run(m, 0.3)
    m.note_off(60)
    b = run(m, 0.4)
    assert max_d2(np.concatenate([a, b])) < bound
    assert np.max(np.abs(b[-BLOCK:])) == 0 and m.active_voices == 0
    # re-struck and stolen voices fade instead of cutting
    m.note_on(60, 127, buf60)
    c = run(m, 0.2)
    m.note_on(60, 127, buf60)  # re-strike: old voice fades out
    m.note_on(67, 127, buf60)
    m.note_on(64, 127, buf60)  # third note with max_voices 2: the oldest is stolen
    d = run(m, 0.2)
    assert max_d2(np.concatenate([c, d])) < 4 * bound
    assert m.active_voices == 2


def test_stealing_prefers_released_then_pedal_held_then_oldest(buf60):
    m = Mixer(SR, BLOCK, 3)
    for p in (60, 62, 64):
        m.note_on(p, 100, buf60)
    run(m, 0.05)
    m.note_off(62)  # releasing
    m.note_on(65, 100, buf60)
    run(m, 0.05)
    assert sorted(v.pitch for v in m.voices if v.state and not v.killing) == [60, 64, 65]
    m.sustain(True)
    m.note_off(64)  # pedal-held
    m.note_on(67, 100, buf60)
    assert sorted(v.pitch for v in m.voices if v.state and not v.killing) == [60, 65, 67]
    m.note_on(69, 100, buf60)  # all held now: the oldest (60) goes
    assert sorted(v.pitch for v in m.voices if v.state and not v.killing) == [65, 67, 69]
    run(m, 0.05)
    assert m.active_voices == 3


def test_sustain_pedal_defers_note_off(buf60):
    m = Mixer(SR, BLOCK, 4)
    m.sustain(True)
    m.note_on(60, 100, buf60)
    run(m, 0.05)
    m.note_off(60)
    assert np.sqrt(np.mean(run(m, 0.5)[-4800:] ** 2)) > 0.1
    m.sustain(False)
    tail = run(m, 0.4)
    assert np.max(np.abs(tail[-BLOCK:])) == 0 and m.active_voices == 0


def test_long_hold_loops_the_crossfaded_region_without_clicks():
    src = SineNoteSource(sample_rate=24000)
    note = src.generate((0.3, -1.0), [57])[0]  # the demo's slowest decay: 2.5 dB over the loop, a steady loop
    buf = prepare_note_buffer(note, 24000, SR, 57)
    assert buf.loop_gain == 1.0
    m = Mixer(SR, BLOCK, 4)
    m.note_on(57, 100, buf)
    audio = run(m, 7.0)  # more than twice the held part
    f = midi_to_hz(57)
    assert_wraps_click_free(audio, buf)
    late = audio[int(6.0 * SR):]
    assert abs(cents(dominant_tone(late, SR).frequency, f)) < 3
    assert np.sqrt(np.mean(late**2)) > 0.3 * np.sqrt(np.mean(audio[int(0.5 * SR):int(1.0 * SR)] ** 2))
    # released late, it plays the note's decay and ends
    m.note_off(57)
    assert np.max(np.abs(run(m, 1.0)[-BLOCK:])) == 0


def test_held_decaying_note_keeps_decaying_across_loop_wraps():
    buf = prepare_note_buffer(decaying_note(57, 10.0), 24000, SR, 57)
    assert buf.loop_gain == pytest.approx(10.0 ** (-10.0 * 1.5 / 20.0), rel=0.02)  # 1.5 s of loop at -10 dB/s
    m = Mixer(SR, BLOCK, 4)
    m.note_on(57, 100, buf)
    audio = run(m, 7.0)  # three loop wraps (2.5, 4.0, 5.5 s)
    db = levels_db(audio, 0.5, 7.0)
    # no pumping: before this gain, each wrap jumped back up by the 15 dB lost over the loop; what remains is the
    # equal-power crossfade before each wrap (at most +3 dB where the two ends happen to be in phase)
    assert np.max(np.diff(db)) < 3.1
    for wrap in (2.5, 4.0, 5.5):
        after, before = levels_db(audio, wrap + 0.05, wrap + 0.15), levels_db(audio, wrap - 0.3, wrap - 0.2)
        assert after.max() < before.min() - 2.0, wrap
    late, early = levels_db(audio, 6.5, 6.8).mean(), levels_db(audio, 0.5, 0.8).mean()
    assert late - early == pytest.approx(-10.0 * 6.0, abs=2.0)  # the decay goes on at its own rate
    assert_wraps_click_free(audio, buf)
    m.note_off(57)  # released, it plays on from where the decay got to and ends
    tail = run(m, 1.0)
    assert levels_db(tail, 0.0, 0.05)[0] < db[-1] + 1.0 and np.max(np.abs(tail[-BLOCK:])) == 0


def test_held_note_that_decays_away_frees_its_voice_and_steady_loops_keep_no_gain():
    m = Mixer(SR, BLOCK, 4)
    m.note_on(60, 100, prepare_note_buffer(decaying_note(60, 20.0), 24000, SR, 60))
    run(m, 7.0)  # -30 dB per pass: below -80 dB after the third wrap (5.5 s), key still down
    assert m.active_voices == 0
    assert prepare_note_buffer(sine_note(60), 24000, SR, 60).loop_gain == 1.0
    exported = prepare_note_buffer(decaying_note(60, 10.0), 24000, SR, 60, decay_loop=False)
    assert exported.loop_gain == 1.0  # sample packs: the loop wraps to its start level, as SFZ players expect


def test_new_buffer_in_a_slot_crossfades_sounding_voices():
    src = SineNoteSource(sample_rate=24000)
    slot = BufferSlot(prepare_note_buffer(src.generate((-1, -1), [60])[0], 24000, SR, 60))
    m = Mixer(SR, BLOCK, 4, timbre_crossfade=0.03)
    m.note_on(60, 100, slot)
    a = run(m, 0.3)
    slot.buffer = prepare_note_buffer(src.generate((1, 1), [60])[0], 24000, SR, 60)
    b = run(m, 0.3)
    voice = next(v for v in m.voices if v.state)
    assert voice.buffer is slot.buffer and voice.next_buffer is None
    own = max(max_d2(a[SR // 10:]), max_d2(b[SR // 10:]))
    assert max_d2(np.concatenate([a[-SR // 10:], b[: SR // 10]])) < 1.5 * own


def test_a_slot_swapped_faster_than_the_crossfade_is_still_followed():
    # a pad drag: the preview worker swaps the held slot every ~17 ms, the crossfade lasts 30 ms (3 blocks here).
    # Each crossfade runs to its end, then the voice crossfades to the newest buffer: it never falls far behind and
    # never jumps back to the buffer it started with (a restarted crossfade did both: issue 19)
    src = SineNoteSource(sample_rate=24000)
    buffers = [prepare_note_buffer(src.generate((-1 + 2 * k / 11, 0.0), [60])[0], 24000, SR, 60) for k in range(12)]
    slot = BufferSlot(buffers[0])
    m = Mixer(SR, BLOCK, 4, timbre_crossfade=0.03)
    m.note_on(60, 100, slot)
    before = run(m, 0.3)
    voice = next(v for v in m.voices if v.state)
    chunks, worst = [], 0
    for k in range(1, 12 * 3):
        slot.buffer = buffers[min(k // 2, 11)]  # a new buffer every second block
        chunks.append(run(m, BLOCK / SR))
        behind = min(k // 2, 11) - buffers.index(voice.buffer)
        worst = max(worst, behind)
    assert worst <= 2  # a crossfade (3 blocks) spans 1.5 swaps: the voice is at most 2 buffers behind
    chunks.append(run(m, 0.1))
    assert voice.buffer is buffers[-1] and voice.next_buffer is None
    after = np.concatenate(chunks)
    own = max(max_d2(before[SR // 10:]), max_d2(after[-SR // 20:]))
    assert max_d2(np.concatenate([before[-SR // 10:], after])) < 1.5 * own  # no clicks


def test_voice_waits_for_its_buffer_and_release_before_it_cancels():
    slot = BufferSlot()
    m = Mixer(SR, BLOCK, 4)
    m.note_on(60, 100, slot)
    assert np.all(run(m, 0.05) == 0) and m.active_voices == 1
    slot.buffer = prepare_note_buffer(sine_note(60), 24000, SR, 60)
    assert np.max(np.abs(run(m, 0.1))) > 0.1
    m.note_on(62, 100, BufferSlot())
    m.note_off(62)
    assert m.active_voices == 1


def test_render_is_allocation_free_in_steady_state():
    src = SineNoteSource(sample_rate=24000)
    audio = src.generate((0.0, 0.0), list(range(48, 80)))
    t = np.arange(audio.shape[1]) / 24000
    audio[::2] *= (10.0 ** (-8.0 * t / 20.0)).astype(np.float32)  # half of them decay: loop gain at the wraps
    slots = [BufferSlot(prepare_note_buffer(audio[i], 24000, SR, 48 + i)) for i in range(32)]
    m = Mixer(SR, 2048, 32)
    for i, s in enumerate(slots):
        m.note_on(48 + i, 90, s)
    out = np.zeros((2048, 2), np.float32)
    for _ in range(5):
        m.render(out)
    m.pitch_bend(0.7)
    for i in range(0, 32, 3):  # some voices crossfading to a new buffer, some releasing
        slots[i].buffer = prepare_note_buffer(audio[(i + 1) % 32], 24000, SR, 48 + i)
        m.note_off(49 + i)
    tracemalloc.start()
    try:
        m.render(out)
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(150):  # crosses loop wraps (3.2 s at 2048 frames/block is ~75 blocks)
            m.render(out)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # an array temporary of one block would be >= 8 KiB (2048 float32); small Python objects (views) are fine
    assert peak - before < 4096, (before, peak)
    assert after - before < 1024
    assert m.active_voices > 16
