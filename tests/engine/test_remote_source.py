"""The model in a process of its own (synth.engine.remote_source): same notes as in-process, previews, the
"character" control, anchors from the disk cache, clear errors, and the process ends with its connections."""

from __future__ import annotations

import numpy as np
import pytest

from synth.engine.disk_cache import DiskCachedSource, DiskNoteCache


@pytest.fixture(scope="module")
def flow_bundle(tmp_path_factory):
    from synth.model.bundle import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("b") / "tiny", seed=4, flow=True)


def test_remote_notes_equal_in_process_notes_and_the_process_ends(flow_bundle, tmp_path, one_torch_thread):
    from synth.engine.bundle_source import open_bundle
    from synth.engine.remote_source import RemoteModelSource

    local = open_bundle(flow_bundle, device="cpu", disk_cache=False, separate_process=False, spare_core=False)
    remote = RemoteModelSource(flow_bundle)
    try:
        assert (remote.hash, remote.pitch_range, remote.sample_rate) == (local.hash, local.pitch_range,
                                                                         local.sample_rate)
        assert remote.generation_settings == local.generation_settings
        assert remote.instruments == local.instruments and remote.play_path == "flow"
        np.testing.assert_array_equal(remote.generate((0.1, 0.2), [60, 62], 100),
                                      local.generate((0.1, 0.2), [60, 62], 100))
        np.testing.assert_allclose(remote.preview((0.4, 0.2), [60], 100), local.preview((0.4, 0.2), [60], 100),
                                   atol=1e-6)
        offset, tail = remote.preview_tail((0.4, 0.2), [60], 100, 0.05)  # the preview from a frame on
        assert offset > 0 and (offset, tail.shape) == (local.preview_tail((0.4, 0.2), [60], 100, 0.05)[0], tail.shape)
        np.testing.assert_allclose(tail, local.preview((0.4, 0.2), [60], 100)[:, offset:], atol=1e-6)
        for source in (remote, local):  # a refined preview (issue 19) is made in the model's process as here
            out = [source.refine_preview((0.5, 0.3), [60, 62], 100, 5)]
            while not out[-1][1]:
                out.append(source.refine_preview((0.5, 0.3), [60, 62], 100, 6))
            assert out[-1] == (5, True) and len(out) > 1
        np.testing.assert_allclose(remote.preview((0.5, 0.3), [60, 62], 100),
                                   local.preview((0.5, 0.3), [60, 62], 100), atol=1e-5)
        remote.set_character(3.0)  # the window's "character" control reaches the model
        local.set_character(3.0)
        assert remote.character == local.character == 3.0
        assert remote.generation_settings == local.generation_settings
        np.testing.assert_array_equal(remote.generate((0.1, 0.2), [60], 100), local.generate((0.1, 0.2), [60], 100))
        # through the disk cache: a fresh process takes the notes from disk and their frames as anchors
        DiskCachedSource(remote, DiskNoteCache(tmp_path)).generate((-0.3, 0.1), [55], 100)
    finally:
        remote.close()
    assert remote.returncode == 0
    again = RemoteModelSource(flow_bundle)
    try:
        cached = DiskCachedSource(again, DiskNoteCache(tmp_path))
        cached.generate((-0.3, 0.1), [55], 100)  # another character (guidance 2): another note
        assert cached.generated_notes == 1
        again.set_character(3.0)
        cached.generated_notes = 0
        cached.generate((-0.3, 0.1), [55], 100)
        assert cached.generated_notes == 0 and again.anchor_count() == 2  # its own note and the one from disk
    finally:
        again.close()


def test_a_bundle_that_does_not_load_is_a_clear_error(tmp_path):
    from synth.engine.remote_source import RemoteError, RemoteModelSource

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bundle.json").write_text("{}")
    with pytest.raises(RemoteError, match="broken"):
        RemoteModelSource(tmp_path / "broken")


def test_an_engine_plays_a_bundle_from_its_own_process(flow_bundle):
    import time

    from synth.engine.engine import Engine
    from synth.engine.remote_source import RemoteModelSource

    engine = Engine.from_bundle(flow_bundle, separate_process=True, midi=False, use_grid=False)
    remote = engine.model.backend  # the BundleSource plays through it
    assert isinstance(remote, RemoteModelSource)
    try:
        engine.worker.start()
        engine.note_on(60, 100)
        engine.worker.request(0.2, 0.1)
        deadline = time.monotonic() + 60
        while not engine.worker.idle() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.worker.idle(), engine.meters()
        assert engine.slots[60].buffer is not None and engine.meters()["worker_error_count"] == 0
    finally:
        engine.stop()
        remote.close()
