from synth.engine.cc_control import CCControl


def _send(values, counts, cc, value):
    values[cc] = value
    counts[cc] = (counts[cc] + 1) & 0xFF


def _settle(cc, values, counts, ticks=40):
    moved = {}
    for _ in range(ticks):
        step, _ = cc.poll(values, counts, 0.03)
        moved.update(step)
    return moved


def test_learn_binds_the_next_cc_and_smooths_7_bit_values():
    values, counts = bytearray(128), bytearray(129)
    cc = CCControl()
    cc.poll(values, counts, 0.03)
    cc.learn("x")
    _send(values, counts, 74, 127)
    first, _ = cc.poll(values, counts, 0.03)
    assert cc.bindings["x"] == 74 and cc.learning is None
    _send(values, counts, 74, 0)
    step, _ = cc.poll(values, counts, 0.03)
    assert 0.0 < step["x"] < 1.0  # smoothed: the jump from 1 to 0 glides
    assert _settle(cc, values, counts)["x"] == 0.0


def test_14_bit_when_the_lsb_partner_arrives_and_program_changes_are_reported():
    values, counts = bytearray(128), bytearray(129)
    cc = CCControl(tau=0.0)
    cc.poll(values, counts, 0.03)
    cc.learn("y")
    _send(values, counts, 1, 64)
    _send(values, counts, 33, 64)  # mod wheel MSB + LSB
    moved, program = cc.poll(values, counts, 0.03)
    assert cc.bindings["y"] == 1 and not program
    assert moved["y"] == (64 * 128 + 64) / 16383.0
    counts[128] = 1
    assert cc.poll(values, counts, 0.03)[1]


def test_bindings_round_trip_and_bad_values_stay_unbound():
    cc = CCControl()
    cc.load({"x": 20, "y": "no"})
    assert cc.to_dict() == {"x": 20, "y": None}


def test_a_rebuilt_engine_store_is_not_read_as_moves():
    values, counts = bytearray(128), bytearray(129)
    cc = CCControl()
    cc.bind("x", 7)
    cc.poll(values, counts, 0.03)
    cc.restart()
    counts[7] = counts[128] = 5  # a new engine's counts differ from the old one's
    assert cc.poll(values, counts, 0.03) == ({}, False)
