"""X-Ray's Dagster code location: assets, checks, resources, schedules and sensors by domain.

`definitions.py` composes them; nothing here is imported by the trading runtime (or vice versa)."""
