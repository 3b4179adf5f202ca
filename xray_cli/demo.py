"""`xray demo` (what `make demo` runs): the pipeline end to end on the embedded default.

Starts the MEXC emulator and a loopback news feed in this process, points the settings at them, and
materializes on the local Dagster instance (SQLite in DAGSTER_HOME): `markets`, every `candles` and
`features` partition, `candle_quality`, the research job (backtests, filtered symbols, correlation,
news sentiment, optimised parameters, risk profiles), then the training job (training data, the three
models in MLflow, the promotion gate, the promoted bundle). Prints what each stage found. Then the
trading runtime trades a few paper users on the promoted bundle against the same emulator for a few
accelerated bars (`xray_cli.demo_trading`) and prints their orders, fills and PnL; last, the command
that serves the web dashboard on the demo's data, with a demo user's token and an operator's."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xray_cli.console import err
from xray_core.errors import XrayError

REPO_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the summaries say the rest


def run_demo(*, max_symbols: int | None, trade_bars: int | None = None) -> None:
    """`trade_bars`: bars of the bundle's timeframe the demo users trade (default: demo_trading's)."""
    from xray_sim.exchange.config import EmulatorConfig
    from xray_sim.exchange.server import start_emulator
    from xray_sim.news.feed import start_fake_feed

    dagster_home = prepare_dagster_home()
    if max_symbols is not None:
        os.environ["XRAY_INGEST_MAX_SYMBOLS"] = str(max_symbols)
    with start_emulator(EmulatorConfig(port=0)) as emulator, start_fake_feed(port=0, days=90) as feed:
        # Definitions read the settings when imported, so the environment is set first.
        os.environ["XRAY_EXCHANGE_URL"] = emulator.base_url
        os.environ["XRAY_EXCHANGE_ID"] = "mexc"
        os.environ["XRAY_RESEARCH_NEWS_SOURCES"] = f"{feed.rss_url},{feed.atom_url}"
        err.print(
            f"emulator at {emulator.base_url}, news feed at {feed.base_url}; "
            f"Dagster instance in {dagster_home}"
        )
        _materialize_all()
        _trade(emulator.base_url, trade_bars)


def prepare_dagster_home() -> Path:
    xray_home = Path(os.environ.get("XRAY_HOME", ".xray"))
    home = Path(os.environ.setdefault("DAGSTER_HOME", str((xray_home / "dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and REPO_DAGSTER_YAML.exists():
        shutil.copy(REPO_DAGSTER_YAML, home / "dagster.yaml")
    return home


def _materialize_all() -> None:
    import dagster as dg

    from xray_cli.demo_report import print_market_data, print_research
    from xray_cli.progress import shown
    from xray_core.settings import load_settings
    from xray_pipelines.definitions import defs
    from xray_pipelines.partitions import SYMBOLS

    instance = dg.DagsterInstance.get()
    _require(_run(defs.resolve_job_def("markets_job"), instance), "markets")
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    failures = _run_partitions(defs.resolve_job_def("candles_job"), instance, symbols, "candles")
    _require(_run(defs.resolve_job_def("quality_job"), instance), "candle_quality")
    settings = load_settings()
    print_market_data(settings, failures)
    _run_partitions(defs.resolve_job_def("features_job"), instance, symbols, "features")
    err.print("research: backtests, filtering, correlation, news, optimisation ...")
    with shown():  # optimiser trials
        _require(_run(defs.resolve_job_def("research_job"), instance), "research_job")
    print_research(settings)
    err.print(
        "self-learning: training data, gbm / lstm / rl with walk-forward evaluation, the promotion gate ..."
    )
    with shown():  # walk-forward folds, LSTM epochs, RL steps
        _require(_run(defs.resolve_job_def("training_job"), instance), "training_job")
    from xray_cli.demo_report import print_bundle
    from xray_cli.models_cmd import print_comparison

    print_comparison()
    print_bundle(settings.store.lake_dir.parent / "bundles")  # where `promoted_bundle` publishes


def _trade(emulator_url: str, bars: int | None) -> None:
    """The runtime trades paper users on the bundle the pipeline just published (same emulator)."""
    from xray_cli.demo_trading import DEFAULT_BARS, run_demo_trading
    from xray_core.settings import load_settings

    store = load_settings().store
    bars = DEFAULT_BARS if bars is None else bars
    bundle_dir = store.lake_dir.parent / "bundles"  # where `promoted_bundle` publishes
    err.print(f"trading: {bars} bars with the runtime's paper users on the promoted bundle ...")
    result = run_demo_trading(emulator_url, bundle_dir, store.home, bars=bars)
    print_dashboard(result, store.home)


def print_dashboard(result: Any, home: Path) -> None:
    """The last lines of the demo: the command serving the dashboard on the demo's data, and tokens
    for the demo user who traded most and for the operator (issued now; only their hashes are kept)."""
    from xray_cli.console import out
    from xray_runtime.api_tokens import issue
    from xray_runtime.db import connect

    database_url = f"sqlite:///{(home / 'demo' / 'runtime.db').resolve()}"
    user = max(result.users, key=lambda u: u.orders)
    engine = connect(database_url)
    try:
        user_token, operator_token = issue(engine, user.user_id), issue(engine, None, operator=True)
    finally:
        engine.dispose()
    lines = [
        "web dashboard on the demo's data (open http://127.0.0.1:8080 and sign in with a token):",
        f"  XRAY_HOME={home.resolve()} xray web --port 8080 --database-url {database_url}",
        f"token of demo user {user.user_id} ({user.orders} orders): {user_token}",
        f"operator token: {operator_token}",
        f"  curl -H 'Authorization: Bearer {user_token}' http://127.0.0.1:8080/api/me/trades",
    ]
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _run_partitions(job: Any, instance: Any, keys: Sequence[str], label: str) -> dict[str, str]:
    """One run per symbol, as the schedule does: a failure is collected, the others continue."""
    failures: dict[str, str] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=len(keys))
        for key in keys:
            progress.update(task, description=f"{label} {key}")
            ok, error = _run(job, instance, partition_key=key)
            if not ok:
                failures[key] = error
            progress.advance(task)
    return failures


def _run(job: Any, instance: Any, partition_key: str | None = None) -> tuple[bool, str]:
    result = job.execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config=QUIET
    )
    if result.success:
        return True, ""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    message = failure.step_failure_data.error.message.strip() if failure else "run failed"
    return False, message.splitlines()[0]


def _require(outcome: tuple[bool, str], what: str) -> None:
    ok, error = outcome
    if not ok:
        raise XrayError(f"materializing {what} failed: {error}", "see the run in `make ui`")
