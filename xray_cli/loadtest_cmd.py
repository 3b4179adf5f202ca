"""`xray loadtest`: the result as one JSON object (--json) or a table."""

from __future__ import annotations

import json


def run_loadtest_command(*, users: int, symbols: int, ticks: int, faults: str | None,
                         database_url: str | None, redis_url: str | None, as_json: bool,
                         duplicate_ids: str = "dedupe") -> None:
    import logging

    from xray_sim.loadtest import LoadTestConfig, run_loadtest

    logging.getLogger("xray_runtime").setLevel(logging.CRITICAL)  # the output is the result only
    config = LoadTestConfig(users=users, symbols=symbols, ticks=ticks, faults=faults,
                            database_url=database_url, redis_url=redis_url, duplicate_ids=duplicate_ids)
    if not as_json:
        from xray_cli.console import out

        with out.status(f"load test: {users} users x {symbols} symbols x {ticks} ticks"):
            result = run_loadtest(config)
        from rich.table import Table

        table = Table("measure", "value", title="xray loadtest")
        for key, value in result.items():
            table.add_row(key, json.dumps(value))
        out.print(table)
        return
    print(json.dumps(run_loadtest(config)))
