"""`make demo` says, for the promoted bundle, how many symbols trade on a model and how many on rule
strategies, and why each one does."""

import io

from rich.console import Console

from xray_cli import demo_report
from xray_core.bundle import Bundle, publish


def test_the_demo_counts_model_and_rule_symbols_with_the_reasons(tmp_path, monkeypatch):
    bundle = Bundle(
        exchange="mexc", timeframe="1h",
        symbols=[{"symbol": "ETH/USDT", "strategy": "model", "params": {}, "group": 0, "model": "gbm"},
                 {"symbol": "BTC/USDT", "strategy": "macd_trend", "params": {}, "group": 1},
                 {"symbol": "SOL/USDT", "strategy": "sma_cross", "params": {}, "group": 1}],
        risk_profiles={},
        models={"gbm": {"name": "xray-gbm", "uri": "models:/xray-gbm@champion", "version": 4}},
        feature_version="f", code_version="c", data_versions={},
        selection={
            "ETH/USDT": {"chosen": "model", "reason": "model wins: gbm beats sma_cross", "rule_sharpe": -0.4,
                         "model_sharpe": 1.7},
            "BTC/USDT": {"chosen": "macd_trend", "reason": "macd_trend kept: gbm -0.30 vs 0.80",
                         "rule_sharpe": 0.8, "model_sharpe": -0.3},
        },
    )
    publish(bundle, tmp_path)
    screen = io.StringIO()
    monkeypatch.setattr(demo_report, "out", Console(file=screen, width=200))
    demo_report.print_bundle(tmp_path)
    text = screen.getvalue()
    assert "1 of 3 symbols trade on a model, 2 on rule strategies (macd_trend 1, sma_cross 1)." in text
    assert "model gbm v4" in text and "model wins: gbm beats sma_cross" in text and "1.70" in text
    assert "macd_trend kept" in text and "no selection record" in text  # SOL: an older bundle's entry
