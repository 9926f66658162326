"""Issue 19 in the window: while the pad is dragged with a key held, the status strip says the notes follow the pad
(previews), and the note counter returns once the point rests; the app offers no prerendering (nothing needs it)."""

from __future__ import annotations


def test_status_strip_shows_the_notes_following_a_drag(window, adapter, qtbot):
    strip = window.status_strip
    adapter.start()  # no audio here: the worker alone
    adapter.note_on(60, 100)
    seen = set()
    for i in range(40):  # a drag across the map, 40 moves
        adapter.set_point(-0.8 + 0.04 * i, 0.1)
        qtbot.wait(25)
        window.poll_engine()
        seen.add(strip.cache_bar.format())
        if "following the pad" in seen and i >= 10:
            break
    assert "following the pad" in seen, seen
    assert adapter.engine.worker.preview_notes > 0
    qtbot.waitUntil(lambda: (window.poll_engine(), strip.cache_bar.format())[1] == "notes %v/%m", timeout=15000)
    adapter.note_off(60)


def test_the_app_offers_no_prerendering(window):
    texts = [a.text() for menu in window.menuBar().findChildren(type(window.tools_menu)) for a in menu.actions()]
    assert texts and not any("rerender" in t for t in texts), texts
