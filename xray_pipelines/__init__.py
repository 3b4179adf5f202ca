"""X-Ray's Dagster code location: assets, checks, jobs, schedules and sensors by domain under `defs/`.

`definitions.py` discovers them and adds the resources; nothing here is imported by the trading
runtime (or vice versa)."""
