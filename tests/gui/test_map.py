"""Issue 17, the map a musician reads: names with their font, plain legend outside the plot, visible family regions,
the view fitted to the map, presets drawn and named on it, sounding notes marked, a preset chosen at first launch."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QRect

from synth.gui.mapdata import MapPoint, display_name, family_label


def test_instrument_names_are_shown_with_their_font():
    assert display_name("fluidr3mono_094_pad_halo") == "Pad Halo (FluidR3 Mono)"
    assert display_name("csound_000_acoustic_grand_piano") == "Acoustic Grand Piano (Csound)"
    assert display_name("msgfull_005_electric_piano_2") == "Electric Piano 2 (MuseScore General)"
    assert display_name("opl3_107_koto") == "Koto (OPL3 FM)"
    assert display_name("timgm6mb_065_alto_sax") == "Alto Sax (TimGM6mb)"
    assert display_name("keyboard_acoustic_004") == "Keyboard Acoustic 004 (NSynth)"
    assert display_name("somefont_012_fx_crystal") == "FX Crystal (somefont)"
    assert display_name("tiny_bass_0") == "Tiny Bass 0"
    assert family_label("synth_lead") == "Synth lead" and family_label("bass") == "Bass"


def test_the_pad_and_the_panel_name_instruments_readably(qtbot):
    from synth.gui.pad import TimbrePad

    pad = TimbrePad()
    qtbot.addWidget(pad)
    pad.set_instruments([MapPoint("fluidr3mono_094_pad_halo", "synth_lead", 0.0, 0.0, False),
                         MapPoint("opl3_107_koto", "guitar", 1.0, 1.0, True)])
    assert pad.nearest_names(0.0, 0.0)[0] == "Pad Halo (FluidR3 Mono) · Synth lead"
    assert pad.nearest_names(1.0, 1.0)[0] == "Koto (OPL3 FM) · Guitar · not in training"


def test_window_panel_shows_display_names(window):
    if not window.pad.points:
        pytest.skip("no instruments on the demo map")
    text = window.sound_panel.nearest_label.text()
    assert "_" not in text.split("<")[0]


def _points():
    return [MapPoint("a_000_one", "keyboard", 0.0, 0.0, False), MapPoint("a_001_two", "keyboard", 0.2, 0.1, False),
            MapPoint("a_002_three", "keyboard", 0.1, 0.3, False), MapPoint("a_003_tuba", "brass", 1.0, 1.0, False),
            MapPoint("a_004_horn", "brass", 0.8, 1.2, False), MapPoint("a_005_horn2", "brass", 0.9, 0.7, False),
            MapPoint("a_006_new", "organ", -1.0, 0.5, True)]


def test_legend_speaks_plainly_and_lives_outside_the_plot(qtbot):
    from synth.gui.pad import TimbrePad

    pad = TimbrePad()
    qtbot.addWidget(pad)
    pad.set_instruments(_points())
    text = pad.legend.plain_text()
    assert "Brass" in text and "Keyboard" in text and "not in training" in text
    assert "held out" not in text
    assert pad.legend.parent() is not pad and pad.legend not in pad.plotItem.vb.addedItems
    assert pad.plotItem.legend is None, "no legend drawn over the map"


def test_axes_say_nothing_misleading(qtbot):
    from synth.gui.pad import TimbrePad

    pad = TimbrePad()
    qtbot.addWidget(pad)
    for side in ("bottom", "left"):
        axis = pad.plotItem.getAxis(side)
        assert not axis.isVisible() or "timbre" not in (axis.labelText or "")


@pytest.mark.parametrize("size", [(1280, 800), (760, 520)])
def test_legend_is_never_clipped_nor_over_the_map(window, qtbot, size):
    window.resize(*size)
    qtbot.wait(50)
    legend, pad = window.pad.legend, window.pad
    assert legend.isVisible()
    assert legend.height() >= legend.heightForWidth(legend.width()), "every legend line is shown"
    top_left = legend.mapTo(window, legend.rect().topLeft())
    legend_rect = QRect(top_left, legend.size())
    pad_rect = QRect(pad.mapTo(window, pad.rect().topLeft()), pad.size())
    assert not legend_rect.intersects(pad_rect)
    assert window.rect().contains(legend_rect)


def test_family_regions_are_visible(qtbot):
    from synth.gui.pad import TimbrePad

    pad = TimbrePad()
    qtbot.addWidget(pad)
    pad.set_instruments(_points())
    assert set(pad.region_items) == {"keyboard", "brass"}  # training families; the lone new organ has no region
    for item in pad.region_items.values():
        assert item.brush().color().alpha() >= 40
        assert item.pen().color().alpha() >= 120
    pad.set_regions_visible(False)
    assert not any(item.isVisible() for item in pad.region_items.values())


def test_the_view_is_fitted_to_the_map(qtbot):
    from synth.gui.pad import TimbrePad

    pad = TimbrePad()
    qtbot.addWidget(pad)
    pad.resize(900, 400)  # much wider than the map is tall: the dots still use the pad's space
    pad.show()
    qtbot.waitExposed(pad)
    points = _points()
    pad.set_instruments(points)
    (vx0, vx1), (vy0, vy1) = pad.plotItem.vb.viewRange()
    xs, ys = [p.x for p in points], [p.y for p in points]
    assert (max(xs) - min(xs)) / (vx1 - vx0) > 0.8
    assert (max(ys) - min(ys)) / (vy1 - vy0) > 0.8


def test_presets_are_drawn_and_named_on_the_map(window):
    names = set(window.pad.preset_items)
    assert names == set(window.preset_bar.library.names())
    current = window.preset_bar.current_name
    assert current in names
    marker, label = window.pad.preset_items[current]
    assert label.toPlainText() == current
    placed = window._place_on_map(window.preset_bar.library.find(current))
    xmin, xmax, ymin, ymax = window.pad.extent
    expected = (min(max(placed.timbre.x, xmin), xmax), min(max(placed.timbre.y, ymin), ymax))
    assert marker.data[0]["x"] == pytest.approx(expected[0]) and marker.data[0]["y"] == pytest.approx(expected[1])
    assert window.pad.current_preset == current


def test_a_factory_preset_is_selected_at_first_launch(window, library):
    name = window.preset_bar.current_name
    entry = library.find(name)
    assert entry is not None and not entry.is_user
    placed = window._place_on_map(entry).timbre
    xmin, xmax, ymin, ymax = window.pad.extent
    assert window.pad.point == pytest.approx((min(max(placed.x, xmin), xmax), min(max(placed.y, ymin), ymax)),
                                             abs=1e-6)
    now = window.timbre()
    assert (now.gain_db, now.attack_ms, now.release_ms) == (placed.gain_db, placed.attack_ms, placed.release_ms)
    assert not window.preset_bar.modified


def test_the_point_of_every_sounding_note_is_marked(window, adapter, qtbot):
    adapter.engine.worker.start()
    window.play_note(60, 100)
    window.play_note(64, 100)
    # Each note is marked once its slot is generated; under load E4 may still be pending when C4 is marked, so wait
    # for the one marker that names both (both notes play from the same point).
    def one_marker_names_both() -> bool:
        labels = list(window.pad.sounding.values())
        return len(labels) == 1 and "C4" in labels[0] and "E4" in labels[0]

    qtbot.waitUntil(one_marker_names_both, timeout=30000)
    (point, label), = window.pad.sounding.items()
    step = adapter.engine.cache.step
    assert point == pytest.approx(window.pad.point, abs=step)
    window.stop_note(60)
    window.stop_note(64)
    window.poll_engine()
    assert window.pad.sounding == {}


def test_the_pad_marks_notes_at_separate_points(qtbot):
    from synth.gui.pad import TimbrePad

    pad = TimbrePad()
    qtbot.addWidget(pad)
    pad.set_instruments(_points())
    pad.set_sounding({(0.0, 0.0): "C4", (1.0, 1.0): "E4 G4"})
    assert len(pad.sounding_items) == 2
    positions = sorted((item.pos().x(), item.pos().y()) for item in pad.sounding_items)
    assert positions == [pytest.approx((0.0, 0.0)), pytest.approx((1.0, 1.0))]
    pad.set_sounding({})
    assert pad.sounding_items == []


def test_hover_names_presets_too(window):
    name = window.preset_bar.current_name
    x, y = window.pad.point
    assert any(name in line for line in window.pad.hover_lines(x, y))


def pixel(pad, x, y):
    return pad.mapFromScene(pad.plotItem.vb.mapViewToScene(QPointF(x, y)))
