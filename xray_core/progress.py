"""Progress of long work (walk-forward folds, training epochs, RL steps, optimiser trials) as events.

The domain stays free of any display: the loops call `report(...)`, which does nothing unless a sink
is installed with `reporting(sink)`. The CLI installs one that draws rich progress bars on a terminal
(`xray_cli.progress`); tests install a recorder. The sink is process-wide rather than a context
variable because Dagster runs a job's steps in-process but not necessarily on the caller's thread.

Events arrive in the order the work happens. Each loop first reports where it starts (`done=0`, or
the trials already complete when a stored study resumes), then after each unit (a batch of trials, a
rollout of RL steps) its count so far; a loop that stops early (early stopping) reports no more.
Reporting never changes what is computed: no random draws, and the training loops add their hooks
only while a sink is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

Kind = Literal["fold", "epoch", "step", "trial"]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """kind: what is counted; label: whose work it is (e.g. "lstm: training", a study's name);
    done: units finished so far (0 at the start); total: units planned (None when unknown)."""

    kind: Kind
    label: str
    done: int
    total: int | None


class ProgressSink(Protocol):
    def __call__(self, event: ProgressEvent) -> None: ...


_sink: ProgressSink | None = None


def active() -> bool:
    """Whether anyone listens (the loops skip building their hooks otherwise)."""
    return _sink is not None


def report(kind: Kind, label: str, done: int, total: int | None) -> None:
    """Tell the installed sink, if any. A failing sink is dropped with a warning: a broken progress
    display must never stop (or lose) a training run."""
    global _sink
    sink = _sink
    if sink is None:
        return
    try:
        sink(ProgressEvent(kind, label, int(done), None if total is None else int(total)))
    except Exception:
        log.warning("progress display failed; continuing without it", exc_info=True)
        _sink = None


@contextmanager
def reporting(sink: ProgressSink) -> Iterator[ProgressSink]:
    """Install `sink` for the duration of the block (the previous one is restored after)."""
    global _sink
    previous, _sink = _sink, sink
    try:
        yield sink
    finally:
        _sink = previous
