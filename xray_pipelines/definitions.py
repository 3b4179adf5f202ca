"""The Dagster code location: every definition under `defs/`, discovered, plus the resources.

Nothing here lists assets, jobs, schedules or sensors: a new one is a new module under `defs/`
(`dg.load_from_defs_folder` reads the folder named by `[tool.dg.project]` in pyproject.toml)."""

from pathlib import Path

import dagster as dg

from xray_core.settings import load_settings
from xray_pipelines.executor import build_executor
from xray_pipelines.resources import build_resources

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    # The executor (default, or Celery workers: XRAY_PIPELINES_EXECUTOR) of every job, the research
    # and training jobs among them.
    dg.Definitions(resources=build_resources(load_settings()), executor=build_executor()),
)
