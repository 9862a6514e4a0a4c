"""`opendrs audit list|show|create|suspend|resume|cancel`: the audits of a running
server through its API (`GET`/`POST /v1/audits`, `PATCH /v1/audits/{id}`). The
what-if `opendrs audit run` on a scenario file lives in opendrs.cli."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click
import httpx
from rich import box
from rich.console import Console
from rich.table import Table

from opendrs.commands.api_client import API, JSON_OPTION, call, echo_json, output, segment, when
from opendrs.commands.parameters import PARAM_OPTION
from opendrs.rulefiles.durations import format_duration, parse_duration

# A oneshot audit runs inside the POST: a large cluster takes a while.
TIMEOUT_SECONDS = 60.0

Audit = Mapping[str, Any]


def _client(api: str) -> httpx.Client:
    return httpx.Client(base_url=api, timeout=TIMEOUT_SECONDS)


def interval_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A positive duration in seconds from `90` (seconds), `90s`, `10m`, `1h30m`, `1d`."""
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if seconds <= 0:
        raise click.BadParameter(f"must be greater than 0, got {value!r}")
    return seconds


def schedule(audit: Audit) -> str:
    interval = audit.get("interval")
    return f"every {format_duration(float(interval))}" if interval else "-"


@click.command(name="list")
@API
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@JSON_OPTION
def list_command(api: str, limit: int, as_json: bool) -> None:
    """Audits, newest first."""
    with _client(api) as client:
        found = call(client, "GET", f"/v1/audits?limit={limit}")
    if as_json:
        echo_json(found)
        return
    # Ids never wrap (they are copied into the next command); the message is in `show`.
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)
    table.add_column("goal")
    table.add_column("state")
    table.add_column("runs")
    table.add_column("next run", no_wrap=True)
    for audit in found:
        table.add_row(
            audit["id"],
            audit["goal"] + (f" ({audit['strategy']})" if audit["strategy"] else ""),
            audit["state"],
            schedule(audit) if audit.get("interval") else audit["audit_type"],
            when(audit.get("next_run_at")),
        )
    output().print(table)


def print_audit(console: Console, audit: Audit) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    rows = {
        "id": audit["id"],
        "type": audit["audit_type"],
        "goal": audit["goal"],
        "strategy": audit["strategy"] or "(the goal's default)",
        "state": audit["state"],
        "message": audit["message"],
        "trigger": audit["trigger"],
        "automatic": "yes" if audit["auto_trigger"] else "no (plans wait for approval)",
        "scope": ", ".join(audit["scope"]) or "(every host)",
        "parameters": json.dumps(audit["parameters"], sort_keys=True),
        "created": when(audit["created_at"]),
        "schedule": schedule(audit),
        "last run": when(audit.get("last_run_at")),
        "next run": when(audit.get("next_run_at")),
    }
    for name, value in rows.items():
        table.add_row(name, str(value))
    console.print(table)


@click.command(name="show")
@API
@click.argument("audit_id")
@JSON_OPTION
def show_command(api: str, audit_id: str, as_json: bool) -> None:
    """One audit: its goal, parameters, state and schedule."""
    with _client(api) as client:
        audit = call(client, "GET", f"/v1/audits/{segment(audit_id)}")
    if as_json:
        echo_json(audit)
    else:
        print_audit(output(), audit)


@click.command(name="create")
@API
@click.option("--goal", required=True, help="Goal, e.g. overload_relief, host_maintenance.")
@click.option("--strategy", default="", help="Strategy name (the goal's default if empty).")
@PARAM_OPTION
@click.option(
    "--scope", "scope", multiple=True, metavar="HOST", help="Only this host (repeatable)."
)
@click.option(
    "--auto-trigger", is_flag=True, help="Start its plans at once instead of waiting for approval."
)
@click.option("--continuous", is_flag=True, help="Run on a schedule (needs --interval).")
@click.option(
    "--interval",
    default=None,
    metavar="DURATION",
    callback=interval_option,
    help="Time between the runs of a continuous audit: 600, 90s, 10m, 1h30m.",
)
@JSON_OPTION
def create_command(
    api: str,
    goal: str,
    strategy: str,
    parameters: dict[str, Any],
    scope: tuple[str, ...],
    auto_trigger: bool,
    continuous: bool,
    interval: float | None,
    as_json: bool,
) -> None:
    """Create an audit on the server. A oneshot audit runs now and may propose a
    plan; a --continuous one is scheduled and the server runs it every --interval."""
    if continuous and interval is None:
        raise click.UsageError("--continuous needs --interval (e.g. --interval 10m)")
    if interval is not None and not continuous:
        raise click.UsageError("--interval is for a --continuous audit; add --continuous")
    body: dict[str, Any] = {
        "goal": goal,
        "strategy": strategy,
        "parameters": parameters,
        "scope": list(scope),
        "auto_trigger": auto_trigger,
    }
    if continuous:
        body |= {"audit_type": "continuous", "interval": interval}
    with _client(api) as client:
        answer = call(client, "POST", "/v1/audits", body)
    if as_json:
        echo_json(answer)
        return
    audit = answer["audit"]
    console = output()
    if continuous:
        console.print(
            f"audit {audit['id']} is {audit['state']}: {audit['goal']} {schedule(audit)}, "
            "first run at the server's next tick"
        )
        return
    console.print(f"audit {audit['id']} {audit['state']}: {audit['message']}")
    if answer.get("plan_id"):
        console.print(f"plan {answer['plan_id']}: opendrs plans show {answer['plan_id']}")
    for line in answer.get("explanations", []):
        console.print(f"- {line}", highlight=False)


def _state_command(name: str, state: str, doc: str) -> click.Command:
    @click.command(name=name, help=doc)
    @API
    @click.argument("audit_id")
    @JSON_OPTION
    def command(api: str, audit_id: str, as_json: bool) -> None:
        with _client(api) as client:
            audit = call(client, "PATCH", f"/v1/audits/{segment(audit_id)}", {"state": state})
        if as_json:
            echo_json(audit)
            return
        due = f"; next run {when(audit['next_run_at'])}" if audit.get("next_run_at") else ""
        output().print(f"audit {audit['id']} is {audit['state']}{due}")

    return command


suspend_command = _state_command(
    "suspend", "SUSPENDED", "Pause a continuous audit: no runs until resumed; its next run is kept."
)
resume_command = _state_command(
    "resume",
    "ONGOING",
    "Resume a suspended continuous audit (an overdue one runs at the next tick).",
)
cancel_command = _state_command(
    "cancel", "CANCELLED", "Stop a continuous audit for good (a run in progress finishes)."
)
