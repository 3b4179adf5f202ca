"""`xray models list|promote|rollback` and `xray train`: the model registry from the command line."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from xray_cli.console import err, out, print_json
from xray_core.settings import load_settings


def _registry() -> tuple[Any, Any]:
    from xray_pipelines.mlops import registry

    settings = load_settings()
    tracking = registry.tracking_for(
        settings.models.tracking_uri, settings.models.experiment, settings.store.home
    )
    return registry, tracking.client()


def list_models(*, as_json: bool) -> None:
    registry, client = _registry()
    rows = registry.list_versions(client)
    if as_json:
        print_json(rows)
        return
    table = Table(title="registered models")
    for name in ("name", "flavor", "version", "aliases", "oos_sharpe", "oos_return", "bh_sharpe", "gate"):
        table.add_column(name)
    for row in rows:
        metrics = row["metrics"]
        table.add_row(
            row["name"],
            row["flavor"],
            str(row["version"]),
            ", ".join(row["aliases"]),
            *(
                f"{metrics[k]:.3f}" if k in metrics else "-"
                for k in ("oos_sharpe", "oos_return", "bh_sharpe")
            ),
            gate_summary(row["gate"]),
        )
    out.print(table)
    if not rows:
        err.print("no models registered yet: train them with `xray train` (or `make demo`)")


def promote(*, name: str, version: str | None, force: bool) -> None:
    if version is not None and not version.strip().isdigit():
        from xray_core.errors import ConfigError

        raise ConfigError(f"--version {version!r} is not a model version", "see `xray models list`")
    registry, client = _registry()
    kind = name.removeprefix("xray-")
    config = registry.gate_config(load_settings().models)
    decision = registry.gate_challenger(
        client, kind, config, {"xray.promoted_by": "xray models promote"}, version=version, force=force
    )
    (out if decision.promote else err).print(
        ("promoted: " if decision.promote else "not promoted: ") + decision.reason
    )
    if not decision.promote:
        raise SystemExit(1)


def rollback(*, name: str) -> None:
    registry, client = _registry()
    kind = name.removeprefix("xray-")
    was, now = registry.rollback(client, kind)
    out.print(f"{registry.MODEL_NAMES[kind]}: champion rolled back from version {was} to {now}")


MODEL_KINDS = ("gbm", "lstm", "rl")  # xray_pipelines.mlops.registry.KINDS, without importing MLflow


def train(*, model: str | None) -> None:
    """Build the training data, train (one model or all), gate and publish, on the local Dagster
    instance, so the runs and their lineage show in `make ui`."""
    from xray_core.errors import XrayError

    # Checked before Dagster and the pipelines are imported (tens of seconds on a busy machine).
    kinds = MODEL_KINDS if model is None else (model.removeprefix("xray-"),)
    unknown = [k for k in kinds if k not in MODEL_KINDS]
    if unknown:
        raise XrayError(f"unknown model {unknown[0]!r}", f"use one of: {', '.join(MODEL_KINDS)}")
    import dagster as dg

    from xray_cli.demo import QUIET, prepare_dagster_home
    from xray_cli.progress import shown
    from xray_pipelines.definitions import defs

    prepare_dagster_home()
    # The runtime's latest fills first: they weight the training data.
    selection = [
        "live_fills", "training_data", *(f"model_{k}" for k in kinds), "model_promotion", "promoted_bundle"
    ]
    job = defs.resolve_job_def("training_job")
    with shown():  # folds, epochs, RL steps on a terminal; nothing in a pipe
        result = job.execute_in_process(
            instance=dg.DagsterInstance.get(),
            raise_on_error=False,
            run_config=QUIET,
            asset_selection=[dg.AssetKey(name) for name in selection],
        )
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        error = failure.step_failure_data.error if failure else None
        message = error.message.strip().splitlines()[0] if error else "run failed"
        raise XrayError(f"training failed: {message}", "ingest candles first (`xray ingest` or `make demo`)")
    print_comparison()


def print_comparison() -> None:
    """The out-of-sample comparison of every model's newest version against buy-and-hold."""
    registry, client = _registry()
    newest: dict[str, dict[str, Any]] = {}
    for row in registry.list_versions(client):
        newest[row["name"]] = row  # versions come in ascending order
    table = Table(title="models out of sample (purged walk-forward, backtested with fees)")
    for name in (
        "model",
        "flavor",
        "v",
        "Sharpe",
        "return",
        "max DD",
        "hit rate",
        "trades",
        "B&H Sharpe",
        "B&H return",
        "aliases",
    ):
        table.add_column(name, justify="left" if name in ("model", "flavor", "aliases") else "right")
    for row in newest.values():
        m = row["metrics"]
        cells = [
            _num(m.get("oos_sharpe")),
            _pct(m.get("oos_return")),
            _pct(m.get("oos_max_drawdown")),
            _pct(m.get("oos_hit_rate")),
            _num(m.get("oos_trades"), 0),
            _num(m.get("bh_sharpe")),
            _pct(m.get("bh_return")),
        ]
        table.add_row(row["name"], row["flavor"], str(row["version"]), *cells, ", ".join(row["aliases"]))
    out.print(table)
    for row in newest.values():
        if row["gate"]:
            gate = row["gate"]
            label = f"{row['name']} v{row['version']}"
            out.print(f"  {label} gate: {gate_summary(gate)} — {gate.get('reason', '')}")
    champions = [
        f"{r['name']} v{r['version']}" for r in registry.list_versions(client) if "champion" in r["aliases"]
    ]
    out.print(f"champions: {', '.join(champions) or 'none yet (no model passed the gate)'}")


def gate_summary(gate: dict[str, Any]) -> str:
    """`keep (paired p=0.412, 3 trials)`: the gate's verdict with the evidence behind it."""
    if not gate:
        return "-"
    p = gate.get("p_value")
    shown = f"{gate.get('verdict') or 'judged'} (paired p={'-' if p is None else f'{p:.3f}'}, "
    shown += f"{gate.get('trials', '-')} trials)"
    return shown + (" demoted" if gate.get("demoted") else "")


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:+.1%}"
