"""Dagster config generated from the typed settings classes, so that no field is declared twice.

A resource built with `settings_resource(IngestSettings, QualitySettings)` has one config field per
settings field, with the same name, default and description, and a config type Dagster accepts
(settings tuples become lists, paths become strings, `SecretStr` becomes a string that is wired as a
`dg.EnvVar`). `to_settings` turns the config back into the frozen, validated settings object the
domain code takes; `from_settings` builds the resource from loaded settings, so the UI's launchpad
shows the values in use.
"""

import functools
import operator
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar, Union, get_args, get_origin

import dagster as dg
from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from xray_core.settings import load

S = TypeVar("S", bound=BaseSettings)


class SettingsResource(dg.ConfigurableResource):
    """A resource whose config fields mirror settings groups (see `settings_resource`)."""

    # settings field name -> config field name, where the config's name says more (`id` -> `exchange_id`)
    config_names: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_settings(cls, *groups: BaseSettings, **config: Any) -> Self:
        """The resource configured with `groups`' values; `config` sets fields of the resource's own."""
        values = {}
        for group in groups:
            prefix = str(type(group).model_config.get("env_prefix", ""))
            for name, field in type(group).model_fields.items():
                value = getattr(group, name)
                if _is_secret(field):
                    # Resolved at run time, never shown in the UI or run config. Dagster reads EnvVars
                    # from the process environment only, so a secret must be set there to be wired.
                    variable = f"{prefix}{name}".upper()
                    value = dg.EnvVar(variable) if os.environ.get(variable) else None
                values[cls.config_names.get(name, name)] = _config_value(value)
        return cls(**values | config)

    def to_settings(self, group: type[S]) -> S:
        """The settings object of `group` holding this resource's values (validated: bad launchpad
        config is a one-line ConfigError naming the variable)."""
        return load(
            group, **{name: getattr(self, self.config_names.get(name, name)) for name in group.model_fields}
        )


def settings_resource(
    *groups: type[BaseSettings], config_names: Mapping[str, str] | None = None
) -> type[SettingsResource]:
    """A SettingsResource base class with one config field per field of `groups`."""
    names = dict(config_names or {})
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"config_names": names}
    for group in groups:
        for name, field in group.model_fields.items():
            key = names.get(name, name)
            annotations[key] = _config_type(field.annotation)
            namespace[key] = _config_field(field)
    namespace["__annotations__"] = annotations
    title = "".join(group.__name__.removesuffix("Settings") for group in groups)
    return types.new_class(f"{title}Config", (SettingsResource,), exec_body=lambda ns: ns.update(namespace))


def _config_field(field: FieldInfo) -> Any:
    default = field.get_default(call_default_factory=True)
    if isinstance(default, tuple | list):
        return Field(default_factory=list, description=field.description)
    return Field(_config_value(default), description=field.description)


def _config_type(annotation: Any) -> Any:
    """The Dagster-config counterpart of a settings annotation."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _config_type(get_args(annotation)[0])
    if origin is tuple:
        return list[_config_type(get_args(annotation)[0])]  # type: ignore[misc]
    if origin in (Union, types.UnionType):
        return functools.reduce(operator.or_, (_config_type(arg) for arg in get_args(annotation)))
    if origin is Literal:
        return annotation
    if annotation in (SecretStr, Path):
        return str
    return annotation


def _config_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _is_secret(field: FieldInfo) -> bool:
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)
