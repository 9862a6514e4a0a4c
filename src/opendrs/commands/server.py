"""`opendrs server`: the long-running roles of a deployment, until SIGTERM or
Ctrl-C. The CEP role is here: a worker that owns a range of sample partitions
(taking over a silent peer's), evaluates their series, and records, notifies and
publishes what it finds; the other roles (api, inventory, ingest, decision,
applier) are composed by wiring.build_server."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click
from rich.console import Console

from opendrs.bus import names
from opendrs.bus.partitioning import PartitionRange
from opendrs.bus.takeover import PartitionWorker
from opendrs.bus.transports import open_bus
from opendrs.config import Settings, load_settings
from opendrs.domain.clock import WallClock
from opendrs.domain.errors import InvalidInput, OpendrsError
from opendrs.store.sql.database import open_database
from opendrs.wiring import build_detection, build_server, configured_rules

log = logging.getLogger(__name__)
ROLES = ("api", "inventory", "ingest", "cep", "decision", "applier")


def run_cep(
    settings: Settings,
    *,
    home: PartitionRange,
    worker: str,
    namespace: str,
    interval: float,
    stop: threading.Event,
    say: Console,
) -> None:
    clock = WallClock()
    count = settings.bus.partitions
    rules = configured_rules(settings)
    bus = open_bus(settings.bus, namespace=namespace, clock=clock)
    database = open_database(settings.database.url)
    try:
        detection = build_detection(settings, bus, database, clock, consume=False)
        detection.start()
        partitions = PartitionWorker(
            bus,
            role="cep",
            worker=worker,
            home=home,
            partitions=count,
            handler=detection.on_samples,
            clock=clock,
            interval=interval,
        )
        detection.hold((), count)
        partitions.start()
        say.print(f"cep worker {worker}: {len(rules)} rules, home partitions {home} of {count}")
        held: frozenset[int] = frozenset()
        while not stop.is_set():
            now_held = partitions.consuming
            if now_held != held:
                detection.hold(now_held, count)
                held = now_held
                shown = ",".join(str(p) for p in sorted(held)) or "none"
                say.print(f"cep worker {worker}: holding partitions {shown}")
            detection.tick()
            stop.wait(interval)
            partitions.tick()
        partitions.stop()
        detection.stop()
        bus.drain(timeout=2.0)  # what we published (transitions, events) goes out
        say.print(
            f"cep worker {worker}: stopped after {detection.transitions} transitions, "
            f"{detection.failures} failures"
        )
    finally:
        bus.close()
        database.close()


@click.command(name="server")
@click.option(
    "-c",
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML settings file (defaults built in; OPENDRS__SECTION__FIELD overrides).",
)
@click.option(
    "--role",
    "roles",
    type=click.Choice(ROLES),
    multiple=True,
    default=ROLES,
    show_default=True,
    help="Role to run (repeatable; default all).",
)
@click.option("--partitions", default=None, help="Home partition range, e.g. 0-3 (default all).")
@click.option("--worker", default=None, help="Worker name (default HOST-PID).")
@click.option("--namespace", default=None, help="Bus namespace (default bus.namespace).")
@click.option(
    "--interval", type=float, default=5.0, show_default=True, help="CEP heartbeat seconds."
)
def server(
    config: Path | None,
    roles: tuple[str, ...],
    partitions: str | None,
    worker: str | None,
    namespace: str | None,
    interval: float,
) -> None:
    """Run server roles (default all); `--role cep --partitions 0-3` is a CEP worker
    evaluating partitions 0 to 3."""
    say = Console(stderr=True, highlight=False)
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    try:
        settings = load_settings(config)
        if namespace is not None:
            settings.bus.namespace = names.check_namespace(namespace)
        count = settings.bus.partitions
        home = (
            PartitionRange.parse(partitions, count)
            if partitions
            else PartitionRange.everything(count)
        )
        if interval <= 0:
            raise InvalidInput(f"--interval must be > 0, got {interval}", source="--interval")
        name = worker or f"{socket.gethostname()}-{os.getpid()}"

        def cep() -> None:
            run_cep(
                settings,
                home=home,
                worker=name,
                namespace=settings.bus.namespace,
                interval=interval,
                stop=stop,
                say=say,
            )

        others = [r for r in roles if r != "cep"]
        if not others:
            cep()
            return
        if not _serve(settings, others, cep if "cep" in roles else None, stop, say):
            sys.exit(1)
    except InvalidInput as exc:
        say.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    except OpendrsError as exc:
        say.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


def _serve(
    settings: Settings,
    roles: list[str],
    cep: Callable[[], None] | None,
    stop: threading.Event,
    say: Console,
) -> bool:
    """The roles of build_server, and the CEP worker on a thread beside them, until
    `stop`; False when something did not stop cleanly."""
    running = build_server(settings, roles)
    failed: list[BaseException] = []

    def cep_thread() -> None:
        assert cep is not None
        try:
            cep()
        except BaseException as error:  # told on the main thread, which stops the rest
            failed.append(error)
        finally:
            stop.set()

    worker: threading.Thread | None = None
    try:
        running.start()
        where = ""
        if running.api is not None:
            where = f"; API on http://{running.api.host}:{running.api.bound}/"
        say.print(
            f"opendrs server: roles {', '.join(running.roles)}"
            f"{', cep' if cep is not None else ''}, namespace {settings.bus.namespace}{where}"
        )
        if cep is not None:
            worker = threading.Thread(target=cep_thread, name="role-cep")
            worker.start()
        while not stop.wait(0.5):
            pass
    finally:
        stop.set()
        if worker is not None:
            worker.join(settings.server.stop_timeout_seconds)
        clean = running.stop()
    say.print(f"opendrs server: stopped ({'clean' if clean else 'not every role in time'})")
    if failed:
        raise failed[0]
    return clean and (worker is None or not worker.is_alive())
