"""`xray demo` (what `make demo` runs): the data pipeline end to end on the embedded default.

Starts the MEXC emulator in this process, points the exchange settings at it, and materializes
`markets`, every `candles` partition and `candle_quality` on the local Dagster instance (SQLite in
DAGSTER_HOME), then prints one line per symbol: bars, verdict and reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from xray_cli.console import err, out, verdict_style
from xray_core.errors import XrayError

REPO_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def run_demo(*, max_symbols: int | None) -> None:
    from xray_core.emulator.config import EmulatorConfig
    from xray_core.emulator.server import start_emulator

    dagster_home = _prepare_dagster_home()
    if max_symbols is not None:
        os.environ["XRAY_INGEST_MAX_SYMBOLS"] = str(max_symbols)
    with start_emulator(EmulatorConfig(port=0)) as emulator:
        os.environ["XRAY_EXCHANGE_URL"] = emulator.base_url
        os.environ["XRAY_EXCHANGE_ID"] = "mexc"
        err.print(f"emulator at {emulator.base_url}; Dagster instance in {dagster_home}")
        _materialize_market_data()


def _prepare_dagster_home() -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".xray/dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and REPO_DAGSTER_YAML.exists():
        shutil.copy(REPO_DAGSTER_YAML, home / "dagster.yaml")
    return home


def _materialize_market_data() -> None:
    import dagster as dg

    from xray_core.settings import load_settings
    from xray_pipelines.definitions import defs
    from xray_pipelines.partitions import SYMBOLS

    instance = dg.DagsterInstance.get()
    ok, error = _run(defs.resolve_job_def("markets_job"), instance)
    if not ok:
        raise XrayError(f"materializing markets failed: {error}", "see the run in `make ui`")
    candles_job = defs.resolve_job_def("candles_job")
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    failures: dict[str, str] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("candles", total=len(symbols))
        for symbol in symbols:
            progress.update(task, description=f"candles {symbol}")
            ok, error = _run(candles_job, instance, partition_key=symbol)
            if not ok:
                failures[symbol] = error
            progress.advance(task)
    _run(defs.resolve_job_def("quality_job"), instance)
    _print_summary(load_settings(), failures)


def _run(job: Any, instance: Any, partition_key: str | None = None) -> tuple[bool, str]:
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the summary says the rest
    result = job.execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config=quiet
    )
    if result.success:
        return True, ""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    message = failure.step_failure_data.error.message.strip() if failure else "run failed"
    return False, message.splitlines()[0]


def _print_summary(settings: Any, failures: dict[str, str]) -> None:
    import polars as pl

    from xray_core.candles.store import CandleStore

    store = CandleStore(settings.store.duckdb_file)
    exchange, timeframe = settings.exchange.id, settings.ingest.timeframe
    verdicts = store.quality(exchange, timeframe)
    dropped = store.markets(exchange).filter(~pl.col("kept"))
    table = Table(title=f"X-Ray market data — {exchange} {timeframe}, embedded Dagster + DuckDB")
    for name in ("symbol", "bars", "verdict", "reason"):
        table.add_column(name, justify="right" if name == "bars" else "left")
    for row in verdicts.iter_rows(named=True):
        style = verdict_style(row["verdict"])
        table.add_row(row["symbol"], f"{row['bars']:,}", f"[{style}]{row['verdict']}[/]", row["reason"])
    for row in dropped.iter_rows(named=True):
        table.add_row(row["symbol"], "0", "[yellow]dropped[/]", row["reason"])
    out.print(table)
    good = verdicts.filter(pl.col("verdict") == "good").height
    out.print(
        f"{good} good, {verdicts.height - good} bad, {dropped.height} dropped from the universe; "
        f"{len(failures)} ingestion runs failed. Explore it with `make ui`."
    )
