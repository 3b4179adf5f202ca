"""How X-Ray's schedules run: in UTC, and on from the start (a fresh instance needs no clicks)."""

import dagster as dg

RUNNING = dg.DefaultScheduleStatus.RUNNING
TIMEZONE = "UTC"


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
