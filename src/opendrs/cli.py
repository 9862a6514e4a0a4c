"""The `opendrs` command line (click + rich): the demo, what-if audits and
configuration checks. Every bad input ends with one clear line and exit code 2."""

from __future__ import annotations

import importlib
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from opendrs.commands.parameters import PARAM_OPTION
from opendrs.config import Settings, load_settings
from opendrs.domain.errors import InvalidInput, OpendrsError

if TYPE_CHECKING:
    from opendrs.services.demo import DemoRun
    from opendrs.wiring import System

T = TypeVar("T")
console = Console(stderr=True)


def _guarded(run: Callable[[], T]) -> T:
    try:
        return run()
    except InvalidInput as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except OpendrsError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)


def _settings(config: Path | None) -> Settings:
    return _guarded(lambda: load_settings(config))


class _Commands(click.Group):
    """The nouns that live in their own modules (opendrs.commands.*), imported
    only when used so that `opendrs simulate` does not load the server."""

    lazy = {
        "agent": "opendrs.commands.agent:agent",
        "evacuations": "opendrs.commands.evacuations:evacuations",
        "plans": "opendrs.commands.plans:plans",
        "rules": "opendrs.commands.rules:rules",
        "server": "opendrs.commands.server:server",
        "simulate": "opendrs.commands.simulate:simulate",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, name)


@click.group(cls=_Commands)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """opendrs: dynamic resource scheduling for KVM and OpenStack-style clouds."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


CONFIG_OPTION = click.option(
    "-c",
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML settings file (defaults built in; OPENDRS__SECTION__FIELD overrides).",
)


@main.command()
@CONFIG_OPTION
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Run this many trace steps as fast as possible, then stop (no server).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--hosts", type=click.IntRange(min=1), default=None, help="Simulated hosts.")
@click.option("--instances", type=click.IntRange(min=0), default=None, help="Simulated VMs.")
@click.option(
    "--step-wall-seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="Wall seconds per 5-minute trace step when serving (default 1).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Dashboard port.")
@click.option(
    "--database",
    default=None,
    help="Database URL (default: a fresh SQLite file in a temporary folder).",
)
def demo(
    config: Path | None,
    steps: int | None,
    as_json: bool,
    hosts: int | None,
    instances: int | None,
    step_wall_seconds: float | None,
    port: int | None,
    database: str | None,
) -> None:
    """The whole loop on a simulated cloud fed by PlanetLab traces."""
    settings = _settings(config)
    sim = settings.cloud.sim.model_copy(
        update={k: v for k, v in {"hosts": hosts, "instances": instances}.items() if v is not None}
    )
    demo_settings = settings.demo
    if step_wall_seconds is not None:
        demo_settings = demo_settings.model_copy(
            update={"wall_seconds_per_step": step_wall_seconds}
        )
    api = settings.api.model_copy(update={"port": port}) if port is not None else settings.api
    with tempfile.TemporaryDirectory(prefix="opendrs-demo-") as scratch:
        # A demo starts from an empty model unless a database was asked for.
        chosen = "database" in settings.model_fields_set
        url = database or (settings.database.url if chosen else f"sqlite:///{scratch}/demo.db")
        history = settings.history
        if "history" not in settings.model_fields_set:
            history = history.model_copy(update={"directory": Path(scratch) / "history"})
        settings = settings.model_copy(
            update={
                "history": history,
                "cloud": settings.cloud.model_copy(update={"sim": sim}),
                "demo": demo_settings,
                "api": api,
                "database": settings.database.model_copy(update={"url": url}),
            }
        )
        if steps is not None:
            _guarded(lambda: _demo_batch(settings, steps, as_json))
        else:
            _guarded(lambda: _demo_serve(settings))


def _build_demo(settings: Settings) -> tuple[System, DemoRun]:
    from opendrs.services.demo import DemoRun
    from opendrs.wiring import build_system

    system = build_system(settings)
    run = DemoRun(
        loop=system.loop,
        cloud=system.cloud,
        bus=system.bus,
        plans=system.store,
        overload_threshold=settings.decision.overload_threshold,
    )
    return system, run


def _demo_batch(settings: Settings, steps: int, as_json: bool) -> None:
    system, run = _build_demo(settings)
    try:
        with Progress(
            TextColumn("simulating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task("steps", total=steps)
            summary = run.run(steps, on_step=lambda _: progress.advance(task))
    finally:
        system.close()
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    else:
        for key, value in summary.as_dict().items():
            click.echo(f"{key:>24}: {value}")


def _demo_serve(settings: Settings) -> None:
    import uvicorn

    from opendrs.wiring import build_app

    system, run = _build_demo(settings)
    lock = threading.Lock()

    def status() -> dict[str, Any]:
        with lock:
            return run.status()

    app = build_app(system, status)
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.api.host, port=settings.api.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    if not thread.is_alive():
        raise InvalidInput(
            f"cannot serve on {settings.api.host}:{settings.api.port} (port in use?)",
            source="configuration",
            field="api.port",
        )
    bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else settings.api.port
    console.print(
        f"opendrs demo: {len(system.cloud.list_hosts())} hosts, "
        f"{len(system.cloud.list_instances())} VMs; dashboard at "
        f"[bold]http://{settings.api.host}:{bound}/[/bold]  (Ctrl-C stops)",
        soft_wrap=True,
    )
    pause = settings.demo.wall_seconds_per_step
    try:
        while True:
            began = time.monotonic()
            with lock:
                run.step()
            time.sleep(max(0.0, pause - (time.monotonic() - began)))
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        with lock:
            summary = run.summary()
            system.close()
        click.echo(json.dumps(summary.as_dict()))


class _AuditCommands(_Commands):
    """`audit run` is here; the API client's verbs load from opendrs.commands.audits."""

    lazy = {
        verb: f"opendrs.commands.audits:{verb}_command"
        for verb in ("list", "show", "create", "suspend", "resume", "cancel")
    }


@main.group(cls=_AuditCommands)
def audit() -> None:
    """Audits: what-if runs on scenario files (run), and a server's audits through
    its API (list, show, create, suspend, resume, cancel)."""


@audit.command("run")
@click.option(
    "--scenario",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Cluster snapshot (YAML or JSON, format in docs/scenarios.md).",
)
@click.option("--goal", default="overload_relief", show_default=True)
@click.option("--strategy", default="", help="Strategy name (the goal's default if empty).")
@PARAM_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def audit_run(
    scenario: Path, goal: str, strategy: str, parameters: dict[str, Any], as_json: bool
) -> None:
    """One audit on a scenario file; no cloud is touched."""
    result = _guarded(lambda: _what_if(scenario, goal, strategy, parameters))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for action in result["actions"]:
        after = f" after {', '.join(action['after'])}" if action["after"] else ""
        what = (
            f"{action['instance']} {action['source']} → {action['destination']}"
            if action["type"] == "migrate"
            else f"{action['node']} → {action['state']}"
        )
        click.echo(f"{action['id']}: {action['type']} {what}{after}")
    for name, value in result["efficacy"].items():
        click.echo(f"{name}: {value}")
    for line in result["explanations"]:
        click.echo(f"- {line}")


def _what_if(
    scenario: Path, goal: str, strategy: str, parameters: dict[str, Any]
) -> dict[str, Any]:
    from opendrs.services.what_if import what_if

    result: dict[str, Any] = what_if(scenario, goal=goal, strategy=strategy, parameters=parameters)
    return result


@main.group()
def config() -> None:
    """Configuration files."""


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
def config_check(file: Path | None) -> None:
    """Validate FILE (and the environment) and print the effective settings."""
    settings = _settings(file)
    click.echo(json.dumps(settings.model_dump(mode="json"), indent=2))
