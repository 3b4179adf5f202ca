"""Bearer tokens of the web dashboard and REST API (`xray web`), kept in the runtime's SQL.

A token is shown once, when `issue` makes it; only its sha256 is stored, so a copy of the database
does not let anyone in. A token is a user's (reads only that user's data) or an operator's (reads
the operator pages and no user's account). 32 random bytes: guessing one is hopeless, so a plain
hash (not a slow password hash) is enough, and it keeps a look-up to one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from xray_runtime.db import METADATA

PREFIX = "xr_"  # tells a dashboard token apart from an exchange key in a paste

tokens_table = sa.Table(
    "api_tokens", METADATA,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64)),  # NULL: an operator token
    sa.Column("operator", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("operator OR user_id IS NOT NULL", name="ck_api_tokens_owner"),
)


@dataclass(frozen=True)
class Principal:
    """Who a token belongs to: one user, or the operator (user_id None)."""

    user_id: str | None
    operator: bool


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(engine: Engine, user_id: str | None, *, operator: bool = False) -> str:
    """A new token for `user_id` (or the operator); the caller shows it once, it is never stored."""
    if not operator and not user_id:
        raise ValueError("a user token needs a user id")
    token = PREFIX + secrets.token_urlsafe(32)
    row = {"token_hash": _digest(token), "user_id": None if operator else user_id, "operator": operator,
           "created_at": datetime.now(UTC)}
    with engine.begin() as conn:
        conn.execute(tokens_table.insert().values(row))
    return token


def resolve(engine: Engine, token: str) -> Principal | None:
    """The owner of `token`, or None for a token never issued (or revoked)."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    query = sa.select(tokens_table.c.user_id, tokens_table.c.operator).where(
        tokens_table.c.token_hash == _digest(token))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else Principal(row.user_id, bool(row.operator))


def revoke_user(engine: Engine, user_id: str) -> int:
    """Remove every token of `user_id`; returns how many."""
    with engine.begin() as conn:
        return conn.execute(tokens_table.delete().where(tokens_table.c.user_id == user_id)).rowcount
