"""A paper user needs no API key: added with `--no-api-key`, it trades on the built-in paper broker and
can never be switched to live or routed to a sandbox that would need a key."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from xray_cli.main import app
from xray_core.errors import ConfigError
from xray_runtime.crypto import KeyVault, generate_key
from xray_runtime.db import connect
from xray_runtime.exchange_pool import ExchangeAccount
from xray_runtime.roster import Roster
from xray_runtime.settings import RuntimeSettings
from xray_runtime.sharding import build_membership
from xray_runtime.users import NO_KEY, UserStore


@pytest.fixture
def env(tmp_path, monkeypatch):
    for name in [name for name in os.environ if name.startswith("XRAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url, key = f"sqlite:///{tmp_path / 'runtime.db'}", generate_key()
    monkeypatch.setenv("XRAY_RUNTIME_DATABASE_URL", url)
    monkeypatch.setenv("XRAY_RUNTIME_FERNET_KEY", key)
    return UserStore(connect(url), KeyVault(key)), url, key


def test_a_paper_user_is_added_without_a_key_and_never_prompted(env):
    store, _, _ = env
    done = CliRunner().invoke(app, ["users", "add", "--id", "pia", "--no-api-key"], input="")
    assert done.exit_code == 0, done.output
    assert "API key:" not in done.output and f"key fingerprint {NO_KEY}" in done.output
    user = store.get("pia")
    assert (user.mode, user.key_fingerprint) == ("paper", NO_KEY)
    assert store.credentials("pia").api_key.get_secret_value() == ""


EXTRA = [["--mode", "live", "--live-opt-in"], ["--api-key", "k", "--api-secret", "s"]]


@pytest.mark.parametrize("extra", EXTRA)
def test_no_api_key_is_for_paper_users_alone(env, extra):
    done = CliRunner().invoke(app, ["users", "add", "--id", "pia", "--no-api-key", *extra])
    assert done.exit_code != 0 and isinstance(done.exception, ConfigError)
    assert "--no-api-key" in str(done.exception)


def test_a_keyless_user_cannot_go_live_and_half_a_key_is_refused(env):
    store, _, _ = env
    store.add("pia", "Pia", "", "")
    with pytest.raises(ConfigError, match="no API key: live trading needs one"):
        store.set_mode("pia", "live", live_opt_in=True)
    with pytest.raises(ConfigError, match="api_secret is empty"):
        store.add("kim", "Kim", "a-key", "")
    with pytest.raises(ConfigError, match="api_key is empty"):
        store.add("lou", "Lou", "", "", mode="live", live_opt_in=True)


async def test_a_keyless_paper_user_trades_on_the_broker_and_never_on_a_sandbox(env):
    store, url, key = env
    store.add("pia", "Pia", "", "")
    for paper_url, trades in ((None, True), ("http://127.0.0.1:8765", False)):
        settings = RuntimeSettings(database_url=url, fernet_key=key, paper_url=paper_url)
        roster = Roster(store, build_membership(settings, None), settings, market_url=None)
        await roster.refresh(force=True)
        account = roster.accounts.get("pia")
        if trades:
            assert isinstance(account, ExchangeAccount) and account.paper_broker
        else:
            assert account is None
            [problem] = roster.problems
            assert "needs an API key" in problem.reason
