"""Shared terminal output: tables on stdout, progress and notes on stderr."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

out = Console(soft_wrap=False)
err = Console(stderr=True)


def verdict_style(verdict: str) -> str:
    return "green" if verdict == "good" else "red"


def print_json(value: Any) -> None:
    """`value` as one line of JSON on stdout. NaN and ±inf (undefined or unbounded metrics, e.g. the
    Sharpe ratio of a run without trades) are written as `null`, which every JSON parser reads;
    numpy values are numbers; anything else unknown is its string."""
    import orjson

    sys.stdout.flush()
    sys.stdout.buffer.write(orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    sys.stdout.buffer.flush()
