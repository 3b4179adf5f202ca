"""The web dashboard and REST API (`xray web`): what users and operators see without a terminal.

It reads the runtime's SQL (users, journal, risk state, equity history, pause state) and the lake
(DuckDB tables of the research pipeline, the promoted bundle, the MLflow registry); it never asks the
exchange anything on a request. It may import xray_core and xray_runtime (their stores), never the
pipelines nor the simulated world, and neither of those imports it (import-linter contracts)."""
