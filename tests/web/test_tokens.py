"""`xray users token`: a token printed once, stored only as its hash, bound to its user or the operator."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from xray_cli.main import app
from xray_core.errors import XrayError
from xray_runtime.api_tokens import Principal, resolve, revoke_user, tokens_table
from xray_runtime.crypto import KeyVault, generate_key
from xray_runtime.db import connect
from xray_runtime.users import UnknownUserError, UserStore


@pytest.fixture
def database_url(tmp_path, monkeypatch) -> str:
    for name in [name for name in os.environ if name.startswith("XRAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'runtime.db'}"
    monkeypatch.setenv("XRAY_RUNTIME_DATABASE_URL", url)
    UserStore(connect(url), KeyVault(generate_key())).add("alice", "Alice", "key-alice-01", "secret-alice-01")
    return url


def _token(*args: str) -> str:
    result = CliRunner().invoke(app, ["users", "token", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_a_user_token_is_printed_once_and_stored_hashed(database_url):
    token = _token("alice")
    engine = connect(database_url)
    assert resolve(engine, token) == Principal("alice", False)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(tokens_table)).all()
    assert len(stored) == 1 and token not in str(stored[0])  # only the sha256
    assert _token("alice") != token  # every call makes a new one
    assert resolve(engine, token[:-1]) is None and resolve(engine, "") is None
    assert revoke_user(engine, "alice") == 2 and resolve(engine, token) is None


def test_an_operator_token(database_url):
    assert resolve(connect(database_url), _token("--operator")) == Principal(None, True)


@pytest.mark.parametrize("args", [(), ("alice", "--operator")])
def test_a_user_or_the_operator_not_both_nor_neither(database_url, args):
    with pytest.raises(XrayError, match="give a user ID or --operator"):
        _token(*args)


def test_an_unknown_user_gets_no_token(database_url):
    with pytest.raises(UnknownUserError, match="no user 'bob'"):
        _token("bob")
