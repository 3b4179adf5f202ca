"""`xray models list|promote|rollback` and `xray train`: the model registry from the command line."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from xray_cli.console import err, out
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
        print(json.dumps(rows, default=str))
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
            row["gate"],
        )
    out.print(table)
    if not rows:
        err.print("no models registered yet: train them with `xray train` (or `make demo`)")


def promote(*, name: str, version: str | None, force: bool) -> None:
    from xray_core.learning.gate import GateConfig

    registry, client = _registry()
    settings = load_settings().models
    kind = name.removeprefix("xray-")
    config = GateConfig(margin=settings.promotion_margin, min_trades=settings.min_oos_trades)
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
