"""`xray indicators --candles FILE --out OUT`: the candle columns plus every indicator column.

The output is `xray_core.indicators.add_indicators` of the file (warm-up rows NaN), written to
`OUT.partial` and renamed to OUT, so OUT is either absent or complete. `--json` prints
{"rows", "columns", "out"} and nothing else on stdout.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from xray_cli.console import print_json
from xray_cli.research import about, read_candles
from xray_core.errors import DataError


def write_indicators(*, candles: Path, out: Path, as_json: bool) -> None:
    from xray_core.indicators import add_indicators

    if out.suffix != ".parquet":
        raise DataError(f"--out {out} must end in .parquet", "e.g. --out btc-indicators.parquet")
    if out.is_dir():
        raise DataError(f"--out {out} is a directory", "give a file name ending in .parquet")
    frame = read_candles(candles)
    with about(candles):
        table = add_indicators(frame)
    partial = out.with_name(out.name + ".partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.write_parquet(partial)
        partial.replace(out)  # readers never see half a file
    except OSError as exc:
        raise DataError(
            f"cannot write {out}: {exc.strerror or exc}", "check the folder and free space"
        ) from None
    finally:
        with contextlib.suppress(OSError):  # nothing to clean where the folder could not be made
            partial.unlink(missing_ok=True)
    if as_json:
        print_json({"rows": table.height, "columns": table.columns, "out": str(out)})
        return
    from xray_cli.console import err

    err.print(f"wrote {table.height:,} rows x {table.width} columns (candles + indicators) to {out}")
