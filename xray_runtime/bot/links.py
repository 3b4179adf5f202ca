"""One-time codes that link a Telegram chat to a user: `xray users link-code ID` prints one, the user
sends `/start CODE` to the bot, and from then on that chat is the user's (notifications, commands).

Only a code's SHA-256 is stored (`telegram_link_codes`), so reading the table does not give anyone a
working code. A code works once (the redeeming UPDATE claims it only while unused and unexpired, so
two chats racing for one code cannot both win) and expires after `ttl_s`. A chat belongs to one user:
linking it to another moves it, so no chat ever sees two users' data.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from xray_core.errors import XrayError
from xray_runtime.db import METADATA
from xray_runtime.users import UserStore, users_table

__all__ = ["LinkCodes", "LinkError", "link_table"]

# No 0/O, 1/I/L: a code is read off one screen and typed into another.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_LENGTH = 10  # 31**10 ≈ 8e14 codes: guessing one within its lifetime is hopeless

link_table = sa.Table(
    "telegram_link_codes", METADATA,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("used_ms", sa.BigInteger),  # NULL: not used yet
    sa.Column("chat_id", sa.BigInteger),  # the chat that used it
)


class LinkError(XrayError):
    """A code that does not link: unknown, used or expired (the message says which is not told)."""


def _hash(code: str) -> str:
    normal = "".join(code.split()).upper().replace("-", "")
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


class LinkCodes:
    def __init__(self, engine: Engine, ttl_s: float = 900.0) -> None:
        self.engine = engine
        self.ttl_s = ttl_s

    def issue(self, user_id: str, now_ms: int | None = None) -> str:
        """A fresh code for `user_id` (UnknownUserError if there is none), shown once, as XXXXX-XXXXX."""
        UserStore(self.engine, None).get(user_id)
        code = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        with self.engine.begin() as conn:
            conn.execute(link_table.insert().values(code_hash=_hash(code), user_id=user_id,
                                                    expires_ms=now_ms + int(self.ttl_s * 1000)))
            # Spent and expired codes are of no use to anyone: keep the table small.
            conn.execute(link_table.delete().where(link_table.c.expires_ms < now_ms - 86_400_000))
        return f"{code[:5]}-{code[5:]}"

    def redeem(self, code: str, chat_id: int, now_ms: int | None = None) -> str:
        """Link `chat_id` to the code's user and return the user id; LinkError when the code is
        unknown, used or expired (one message for all three: a guesser learns nothing)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        digest = _hash(code)
        with self.engine.begin() as conn:
            claimed = conn.execute(
                link_table.update()
                .where(link_table.c.code_hash == digest, link_table.c.used_ms.is_(None),
                       link_table.c.expires_ms > now_ms)
                .values(used_ms=now_ms, chat_id=chat_id)).rowcount
            if claimed != 1:
                raise LinkError("this link code is not valid (unknown, already used or expired)",
                                "ask your operator for a new one: xray users link-code ID")
            user_id = str(conn.execute(sa.select(link_table.c.user_id)
                                       .where(link_table.c.code_hash == digest)).scalar_one())
            users = users_table.c
            conn.execute(users_table.update().where(users.telegram_chat_id == chat_id,
                                                    users.user_id != user_id).values(telegram_chat_id=None))
            conn.execute(users_table.update().where(users.user_id == user_id)
                         .values(telegram_chat_id=chat_id))
        return user_id

    def user_of(self, chat_id: int) -> str | None:
        """The user this chat is linked to (None: no one)."""
        query = sa.select(users_table.c.user_id).where(users_table.c.telegram_chat_id == chat_id)
        with self.engine.connect() as conn:
            found = conn.execute(query.limit(2)).scalars().all()
        return found[0] if len(found) == 1 else None  # two: set by hand; show neither's data
