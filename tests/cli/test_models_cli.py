"""`xray models list`: every version shows the gate's record — as a `gate` object in JSON, and as
`verdict (paired p=…, N trials)` in the table that `xray train` and `xray demo` print."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from xray_core.learning.dataset import FEATURES
from xray_core.learning.gate import GateConfig
from xray_core.learning.models.registry import build_model
from xray_core.learning.skill import PairedReturns
from xray_pipelines.mlops.registry import gate_challenger, log_model_version, tracking_for

XRAY = str(Path(sys.executable).with_name("xray"))
GATE_KEYS = {"p_value", "trials", "baseline_flat_sharpe", "sharpe_at_2x_costs", "verdict", "reason",
             "oos_sharpe", "oos_sharpe_ci_low", "oos_sharpe_ci_high"}


def _frame(n: int = 300) -> pl.DataFrame:
    rng = np.random.default_rng(4)
    stamps = pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 1, 1) + pl.duration(hours=n - 1),
                               "1h", eager=True, time_zone="UTC").cast(pl.Datetime("ms", "UTC"))
    values = rng.normal(size=(n, len(FEATURES)))
    label = (values[:, 0] > 0).astype(np.int64)
    frame = pl.DataFrame({"timestamp": stamps, "symbol": ["AAA/USDT"] * n})
    frame = frame.with_columns(pl.Series(name, values[:, k]) for k, name in enumerate(FEATURES))
    return frame.with_columns(pl.Series("forward_return", label * 0.01), pl.Series("label", label),
                              pl.lit(1.0).alias("weight"))


def _evidence(skill: float, champion: str | None, seed: int) -> PairedReturns:
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.01, 1000)
    held = ((skill * market + rng.normal(0, 0.01, market.size)) > 0).astype(float)
    other = (rng.random(market.size) > 0.5) * market if champion else None
    return PairedReturns(held * market, other, market, held * market - 0.002, {"AAA/USDT": 40.0}, 8760.0,
                         champion_version=champion)


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


def test_models_list_json_has_a_gate_object_per_version(home, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the CLI's store is $XRAY_HOME's
    tracking = tracking_for(None, "xray", home)
    tracking.activate()
    client = tracking.client()
    frame = _frame()
    model = build_model("gbm").fit(frame)
    for skill, champion, seed in ((1.0, None, 1), (0.0, "1", 2)):
        log_model_version("gbm", model, params=model.params(), metrics={"oos_sharpe": 1.0}, tags={},
                          example=frame.select("timestamp", "symbol", *FEATURES).head(8),
                          evidence=_evidence(skill, champion, seed))
        gate_challenger(client, "gbm", GateConfig(resamples=199), {})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XRAY_", "MLFLOW_"))}
    env |= {"XRAY_HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "COLUMNS": "250"}
    listed = subprocess.run([XRAY, "models", "list", "--json"], env=env, capture_output=True, text=True,
                            timeout=300, check=True)
    rows = json.loads(listed.stdout)
    assert [r["version"] for r in rows] == [1, 2]
    for row in rows:
        assert set(row["gate"]) >= GATE_KEYS, row["gate"]
        assert row["gate"]["trials"] == row["version"]  # every logged version is a trial
    first, second = (r["gate"] for r in rows)
    assert first["verdict"] == "promote" and first["p_value"] < 0.05 and first["baseline_flat_sharpe"] == 0.0
    assert second["verdict"] == "keep" and "champion v1" in second["reason"]
    assert rows[1]["metrics"]["oos_sharpe_ci_low"] == pytest.approx(second["oos_sharpe_ci_low"])
    table = subprocess.run([XRAY, "models", "list"], env=env, capture_output=True, text=True, timeout=300,
                           check=True).stdout
    assert "promote (paired p=" in table and "2 trials)" in table
    # What `xray train` and `xray demo` print per model: the paired verdict, its p-value and trials.
    monkeypatch.setenv("XRAY_HOME", str(home))
    from xray_cli.models_cmd import print_comparison

    print_comparison()
    printed = capsys.readouterr().out
    assert "xray-gbm v2 gate: keep (paired p=" in printed and "2 trials)" in printed, printed
    assert "champions: xray-gbm v1" in printed
