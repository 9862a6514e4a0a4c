"""`opendrs evacuations list|clear`: the evacuation marks of a running server (which
instance a maintenance evacuation moved off which host) through its API
(`GET /v1/evacuations`, `DELETE /v1/evacuations/{instance}`)."""

from __future__ import annotations

import sys
from urllib.parse import urlencode

import click
import httpx
from rich import box
from rich.console import Console
from rich.table import Table

from opendrs.commands.api_client import (
    API,
    JSON_OPTION,
    ApiRefusal,
    call,
    echo_json,
    output,
    segment,
    when,
)


def _client(api: str) -> httpx.Client:
    return httpx.Client(base_url=api, timeout=10.0)


@click.group(name="evacuations")
def evacuations() -> None:
    """Evacuation marks: which instances host maintenance moved off which host."""


@evacuations.command(name="list")
@API
@click.option("--host", default=None, help="Only the instances evacuated from this host.")
@JSON_OPTION
def list_command(api: str, host: str | None, as_json: bool) -> None:
    """The marks, by instance: `host_return` brings these instances home."""
    query = f"?{urlencode({'host': host})}" if host is not None else ""
    with _client(api) as client:
        marks = call(client, "GET", f"/v1/evacuations{query}")
    if as_json:
        echo_json(marks)
        return
    console = output()
    if not marks:
        console.print(f"no instance evacuated from {host}" if host else "no evacuation marks")
        return
    # The audit id never wraps (it is copied into `opendrs audit show`); the plan
    # id is in --json.
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("instance")
    table.add_column("evacuated from")
    table.add_column("at", no_wrap=True)
    table.add_column("audit", no_wrap=True)
    for mark in marks:
        table.add_row(mark["instance"], mark["host"], when(mark["at"]), mark["audit_id"])
    console.print(table)


@evacuations.command(name="clear")
@API
@click.argument("instances", metavar="INSTANCE...", nargs=-1, required=True)
@click.option("--host", default=None, help="Clear a mark only if it names this host.")
def clear_command(api: str, instances: tuple[str, ...], host: str | None) -> None:
    """Forget the marks of INSTANCE...: the way back will not bring them home.
    Every instance is tried; exit 1 if any had no mark (to clear)."""
    query = f"?{urlencode({'host': host})}" if host is not None else ""
    out, err = output(), Console(stderr=True, soft_wrap=True)
    missed = 0
    with _client(api) as client:
        for instance in instances:
            try:
                mark = call(client, "DELETE", f"/v1/evacuations/{segment(instance)}{query}")
            except ApiRefusal as refusal:
                # One instance without a mark should not stop the others; an
                # unreachable API (ApiProblem) does stop everything.
                missed += 1
                err.print(f"[red]error:[/red] {refusal.message}", highlight=False)
                continue
            out.print(
                f"cleared {mark['instance']} (evacuated from {mark['host']})", highlight=False
            )
    if missed:
        err.print(f"{missed} of {len(instances)} marks not cleared", highlight=False)
        sys.exit(1)
