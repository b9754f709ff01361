"""catalog.model_versions.promotion_decision: when a new model version replaces the current one."""

from catalog.model_versions import promotion_decision


def m(ciede, false_colour):
    return {"ciede2000": ciede, "false_colour": false_colour, "psnr": 20.0}


def test_the_first_version_becomes_current():
    ok, why = promotion_decision(m(15, 0.01), None, None)
    assert ok and why.startswith("current: the first")


def test_a_version_must_beat_the_current_one_on_the_held_out_photos():
    ok, why = promotion_decision(m(11.0, 0.004), m(12.0, 0.005), "moldova-v1")
    assert ok and "beats moldova-v1" in why and "11.00" in why and "12.00" in why
    ok, why = promotion_decision(m(12.5, 0.001), m(12.0, 0.005), "moldova-v1")
    assert not ok and why.startswith("not promoted: no lower CIEDE2000")
    ok, why = promotion_decision(m(11.0, 0.030), m(12.0, 0.005), "moldova-v1")  # better on average, more blotches
    assert not ok and "more false colour" in why


def test_a_current_version_never_judged_is_replaced():
    ok, why = promotion_decision(m(11.0, 0.0), {"ciede2000": None, "false_colour": None}, "old")
    assert ok and "old has no metrics" in why
