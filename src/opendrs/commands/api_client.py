"""What the API commands (plans, audits, evacuations) share: one call with an optional JSON
body, an API refusal told apart from an unreachable API, and output that reads
well both in a terminal and through a pipe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import click
import httpx
from rich.console import Console

# Piped output (grep, CI logs) gets one line per table row, not rows wrapped at 80.
PIPE_WIDTH = 240

DEFAULT_API = "http://127.0.0.1:8600"
API = click.option(
    "--api",
    envvar="OPENDRS_API",
    default=DEFAULT_API,
    show_default=True,
    help="base URL of the opendrs API (or $OPENDRS_API)",
)

JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print the API's answer as JSON."
)


class ApiProblem(click.ClickException):
    """The API could not be reached or said no; exits 1 with its message."""


class ApiRefusal(ApiProblem):
    """The API answered, with an error status: the request was wrong, not the line."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def call(client: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    """One API call with an optional JSON body; an unreachable API is an ApiProblem,
    an error reply an ApiRefusal with the API's own message."""
    try:
        reply = client.request(method, path, json=body)
    except httpx.HTTPError as error:
        raise ApiProblem(f"cannot reach the API at {client.base_url}: {error}") from error
    if reply.status_code >= 400:
        raise ApiRefusal(
            f"{method} {path}: {reply.status_code} {_detail(reply)}", reply.status_code
        )
    return reply.json()


def _detail(reply: httpx.Response) -> str:
    try:
        message = reply.json().get("error", {}).get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or reply.text)


def segment(name: str) -> str:
    """`name` as one URL path segment (an instance name may hold `/` or spaces)."""
    return quote(name, safe="")


def output() -> Console:
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def when(seconds: float | None) -> str:
    """An API timestamp as UTC, `-` when there is none."""
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
