"""How X-Ray's schedules run: in UTC, and on from the start (a fresh instance needs no clicks)."""

import dagster as dg

RUNNING = dg.DefaultScheduleStatus.RUNNING
TIMEZONE = "UTC"


def nightly_or_missing(cron: str) -> dg.AutomationCondition:
    """On `cron` once its dependencies have updated, and also as soon as the asset is missing with
    every dependency present: a new instance gets it the first time its inputs exist, instead of
    leaving everything downstream waiting for the next cron tick."""
    return dg.AutomationCondition.on_cron(cron) | dg.AutomationCondition.on_missing()


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
