"""The end of `xray demo`: the printed `xray web ...` command, run as printed (on a free port), serves
the demo's data; the printed user token reads that user's trades over the API and in a browser."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from xray_cli.demo import print_dashboard
from xray_cli.demo_trading import DemoUser, run_demo_trading
from xray_core.bundle import Bundle, publish

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
USERS = (DemoUser("demo-a", "A", "conservative", 2_000.0, 0.05, 250.0),
         DemoUser("demo-b", "B", "aggressive", 25_000.0, 0.25, 6_000.0))


def _get(url: str, token: str) -> tuple[int, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_printed_command_serves_the_printed_users_trades(tmp_path, emulator, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    bundle = Bundle(exchange="mexc", timeframe="1m",
                    symbols=[{"symbol": s, "strategy": "sma_cross", "params": {"fast": 2, "slow": 3},
                              "group": 0} for s in SYMBOLS],
                    risk_profiles={}, models={}, feature_version="f", code_version="c",
                    data_versions={s: f"data-{s}" for s in SYMBOLS})
    publish(bundle, tmp_path / "bundles")
    result = run_demo_trading(emulator.base_url, tmp_path / "bundles", tmp_path, bars=8, users=USERS,
                              show=False)
    print_dashboard(result, tmp_path)
    text = capsys.readouterr().out
    command = next(line.strip() for line in text.splitlines() if " xray web " in line)
    token = re.search(r"token of demo user (\S+) \((\d+) orders\): (\S+)", text)
    operator = re.search(r"operator token: (\S+)", text)
    assert token and operator, text
    user_id, orders, user_token = token.group(1), int(token.group(2)), token.group(3)
    assert orders == max(u.orders for u in result.users) > 0

    env_part, _, args = command.partition(" xray web ")
    name, _, home = env_part.partition("=")
    assert name == "XRAY_HOME" and Path(home) == tmp_path.resolve()
    port = _free_port()
    argv = [a if a != "8080" else str(port) for a in shlex.split(args)]
    env = {**os.environ, "XRAY_HOME": home, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "xray_cli.main", "web", *argv], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:  # no wall-clock limit: the server answers, or it exits and says why
            if server.poll() is not None:
                pytest.fail(f"xray web exited: {server.stderr.read() if server.stderr else ''}")
            try:
                urllib.request.urlopen(base + "/openapi.json")
                break
            except OSError:
                time.sleep(0.2)
        status, trades = _get(base + "/api/me/trades", user_token)
        assert status == 200 and isinstance(trades, list)
        journal = [o for o in result.orders if o.user_id == user_id]
        assert {t["client_order_id"] for t in trades} == {o.client_order_id for o in journal}
        assert all(t["lineage"]["bundle_version"] == bundle.version for t in trades)
        status, me = _get(base + "/api/me", user_token)
        assert status == 200 and me["user_id"] == user_id and me["equity"] > 0
        assert _get(base + "/api/ops/bundle", user_token)[0] == 403
        status, published = _get(base + "/api/ops/bundle", operator.group(1))
        assert status == 200 and published["version"] == bundle.version
        _browser_sees(base, user_token, len(journal))
    finally:
        server.terminate()
        server.wait()


def _browser_sees(base: str, token: str, orders: int) -> None:
    if not Path("/usr/bin/chromium").exists():
        return  # the API part above still ran; tests/web/test_browser.py says why a browser is missing
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(base + "/")
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
            assert page.locator("#trades tbody tr").count() == orders
            assert page.locator("#equity-chart polyline").count() == 1
        finally:
            browser.close()
