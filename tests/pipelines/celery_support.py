"""Celery workers for the distributed-executor tests, and the jobs they run.

The workers are real `celery -A dagster_celery.app worker` processes (what `dagster-celery worker
start` runs), each on a queue of the test's own, so parallel tests never take each other's steps.
They load the jobs below from this module (the run's code pointer), as production workers load the
code location.

The jobs' steps coordinate through files in a directory of the test (op config `dir`): each step
writes `<step>.pid` with the process it runs in, and waits for what the test or its sibling step has
to do first. The waits are hang guards only: a step that waits longer fails with a clear message."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster_celery import celery_executor

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("XRAY_TEST_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
HANG_GUARD_S = 600.0


def wait_for(paths: list[Path], what: str, timeout_s: float = HANG_GUARD_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(path.exists() for path in paths):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.05)


def _started(context: dg.OpExecutionContext) -> Path:
    directory = Path(context.op_config["dir"])
    marker = directory / f"{context.op.name}.pid"
    marker.write_text(f"{os.getpid()}\n{os.environ.get('XRAY_TEST_WORKER', '')}")
    return directory


DIR = {"dir": str}


@dg.op(config_schema=DIR)
def left(context: dg.OpExecutionContext) -> None:
    """Runs only while `right` runs too: one worker with one slot cannot do both, so two must."""
    directory = _started(context)
    wait_for([directory / "right.pid"], "the sibling step `right` to start on another worker")


@dg.op(config_schema=DIR)
def right(context: dg.OpExecutionContext) -> None:
    directory = _started(context)
    wait_for([directory / "left.pid"], "the sibling step `left` to start on another worker")


@dg.op(config_schema=DIR, ins={"after_left": dg.In(dg.Nothing), "after_right": dg.In(dg.Nothing)})
def joined(context: dg.OpExecutionContext) -> None:
    _started(context)


@dg.job(executor_def=celery_executor)
def fan_out_job() -> None:
    joined(after_left=left(), after_right=right())


@dg.op(config_schema=DIR)
def prepare(context: dg.OpExecutionContext) -> None:
    _started(context)


@dg.op(config_schema=DIR, ins={"after": dg.In(dg.Nothing)})
def long_step(context: dg.OpExecutionContext) -> None:
    """Holds until the test writes `release`: the test kills its process meanwhile."""
    directory = _started(context)
    wait_for([directory / "release"], "the test to release the long step")


@dg.op(config_schema=DIR, ins={"after": dg.In(dg.Nothing)})
def finish(context: dg.OpExecutionContext) -> None:
    _started(context)


@dg.job(executor_def=celery_executor)
def kill_job() -> None:
    finish(after=long_step(after=prepare()))


def fan_out() -> dg.JobDefinition:
    return fan_out_job


def killable() -> dg.JobDefinition:
    return kill_job


def run_config(job: dg.JobDefinition, directory: Path, executor: dict) -> dict:
    ops = {name: {"config": {"dir": str(directory)}} for name in job.graph.node_dict}
    return {"ops": ops, "execution": {"config": executor}}


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # warm shutdown; killed if it will not go
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=60)


@contextmanager
def celery_workers(
    tmp_path: Path, count: int, queue: str | None = None
) -> Iterator[tuple[str, list[Worker]]]:
    """`count` workers of one slot each, on a fresh queue; yields (queue, workers)."""
    from xray_pipelines.executor import ExecutorSettings, celery_config

    queue = queue or f"xray-test-{uuid.uuid4().hex[:10]}"
    config = celery_config(ExecutorSettings(celery_broker=BROKER, celery_queue=queue))
    module_dir = tmp_path / "celery_config"
    module_dir.mkdir()
    # What `dagster-celery worker start -y` writes: the executor's config as a module the app reads.
    lines = [f"broker_url = {config['broker']!r}", f"result_backend = {config['backend']!r}"]
    lines += [f"{key} = {value!r}" for key, value in config["config_source"].items()]
    (module_dir / "dagster_celery_config.py").write_text("\n".join(lines) + "\n")
    workers = []
    try:
        for i in range(count):
            name = f"w{i}-{uuid.uuid4().hex[:6]}"
            log = tmp_path / f"{name}.log"
            env = os.environ | {
                "PYTHONPATH": os.pathsep.join([str(module_dir), str(ROOT), str(Path(__file__).parent)]),
                "XRAY_TEST_WORKER": name,
            }
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "-Q", queue,
                 "-n", f"{name}@%h", "--concurrency=1", "--pool=prefork", "--prefetch-multiplier=1",
                 "--without-gossip", "--without-mingle", "-l", "INFO"],
                stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
            )
            workers.append(Worker(name, process, log))
        for worker in workers:  # ready: connected and consuming
            deadline = time.monotonic() + HANG_GUARD_S
            while " ready." not in worker.log.read_text():
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    log = worker.log.read_text()
                    raise RuntimeError(f"celery worker {worker.name} did not start:\n{log}")
                time.sleep(0.2)
        yield queue, workers
    finally:
        for worker in workers:
            worker.stop()
