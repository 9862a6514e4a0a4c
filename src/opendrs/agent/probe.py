"""One look at a host before its agent is enabled: poll it through a driver
(twice, `interval` apart, so rates exist), run the configured watermark rules,
and give every sample with its Ceilometer name, unit and type, and any alarm,
as a JSON-ready dict (`opendrs agent --driver D --uri U --once --json`)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import MetricPlugin
from opendrs.agent.plugins.watermark import WatermarkPlugin
from opendrs.agent.poller import Agent
from opendrs.bus import codec
from opendrs.config import Settings
from opendrs.domain.clock import Clock, ManualClock, WallClock
from opendrs.domain.errors import InvalidInput
from opendrs.domain.ports import StatsSource
from opendrs.domain.sample import Sample

DRIVERS = ("libvirt", "local", "sim")


def probe_once(
    driver_name: str,
    uri: str,
    settings: Settings,
    *,
    host: str | None = None,
    interval: float = 1.0,
    stats: StatsSource | None = None,
    clock: Clock | None = None,
    wait: Callable[[float], object] | None = None,
) -> dict[str, Any]:
    """Poll one host twice and describe what the agent would emit.

    `driver_name` is libvirt (`uri` a libvirt URI), local (psutil, `uri` unused)
    or sim (the simulated cloud of `settings.cloud.sim`; `uri` names one of its
    hosts, the first when empty). `stats`, `clock` and `wait` replace the driver,
    the clock and the pause between the polls (tests, or a caller that built the
    simulator itself). Raises InvalidInput for an unknown driver, DriverError
    when the host cannot be read at all.
    """
    if driver_name not in DRIVERS:
        raise InvalidInput(
            f"unknown driver {driver_name!r} (known: {', '.join(DRIVERS)})",
            source="agent probe",
            field="driver",
        )
    if interval <= 0:
        raise InvalidInput(f"interval must be positive, got {interval}", field="interval")
    if driver_name == "sim":
        manual = clock if isinstance(clock, ManualClock) else ManualClock()
        clock = manual
        wait = wait or manual.advance
        if stats is None:
            stats, first_host = _sim(settings, manual)
            host = host or uri or first_host
    clock = clock or WallClock()
    wait = wait or time.sleep
    name = host or (uri if driver_name == "sim" else "") or socket.gethostname()
    stats = stats or stats_source(driver_name, uri, clock, cloud=settings.cloud.driver)

    plugins: list[MetricPlugin] = []
    if "watermark" in settings.agent.plugins:
        plugins.append(WatermarkPlugin(settings.agent.watermarks))
    agent = Agent(name, stats, PluginPipeline(plugins), clock)
    first = agent.poll_once()
    wait(interval)
    second = agent.poll_once()
    close = getattr(stats, "close", None)
    if callable(close) and driver_name == "libvirt":
        close()
    return {
        "driver": driver_name,
        "uri": uri,
        "host": name,
        "time": _iso(second.time),
        "interval": interval,
        "samples": [ceilometer_sample(s) for s in second.samples],
        "alarms": [codec.transition_to_dict(t) for t in (*first.transitions, *second.transitions)],
        "errors": [*first.errors, *second.errors],
    }


def ceilometer_sample(sample: Sample) -> dict[str, Any]:
    """A sample with Ceilometer's field names (resource_metadata holds the labels)."""
    return {
        "counter_name": sample.meter,
        "counter_type": sample.type.value,
        "counter_unit": sample.unit,
        "counter_volume": sample.value,
        "resource_id": sample.entity,
        "resource_kind": sample.kind.value,
        "host": sample.host,
        "timestamp": _iso(sample.time),
        "resource_metadata": dict(sample.labels),
    }


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat()


def stats_source(name: str, uri: str, clock: Clock, *, cloud: str = "libvirt") -> StatsSource:
    """The counters of this host: libvirt (at `uri`) or the local machine (psutil).
    Instances are named as the server's inventory of `cloud` names them: by Nova's
    server id on an OpenStack cloud, by domain name otherwise."""
    if name == "sim":
        raise InvalidInput(
            "the sim driver simulates a whole cloud: use `opendrs demo`, or --once",
            source="agent",
            field="driver",
        )
    if name == "libvirt":
        from opendrs.cloud.libvirt import LibvirtStats

        key = "nova" if cloud == "openstack" else "name"
        return LibvirtStats(uri or "qemu:///system", clock=clock, instance_key=key)
    from opendrs.cloud.local import LocalStats

    return LocalStats(clock=clock)


def _sim(settings: Settings, clock: ManualClock) -> tuple[StatsSource, str]:
    from opendrs.cloud.sim.assembly import build_sim_cloud
    from opendrs.cloud.sim.traces import find_trace_dir

    cloud = build_sim_cloud(settings.cloud.sim, clock, find_trace_dir(settings.cloud.sim.trace_dir))
    hosts = cloud.list_hosts()
    return cloud, hosts[0].name if hosts else ""
