"""What a registered model version shows: the row `xray models list --json` prints and the dashboard's
Models page serves, built from what the MLflow registry holds (tags, aliases, its run's metrics).

Pure: the callers (`xray_pipelines.mlops.registry.list_versions`, `xray_web.ops_reads.models`) do the
MLflow calls; this module shapes their answers, so both show the same gate object for a version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

LINEAGE_KEYS = ("xray.data_version", "xray.code_version", "xray.dagster_run_id")
GATE_RECORD_TAG, GATE_REASON_TAG, DEMOTION_TAG = "xray.gate_record", "xray.gate", "xray.demotion_reason"


def gate_record(tags: Mapping[str, str]) -> dict[str, Any]:
    """The gate's record of a version ({} before it was judged), with why it was demoted, if it was."""
    raw = tags.get(GATE_RECORD_TAG)
    record: dict[str, Any] = json.loads(raw) if raw else {}
    if GATE_REASON_TAG in tags and not record:
        record = {"verdict": None, "reason": tags[GATE_REASON_TAG]}
    if DEMOTION_TAG in tags:
        record["demoted"] = tags[DEMOTION_TAG]
    return record


def version_row(name: str, version: int | str, tags: Mapping[str, str], aliases: Mapping[str, Any],
                metrics: Mapping[str, float]) -> dict[str, Any]:
    """One version: name, flavor, version, its aliases (of the model's alias -> version map), the
    metrics of its run, its lineage tags and the gate's record."""
    return {
        "name": name,
        "flavor": tags.get("xray.flavor", ""),
        "version": int(version),
        "aliases": sorted(a for a, v in aliases.items() if str(v) == str(version)),
        "metrics": dict(metrics),
        "lineage": {k.removeprefix("xray."): tags[k] for k in LINEAGE_KEYS if k in tags},
        "gate": gate_record(tags),
    }
