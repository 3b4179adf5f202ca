"""`xray loadtest`: bad input is one line before anything starts, the emulator's refusals are one line
too, and rejections are reported by reason."""

from __future__ import annotations

import subprocess
import sys

import aiohttp
import pytest

from xray_core.errors import ConfigError, XrayError
from xray_core.trading.orders import Lineage, Order, OrderIntent, OrderStatus, Side
from xray_sim.loadtest import EmulatorAdmin, LoadTestConfig, rejections_by_reason


@pytest.mark.parametrize("spec", ["default", "timeout:p=2"])
def test_an_unknown_fault_spec_is_one_line_and_a_non_zero_exit(spec):
    command = [sys.executable, "-m", "xray_cli.main", "loadtest", "--users", "1", "--symbols", "1",
               "--ticks", "1", "--faults", spec, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xray: error: --faults: bad fault spec part"), done.stderr
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr and done.stdout == ""


def test_the_config_refuses_a_bad_spec_before_anything_starts():
    with pytest.raises(ConfigError, match="unknown fault kind 'default'"):
        LoadTestConfig(users=1, symbols=1, ticks=1, faults="default")
    assert LoadTestConfig(users=1, symbols=1, ticks=1, faults="latency:ms=5;seed=3").faults


async def test_an_emulator_refusal_is_one_line_with_its_reason(emulator):
    async with aiohttp.ClientSession() as http:
        admin = EmulatorAdmin(http, emulator.base_url)
        with pytest.raises(XrayError) as refused:
            await admin.call("POST", "/faults", {"spec": "default"})
    message = str(refused.value)
    assert "/_emulator/faults (400)" in message and "unknown fault kind 'default'" in message
    assert "\n" not in message


def test_rejections_are_counted_by_reason_with_ids_and_amounts_blanked():
    lineage = Lineage("b", "s", "{}", "", "d")

    def rejected(side: Side, reason: str) -> Order:
        what = "exit" if side is Side.SELL else "enter"
        intent = OrderIntent("u", "BTC/USDT", side, 1.0, 60_000, what, lineage)
        order = Order.from_intent(intent, 1)
        return order.advance(OrderStatus.REJECTED, 2, reason=reason) if reason else order

    no_coins = 'InsufficientFunds: mexc {"code":30004,"msg":"Insufficient position"}'
    orders = [rejected(Side.SELL, no_coins), rejected(Side.SELL, no_coins),
              rejected(Side.BUY, "InvalidOrder: amount 0.00012 below 1780000000000"), rejected(Side.BUY, "")]
    assert rejections_by_reason(orders) == {
        f"sell (exit): {no_coins}": 2,
        "buy (enter): InvalidOrder: amount # below #": 1,
    }


def test_an_unknown_duplicate_ids_mode_is_one_line():
    with pytest.raises(ConfigError, match="'sometimes' is not one of dedupe, reject, dedupe-open"):
        LoadTestConfig(users=1, symbols=1, ticks=1, duplicate_ids="sometimes")


README_FAULT_MIX = ("timeout:p=0.05:path=/api/v3/order:method=POST:when=after:delay_s=12;burst429:p=0.02:n=5;"
                    "partial_fill:p=0.5:ratio=0.4;error5xx:p=0.1;drop:p=0.05:when=after;seed=3")


@pytest.mark.parametrize("duplicate_ids", ["dedupe", "dedupe-open"])
def test_the_readme_fault_mix_ends_clean_with_no_order_rejected_for_a_fault(duplicate_ids):
    """A small run of the README's fault mix (the issue's 200 users saw 30% rejected and a mismatch):
    every account agrees with the exchange, and no order was refused because of a transport fault."""
    from xray_sim.loadtest import run_loadtest

    result = run_loadtest(LoadTestConfig(users=8, symbols=4, ticks=8, faults=README_FAULT_MIX,
                                         duplicate_ids=duplicate_ids))
    assert result["orders"] > 0 and sum(result["faults_fired"].values()) > 0
    found = (result["duplicate_orders"], result["lost_fills"], result["state_mismatches"])
    assert found == (0, 0, 0), result["audit_details"]
    assert result["rejected_by_reason"] == {}, result["rejected_by_reason"]
