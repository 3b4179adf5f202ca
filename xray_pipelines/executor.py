"""Where the steps of a run execute: in the run's own processes (the default), or on Celery workers.

`XRAY_PIPELINES_EXECUTOR=celery` makes every job of the code location (the research and training jobs
among them) hand each step to a Celery queue (`dagster_celery`); any number of worker processes, on
any machines, take steps from it:

    dagster-celery worker start -A dagster_celery.app -y celery.yaml -q dagster

The workers load the code location themselves, open the instance the run names (Postgres:
dagster.postgres.yaml) and read and write the same lake, so both must be reachable from every worker
machine (the lake on shared storage). Steps in the `duckdb_writer` pool still run one at a time: the
Celery executor asks the instance's concurrency limits before it submits a step.

`XRAY_PIPELINES_EXECUTOR=k8s`: each step is a Kubernetes Job (`dagster_k8s.k8s_job_executor`), in
the deployment of Dagster's Helm chart described in deploy/README.md.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import dagster as dg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from xray_core.settings import load


class ExecutorSettings(BaseSettings):
    """Which executor the jobs use, and the Celery broker and queue when it is Celery."""

    model_config = SettingsConfigDict(
        env_prefix="XRAY_PIPELINES_", frozen=True, extra="ignore", env_file=".env", env_file_encoding="utf-8"
    )

    executor: Literal["default", "celery", "k8s"] = Field(
        "default", description="default: steps in the run's own processes; celery: on Celery workers; "
        "k8s: one Kubernetes Job per step (deploy/)",
    )
    celery_broker: str = Field(
        "amqp://guest:guest@127.0.0.1:5672//", description="Celery broker URL (RabbitMQ or Redis)"
    )
    celery_backend: str = Field(
        "rpc://", description="Celery result backend (rpc:// answers over the broker)"
    )
    celery_queue: str = Field("dagster", description="Queue the steps are sent to; workers listen on it (-q)")


def celery_config(settings: ExecutorSettings) -> dict[str, Any]:
    """The `celery_executor` config of `settings` (also what `dagster-celery worker start -y` reads).

    Late acknowledgement with one message prefetched: a worker holds only the step it runs, so a busy
    worker never sits on a step another could start, and a worker that dies mid-step fails that step
    (WorkerLostError) instead of losing it silently; the run fails and its retry (re-execution from
    failure) runs the step again on a worker that is alive."""
    return {
        "broker": settings.celery_broker,
        "backend": settings.celery_backend,
        "config_source": {
            "task_default_queue": settings.celery_queue,
            "task_acks_late": True,
            "worker_prefetch_multiplier": 1,
        },
    }


def build_executor(settings: ExecutorSettings | None = None) -> dg.ExecutorDefinition | None:
    """The executor every job of the code location uses; None: Dagster's default."""
    settings = settings or load(ExecutorSettings)
    if settings.executor == "k8s":
        # Its namespace, image and secrets come from the Helm chart's K8sRunLauncher (deploy/).
        from dagster_k8s import k8s_job_executor  # only a Kubernetes deployment imports it

        return k8s_job_executor
    if settings.executor != "celery":
        return None
    from dagster_celery import celery_executor  # only a Celery deployment imports Celery

    return celery_executor.configured(executor_config(settings), name="celery")


def executor_config(settings: ExecutorSettings) -> dict[str, Any]:
    """`celery_config` with the broker and backend URLs read from the environment at run time when it
    has them: a URL may carry a password, which must not show in the job's config in the UI."""
    config = celery_config(settings)
    for key in ("broker", "backend"):
        variable = f"XRAY_PIPELINES_CELERY_{key.upper()}"
        if os.environ.get(variable, "").strip():
            config[key] = {"env": variable}
    return config
