"""`opendrs plans`: list, show, start, cancel and watch action plans through the API
(`GET /v1/action_plans[/{id}]`, `POST .../start|cancel`), with a live progress bar."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from opendrs.commands.api_client import API, call

FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "SUPERSEDED"})
DONE_ACTION_STATES = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"})
_STATE_STYLE = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "SKIPPED": "yellow",
    "CANCELLED": "yellow",
    "ONGOING": "cyan",
}

Plan = Mapping[str, Any]


def describe(action: Mapping[str, Any]) -> str:
    p = action.get("parameters", {})
    if action.get("type") == "migrate":
        return f"migrate {p.get('instance')} ({p.get('source')}→{p.get('destination')})"
    if action.get("type") == "power":
        return f"power {p.get('power', '')} {p.get('node')}".replace("  ", " ")
    if action.get("type") == "change_node_state":
        return f"{p.get('node')}→{p.get('state')}"
    return str(action.get("type"))


def progress_of(plan: Plan) -> tuple[int, int, list[str]]:
    """(finished actions, all actions, what is running now)."""
    actions = plan.get("actions", [])
    done = sum(1 for a in actions if a.get("state") in DONE_ACTION_STATES)
    running = [describe(a) for a in actions if a.get("state") == "ONGOING"]
    return done, len(actions), running


def watch_plan(
    client: httpx.Client,
    plan_id: str,
    console: Console,
    *,
    interval: float = 1.0,
    wait: Callable[[float], None] = time.sleep,
    max_polls: int | None = None,
) -> Plan:
    """Follow a plan until it ends, redrawing a progress bar after every poll;
    returns the final plan (or the last one seen after `max_polls`)."""
    plan: Plan = call(client, "GET", f"/v1/action_plans/{plan_id}")
    columns = (
        TextColumn("[bold]{task.fields[state]:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    polls = 0
    with Progress(*columns, console=console, transient=False) as bar:
        done, total, running = progress_of(plan)
        task = bar.add_task(", ".join(running), total=total or 1, state=plan["state"])
        while True:
            done, total, running = progress_of(plan)
            bar.update(
                task,
                completed=done if total else 1,
                total=total or 1,
                state=plan["state"],
                description=", ".join(running[:3]) + (" …" if len(running) > 3 else ""),
            )
            polls += 1
            if plan["state"] in FINAL_STATES or (max_polls is not None and polls >= max_polls):
                break
            wait(interval)
            plan = call(client, "GET", f"/v1/action_plans/{plan_id}")
    return plan


def print_plan(console: Console, plan: Plan) -> None:
    done, total, _ = progress_of(plan)
    console.print(f"[bold]plan {plan['id']}[/bold]  {plan['state']}  ({done}/{total} done)")
    if plan.get("message"):
        console.print(plan["message"])
    table = Table("#", "action", "state", "message")
    for n, action in enumerate(plan.get("actions", []), start=1):
        style = _STATE_STYLE.get(action["state"], "")
        state = f"[{style}]{action['state']}[/{style}]" if style else action["state"]
        table.add_row(str(n), describe(action), state, action.get("message", ""))
    console.print(table)


def _client(api: str) -> httpx.Client:
    return httpx.Client(base_url=api, timeout=10.0)


@click.group(name="plans")
def plans() -> None:
    """Action plans: list, show, start, cancel, watch."""


@plans.command(name="list")
@API
@click.option("--state", "states", multiple=True, help="only plans in this state (repeatable)")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
def list_command(api: str, states: tuple[str, ...], limit: int) -> None:
    """Plans, newest first."""
    query = "&".join([f"limit={limit}", *(f"state={s.upper()}" for s in states)])
    with _client(api) as client:
        found = call(client, "GET", f"/v1/action_plans?{query}")
    table = Table("id", "state", "audit", "progress", "message")
    for plan in found:
        done, total, _ = progress_of(plan)
        table.add_row(
            plan["id"], plan["state"], plan["audit_id"], f"{done}/{total}", plan["message"]
        )
    Console(soft_wrap=True).print(table)


@plans.command(name="show")
@API
@click.argument("plan_id")
def show_command(api: str, plan_id: str) -> None:
    """One plan with every action's state."""
    with _client(api) as client:
        print_plan(Console(soft_wrap=True), call(client, "GET", f"/v1/action_plans/{plan_id}"))


@plans.command(name="start")
@API
@click.argument("plan_id")
def start_command(api: str, plan_id: str) -> None:
    """Approve a RECOMMENDED plan; the applier starts it when its hosts are free."""
    with _client(api) as client:
        plan = call(client, "POST", f"/v1/action_plans/{plan_id}/start")
    Console().print(f"plan {plan['id']} is {plan['state']}")


@plans.command(name="cancel")
@API
@click.argument("plan_id")
def cancel_command(api: str, plan_id: str) -> None:
    """Cancel a plan: nothing new starts; running actions finish."""
    with _client(api) as client:
        plan = call(client, "POST", f"/v1/action_plans/{plan_id}/cancel")
    Console().print(f"plan {plan['id']} is {plan['state']}")


@plans.command(name="watch")
@API
@click.argument("plan_id")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.05))
def watch_command(api: str, plan_id: str, interval: float) -> None:
    """Follow PLAN_ID with a progress bar until it ends; exit 0 if it SUCCEEDED,
    1 if it FAILED or was CANCELLED."""
    console = Console(soft_wrap=True)
    with _client(api) as client:
        final = watch_plan(client, plan_id, console, interval=interval)
    print_plan(console, final)
    sys.exit(0 if final["state"] == "SUCCEEDED" else 1)
