"""The real-time engine: MIDI keyboard in, polyphonic voices from a per-note cache, generation worker, audio out.

No Qt here, and no torch in the audio path. Public API (the GUI, ``python -m synth play`` and ``synth.render``
build on it; details in each module's docstring and in docs/INTERFACES.md):

``Engine`` (synth.engine.engine)
    Engine(source, *, sample_rate=48000, block_size=512, device=None, channels=2, max_voices=32, midi=True,
           midi_client="pgesam", grid_root=None, use_grid=True, cache_bytes=512 MiB, settings=None, batch_size=4)
    Engine.from_bundle(path="models/default", **kw)   # the model (Synthesizer) as note source
    Engine.demo(**kw)                                 # SineNoteSource: the fallback when no model is installed
    start() / stop() / with Engine(...) as e:         # audio stream + MIDI virtual port + worker threads
    set_point(x, y); point                            # timbre point on the map
    note_on(pitch, velocity=100); note_off(pitch); sustain(on); pitch_bend(semitones); panic()
    settings: EngineSettings(master_gain_db=-12, attack=0.003, release=0.25, bend_range=2, velocity_curve="linear",
              midi_channel=None); update_settings(**changes)
    connect_midi(name); midi_ports(); midi_port_name  # "pgesam:midi_in"; named keyboards are re-connected on replug
    meters() -> dict(peak, peak_db, limiter_reduction_db, xruns, load, max_load, voices, latency_ms, bad_blocks,
                     callback_errors,
                     cache_done, cache_total, worker_errors, worker_error_count, master_gain)
    audio_lost(); abandon_audio()                     # the stream died under us (server gone): drop it, never stop it
    peak, xruns, latency, cache_progress() -> (done, total)
    process_block(out)                                # one callback's work (events, mix, limiter); for tests/tools

``Mixer`` (synth.engine.voices): the voice engine, also used offline by synth.render
    Mixer(sample_rate, block_size, max_voices=32, *, attack, release, steal_fade, timbre_crossfade, bend_range,
          velocity_curve)
    note_on(pitch, velocity, buffer_ref)  # NoteBuffer or BufferSlot; note_off(pitch); sustain(on);
    pitch_bend(semitones); pitch_wheel(-1..1); all_notes_off(); all_sound_off(); render(out[frames, channels])

``prepare_note_buffer(audio, source_rate, target_rate, pitch)`` (synth.engine.buffers) -> NoteBuffer ready to play.
``NoteSource`` protocol and ``SineNoteSource`` (synth.engine.sources); ``NoteCache``/``GridStore``
(synth.engine.note_cache); ``GenerationWorker`` (synth.engine.worker); ``MidiParser``/``MidiInput``
(synth.engine.midi_io); ``PeakLimiter`` (synth.engine.limiter); ``AudioOutput`` (synth.engine.audio_io).
"""
