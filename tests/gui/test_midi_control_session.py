from synth.gui import session


def test_pad_cc_bindings_are_saved_and_restored_with_the_session(window, tmp_path):
    control = window.midi_control
    control.cc.bind("x", 74)
    control.cc.bind("y", 1)
    path = tmp_path / "session.json"
    assert session.save(window, path) is None
    control.forget()
    session.restore(window, session.load(path))
    assert control.cc.bindings == {"x": 74, "y": 1}
    assert len(window.pad.actions()) == 3  # right-click on the pad: learn X, learn Y, forget
    assert "CC74" in window.pad.actions()[0].text() and "CC1" in window.pad.actions()[1].text()
