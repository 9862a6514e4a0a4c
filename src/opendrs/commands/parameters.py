"""The `--param K=V` option of the audit commands: strategy parameters, each value
read as YAML (`5` is a number, `[a, b]` a list), refused with a usage error that
names the bad item."""

from __future__ import annotations

from typing import Any

import click


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """`K=V` strings as a mapping, each value parsed as YAML (`5` is a number)."""
    import yaml  # only when the option is used

    parameters: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected K=V, got {item!r}", param_hint="'--param'")
        try:
            parameters[key] = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            problem = str(error).splitlines()[0]
            raise click.BadParameter(
                f"{key}: value {raw!r} is not YAML ({problem})", param_hint="'--param'"
            ) from None
    return parameters


def _parsed(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, Any]:
    return parse_params(value)


PARAM_OPTION = click.option(
    "--param",
    "parameters",
    multiple=True,
    metavar="K=V",
    callback=_parsed,
    help="Strategy parameter, repeatable (values parsed as YAML).",
)
