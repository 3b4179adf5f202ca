"""Shared terminal output: tables on stdout, progress and notes on stderr."""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=False)
err = Console(stderr=True)


def verdict_style(verdict: str) -> str:
    return "green" if verdict == "good" else "red"
