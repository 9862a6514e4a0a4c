"""`opendrs agent`: one host's collector and plugins. With `--once` it polls
and prints what it would send (how an operator checks a host before enabling
the agent); otherwise it polls every `agent.poll_interval` seconds, publishing
to the configured bus, and reloads its plugin configuration while running."""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

import click
from rich.console import Console

from opendrs.agent.plugins.history import HostHistory
from opendrs.config import Settings, load_settings
from opendrs.domain.clock import Clock
from opendrs.domain.errors import InvalidInput, OpendrsError

console = Console(stderr=True)


@click.command("agent")
@click.option(
    "--driver",
    type=click.Choice(["libvirt", "local", "sim"]),
    default="libvirt",
    show_default=True,
    help="Where the counters come from.",
)
@click.option("--uri", default="", help="libvirt URI (e.g. test:///default); for sim, a host name.")
@click.option("--host", "host_name", default="", help="Host name to report (default: hostname).")
@click.option(
    "-c",
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Settings file; watched for plugin changes while running.",
)
@click.option("--once", is_flag=True, help="Poll (twice, for rates) and print; publish nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print JSON.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="With --once: seconds between the two polls.",
)
def agent(
    driver: str, uri: str, host_name: str, config: Path | None, once: bool, as_json: bool,
    interval: float,
) -> None:  # fmt: skip
    """Collect one host's metrics and run the metric plugins."""
    try:
        settings = load_settings(config)
        if once:
            _once(driver, uri, host_name, settings, as_json, interval)
        else:
            _run(driver, uri, host_name, settings, config)
    except InvalidInput as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except OpendrsError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)


def _once(
    driver: str, uri: str, host: str, settings: Settings, as_json: bool, interval: float
) -> None:
    from opendrs.agent.probe import probe_once

    report = probe_once(driver, uri, settings, host=host or None, interval=interval)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{report['host']} via {report['driver']} at {report['time']}")
    for s in report["samples"]:
        device = s["resource_metadata"].get("device") or s["resource_metadata"].get("interface")
        where = f"{s['resource_id']}{'/' + device if device else ''}"
        value = f"{s['counter_volume']:>16.6g} {s['counter_unit']}"
        click.echo(f"  {where:<32} {s['counter_name']:<34} {value}")
    for alarm in report["alarms"]:
        click.echo(f"  ALARM {alarm['rule']} on {alarm['entity']}: {alarm['reason']}")
    for error in report["errors"]:
        click.echo(f"  error: {error}")


def host_history(settings: Settings, host: str, clock: Clock) -> HostHistory | None:
    """The host's own round-robin store, when the history plugin is configured."""
    if "history" not in settings.agent.plugins:
        return None
    from opendrs.store.rrd.collection import HostArchives, HostRecorder

    directory = settings.agent.history.directory or Path("var/agent-history")
    return HostRecorder(HostArchives(directory, clock=clock), host)


def _run(driver: str, uri: str, host: str, settings: Settings, config: Path | None) -> None:
    from opendrs.agent.assembly import AgentServices, build_pipeline
    from opendrs.agent.poller import Agent
    from opendrs.agent.probe import stats_source
    from opendrs.agent.reload import AgentReloader
    from opendrs.bus.transports import open_bus
    from opendrs.config import Settings
    from opendrs.domain.clock import WallClock

    assert isinstance(settings, Settings)
    clock = WallClock()
    name = host or socket.gethostname()
    stats = stats_source(driver, uri, clock, cloud=settings.cloud.driver)
    bus = open_bus(settings.bus, clock=clock)
    services = AgentServices(
        host=name,
        clock=clock,
        bus=bus,
        partitions=settings.bus.partitions,
        history=host_history(settings, name, clock),
    )
    poller = Agent(name, stats, build_pipeline(settings.agent, services), clock)
    reloader = AgentReloader(poller, services, settings.agent, path=config)
    reloader.subscribe(bus)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if config is not None:
        threading.Thread(target=reloader.watch, args=(stop,), name="reload", daemon=True).start()
    console.print(
        f"agent of {name}: {driver} every {settings.agent.poll_interval:g} s, "
        f"bus {settings.bus.transport}; Ctrl-C stops"
    )
    try:
        poller.run(settings.agent.poll_interval, stop.wait)
    finally:
        bus.close()
