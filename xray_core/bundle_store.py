"""Where the promoted bundle is published and read: a URL every machine of a deployment reaches.

* `file:///abs/dir` or a plain path: the directory of `xray_core.bundle.publish` (the embedded
  default, `$XRAY_HOME/bundles`; one machine, or a shared filesystem).
* `postgresql+psycopg://user@host/db?table=xray_bundles`: one table in a Postgres database (the
  runtime's own, say) that the pipelines write and every runtime reads. `table` may be
  `schema.name`; the schema must exist, the table is created on first use.

The table is an append-only log (seq, version, body, published_at): publishing inserts one row in one
statement, so a reader sees the old current bundle or the new one, never a torn one; the current
bundle is the row with the highest seq. Re-publishing the current version inserts nothing (content
versioned, as in the directory); publishing an older version again (a rollback) appends it anew. A
reader polls the newest seq (one indexed row) and fetches the body only when it moved. The log keeps
what was promoted when, for audits.

The pipelines (publish) and the runtime (read) both use this module, so neither imports the other.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from xray_core.bundle import CURRENT, Bundle, publish, read
from xray_core.errors import ConfigError, DataError

_TABLE = re.compile(r"^(?:[a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$")
DEFAULT_TABLE = "xray_bundles"


@dataclass(frozen=True)
class Snapshot:
    """The current bundle as a store holds it: `stamp` changes whenever current may have changed."""

    stamp: Any
    data: dict[str, Any]


class BundleStore(Protocol):
    location: str  # for messages: never a password

    def publish(self, bundle: Bundle) -> tuple[str, bool]:
        """Make `bundle` current; returns (where it now is, whether current changed)."""
        ...

    def stamp(self) -> Any:
        """Cheap: a value that changes when current changes; None when nothing is published."""
        ...

    def current(self) -> Snapshot | None:
        """The current bundle's JSON (None: nothing published); DataError when it is unreadable."""
        ...


class DirectoryStore:
    """`current.json` in a directory (`xray_core.bundle.publish`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CURRENT
        self.location = str(self.path)

    def publish(self, bundle: Bundle) -> tuple[str, bool]:
        path, changed = publish(bundle, self.directory)
        return str(path), changed

    def stamp(self) -> Any:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def current(self) -> Snapshot | None:
        stamp = self.stamp()
        if stamp is None:
            return None
        return Snapshot(stamp, read(self.path))


class PostgresStore:
    """The bundle log in one Postgres table (see the module docstring)."""

    def __init__(self, url: str, table: str = DEFAULT_TABLE) -> None:
        import sqlalchemy as sa  # only a deployment that publishes to a database loads it

        if not _TABLE.match(table):
            raise ConfigError(f"bundle table {table!r} is not a table name",
                              "use letters, digits and _ (optionally schema.table), e.g. ?table=xray_bundles")
        schema, _, name = table.rpartition(".")
        # The runtime polls between ticks, on its event loop: a database that does not answer must
        # cost seconds, not the TCP timeout (the watcher then reports it and keeps the last bundle).
        self.engine = sa.create_engine(
            url, pool_pre_ping=True, pool_size=1, max_overflow=1,
            connect_args={"connect_timeout": 5, "options": "-c statement_timeout=5000"},
        )
        self.location = f"{self.engine.url.render_as_string(hide_password=True)} table {table}"
        metadata = sa.MetaData(schema=schema or None)
        self.table = sa.Table(
            name, metadata,
            sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("version", sa.String(64), nullable=False),
            sa.Column("body", sa.Text, nullable=False),
            sa.Column("published_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                      nullable=False),
        )
        self._sa = sa
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            # IntegrityError: another process created it between the check and the CREATE
            with contextlib.suppress(self._sa.exc.IntegrityError):
                self.table.metadata.create_all(self.engine, checkfirst=True)
            self._ready = True

    def publish(self, bundle: Bundle) -> tuple[str, bool]:
        sa = self._sa
        self._ensure()
        with self.engine.begin() as con:
            # One publisher at a time per table: the check below and the insert are one decision.
            con.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": self.location})
            newest = con.execute(
                sa.select(self.table.c.version).order_by(self.table.c.seq.desc()).limit(1)
            ).scalar()
            if newest == bundle.version:
                return self.location, False
            con.execute(self.table.insert().values(version=bundle.version, body=bundle.to_json()))
        return self.location, True

    def stamp(self) -> Any:
        sa = self._sa
        self._ensure()
        with self.engine.connect() as con:
            return con.execute(sa.select(sa.func.max(self.table.c.seq))).scalar()

    def current(self) -> Snapshot | None:
        sa = self._sa
        self._ensure()
        with self.engine.connect() as con:
            row = con.execute(
                sa.select(self.table.c.seq, self.table.c.body).order_by(self.table.c.seq.desc()).limit(1)
            ).first()
        if row is None:
            return None
        try:
            data = json.loads(row.body)
        except json.JSONDecodeError as exc:
            raise DataError(f"bundle {row.seq} in {self.location} is not valid JSON ({exc.msg})",
                            "publish it again") from None
        if not isinstance(data, dict):
            raise DataError(f"bundle {row.seq} in {self.location} is not a JSON object", "publish it again")
        return Snapshot(row.seq, data)


def open_store(url: str | None, default_dir: Path) -> BundleStore:
    """The store at `url` (see the module docstring); unset or blank: the directory `default_dir`."""
    if not url or not url.strip():
        return DirectoryStore(default_dir)
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme == "file":
        return DirectoryStore(Path(unquote(parts.path)))
    if scheme in ("postgresql", "postgres"):
        query = [p for p in parts.query.split("&") if p]
        tables = [p.split("=", 1)[1] for p in query if p.startswith("table=")]
        rest = "&".join(p for p in query if not p.startswith("table="))
        bare = parts._replace(query=rest).geturl()
        bare = bare.replace("postgres://", "postgresql://", 1)
        return PostgresStore(bare, tables[0] if tables else DEFAULT_TABLE)
    if not parts.scheme:
        return DirectoryStore(Path(url))
    raise ConfigError(f"bundle URL scheme {parts.scheme!r} is not supported",
                      "use file:///dir or postgresql+psycopg://user@host/db?table=xray_bundles")
