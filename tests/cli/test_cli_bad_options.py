"""Every `xray` command, with a malformed value for each of its options in turn: one line of error on
stderr, a non-zero exit, no traceback.

The commands and options are read from the typer app itself, so a new command or option is covered
without touching this file. Each run gets valid values for everything else (the command's required
arguments and options from `VALID`), so the malformed option is what the command has to refuse.
Nothing here reaches a network: the exchange URL points at a closed loopback port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer.main

from xray_cli.main import app

XRAY = str(Path(sys.executable).with_name("xray"))
CANDLES = Path(__file__).resolve().parents[1] / "data" / "candles" / "BTC_USDT-5m.parquet"
NOT_A_NUMBER = "not-a-number"
NOT_VALID = "%not valid%"  # no symbol, timeframe, id, key, URL, spec, host or kind looks like this
# Options whose value is free text (a display name, a reason): "%not valid%" is fine there, "" is not.
FREE_TEXT = {"--account", "--reason"}
STILL_RUNNING_S = 600

# Valid values for what a command requires, so that only the option under test is wrong. "{tmp}" is
# the test's directory.
VALID: dict[str, dict[str, str]] = {
    "backtest": {"--candles": str(CANDLES), "--strategy": "sma_cross"},
    "backtest-grid": {"--candles": str(CANDLES), "--strategy": "sma_cross"},
    "candles": {"symbol": "BTC/USDT", "--out": "{tmp}/out.parquet"},
    "indicators": {"--candles": str(CANDLES), "--out": "{tmp}/out.parquet"},
    "models promote": {"name": "gbm"},
    "models rollback": {"name": "gbm"},
    "users add": {"--id": "alice", "--api-key": "mx0vkey0000000001", "--api-secret": "0123456789abcdef"},
    "users disable": {"user_id": "alice", "--reason": "left"},
    "users enable": {"user_id": "alice"},
    "users paper-transfer": {"user_id": "alice", "--amount": "10"},
}


def commands() -> Iterator[tuple[str, Any]]:
    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield " ".join(path), command
            return
        for name, sub in sorted(subcommands.items()):
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


def malformed(param: Any, tmp: Path) -> str:
    """A value no parser of this option's type accepts."""
    annotation = param.type_descriptor.annotation
    if param.opts[0] in FREE_TEXT:
        return ""
    if annotation in (int, float):
        return NOT_A_NUMBER
    if annotation is Path:  # under a regular file: neither readable nor writable, not even for root
        return str(tmp / "a-file" / "x.parquet")
    return NOT_VALID


def cases() -> list[tuple[str, str]]:
    found = []
    for name, command in commands():
        for param in command.params:
            if param.param_type_name == "option" and not param.is_flag:
                found.append((name, param.opts[0]))
    return found


CASES = cases()


def argv(command_name: str, option: str, value: str, tmp: Path) -> list[str]:
    command = dict(commands())[command_name]
    valid = {k: v.replace("{tmp}", str(tmp)) for k, v in VALID.get(command_name, {}).items()}
    positional = [valid[p.name] for p in command.params if p.param_type_name == "argument"]
    options = [part for opt, v in valid.items() if opt.startswith("-") and opt != option for part in (opt, v)]
    return [*command_name.split(), *positional, *options, option, value]


def environment(tmp: Path, home: str = "home") -> dict[str, str]:
    from cryptography.fernet import Fernet

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("XRAY_", "MLFLOW_"))}
    return clean | {
        "XRAY_HOME": str(tmp / home),
        "XRAY_EXCHANGE_URL": "http://127.0.0.1:9",  # discard: nothing listens, nothing leaves
        "XRAY_EXCHANGE_MAX_RETRIES": "0",
        "XRAY_EXCHANGE_TIMEOUT_S": "2",
        "XRAY_RUNTIME_FERNET_KEY": Fernet.generate_key().decode(),
        "XRAY_RUNTIME_HTTP_PORT": "0",
        "COLUMNS": "200",
    }


def run_case(command_name: str, option: str, tmp: Path) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    param = next(p for p in dict(commands())[command_name].params if p.opts[0] == option)
    args = argv(command_name, option, malformed(param, tmp), tmp)
    env = environment(tmp, f"home-{command_name}-{option}".replace(" ", "-"))  # each run its own state
    try:
        # Not a speed limit: a command that took the value runs on (a server, the runtime) and is
        # stopped here, long after any refusal would have come.
        result = subprocess.run([XRAY, *args], env=env, cwd=tmp, capture_output=True, text=True,
                                timeout=STILL_RUNNING_S, check=False)
    except subprocess.TimeoutExpired as stopped:
        stderr = stopped.stderr.decode() if isinstance(stopped.stderr, bytes) else stopped.stderr or ""
        result = subprocess.CompletedProcess(args, 0, "", f"still running after {STILL_RUNNING_S}s: {stderr}")
    return args, result


def test_every_option_of_every_command_is_enumerated():
    names = {name for name, _ in CASES}
    assert {"loadtest", "exchange-sim", "users add", "backtest", "runtime"} <= names
    assert ("loadtest", "--faults") in CASES and ("users add", "--telegram-chat-id") in CASES


def test_a_malformed_value_of_any_option_is_one_line_of_error(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    with ThreadPoolExecutor(max_workers=2) as pool:  # the test machine has two cores
        results = list(pool.map(lambda case: run_case(*case, tmp_path), CASES))
    failures = []
    for args, result in results:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        if result.returncode == 0 or "Traceback" in result.stderr or len(lines) != 1:
            tail = result.stderr[-600:]
            failures.append(f"xray {' '.join(args)} -> exit {result.returncode}, stderr:\n{tail}")
        elif not lines[0].startswith("xray: error: "):
            failures.append(f"xray {' '.join(args)} -> {lines[0]}")
    assert not failures, f"{len(failures)} of {len(results)} runs:\n" + "\n".join(failures)


@pytest.mark.parametrize("args", [["loadtest", "--users", "-5"], ["exchange-sim", "--port", "70000"],
                                  ["loadtest", "--faults", "default"]])
def test_values_of_the_right_type_but_out_of_range_are_refused_too(tmp_path, args):
    result = subprocess.run([XRAY, *args], env=environment(tmp_path), cwd=tmp_path, capture_output=True,
                            text=True, timeout=240, check=False)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and "Traceback" not in result.stderr and len(lines) == 1, result.stderr


def test_the_command_lines_own_list_of_model_kinds_is_the_registrys():
    from xray_cli.models_cmd import MODEL_KINDS
    from xray_pipelines.mlops.registry import KINDS
    from xray_runtime.app import MODEL_KINDS as RUNTIME_KINDS

    assert MODEL_KINDS == KINDS == RUNTIME_KINDS
