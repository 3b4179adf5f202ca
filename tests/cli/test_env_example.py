"""`.env.example` and the README's settings table agree with the settings classes, so neither drifts."""

from __future__ import annotations

import importlib
import math
import os
import re
from pathlib import Path

import pytest

from xray_cli.env_example import MIRRORS, SETTINGS_GROUPS, render, settings_classes, shown_default, variables

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate it with `make env-example` (or `xray settings env-example --output .env.example`)"
# XRAY_* variables that are not product settings: read by Dagster's YAML, the tests and scripts.
NOT_SETTINGS = {"XRAY_DAGSTER_PG_URL", "XRAY_TEST_PG_URL", "XRAY_TEST_PG_DB"}


def test_env_example_is_what_the_settings_classes_render():
    committed = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert committed == render(), f".env.example is out of date with the settings classes: {REGENERATE}"


def test_every_settings_class_of_the_product_is_listed():
    declared = set()
    for package in ("xray_core", "xray_pipelines", "xray_runtime", "xray_cli", "xray_sim"):
        for path in (ROOT / package).rglob("*.py"):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for name in re.findall(r"^class (\w+)\([^)]*\bBaseSettings\b", path.read_text(), re.MULTILINE):
                declared.add((module, name))
    assert declared, "found no settings class at all: the scan is broken"
    missing = declared - set(SETTINGS_GROUPS) - set(MIRRORS)
    assert not missing, f"add {sorted(missing)} to xray_cli.env_example.SETTINGS_GROUPS, then {REGENERATE}"
    listed = set(variables())
    for module, name in MIRRORS:
        mirror = getattr(importlib.import_module(module), name)
        assert set(variables([mirror])) <= listed, f"{name} reads a variable no listed class has"


def test_every_variable_is_in_the_file_and_secrets_are_empty():
    text = render()
    assigned = dict(re.findall(r"^# (XRAY_\w+)=(.*)$", text, re.MULTILINE))
    assert set(assigned) == set(variables())
    secrets = {
        "XRAY_EXCHANGE_API_KEY",
        "XRAY_EXCHANGE_API_SECRET",
        "XRAY_RUNTIME_FERNET_KEY",
        "XRAY_TELEGRAM_BOT_TOKEN",
    }
    assert all(assigned[name] == "" for name in secrets)
    assert assigned["XRAY_EXCHANGE_ID"] == "mexc"
    assert "$XRAY_HOME/runtime.db" in text  # a computed default is described, not machine-specific
    assert str(Path.cwd()) not in text


def test_uncommented_lines_load_back_to_the_defaults(monkeypatch, tmp_path):
    """Every value the file shows parses to the class's own default (so uncommenting changes nothing)."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith("XRAY_"):
            monkeypatch.delenv(name)
    classes = settings_classes()
    defaults = {cls: cls().model_dump() for cls in classes}
    for name, value in re.findall(r"^# (XRAY_\w+)=(.+)$", render(), re.MULTILINE):
        monkeypatch.setenv(name, value)
    for cls in classes:
        assert cls().model_dump() == defaults[cls], cls.__name__


def test_a_computed_default_without_its_text_is_refused():
    from pydantic import Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Odd(BaseSettings):
        """Odd."""

        model_config = SettingsConfigDict(env_prefix="XRAY_ODD_")
        path: str = Field(default_factory=lambda: "/somewhere", description="a path")

    with pytest.raises(ValueError, match="env_default"):
        render([Odd])


def _readme_table() -> dict[str, str]:
    """README 'Settings' table: variable -> its default cell; `A_B_X` / `_Y` rows expand to A_B_Y."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Settings\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Z_][A-Z0-9_]*)`", cells[0])
        full = [n for n in names if not n.startswith("_")]
        for name in names:
            if name.startswith("_"):  # shorthand: the first variable with its last word replaced
                name = full[0].rsplit("_", 1)[0] + name
            rows[name] = cells[1] if len(names) == 1 else ""
    return rows


def test_readme_table_names_exactly_the_settings():
    table = _readme_table()
    documented = {name for name in table if name.startswith("XRAY_")} - NOT_SETTINGS
    known = set(variables())
    assert not documented - known, f"the README names settings that do not exist: {documented - known}"
    assert not known - documented, f"add to the README's settings table: {sorted(known - documented)}"


def test_readme_defaults_match_the_settings():
    """A row with one variable and a plain default (`value`) shows the class's default; a row saying
    'unset' belongs to a field without one (what unset means is the README's to explain)."""
    table = _readme_table()
    checked = 0
    for name, (cls, field) in variables().items():
        cell = table.get(name, "")
        value, _ = shown_default(cls, field, cls.model_fields[field])
        if cell.startswith("unset"):
            assert value == "", f"README says {name} is unset by default, the class says {value!r}"
        match = re.fullmatch(r"`([^`]*)`", cell)
        if match and value:
            assert _same(match.group(1), value), f"README: {name} defaults to {cell}, the class: {value!r}"
            checked += 1
    assert checked >= 40


def _same(readme: str, value: str) -> bool:
    aliases = {"0": "false", "1": "true"}
    if readme == value or aliases.get(readme) == value:
        return True
    try:
        return math.isclose(float(readme), float(value))
    except ValueError:
        return False


def test_the_command_prints_writes_and_checks(tmp_path):
    import subprocess
    import sys

    def xray(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "xray_cli.main", "settings", "env-example", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    printed = xray()
    assert printed.returncode == 0 and printed.stdout == render()
    target = tmp_path / "env.example"
    assert xray("--output", str(target)).returncode == 0
    assert target.read_text(encoding="utf-8") == render()
    assert xray("--output", str(target), "--check").returncode == 0
    target.write_text(render().replace("XRAY_EXCHANGE_ID=mexc", "XRAY_EXCHANGE_ID=binance"), encoding="utf-8")
    stale = xray("--output", str(target), "--check")
    assert stale.returncode != 0 and "Traceback" not in stale.stderr
    assert "out of date" in stale.stderr and "make env-example" in stale.stderr
