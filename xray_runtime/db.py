"""The runtime's relational store: users, the order journal, risk state and transfers, on SQLite
(embedded) or Postgres.

SQLAlchemy Core on a synchronous engine: the service calls it through `asyncio.to_thread` in batches
(one write per tick, not one per order), so the event loop never blocks on the database. Every table
is declared on `METADATA` by the module that owns it (users, orders, risk state) and created by
`connect`, with any index a newer version added to an existing table.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from xray_core.errors import ConfigError
from xray_core.redaction import describe, scrub

METADATA = sa.MetaData()


def check_url(url: str, name: str = "XRAY_RUNTIME_DATABASE_URL") -> sa.URL:
    """`url` parsed, or a ConfigError naming `name` (the setting or option it came from); the error
    never shows the URL's password."""
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        parsed = None
    if parsed is None or parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"{name} {scrub(url)!r} is not a SQLite or PostgreSQL URL",
            "use sqlite:///path/runtime.db or postgresql+psycopg://user@host:5432/db",
        )
    return parsed


def connect(url: str, create: bool = True) -> Engine:
    """An engine for `url` with the runtime's tables created (idempotently)."""
    parsed = check_url(url)
    if parsed.drivername == "postgresql":  # psycopg 3 is what we ship, not psycopg2's default
        parsed = parsed.set(drivername="postgresql+psycopg")
    options: dict[str, object] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        options["pool_pre_ping"] = False  # a file has no connection to lose; a ping per checkout costs
        options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if parsed.database:
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        sa.event.listen(engine, "connect", _sqlite_wal)
    if create:
        _import_tables()
        try:
            METADATA.create_all(engine)
        except sa.exc.SQLAlchemyError as exc:  # unreachable, refused login, no such database
            engine.dispose()
            raise ConfigError(
                f"cannot open the runtime database {scrub(url)}: {describe(exc)}",
                "check XRAY_RUNTIME_DATABASE_URL and that the database is up",
            ) from None
        _create_indexes(engine)
    return engine


def _sqlite_wal(dbapi_connection: object, _record: object) -> None:
    """Write-ahead logging: a commit is one append (and one fsync) to the log instead of rewriting
    pages through a rollback journal, and readers (the web, the pipelines' `live_fills`) never block
    the trading loop's writes. `synchronous=FULL` keeps every commit durable across power loss."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _create_indexes(engine: Engine) -> None:
    """Indexes declared since a table was created (`create_all` adds indexes only with new tables).
    Another process may create one at the same moment: that is fine, as long as it exists after."""
    for table in METADATA.sorted_tables:
        for index in table.indexes:
            try:
                index.create(engine, checkfirst=True)
            except sa.exc.DBAPIError:
                names = {i["name"] for i in sa.inspect(engine).get_indexes(table.name)}
                if index.name not in names:
                    raise


def _import_tables() -> None:
    """Import the modules that declare tables, so `create_all` knows every one."""
    import importlib

    for module in (
        "xray_runtime.users", "xray_runtime.journal", "xray_runtime.risk_store", "xray_runtime.api_tokens",
        "xray_runtime.equity_log", "xray_runtime.user_control", "xray_runtime.shadow",
        "xray_runtime.paper_store", "xray_runtime.bot.links", "xray_runtime.transfers",
        "xray_runtime.send_log",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
