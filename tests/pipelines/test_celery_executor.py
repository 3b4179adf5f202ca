"""Dagster on a distributed executor: runs on the production instance (dagster.postgres.yaml) whose
steps are executed by separate Celery worker processes on the local RabbitMQ (each test on a queue of
its own), including a job of the code location launched from the command line.

One run's steps spread over two workers (steps that can only finish while both run), and a worker
process killed mid-step fails that step and its run; the retry (re-execution from the failure) runs
the step again on a live worker and completes, without redoing the steps that had succeeded."""

import importlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest
from celery_support import BROKER, ROOT, celery_workers, fan_out, killable, run_config, wait_for

from xray_core.settings import load
from xray_pipelines.executor import ExecutorSettings, build_executor, celery_config, executor_config

pytestmark = [pytest.mark.postgres, pytest.mark.celery, pytest.mark.timeout(1800)]


def _marker(directory: Path, step: str) -> tuple[int, str]:
    pid, worker = (directory / f"{step}.pid").read_text().split("\n")
    return int(pid), worker


def _celery_workers_of(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step -> the Celery worker that executed it, as the run's own events record it."""
    found = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.event_type_value == "ENGINE_EVENT" and event.step_key:
            worker = event.engine_event_data.metadata.get("Celery worker")
            if worker is not None:
                found[event.step_key] = worker.value
    return found


def _succeeded(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    return {e.step_key for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)}


def _executor(queue: str) -> dict:
    return celery_config(ExecutorSettings(celery_broker=BROKER, celery_queue=queue))


def test_the_steps_of_one_run_are_executed_by_two_workers(postgres_dagster_home, tmp_path):
    home, _database = postgres_dagster_home
    directory = tmp_path / "steps"
    directory.mkdir()
    with (celery_workers(tmp_path, 2) as (queue, workers),
          dg.DagsterInstance.from_config(str(home)) as instance):
        job = dg.reconstructable(fan_out)
        result = dg.execute_job(job, instance=instance, raise_on_error=False,
                                run_config=run_config(fan_out(), directory, _executor(queue)))
        assert result.success
        by_events = _celery_workers_of(instance, result.run_id)
    names = {worker.name for worker in workers}
    left, right, joined = (_marker(directory, step) for step in ("left", "right", "joined"))
    assert {left[1], right[1]} == names, "the two parallel steps ran on the two workers"
    assert left[0] != right[0] and os.getpid() not in {left[0], right[0], joined[0]}
    assert set(by_events) == {"left", "right", "joined"}
    assert {by_events["left"].split("@")[0], by_events["right"].split("@")[0]} == names


def test_a_worker_killed_mid_step_fails_the_step_and_the_retry_completes(postgres_dagster_home, tmp_path):
    home, _database = postgres_dagster_home
    directory = tmp_path / "steps"
    directory.mkdir()
    killed: list[int] = []

    def kill_the_long_step() -> None:
        wait_for([directory / "long_step.pid"], "the long step to start")
        pid, _worker = _marker(directory, "long_step")
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)  # as the OOM killer or a lost machine would

    with (celery_workers(tmp_path, 2) as (queue, _workers),
          dg.DagsterInstance.from_config(str(home)) as instance):
        job = dg.reconstructable(killable)
        config = run_config(killable(), directory, _executor(queue))
        killer = threading.Thread(target=kill_the_long_step, daemon=True)
        killer.start()
        failed = dg.execute_job(job, instance=instance, run_config=config, raise_on_error=False)
        killer.join(timeout=60)
        assert killed, "the long step never started"
        assert not failed.success
        assert instance.get_run_by_id(failed.run_id).status == dg.DagsterRunStatus.FAILURE
        done = _succeeded(instance, failed.run_id)
        assert done == {"prepare"}, "the run stopped at the killed step"
        assert not (directory / "finish.pid").exists()
        (failure,) = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        reason = failure.dagster_event.event_specific_data.error.message
        assert "[long_step]" in reason and "WorkerLostError" in reason and "SIGKILL" in reason

        (directory / "release").write_text("")
        retry = dg.execute_job(
            job, instance=instance, run_config=config, raise_on_error=False,
            reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, instance),
        )
        assert retry.success
        redone = _succeeded(instance, retry.run_id)
    assert redone == {"long_step", "finish"}, "the retry ran what had not succeeded, and only that"
    assert _marker(directory, "long_step")[0] != killed[0], "a live worker process ran the step again"


def test_the_research_and_training_jobs_run_on_celery_when_configured(monkeypatch):
    """The code location's jobs take the Celery executor, with its queue, from the settings."""
    import xray_pipelines.definitions as location

    assert build_executor(ExecutorSettings()) is None  # the default: steps in the run's own processes
    monkeypatch.setenv("XRAY_PIPELINES_CELERY_BROKER", "amqp://xray:hunter2@mq:5672//")
    config = executor_config(load(ExecutorSettings))
    assert config["broker"] == {"env": "XRAY_PIPELINES_CELERY_BROKER"}, "no password in the job's config"
    monkeypatch.delenv("XRAY_PIPELINES_CELERY_BROKER")
    monkeypatch.setenv("XRAY_PIPELINES_EXECUTOR", "celery")
    monkeypatch.setenv("XRAY_PIPELINES_CELERY_QUEUE", "research-q")
    try:
        celery_defs = importlib.reload(location).defs
        for name in ("research_job", "training_job"):
            job = celery_defs.resolve_job_def(name)
            assert job.executor_def.name == "celery"
            configured = job.executor_def.config_schema.resolve_config({}).value["config"]
            assert configured["config_source"]["task_default_queue"] == "research-q"
            assert configured["config_source"]["task_acks_late"] is True
    finally:
        monkeypatch.delenv("XRAY_PIPELINES_EXECUTOR")
        monkeypatch.delenv("XRAY_PIPELINES_CELERY_QUEUE")
        importlib.reload(location)


def test_a_job_of_the_code_location_runs_on_the_workers_from_the_command_line(
        postgres_dagster_home, tmp_path, monkeypatch, emulator):
    """`dagster job execute` on the production instance with XRAY_PIPELINES_EXECUTOR=celery: the
    `markets` step of `markets_job` is executed by a worker, which loads the code location itself."""
    home, _database = postgres_dagster_home
    xray_home = tmp_path / "xray"
    monkeypatch.setenv("XRAY_HOME", str(xray_home))
    monkeypatch.setenv("XRAY_EXCHANGE_URL", emulator.base_url)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with celery_workers(tmp_path, 2) as (queue, workers):
        env = os.environ | {"XRAY_PIPELINES_EXECUTOR": "celery", "XRAY_PIPELINES_CELERY_QUEUE": queue,
                            "XRAY_PIPELINES_CELERY_BROKER": BROKER, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "execute", "-m", "xray_pipelines.definitions",
             "-j", "markets_job"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        with dg.DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs()
            assert run.job_name == "markets_job" and run.status == dg.DagsterRunStatus.SUCCESS
            by_events = _celery_workers_of(instance, run.run_id)
    assert set(by_events) == {"markets"}
    assert by_events["markets"].split("@")[0] in {worker.name for worker in workers}
    assert (xray_home / "xray.duckdb").exists(), "the worker wrote the lake of this XRAY_HOME"
