"""Where studies live: Optuna's RDBStorage on SQLite (a file per machine) or PostgreSQL (production).

Why these settings:

* SQLite: the file's folder is created; `timeout` lets a second process wait for the write lock instead
  of failing with "database is locked".
* PostgreSQL (`postgresql+psycopg2://...`): `pool_pre_ping` survives connections the server or a proxy
  dropped while a long study ran; `pool_recycle` replaces connections before typical idle cut-offs.
* Heartbeats: a worker that dies leaves its trials RUNNING forever; with a heartbeat every
  `heartbeat_s`, `optuna.storages.fail_stale_trials` (called when a study is opened) marks trials silent
  for `3 x heartbeat_s` as FAIL, so a resumed study neither counts nor breeds from them. The study
  evaluates trials in batches outside `Study.optimize`, so `beating` keeps their heartbeats itself.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from xray_core.errors import ConfigError
from xray_core.redaction import scrub

SQLITE_TIMEOUT_S = 60
POOL_RECYCLE_S = 1800


def sqlite_url(path: Path) -> str:
    """The storage URL of a SQLite study file (the default outside production)."""
    return f"sqlite:///{path}"


def masked(url: str | None) -> str | None:
    """The URL without its password, fit for logs and results."""
    if url is None:
        return None
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable storage url>"


def open_storage(url: str, heartbeat_s: int) -> optuna.storages.RDBStorage:
    """An RDBStorage for `url` with the engine and heartbeat settings above; a ConfigError when the URL
    is malformed, its driver missing or the database unreachable."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"study storage URL {scrub(url)!r} is not a database URL",
                          "use sqlite:///path/to/studies.db or postgresql+psycopg2://user@host/db") from None
    backend = parsed.get_backend_name()
    engine_kwargs: dict[str, object]
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    elif backend == "postgresql":
        engine_kwargs = {"pool_pre_ping": True, "pool_recycle": POOL_RECYCLE_S}
    else:
        raise ConfigError(f"study storage {masked(url)} uses {backend}, which X-Ray does not support",
                          "use sqlite:///path.db or postgresql+psycopg2://...")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=heartbeat_s, grace_period=3 * heartbeat_s)
    except (SQLAlchemyError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"cannot open study storage {masked(url)}: {exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}",
                          "check that the database exists and is reachable") from None


def close_storage(storage: optuna.storages.RDBStorage | None) -> None:
    """Release the storage's connections (a held connection would block e.g. DROP DATABASE)."""
    if storage is not None:
        storage.remove_session()
        engine: sqlalchemy.Engine = storage.engine
        engine.dispose()


@contextmanager
def beating(storage: optuna.storages.RDBStorage | None, trial_ids: Sequence[int],
            interval_s: float) -> Iterator[None]:
    """Record the trials' heartbeats now and every `interval_s` until the block ends."""
    if storage is None or not trial_ids:
        yield
        return
    for trial_id in trial_ids:
        storage.record_heartbeat(trial_id)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval_s):
            for trial_id in trial_ids:
                storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name="xray-optimize-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
