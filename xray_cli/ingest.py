"""`xray ingest`: bring candles up to date symbol by symbol, with progress, then print verdicts."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from xray_cli.console import err, out, verdict_style
from xray_core.settings import load_settings


def run_ingest(*, symbols: list[str], days: int | None, timeframe: str | None) -> None:
    from xray_core.candles.store import CandleStore
    from xray_core.exchange.client import ExchangeClient
    from xray_core.ingest import ingest_symbol, refresh_universe, refresh_verdicts

    wanted = [s.strip().upper() for item in symbols for s in item.split(",") if s.strip()]
    overrides: dict[str, Any] = {"symbols": ",".join(wanted)} if wanted else {}
    if days is not None:
        overrides["history_days"] = days
    if timeframe is not None:
        overrides["timeframe"] = timeframe
    settings = load_settings(ingest=overrides)
    client = ExchangeClient(settings.exchange)
    store = CandleStore(settings.store.duckdb_file)

    client.require_timeframe(settings.ingest.timeframe)
    for symbol in wanted:  # fail before writing anything when a symbol is misspelt
        client.require_market(symbol)
    universe = refresh_universe(client, store, settings.ingest)
    chosen = universe.filter(universe["kept"])["symbol"].to_list()
    for row in universe.filter(~universe["kept"] & universe["symbol"].is_in(wanted)).iter_rows(named=True):
        err.print(f"[yellow]skipping {row['symbol']}: {row['reason']}[/]")

    now_ms = client.fetch_time()
    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        overall = progress.add_task(f"ingesting {settings.ingest.timeframe}", total=len(chosen))
        for symbol in chosen:
            task = progress.add_task(f"  {symbol}", total=1)

            def advance(done: int, total: int, task: Any = task) -> None:
                progress.update(task, completed=done, total=max(total, 1))

            results.append(
                ingest_symbol(
                    client,
                    store,
                    symbol,
                    settings.ingest,
                    settings.quality,
                    now_ms=now_ms,
                    on_progress=advance,
                )
            )
            progress.remove_task(task)
            progress.advance(overall)
    verdicts = refresh_verdicts(store, client.id, settings.ingest.timeframe)
    _print_results(results, verdicts)
    failed = [r for r in results if not r.ok]
    if failed:
        err.print(f"[red]{len(failed)} of {len(results)} symbols failed to ingest; the others are stored.[/]")
        raise SystemExit(1)


def _print_results(results: list[Any], verdicts: Any) -> None:
    reasons = {row["symbol"]: (row["verdict"], row["reason"]) for row in verdicts.iter_rows(named=True)}
    table = Table(title="ingested candles")
    for name in ("symbol", "bars", "new", "verdict", "reason"):
        table.add_column(name, justify="right" if name in ("bars", "new") else "left")
    for r in results:
        verdict, reason = reasons.get(r.symbol, ("bad", r.error or "not assessed"))
        bars = r.report.bars if r.report else 0
        new = r.written.inserted if r.written else 0
        table.add_row(r.symbol, str(bars), str(new), f"[{verdict_style(verdict)}]{verdict}[/]", reason)
    out.print(table)
