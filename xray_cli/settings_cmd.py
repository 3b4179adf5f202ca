"""`xray settings env-example`: the settings reference (`.env.example`) rendered from the settings classes.

`main.py` imports this module at start-up, so it imports only typer; the settings classes are
imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

settings_app = typer.Typer(help="The typed settings (XRAY_* variables).", no_args_is_help=True)


@settings_app.command("env-example")
def env_example(
    output: Annotated[
        Path | None, typer.Option(help="Write here (e.g. .env.example) instead of to stdout")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Write nothing; exit 1 when --output differs from the rendered text")
    ] = False,
) -> None:
    """Every XRAY_* setting with its default and meaning, as a commented .env file."""
    from xray_cli.env_example import render
    from xray_core.errors import ConfigError

    text = render()
    if check:
        if output is None:
            raise ConfigError("--check needs --output", "e.g. --output .env.example --check")
        if not output.is_file() or output.read_text(encoding="utf-8") != text:
            raise ConfigError(f"{output} is out of date with the settings classes", "run `make env-example`")
        return
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--output {output}: cannot write it ({exc.strerror})",
                              "name a file in a directory that exists") from None
