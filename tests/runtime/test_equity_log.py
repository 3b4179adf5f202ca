"""`equity_history`: each user's equity per traded bar, the dashboard's equity curve."""

from __future__ import annotations

import math

from xray_runtime.db import connect
from xray_runtime.equity_log import EquityLog


def test_unknown_equity_is_not_stored_and_a_repeated_bar_keeps_the_first(tmp_path):
    log = EquityLog(connect(f"sqlite:///{tmp_path / 'runtime.db'}"))
    assert log.record(["a", "b"], [100.0, math.nan], 1_000) == 1
    log.record(["a", "b"], [105.0, 50.0], 2_000)
    log.record(["a"], [999.0], 2_000)  # the same bar again (a restart): the first value stays
    assert log.curve("a") == [(1_000, 100.0), (2_000, 105.0)]
    assert log.curve("b") == [(2_000, 50.0)]
    assert log.curve("a", limit=1) == [(2_000, 105.0)]  # the newest points
    assert log.curve("nobody") == []
