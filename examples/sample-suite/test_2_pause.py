"""A failing test: under `lpctl run --pause-on-failure` it pauses before its
teardown, until someone resumes it (`lpctl resume PAUSE --failure-reason ...`)."""


def test_total_is_wrong():
    prices = [3, 4]
    assert sum(prices) == 8, "the basket should cost 8"
