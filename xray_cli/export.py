"""`xray candles SYMBOL --out FILE`: export stored bars in the shared candle schema."""

from __future__ import annotations

from pathlib import Path

from xray_cli.console import err
from xray_core.errors import DataError, UnknownSymbolError
from xray_core.settings import load_settings


def export_candles(*, symbol: str, out: Path, timeframe: str | None) -> None:
    from xray_core.candles.store import CandleStore, SeriesKey

    settings = load_settings(ingest={"timeframe": timeframe} if timeframe else {})
    if out.suffix != ".parquet":
        raise DataError(f"--out {out} must end in .parquet", "e.g. --out btc.parquet")
    store = CandleStore(settings.store.duckdb_file)
    key = SeriesKey(settings.exchange.id, symbol.upper(), settings.ingest.timeframe)
    frame = store.read(key)
    if frame.is_empty():
        stored = store.series()
        have = sorted({f"{r['symbol']} {r['timeframe']}" for r in stored.iter_rows(named=True)})
        raise UnknownSymbolError(
            f"no {key.timeframe} candles stored for {key.symbol} on {key.exchange}",
            f"run `xray ingest --symbols {key.symbol} --timeframe {key.timeframe}`"
            + (f" (stored: {', '.join(have[:6])}{', ...' if len(have) > 6 else ''})" if have else ""),
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    frame.write_parquet(partial)
    partial.replace(out)  # readers never see half a file
    err.print(f"wrote {frame.height} {key.timeframe} bars of {key.symbol} to {out}")
