"""Users of the trading runtime: API keys encrypted at rest, validated risk settings, one bad row never
stopping the others. Every store test runs on SQLite and on the real local PostgreSQL server."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from xray_core.errors import ConfigError
from xray_runtime.crypto import DecryptionError, KeyVault, generate_key
from xray_runtime.db import connect
from xray_runtime.users import (
    DuplicateUserError,
    NewUser,
    RiskSettings,
    UnknownUserError,
    UserStore,
    risk_settings,
    users_table,
)

API_KEY = "mx0vglTESTKEY7f3a9c"
API_SECRET = "c0ffee5ecret0123456789abcdefSECRET"
PG_ADMIN = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """The runtime's tables on SQLite in tmp_path, or on a Postgres database created for this test."""
    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'runtime.db'}")
        yield engine
        engine.dispose()
        return
    name = f"xray_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    server = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    engine = connect(f"{server}/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def vault() -> KeyVault:
    return KeyVault(generate_key())


@pytest.fixture
def store(engine: Engine, vault: KeyVault) -> UserStore:
    return UserStore(engine, vault)


def raw_rows(engine: Engine) -> list[dict[str, object]]:
    """The users table as plain SQL sees it."""
    with engine.connect() as con:
        return [dict(row._mapping) for row in con.execute(sa.text("SELECT * FROM users ORDER BY user_id"))]


def raw_update(engine: Engine, user_id: str, **values: object) -> None:
    """Write a row behind the store's back, as a hand edit or a corrupted backup would."""
    with engine.begin() as con:
        con.execute(users_table.update().where(users_table.c.user_id == user_id).values(**values))


# -- encryption at rest ------------------------------------------------------------------------------


def test_keys_are_encrypted_at_rest_and_the_vault_gives_them_back(store, engine, vault):
    store.add("alice", "Alice", API_KEY, API_SECRET)

    [row] = raw_rows(engine)
    stored = " ".join(str(value) for value in row.values())
    assert API_KEY not in stored and API_SECRET not in stored
    assert vault.decrypt(row["api_key_enc"]) == API_KEY
    assert vault.decrypt(row["api_secret_enc"]) == API_SECRET
    assert row["key_fingerprint"] == hashlib.sha256(API_KEY.encode()).hexdigest()[:8]


def test_credentials_come_only_from_credentials_and_hide_their_values(store):
    user = store.add("alice", "Alice", API_KEY, API_SECRET)
    assert API_KEY not in repr(user) and API_SECRET not in repr(user)

    credentials = store.credentials("alice")
    assert credentials.api_key.get_secret_value() == API_KEY
    assert credentials.api_secret.get_secret_value() == API_SECRET
    for shown in (repr(credentials), str(credentials)):
        assert API_KEY not in shown and API_SECRET not in shown
    assert credentials.key_fingerprint == user.key_fingerprint


def test_a_wrong_fernet_key_names_the_record_but_never_the_secret(store, engine):
    store.add("alice", "Alice", API_KEY, API_SECRET)
    other_key = generate_key()

    with pytest.raises(DecryptionError) as caught:
        UserStore(engine, KeyVault(other_key)).credentials("alice")
    message = str(caught.value)
    assert "user 'alice' api_key" in message and "XRAY_RUNTIME_FERNET_KEY" in message
    for secret in (API_KEY, API_SECRET, other_key):
        assert secret not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_key_rotation_reads_old_rows_and_reencrypts_them_under_the_new_key(engine):
    old, new = generate_key(), generate_key()
    UserStore(engine, KeyVault(old)).add("alice", "Alice", API_KEY, API_SECRET)

    rotating = UserStore(engine, KeyVault(f"{new}, {old}"))  # new first: it encrypts
    assert rotating.credentials("alice").api_secret.get_secret_value() == API_SECRET
    assert rotating.reencrypt() == (1, [])

    only_new = UserStore(engine, KeyVault(new))
    assert only_new.credentials("alice").api_key.get_secret_value() == API_KEY
    with pytest.raises(DecryptionError):
        UserStore(engine, KeyVault(old)).credentials("alice")


def test_a_missing_or_malformed_fernet_key_says_how_to_make_one():
    with pytest.raises(ConfigError, match=r"XRAY_RUNTIME_FERNET_KEY.*xray users keygen"):
        KeyVault(None)
    with pytest.raises(ConfigError, match="xray users keygen"):
        KeyVault(" , ")
    with pytest.raises(ConfigError) as caught:
        KeyVault(f"{generate_key()},not-a-fernet-key")
    assert "key 2 of 2" in str(caught.value) and "not-a-fernet-key" not in str(caught.value)
    assert "<1 key>" in repr(KeyVault(generate_key()))


def test_without_a_key_users_can_be_listed_and_disabled_but_not_added(store, engine):
    store.add("alice", "Alice", API_KEY, API_SECRET)
    keyless = UserStore(engine, None)

    assert keyless.disable("alice", "margin call").status == "disabled"
    assert [user.user_id for user in keyless.list()] == ["alice"]
    with pytest.raises(ConfigError, match="XRAY_RUNTIME_FERNET_KEY"):
        keyless.add("bob", "Bob", API_KEY, API_SECRET)


def test_no_log_line_carries_a_key_or_secret(store, caplog):
    caplog.set_level(logging.DEBUG)  # SQLAlchemy's statement and parameter logging included
    store.add("alice", "Alice", API_KEY, API_SECRET)
    store.add_many([NewUser("bob", "Bob", API_KEY + "b", API_SECRET + "b")])
    store.list()
    store.disable("alice", "asked to stop")
    store.load_active()
    store.credentials("bob")
    raw_update(store.engine, "bob", api_secret_enc="corrupt")
    store.load_active()

    assert "added user alice" in caplog.text and "user bob not loaded" in caplog.text
    assert API_KEY not in caplog.text and API_SECRET not in caplog.text


# -- validation ---------------------------------------------------------------------------------------


def test_a_duplicate_user_is_refused_by_id_and_nothing_changes(store, engine):
    store.add("alice", "Alice", API_KEY, API_SECRET)

    with pytest.raises(DuplicateUserError, match="user 'alice' already exists"):
        store.add("alice", "Alice again", API_KEY + "x", API_SECRET + "x")
    with pytest.raises(DuplicateUserError, match="'alice' already exists"):
        store.add_many([NewUser("carol", "Carol", "k", "s"), NewUser("alice", "A", "k", "s")])
    with pytest.raises(DuplicateUserError, match="given twice: 'dave'"):
        store.add_many([NewUser("dave", "Dave", "k", "s"), NewUser("dave", "Dave", "k", "s")])

    assert [(row["user_id"], row["account"]) for row in raw_rows(engine)] == [("alice", "Alice")]


def test_live_mode_needs_the_opt_in(store, engine):
    with pytest.raises(ConfigError, match="user 'alice': mode live needs live_opt_in"):
        store.add("alice", "Alice", API_KEY, API_SECRET, mode="live")
    assert raw_rows(engine) == []

    store.add("alice", "Alice", API_KEY, API_SECRET)
    with pytest.raises(ConfigError, match="live_opt_in"):
        store.set_mode("alice", "live")
    assert store.set_mode("alice", "live", live_opt_in=True).mode == "live"
    assert store.add("bob", "Bob", "k", "s", mode="live", live_opt_in=True).mode == "live"
    with pytest.raises(ConfigError, match="mode 'demo' is not one of paper, live"):
        store.set_mode("bob", "demo")


def test_the_database_itself_refuses_live_without_opt_in(store, engine):
    store.add("alice", "Alice", API_KEY, API_SECRET)
    with pytest.raises(sa.exc.IntegrityError):
        raw_update(engine, "alice", mode="live", live_opt_in=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trade_percentage", 0),
        ("trade_percentage", 1.5),
        ("leverage", 0.5),
        ("leverage", 21),
        ("margin_multiplier", 0.9),
        ("max_position_usd", 0),
        ("max_daily_loss", 1.5),
        ("max_drawdown", -0.1),
        ("max_drawdown", float("nan")),
        ("profile", "yolo"),
        ("stop_loss", 0.1),  # not a setting at all
    ],
)
def test_a_malformed_risk_value_is_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError) as caught:
        risk_settings({field: value})
    assert f"risk {field}:" in str(caught.value)


def test_risk_defaults_and_bounds():
    risk = RiskSettings()
    assert (risk.profile, risk.trade_percentage, risk.leverage, risk.margin_multiplier) == (
        "balanced",
        0.1,
        1,
        1.5,
    )
    assert (risk.max_position_usd, risk.max_daily_loss, risk.max_drawdown) == (1000, 0.05, 0.2)
    edge = risk_settings({"trade_percentage": 1, "leverage": 20, "profile": "aggressive"})
    assert edge.effective_leverage(spot=True) == 1 and edge.effective_leverage(spot=False) == 20


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"user_id": "has space"}, "user id 'has space' is not valid"),
        ({"account": " "}, "account must be 1-200 characters"),
        ({"api_key": "  "}, "user 'alice': api_key is empty"),
        ({"api_secret": ""}, "user 'alice': api_secret is empty"),
        ({"telegram_chat_id": "@me"}, "telegram_chat_id must be an integer"),
    ],
)
def test_a_malformed_user_is_refused_naming_the_field(store, engine, changes, message):
    new = {"user_id": "alice", "account": "Alice", "api_key": API_KEY, "api_secret": API_SECRET} | changes
    with pytest.raises(ConfigError, match=message):
        store.add_many([NewUser(**new)])
    assert raw_rows(engine) == []


# -- lifecycle and loading ----------------------------------------------------------------------------


def test_disable_records_the_reason_and_list_shows_it(store):
    added = store.add("alice", "Alice", API_KEY, API_SECRET, telegram_chat_id=-1001234567890)
    store.add("bob", "Bob", "k", "s")

    disabled = store.disable("alice", "exchange rejected the key")
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "exchange rejected the key")
    assert disabled.updated_at > added.updated_at and disabled.created_at == added.created_at
    assert [(u.user_id, u.disabled_reason) for u in store.list("disabled")] == [
        ("alice", "exchange rejected the key")
    ]
    assert [user.user_id for user in store.load_active()[0]] == ["bob"]

    enabled = store.enable("alice")
    assert (enabled.status, enabled.disabled_reason, enabled.telegram_chat_id) == (
        "active",
        None,
        -1001234567890,
    )
    with pytest.raises(ConfigError, match="needs a reason"):
        store.disable("alice", " ")
    with pytest.raises(UnknownUserError, match="no user 'zoe'"):
        store.disable("zoe", "gone")


def test_update_risk_changes_only_the_named_fields_and_keeps_bounds(store):
    store.add("alice", "Alice", API_KEY, API_SECRET, risk=risk_settings({"profile": "conservative"}))

    updated = store.update_risk("alice", {"max_position_usd": 250})
    assert (updated.risk.profile, updated.risk.max_position_usd) == ("conservative", 250)
    with pytest.raises(ConfigError, match="risk leverage"):
        store.update_risk("alice", {"leverage": 50})
    assert store.get("alice").risk.leverage == 1


def test_a_malformed_stored_row_is_reported_while_the_others_load(store, engine):
    for user_id in ("alice", "bob", "carol", "dave"):
        store.add(user_id, user_id.title(), f"{API_KEY}-{user_id}", f"{API_SECRET}-{user_id}")
    raw_update(engine, "bob", risk="{not json")
    raw_update(engine, "carol", api_secret_enc="gAAAAAB-corrupt")
    raw_update(engine, "dave", risk='{"profile": "balanced", "trade_percentage": 5}')

    users, problems = store.load_active()

    assert [user.user_id for user in users] == ["alice"]
    reasons = dict(problems)
    assert sorted(reasons) == ["bob", "carol", "dave"]
    assert "risk settings are malformed" in reasons["bob"]
    assert "user 'carol' api_secret" in reasons["carol"]
    assert "trade_percentage" in reasons["dave"]
    assert not any(API_SECRET in reason or API_KEY in reason for reason in reasons.values())
    # Reading without decrypting still shows carol; bob and dave are reported, not raised.
    listed, unreadable = store.scan()
    assert [user.user_id for user in listed] == ["alice", "carol"]
    assert sorted(problem.user_id for problem in unreadable) == ["bob", "dave"]


def test_load_active_credentials_pairs_each_user_with_its_keys(store):
    store.add("alice", "Alice", API_KEY, API_SECRET)
    store.add("bob", "Bob", "bob-key", "bob-secret")

    loaded, problems = store.load_active_credentials()
    assert problems == []
    assert [(u.user_id, c.api_key.get_secret_value()) for u, c in loaded] == [
        ("alice", API_KEY),
        ("bob", "bob-key"),
    ]


def test_add_many_stores_ten_thousand_users_in_one_call(store):
    """All 10,000 in one transaction (its speed: benchmarks/bench_bulk.py)."""
    users = [NewUser(f"user{i:05d}", f"User {i}", f"key-{i}", f"secret-{i}") for i in range(10_000)]
    assert store.add_many(users) == 10_000

    loaded, problems = store.load_active()
    assert len(loaded) == 10_000 and problems == []
    assert store.credentials("user09999").api_secret.get_secret_value() == "secret-9999"
