"""How X-Ray's schedules run: in UTC, and on from the start (a fresh instance needs no clicks)."""

import dagster as dg

RUNNING = dg.DefaultScheduleStatus.RUNNING
TIMEZONE = "UTC"


def nightly_or_missing(cron: str) -> dg.AutomationCondition:
    """On `cron` once its dependencies have updated, and also the first time the asset is missing
    with every dependency present: a new instance builds it as soon as its inputs exist, instead of
    leaving everything downstream waiting for the next cron tick. (Dagster's `on_missing` covers only
    partitions added later, not an asset that was missing from the start.)"""
    first_time = (
        (dg.AutomationCondition.missing() & ~dg.AutomationCondition.any_deps_missing())
        .newly_true()
        .with_label("missing, with every input present")
    )
    return dg.AutomationCondition.on_cron(cron) | first_time


def cron_schedule(name: str, job, cron: str, description: str) -> dg.ScheduleDefinition:
    """A schedule that launches `job` whole at each `cron` tick."""
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=TIMEZONE,
        default_status=RUNNING,
        description=description,
    )
