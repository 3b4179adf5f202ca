"""`xray loadtest`: the result as one JSON object (--json) or a table."""

from __future__ import annotations

import json


def run_loadtest_command(*, users: int, symbols: int, ticks: int, faults: str | None,
                         database_url: str | None, redis_url: str | None, as_json: bool,
                         duplicate_ids: str = "dedupe", processes: int = 1, chaos: bool = False) -> None:
    import logging

    from xray_sim.loadtest import LoadTestConfig, run_loadtest

    logging.getLogger("xray_runtime").setLevel(logging.CRITICAL)  # the output is the result only
    check_options(database_url=database_url, redis_url=redis_url)  # the fault spec: LoadTestConfig
    config = LoadTestConfig(users=users, symbols=symbols, ticks=ticks, faults=faults,
                            database_url=database_url, redis_url=redis_url, duplicate_ids=duplicate_ids,
                            processes=processes, chaos=chaos)
    if not as_json:
        from xray_cli.console import out

        shape = f"{users} users x {symbols} symbols x {ticks} ticks" + (
            f" x {processes} processes" if processes > 1 else "") + (", chaos" if chaos else "")
        with out.status(f"load test: {shape}"):
            result = run_loadtest(config)
        from rich.table import Table

        table = Table("measure", "value", title="xray loadtest")
        for key, value in result.items():
            table.add_row(key, json.dumps(value))
        out.print(table)
        return
    print(json.dumps(run_loadtest(config)))


def check_options(*, database_url: str | None, redis_url: str | None) -> None:
    """Refuse malformed URLs before anything starts (an emulator process, a database schema)."""
    if database_url is not None:
        from xray_runtime.db import check_url

        check_url(database_url, "--database-url")
    if redis_url is not None:
        from xray_runtime.redis_conn import check_url as check_redis_url

        check_redis_url(redis_url, "--redis-url")
