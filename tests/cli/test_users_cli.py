"""`xray users` as an operator uses it: keys go in (typed or prompted) and never come out; errors are
one line. In-process (CliRunner) on SQLite and Postgres; a real `xray` process where the exit and
the stderr line are the point."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from xray_cli.main import app
from xray_runtime.crypto import KeyVault, generate_key
from xray_runtime.db import connect
from xray_runtime.users import UserStore, fingerprint, users_table

XRAY = str(Path(sys.executable).with_name("xray"))
PG_ADMIN = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
API_KEY = "mx0vglCLIKEY51d2e8"
API_SECRET = "5ecretCLI0123456789abcdefSECRET"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runtime.db'}"
        return
    name = f"xray_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def env(database_url, tmp_path, monkeypatch) -> dict[str, str]:
    """A clean XRAY_* environment (in this process, and as a dict for `xray` subprocesses)."""
    for name in [name for name in os.environ if name.startswith("XRAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    values = {
        "XRAY_HOME": str(tmp_path / "home"),
        "XRAY_RUNTIME_DATABASE_URL": database_url,
        "XRAY_RUNTIME_FERNET_KEY": generate_key(),
        "COLUMNS": "200",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def store(env: dict[str, str]) -> UserStore:
    return UserStore(connect(env["XRAY_RUNTIME_DATABASE_URL"]), KeyVault(env["XRAY_RUNTIME_FERNET_KEY"]))


def add_alice(*extra: str) -> str:
    code, output = invoke(
        "users", "add", "--id", "alice", "--api-key", API_KEY, "--api-secret", API_SECRET, *extra
    )
    assert code == 0, output
    return output


def test_add_then_list_shows_the_fingerprint_never_the_key(env):
    added = add_alice("--account", "Alice A.", "--profile", "conservative", "--trade-percentage", "0.05")
    assert f"added user alice (mexc, paper, key fingerprint {fingerprint(API_KEY)})" in added

    code, table = invoke("users", "list")
    assert code == 0 and "alice" in table and "Alice A." in table and "conservative" in table
    assert fingerprint(API_KEY) in table

    code, output = invoke("users", "list", "--json")
    [user] = json.loads(output)
    assert user["key_fingerprint"] == fingerprint(API_KEY)
    assert (user["risk"]["profile"], user["risk"]["trade_percentage"]) == ("conservative", 0.05)
    assert user["risk"]["max_position_usd"] == 1000  # not given: RiskSettings' default
    assert not {"api_key", "api_secret", "api_key_enc", "api_secret_enc"} & set(user)
    assert store(env).credentials("alice").api_secret.get_secret_value() == API_SECRET


def test_without_the_options_key_and_secret_are_prompted_with_hidden_input(env):
    code, output = invoke("users", "add", "--id", "bob", stdin=f"{API_KEY}\n{API_SECRET}\n")

    assert code == 0, output
    assert "API key:" in output and "API secret:" in output
    assert API_KEY not in output and API_SECRET not in output
    credentials = store(env).credentials("bob")
    assert credentials.api_key.get_secret_value() == API_KEY
    assert credentials.api_secret.get_secret_value() == API_SECRET


def test_no_key_or_secret_reaches_the_output_or_the_logs(env, caplog):
    caplog.set_level(logging.DEBUG)
    outputs = [
        add_alice("--telegram-chat-id", "12345"),
        invoke("users", "list")[1],
        invoke("users", "list", "--json")[1],
        invoke("users", "disable", "alice", "--reason", "key leaked?")[1],
        invoke("users", "enable", "alice")[1],
    ]
    seen = "\n".join(outputs) + caplog.text
    assert "added user alice" in caplog.text  # the log was captured
    assert API_KEY not in seen and API_SECRET not in seen


def test_disable_records_the_reason_and_list_shows_it_without_the_fernet_key(env, monkeypatch):
    add_alice()
    invoke("users", "add", "--id", "bob", "--api-key", "k2", "--api-secret", "s2")
    monkeypatch.delenv("XRAY_RUNTIME_FERNET_KEY")  # an operator can disable without holding it

    code, output = invoke("users", "disable", "alice", "--reason", "exchange rejected [the] key")
    assert code == 0 and "disabled user alice: exchange rejected [the] key" in output
    code, output = invoke("users", "list", "--status", "disabled", "--json")
    assert [(u["user_id"], u["status"], u["disabled_reason"]) for u in json.loads(output)] == [
        ("alice", "disabled", "exchange rejected [the] key")
    ]
    assert "exchange rejected [the] key" in invoke("users", "list")[1]

    assert "enabled user alice" in invoke("users", "enable", "alice")[1]
    assert json.loads(invoke("users", "list", "--status", "disabled", "--json")[1]) == []


def test_list_reports_an_unreadable_row_and_shows_the_others(env):
    add_alice()
    invoke("users", "add", "--id", "bob", "--api-key", "k2", "--api-secret", "s2")
    with connect(env["XRAY_RUNTIME_DATABASE_URL"]).begin() as con:
        con.execute(users_table.update().where(users_table.c.user_id == "bob").values(risk="[1, 2"))

    code, output = invoke("users", "list")
    assert code == 0
    assert "alice" in output and "user bob cannot be read: stored risk settings are malformed" in output


def test_users_is_a_lazy_subcommand():
    probe = "import sys, xray_cli.main; print(sorted(m for m in sys.modules if m.startswith('xray_runtime')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    code, output = invoke("--help")
    assert code == 0 and "users" in output


def test_keygen_prints_a_fresh_fernet_key_and_nothing_else():
    keys = [
        subprocess.run([XRAY, "users", "keygen"], capture_output=True, text=True, check=True) for _ in "ab"
    ]
    assert [key.stdout.count("\n") for key in keys] == [1, 1] and keys[0].stdout != keys[1].stdout
    vault = KeyVault(keys[0].stdout.strip())
    assert vault.decrypt(vault.encrypt("round trip")) == "round trip"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "unset_key", "fragments"),
    [
        (["--id", "alice"], False, ["user 'alice' already exists"]),
        (
            ["--id", "eve", "--mode", "live"],
            False,
            ["user 'eve': mode live needs live_opt_in", "--live-opt-in"],
        ),
        (
            ["--id", "eve", "--trade-percentage", "2"],
            False,
            ["risk trade_percentage", "less than or equal to 1"],
        ),
        (["--id", "eve", "--profile", "yolo"], False, ["risk profile", "conservative, balanced, aggressive"]),
        (["--id", "eve"], True, ["XRAY_RUNTIME_FERNET_KEY is not set", "xray users keygen"]),
    ],
    ids=["duplicate", "live-without-opt-in", "trade-percentage", "profile", "no-fernet-key"],
)
def test_a_refused_add_is_one_line_naming_the_problem(env, args, unset_key, fragments):
    add_alice()
    if unset_key:
        env = {name: value for name, value in env.items() if name != "XRAY_RUNTIME_FERNET_KEY"}
    secret_args = ["--api-key", API_KEY, "--api-secret", API_SECRET]
    result = subprocess.run(
        [XRAY, "users", "add", *args, *secret_args], env=env, capture_output=True, text=True, check=False
    )

    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("xray: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert API_KEY not in result.stderr + result.stdout and API_SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unknown_user_is_one_line(env):
    result = subprocess.run(
        [XRAY, "users", "disable", "zoe", "--reason", "gone"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "xray: error: no user 'zoe' — see the ids with `xray users list`"
