"""A small `xray loadtest --processes 2 --chaos`: two runtime processes on one PostgreSQL database and a
Redis of the harness's own, while the emulator injects every fault kind and the harness SIGKILLs a
process (restarted a tick later), SIGSTOPs one past its lease and restarts Redis. Nothing doubled,
lost or left in disagreement; no two processes acted for one user at once; no risk state went back."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import psycopg
import pytest

from xray_sim.loadtest import LoadTestConfig, run_loadtest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PG_ADMIN = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def database_url():
    name = f"xray_chaos_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    server = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{server}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_processes_under_chaos_keep_every_account_in_agreement(database_url, tmp_path):
    assert shutil.which("redis-server"), "the chaos mode starts a redis-server of its own"
    # Short moving averages: orders on most bars, so sends meet the kills, stops and faults.
    config = LoadTestConfig(users=12, symbols=2, ticks=6, fast=2, slow=3, processes=2, chaos=True,
                            database_url=database_url, workdir=tmp_path)
    result = run_loadtest(config)
    shown = json.dumps(result)
    assert result["orders"] > 0 and result["fills"] > 0
    assert result["kills"] >= 1 and result["stops"] >= 1 and result["redis_restarts"] >= 1
    assert sum((result["faults_fired"] or {}).values()) > 0
    assert result["crashes"] == [], shown
    assert (result["duplicate_orders"], result["lost_fills"], result["state_mismatches"]) == (0, 0, 0), shown
    assert result["double_acting_users"] == 0 and result["risk_resets"] == 0, shown
    assert result["admitted_sends"] >= result["orders"] - result["orders_by_status"].get("rejected", 0)


def test_bad_process_counts_are_refused():
    from xray_core.errors import ConfigError

    with pytest.raises(ConfigError, match="--processes"):
        LoadTestConfig(users=1, symbols=1, ticks=1, processes=0)
