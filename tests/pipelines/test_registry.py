"""The model registry on a real MLflow store: versions, aliases, the gate, lineage, rollback."""

import dataclasses
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest

from xray_core.errors import XrayError
from xray_core.learning.dataset import FEATURES
from xray_core.learning.gate import GateConfig
from xray_core.learning.models.registry import MODEL_KINDS, build_model
from xray_core.learning.skill import SHADOW, PairedReturns
from xray_pipelines.mlops.registry import (
    CHALLENGER,
    CHAMPION,
    Tracking,
    demote,
    gate_challenger,
    list_versions,
    log_model_version,
    pip_requirements,
    rollback,
)

GATE = GateConfig(resamples=499)
HOURLY = 24 * 365
GATE_KEYS = {"p_value", "trials", "baseline_flat_sharpe", "sharpe_at_2x_costs", "verdict", "reason",
             "oos_sharpe", "oos_sharpe_ci_low", "oos_sharpe_ci_high"}


@pytest.fixture
def tracking(tmp_path) -> Tracking:
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", f"file://{tmp_path / 'artifacts'}")
    tracking.activate()
    return tracking


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    """A learnable frame: the label follows the first feature."""
    rng = np.random.default_rng(3)
    n, symbols = 600, ["AAA/USDT", "BBB/USDT"]
    stamps = pl.datetime_range(
        pl.datetime(2026, 1, 1),
        pl.datetime(2026, 1, 1) + pl.duration(hours=n - 1),
        "1h",
        eager=True,
        time_zone="UTC",
    ).cast(pl.Datetime("ms", "UTC"))
    rows = []
    for symbol in symbols:
        values = rng.normal(size=(n, len(FEATURES)))
        label = (values[:, 0] + rng.normal(scale=0.5, size=n) > 0).astype(np.int64)
        part = pl.DataFrame({"timestamp": stamps, "symbol": [symbol] * n})
        part = part.with_columns(pl.Series(name, values[:, k]) for k, name in enumerate(FEATURES))
        rows.append(
            part.with_columns(
                pl.Series("forward_return", label * 0.01),
                pl.Series("label", label),
                pl.lit(1.0).alias("weight"),
            )
        )
    return pl.concat(rows).sort("timestamp", "symbol")


def _evidence(skill: float, champion: str | None = None, seed: int = 1, trend: float = 0.0) -> PairedReturns:
    """Paired returns of a long-only model that sees the next move's sign with strength `skill`,
    against a guessing champion (version `champion`) or none."""
    rng = np.random.default_rng(seed)
    market = rng.normal(trend, 0.01, 1200)
    held = ((skill * market + rng.normal(0, 0.01, market.size)) > 0).astype(float)
    cost = 0.001 * np.abs(np.diff(np.concatenate([[0.0], held])))
    guess = (rng.random(market.size) > 0.5) * market if champion else None
    return PairedReturns(held * market - cost, guess, market, held * market - 2 * cost,
                         {"AAA/USDT": 30.0, "BBB/USDT": 25.0}, HOURLY, champion_version=champion)


def _register(
    tracking: Tracking, frame: pl.DataFrame, sharpe: float, evidence: PairedReturns | None = None
) -> str:
    model = build_model("gbm").fit(frame)
    metrics = {"oos_sharpe": sharpe, "bh_sharpe": 0.2, "oos_trades": 30.0, "oos_return": 0.1}
    lineage = {
        "xray.data_version": f"data-{sharpe}",
        "xray.code_version": "code-1",
        "xray.dagster_run_id": "run-1",
    }
    version = log_model_version(
        "gbm",
        model,
        params=model.params(),
        metrics=metrics,
        tags=lineage,
        example=frame.select("timestamp", "symbol", *FEATURES).head(8),
        evidence=evidence,
    )
    return str(version.version)


def _alias(client, alias: str) -> str:
    return str(client.get_model_version_by_alias("xray-gbm", alias).version)


def test_the_gate_promotes_skill_refuses_noise_and_logs_its_record(tracking, frame):
    client = tracking.client()
    first = _register(tracking, frame, sharpe=1.0, evidence=_evidence(1.0))
    decision = gate_challenger(client, "gbm", GATE, {"xray.dagster_run_id": "run-1"})
    assert decision.promote, decision.reason
    assert _alias(client, CHAMPION) == first

    noise = _register(tracking, frame, sharpe=1.5, evidence=_evidence(0.0, champion=first, seed=2))
    decision = gate_challenger(client, "gbm", GATE, {})
    assert not decision.promote and decision.trials == 2 and "champion v1" in decision.reason
    assert _alias(client, CHAMPION) == first
    assert _alias(client, CHALLENGER) == noise

    better = _register(tracking, frame, sharpe=1.2, evidence=_evidence(1.0, champion=first, seed=3))
    decision = gate_challenger(client, "gbm", GATE, {"xray.dagster_run_id": "run-3"})
    assert decision.promote, decision.reason
    assert decision.trials == 3 and decision.p_value < GATE.alpha
    champion = client.get_model_version_by_alias("xray-gbm", CHAMPION)
    assert str(champion.version) == better
    assert champion.tags["xray.previous_champion"] == first
    assert champion.tags["xray.promotion.dagster_run_id"] == "run-3"
    assert champion.tags["xray.data_version"] == "data-1.2" and champion.tags["xray.code_version"] == "code-1"

    rows = {str(r["version"]): r for r in list_versions(client)}
    for row in rows.values():
        assert set(row["gate"]) >= GATE_KEYS, row["gate"]
        assert {"oos_sharpe", "oos_sharpe_ci_low", "oos_sharpe_ci_high"} <= set(row["metrics"])
    assert rows[noise]["gate"]["verdict"] == "keep" and rows[better]["gate"]["verdict"] == "promote"
    logged = rows[better]["metrics"]["oos_sharpe_ci_low"]
    assert logged == pytest.approx(rows[better]["gate"]["oos_sharpe_ci_low"])

    assert rollback(client, "gbm") == (better, first)
    assert _alias(client, CHAMPION) == first
    with pytest.raises(XrayError, match="no previous champion"):
        rollback(client, "gbm")


def test_evidence_against_another_champion_or_none_is_not_used(tracking, frame):
    client = tracking.client()
    _register(tracking, frame, sharpe=1.0)  # logged without evidence
    old = gate_challenger(client, "gbm", GATE, {})
    assert not old.promote and "no paired evidence" in old.reason
    first = _register(tracking, frame, sharpe=1.0, evidence=_evidence(1.0))
    assert gate_challenger(client, "gbm", GATE, {}).promote
    _register(tracking, frame, sharpe=1.0, evidence=_evidence(1.0, champion="99"))
    stale = gate_challenger(client, "gbm", GATE, {})
    assert not stale.promote and f"champion is v{first}" in stale.reason


def test_a_challenger_that_loses_to_buy_and_hold_never_becomes_the_first_champion(tracking, frame):
    client = tracking.client()
    _register(tracking, frame, sharpe=0.25, evidence=_evidence(0.0, trend=0.003))
    decision = gate_challenger(client, "gbm", GATE, {})
    assert not decision.promote and "buy-and-hold" in decision.reason
    assert all(CHAMPION not in row["aliases"] for row in list_versions(client))


def test_a_demoted_champion_hands_back_to_its_predecessor_then_to_flat(tracking, frame):
    client = tracking.client()
    first = _register(tracking, frame, sharpe=1.0, evidence=_evidence(1.0))
    assert gate_challenger(client, "gbm", GATE, {}).promote
    second = _register(tracking, frame, sharpe=1.0, evidence=_evidence(1.0, champion=first, seed=4))
    assert gate_challenger(client, "gbm", GATE, {}).promote
    assert demote(client, "gbm", "live Sharpe -1.00 below the promised lower bound 0.50") == first
    assert _alias(client, CHAMPION) == first
    demoted = client.get_model_version("xray-gbm", second)
    assert demoted.tags["xray.demotion_reason"].startswith("live Sharpe -1.00")
    rows = {str(r["version"]): r for r in list_versions(client)}
    assert rows[second]["gate"]["demoted"].startswith("live Sharpe")
    assert demote(client, "gbm", "again") is None  # no predecessor: flat, no champion
    assert all(CHAMPION not in row["aliases"] for row in list_versions(client))


def test_the_champion_loads_by_alias_in_a_fresh_process_and_predicts(tracking, frame, tmp_path):
    client = tracking.client()
    _register(tracking, frame, sharpe=2.0, evidence=_evidence(1.0))
    assert gate_challenger(client, "gbm", GATE, {}).promote
    rows = list_versions(client)
    assert rows[0]["flavor"] == "sklearn" and rows[0]["aliases"] == [CHALLENGER, CHAMPION]
    assert rows[0]["metrics"]["oos_sharpe"] == 2.0
    sample = tmp_path / "sample.parquet"
    frame.select("timestamp", "symbol", *FEATURES).head(20).with_columns(
        pl.col("timestamp").dt.replace_time_zone(None)
    ).write_parquet(sample)
    probe = (  # no xray_pipelines import: what the trading runtime does
        "import mlflow, pandas as pd, sys; "
        f"mlflow.set_tracking_uri({tracking.tracking_uri!r}); "
        "m = mlflow.pyfunc.load_model('models:/xray-gbm@champion'); "
        f"p = m.predict(pd.read_parquet({str(sample)!r})); "
        "assert len(p) == 20 and ((p >= 0) & (p <= 1)).all(); "
        "print('xray_pipelines' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


# the libraries only one kind needs; the pyfunc wrapper itself needs numpy, pandas, polars, pyarrow
OWN_LIBRARIES = {
    "gbm": {"scikit-learn", "skops", "threadpoolctl"},
    "lstm": {"torch", "pytorch-lightning"},
    "rl": {"torch", "stable-baselines3", "gymnasium"},
}
WRAPPER = {"numpy", "pandas", "polars", "pyarrow"}


def _requirement_names(lines: list[str]) -> set[str]:
    return {line.split("==")[0].strip().lower().replace("_", "-") for line in lines if line.strip()}


def test_a_logged_model_requires_only_its_own_libraries(tracking, frame):
    """The scikit-learn model's environment (requirements.txt, conda.yaml) names neither torch,
    Lightning nor stable-baselines3, and pins what it does name to the versions it was trained with."""
    number = _register(tracking, frame, sharpe=1.0)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/xray-gbm/{number}"))
    lines = (local / "requirements.txt").read_text().splitlines()
    assert _requirement_names(lines) == WRAPPER | OWN_LIBRARIES["gbm"] | {"mlflow"}
    for line in filter(None, map(str.strip, lines)):
        name, _, pinned = line.partition("==")
        assert pinned == version(name), line
    conda = (local / "conda.yaml").read_text()
    assert "skops==" in conda and not any(heavy in conda for heavy in ("torch", "lightning", "stable"))
    # Served from code, its files read by the model class: MLflow deserializes nothing (no pickled
    # python_model, no sklearn flavour whose skops trust list would come from the artefact itself).
    flavors = mlflow.models.Model.load(str(local)).flavors
    assert set(flavors) == {"python_function"}
    assert flavors["python_function"]["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert "python_model" not in flavors["python_function"]


@pytest.mark.parametrize("kind", sorted(OWN_LIBRARIES))
def test_each_kind_requires_its_own_libraries_and_no_other_kinds(kind):
    names = _requirement_names(pip_requirements(MODEL_KINDS[kind]))
    others = set().union(*(libs for k, libs in OWN_LIBRARIES.items() if k != kind)) - OWN_LIBRARIES[kind]
    assert names == WRAPPER | OWN_LIBRARIES[kind] and not names & others


def test_a_long_enough_shadow_record_replaces_the_walk_forward_evidence(tracking, frame):
    client = tracking.client()
    first = _register(tracking, frame, sharpe=1.0, evidence=_evidence(1.0))
    assert gate_challenger(client, "gbm", GATE, {}).promote
    _register(tracking, frame, sharpe=1.0, evidence=_evidence(1.0, champion=first, seed=5))
    # The shadow books say it guesses: that live record wins over the folds' planted skill.
    shadow = dataclasses.replace(_evidence(0.0, champion=first, seed=6), source=SHADOW)
    record = gate_challenger(client, "gbm", GATE, {}, shadow=shadow)
    assert record.source == SHADOW and not record.promote, record.reason
    # Fewer than min_shadow_bars shadow bars: the folds decide.
    _register(tracking, frame, sharpe=1.0, evidence=_evidence(1.0, champion=first, seed=5))
    n = GATE.min_shadow_bars - 1
    short = dataclasses.replace(shadow, challenger=shadow.challenger[:n], champion=shadow.champion[:n],
                                buy_and_hold=shadow.buy_and_hold[:n], challenger_2x=shadow.challenger_2x[:n])
    record = gate_challenger(client, "gbm", GATE, {}, shadow=short)
    assert record.source == "walk-forward" and record.promote, record.reason


def test_figures_are_logged_with_the_model_version(tracking, frame):
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([0, 1], [1.0, 1.1])
    model = build_model("gbm").fit(frame)
    version = log_model_version(
        "gbm", model, params=model.params(), metrics={"oos_sharpe": 1.0}, tags={},
        example=frame.select("timestamp", "symbol", *FEATURES).head(8),
        figures={"oos_equity/all_folds.png": figure, "oos_equity/fold_0.png": figure},
    )
    client = tracking.client()
    logged = {a.path: a.file_size for a in client.list_artifacts(version.run_id, "oos_equity")}
    assert set(logged) == {"oos_equity/all_folds.png", "oos_equity/fold_0.png"}
    assert all(size and size > 1_000 for size in logged.values())
