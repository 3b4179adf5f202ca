"""Rich progress bars for the long work of `xray train` and `xray demo` (folds, epochs, RL steps,
optimiser trials), fed by `xray_core.progress` events.

One bar per kind of work: a new label, or a loop starting again at 0 (the next fold's epochs),
restarts that bar with the new label and total, so the screen holds at most four bars however many
models, folds and studies run. On anything but a terminal (a pipe, a file, CI) nothing is installed
and nothing is drawn: logs stay clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from xray_cli.console import err
from xray_core.progress import ProgressEvent, reporting

NOUNS = {"fold": "folds", "epoch": "epochs", "step": "steps", "trial": "trials"}


class RichProgressSink:
    """A `xray_core.progress` sink drawing on `progress` (started and stopped by the caller)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._tasks: dict[str, tuple[TaskID, str, int]] = {}  # kind -> (task, label, last done)

    def __call__(self, event: ProgressEvent) -> None:
        description = f"{event.label} ({NOUNS[event.kind]})"
        known = self._tasks.get(event.kind)
        if known is None:
            task = self.progress.add_task(description, total=event.total, completed=event.done)
        else:
            task, label, last = known
            if label != event.label or event.done < last:  # a new loop: start the bar again
                self.progress.reset(task, total=event.total, completed=event.done, description=description)
            else:
                self.progress.update(task, total=event.total, completed=event.done)
        self._tasks[event.kind] = (task, event.label, event.done)


def bars(console: Console) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console, transient=True)


@contextmanager
def shown(console: Console = err) -> Iterator[RichProgressSink | None]:
    """Progress bars on `console` while the block runs, if it is a terminal; else nothing at all."""
    if not console.is_terminal:
        yield None
        return
    sink = RichProgressSink(bars(console))
    with sink.progress, reporting(sink):
        yield sink
