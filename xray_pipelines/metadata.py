"""Turning polars frames into Dagster metadata (tables and markdown) for the UI."""

import base64

import dagster as dg
import polars as pl

_TYPES = {pl.Boolean: "bool", pl.Int64: "int", pl.Int32: "int", pl.Float64: "float", pl.Float32: "float"}


def table(frame: pl.DataFrame, limit: int = 200) -> dg.TableMetadataValue:
    """A Dagster table of (at most `limit` rows of) `frame`."""
    columns = [
        dg.TableColumn(name, _TYPES.get(dtype.base_type(), "string")) for name, dtype in frame.schema.items()
    ]
    rows = [dg.TableRecord(_plain(row)) for row in frame.head(limit).iter_rows(named=True)]
    return dg.MetadataValue.table(records=rows, schema=dg.TableSchema(columns=columns))


def markdown(frame: pl.DataFrame, limit: int = 100) -> dg.MarkdownMetadataValue:
    head = frame.head(limit)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in head.iter_rows()]
    return dg.MetadataValue.md("\n".join(lines))


def _plain(row: dict[str, object]) -> dict[str, str | int | float | bool | None]:
    return {k: v if isinstance(v, str | int | float | bool) or v is None else str(v) for k, v in row.items()}


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value).replace("|", "\\|")


def image(png: bytes, title: str) -> dg.MarkdownMetadataValue:
    """A PNG shown inline in the Dagster UI (markdown with a data URI)."""
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")
