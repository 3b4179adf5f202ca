"""`.env.example`, rendered from the typed settings classes so that it cannot drift from them.

Every field of every settings group becomes one commented-out `VARIABLE=default` line under a comment
with its meaning. All lines stay commented: a copied `.env` then changes nothing until a line is
uncommented, and a default that moves in code is not pinned by a stale copy. Unset defaults and
secrets have an empty value; a default computed at start-up (from `$XRAY_HOME`) is shown as the
field's `env_default` text, since its value depends on the machine that renders it.

`tests/cli/test_env_example.py` renders the file again and compares it with the committed one;
`make env-example` (or `xray settings env-example --output .env.example`) regenerates it.
"""

from __future__ import annotations

import importlib
import types
import typing
from collections.abc import Iterable, Sequence
from enum import Enum
from pathlib import PurePath

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

# Every pydantic-settings class of the product, in the order the file lists them (module, class).
# The test finds each `class ...(BaseSettings)` in the sources and fails when one is missing here.
SETTINGS_GROUPS: tuple[tuple[str, str], ...] = (
    ("xray_core.settings", "ExchangeSettings"),
    ("xray_core.settings", "StoreSettings"),
    ("xray_core.settings", "IngestSettings"),
    ("xray_core.settings", "QualitySettings"),
    ("xray_core.settings", "ResearchSettings"),
    ("xray_core.settings", "ModelSettings"),
    ("xray_pipelines.executor", "ExecutorSettings"),
    ("xray_runtime.settings", "RuntimeSettings"),
    ("xray_runtime.settings", "TelegramSettings"),
)
# Classes that read variables another group already lists (the pipelines reading the runtime's
# database URL without importing the runtime): not listed twice, but each variable must be listed.
MIRRORS: tuple[tuple[str, str], ...] = (
    ("xray_core.settings", "JournalSettings"),
    ("xray_core.settings", "BundleSettings"),
)

HEADER = """\
# X-Ray settings: every variable the typed settings classes read, with its default and meaning.
# GENERATED from the settings classes; do not edit by hand. Regenerate with `make env-example`
# (or `xray settings env-example --output .env.example`).
# Copy to `.env` (read from the working directory) and uncomment what you change; the environment
# wins over `.env`. An empty value means unset; secrets are never written here.
"""


def settings_classes() -> list[type[BaseSettings]]:
    return [getattr(importlib.import_module(module), name) for module, name in SETTINGS_GROUPS]


def variable_name(settings_cls: type[BaseSettings], field: str) -> str:
    return f"{settings_cls.model_config.get('env_prefix', '')}{field}".upper()


def variables(
    classes: Iterable[type[BaseSettings]] | None = None,
) -> dict[str, tuple[type[BaseSettings], str]]:
    """Every environment variable of `classes` (default: all groups) -> (its class, its field)."""
    found: dict[str, tuple[type[BaseSettings], str]] = {}
    for settings_cls in settings_classes() if classes is None else classes:
        for field in settings_cls.model_fields:
            found[variable_name(settings_cls, field)] = (settings_cls, field)
    return found


def is_secret(info: FieldInfo) -> bool:
    return SecretStr in _leaf_types(info.annotation)


def shown_default(settings_cls: type[BaseSettings], name: str, info: FieldInfo) -> tuple[str, str]:
    """(value written after `=`, text for the comment) of a field's default."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if info.default_factory is not None:
        text = extra.get("env_default")
        if not isinstance(text, str):
            raise ValueError(
                f"{settings_cls.__name__}.{name} has a computed default: give the field "
                "json_schema_extra={'env_default': '<what it is>'} so .env.example can say it"
            )
        return "", text
    if is_secret(info):
        return "", "unset (secret)"
    value = format_value(info.default)
    return value, value if value else "unset"


def format_value(value: object) -> str:
    """A default as the environment spells it (what pydantic-settings parses back to the same value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, tuple | list | frozenset | set):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, PurePath | str | int | float):
        return str(value)
    raise ValueError(f"cannot write a default of type {type(value).__name__} to .env.example")


def render(classes: Sequence[type[BaseSettings]] | None = None) -> str:
    """The text of `.env.example`."""
    lines = [HEADER]
    for settings_cls in settings_classes() if classes is None else classes:
        doc = (settings_cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"# ---- {settings_cls.__name__} ({settings_cls.__module__}): {doc}")
        lines.append("")
        for name, info in settings_cls.model_fields.items():
            if not info.description:
                raise ValueError(f"{settings_cls.__name__}.{name} has no description: say what it means")
            value, default_text = shown_default(settings_cls, name, info)
            choices = _choices(info)
            meaning = info.description + (f" (one of: {', '.join(choices)})" if choices else "")
            lines.append(f"# {meaning}")
            lines.append(f"# default: {default_text}")
            lines.append(f"# {variable_name(settings_cls, name)}={value}")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _choices(info: FieldInfo) -> list[str]:
    for leaf in _leaf_types(info.annotation, keep_literals=True):
        if typing.get_origin(leaf) is typing.Literal:
            return [str(v) for v in typing.get_args(leaf)]
    return []


def _leaf_types(annotation: object, *, keep_literals: bool = False) -> list[object]:
    """The types inside Optional/Union/Annotated (Literal kept whole when asked)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaf_types(typing.get_args(annotation)[0], keep_literals=keep_literals)
    if origin is typing.Literal:
        return [annotation] if keep_literals else []
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(annotation)
        return [leaf for arg in args for leaf in _leaf_types(arg, keep_literals=keep_literals)]
    return [annotation]
