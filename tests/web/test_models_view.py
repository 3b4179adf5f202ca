"""The operator's Models page and `/api/ops/models`: each version's aliases, out-of-sample metrics, the
gate object exactly as `xray models list --json` builds it, and the shadow record read from the
runtime's `shadow_bars`; the bundle per symbol with its strategy, model and selection reason."""

from __future__ import annotations

import math

import numpy as np
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from web_support import SHADOW_BARS, shadow_rows

from xray_core.bundle import parse
from xray_pipelines.mlops.registry import list_versions
from xray_web.app import create_app


def _get(world, path, who="operator"):
    client = TestClient(create_app(world.sources))
    if who is not None:
        client.cookies.set("xray_token", world.tokens[who])
    return client.get(path, headers={"Authorization": f"Bearer {world.tokens[who]}"} if who else {})


def _expected_shadow(version: int) -> dict[str, float]:
    """The record computed here from the seeded rows: equal-weighted books, compounded, annualised."""
    rows = [r for r in shadow_rows(0, 3_600_000, "b") if r["version"] == version]  # returns: any start
    by_bar: dict[int, list[float]] = {}
    for r in rows:
        by_bar.setdefault(int(r["bar_ms"]), []).append(float(r["ret"]))
    ret = np.array([np.mean(by_bar[b]) for b in sorted(by_bar)])
    return {"bars_long": sum(1 for r in rows if float(r["position"]) > 0),
            "net_return": float(np.prod(1 + ret) - 1),
            "sharpe": float(ret.mean() / ret.std(ddof=1) * math.sqrt(24 * 365))}


def test_models_api_shows_aliases_metrics_gate_and_shadow(world):
    response = _get(world, "/api/ops/models")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(m["name"], m["version"], m["aliases"]) for m in body] == [
        ("xray-gbm", 1, ["champion"]), ("xray-gbm", 2, ["challenger"])]
    # The gate object is the one `xray models list --json` prints for the same registry.
    client = MlflowClient(world.sources.tracking_uri, world.sources.tracking_uri)
    listed = {(row["name"], row["version"]): row for row in list_versions(client)}
    for m in body:
        row = listed[(m["name"], m["version"])]
        assert m["gate"] == row["gate"] and m["gate"]["source"] == "shadow"
        assert m["lineage"] == row["lineage"] and m["flavor"] == "sklearn"
        ci = (m["metrics"]["oos_sharpe_ci_low"], m["metrics"]["oos_sharpe_ci_high"])
        assert ci[0] < m["gate"]["oos_sharpe"] < ci[1]  # the gate's interval around what it measured
        assert m["metrics"]["oos_sharpe_ci_low"] == row["metrics"]["oos_sharpe_ci_low"]
        assert m["metrics"]["oos_sharpe_ci_high"] == row["metrics"]["oos_sharpe_ci_high"]
    v1, v2 = body
    assert v1["gate"]["verdict"] == "promote" and v2["gate"]["verdict"] != "promote"
    assert v2["gate"]["reference"] != v1["gate"]["reference"]  # v2 was judged against the champion v1
    for m in body:
        shadow, expected = m["shadow"], _expected_shadow(m["version"])
        assert (shadow["bars"], shadow["book_bars"], shadow["books"]) == (SHADOW_BARS, 2 * SHADOW_BARS, 2)
        assert shadow["bars_long"] == expected["bars_long"]
        assert math.isclose(shadow["net_return"], expected["net_return"], rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(shadow["sharpe"], expected["sharpe"], rel_tol=1e-9)
        assert shadow["role"] == ("champion" if m["version"] == 1 else "challenger")
        assert [b["symbol"] for b in shadow["by_symbol"]] == ["BTC/USDT", "ETH/USDT"]
    assert v1["shadow"]["bars_long"] == 2 * SHADOW_BARS and v2["shadow"]["bars_long"] == SHADOW_BARS


def test_a_version_never_shadow_traded_says_so(world):
    from xray_runtime.shadow import shadow_bars_table

    with world.sources.engine.begin() as conn:
        conn.execute(shadow_bars_table.delete().where(shadow_bars_table.c.version == 2))
    v1, v2 = _get(world, "/api/ops/models").json()
    assert v1["shadow"]["bars"] == SHADOW_BARS and v2["shadow"] is None
    page = _get(world, "/models").text
    assert "no shadow record" in page


def test_models_page_has_the_gate_and_a_shadow_column(world):
    response = _get(world, "/models")
    assert response.status_code == 200
    page = response.text
    assert "<th>shadow record</th>" in page and "<th>gate</th>" in page and "<th>95% CI</th>" in page
    v1, v2 = _get(world, "/api/ops/models").json()
    for m in (v1, v2):
        assert f"{m['shadow']['bars']} bars ({m['shadow']['bars_long']} of" in page
        assert f"Sharpe {m['shadow']['sharpe']:.2f}" in page
        assert f"net {m['shadow']['net_return']:+.2%}" in page
    assert "promote (p=" in page and "champion" in page and "challenger" in page


def test_a_users_cookie_does_not_open_the_models_page(world):
    assert _get(world, "/models", who="ada").status_code == 403
    assert _get(world, "/models", who=None).status_code == 401


def test_bundle_per_symbol_shows_strategy_model_and_selection(world):
    bundle = _get(world, "/api/ops/bundle").json()
    parse({k: v for k, v in bundle.items() if k != "per_symbol"})  # the published bundle, intact
    btc, eth = bundle["per_symbol"]
    assert (btc["symbol"], btc["strategy"], btc["model"]) == ("BTC/USDT", "sma_cross", None)
    assert (eth["symbol"], eth["strategy"], eth["model"]) == ("ETH/USDT", "model", "gbm")
    assert eth["model_version"] == 1
    assert (eth["rule_sharpe"], eth["model_sharpe"]) == (-0.3, 0.9) and eth["reason"].startswith("model wins")
    assert btc["reason"].startswith("sma_cross kept")
    page = _get(world, "/xray").text
    assert "gbm v1" in page and "model wins: model gbm v1 Sharpe 0.90" in page and "-0.30" in page
