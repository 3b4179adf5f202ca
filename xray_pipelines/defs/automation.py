"""The automation sensor: evaluates every asset's declarative automation condition (eager refreshes
after new candles, the nightly parameters, the hourly news, the bundle) and launches what is due.

Dagster's implicit default automation sensor starts STOPPED on a new instance, so nothing would
refresh until a person turned it on in the UI; this one is RUNNING from the start. It needs the
daemon (`make serve`, or `dagster-daemon run` in production)."""

import dagster as dg

xray_automation = dg.AutomationConditionSensorDefinition(
    "xray_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Launches every asset whose automation condition is due (eager, cron, missing)",
)
