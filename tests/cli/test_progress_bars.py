"""The CLI's progress bars (xray_cli.progress): drawn on a terminal, one bar per kind of work that
restarts with each new loop, and nothing at all when the output is not a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from xray_cli.progress import RichProgressSink, bars, shown
from xray_core import progress


def console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=120), buffer


def work() -> None:
    """What training reports: folds around epochs, then RL steps and optimiser trials."""
    progress.report("fold", "walk-forward folds", 0, 2)
    for label in ("lstm: choosing the epoch count", "lstm: training"):
        for done in range(4):
            progress.report("epoch", label, done, 3)
    progress.report("fold", "walk-forward folds", 1, 2)
    progress.report("step", "rl: PPO steps", 0, 512)
    progress.report("step", "rl: PPO steps", 256, 512)
    progress.report("trial", "sma_cross-cluster-0", 8, 40)


def test_nothing_is_drawn_or_installed_off_a_terminal():
    quiet, buffer = console(terminal=False)
    with shown(quiet) as sink:
        assert sink is None and not progress.active()
        work()
    assert buffer.getvalue() == ""


def test_a_terminal_gets_one_bar_per_kind_that_restarts_with_each_loop():
    tty, buffer = console(terminal=True)
    with shown(tty) as sink:
        assert sink is not None and progress.active()
        work()
        tasks = {task.description: task for task in sink.progress.tasks}
    assert not progress.active()  # uninstalled after the block
    assert set(tasks) == {
        "walk-forward folds (folds)",
        "lstm: training (epochs)",  # the epoch bar restarted for the final fit
        "rl: PPO steps (steps)",
        "sma_cross-cluster-0 (trials)",
    }
    folds = tasks["walk-forward folds (folds)"]
    assert (folds.completed, folds.total) == (1, 2)
    assert tasks["lstm: training (epochs)"].completed == 3
    assert tasks["rl: PPO steps (steps)"].completed == 256
    assert "epochs" in buffer.getvalue()


def test_a_loop_starting_again_under_the_same_label_resets_its_bar():
    tty, _ = console(terminal=True)
    sink = RichProgressSink(bars(tty))
    with sink.progress, progress.reporting(sink):
        for fold in range(2):
            for done in range(3 - fold):
                progress.report("epoch", "lstm: training", done, 5)
        (task,) = sink.progress.tasks
        assert task.completed == 1 and task.total == 5  # the second loop's count, not 2 + 1
