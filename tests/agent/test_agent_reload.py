"""Building an agent from settings, and reloading its plugin configuration from
its YAML file (driven directly, then once through watchfiles) and from the bus:
validated first, swapped atomically, alarm state kept, bad versions rejected
with file, field and reason."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from opendrs.agent.assembly import AgentServices, PluginSetup, build_agent, build_pipeline
from opendrs.agent.plugin import QuietHooks
from opendrs.agent.plugins.graphite import GraphitePlugin
from opendrs.agent.plugins.publisher import PublisherPlugin
from opendrs.agent.plugins.statsd import StatsdPlugin
from opendrs.agent.plugins.watermark import WatermarkPlugin
from opendrs.agent.poller import Agent
from opendrs.agent.reload import AgentReloader
from opendrs.bus.memory import MemoryBus
from opendrs.config import AgentSettings, Settings, load_settings
from opendrs.domain.alarm import AlarmState
from opendrs.domain.clock import ManualClock
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event


class BusyHost:
    """A host at 90% CPU."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def host_counters(self, host: str) -> HostCounters:
        t = self.clock.now()
        return HostCounters(host, t, 4, int(t * 3.6e9), 8192, 4096.0)

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        return []


CONFIG = """\
agent:
  plugins: [watermark, publisher]
  watermarks:
    - name: host_cpu_high
      meter: compute.node.cpu.percent
      threshold: {threshold}
      for_samples: 1
"""


def setup(
    tmp_path: Path, threshold: str = "80"
) -> tuple[Agent, AgentReloader, ManualClock, MemoryBus, Path]:
    path = tmp_path / "opendrs.yaml"
    path.write_text(CONFIG.format(threshold=threshold))
    settings = load_settings(path, {})
    clock, bus = ManualClock(), MemoryBus()
    services = AgentServices(host="h1", clock=clock, bus=bus, partitions=2)
    agent = Agent("h1", BusyHost(clock), build_pipeline(settings.agent, services), clock)
    return (
        agent,
        AgentReloader(agent, services, settings.agent, path=path, env={}),
        clock,
        bus,
        path,
    )


def poll(agent: Agent, clock: ManualClock, times: int = 1) -> list[AlarmState]:
    found = []
    for _ in range(times):
        found += [t.current for t in agent.poll_once().transitions]
        clock.advance(60)
    return found


def watermark(agent: Agent) -> WatermarkPlugin:
    return next(p for p in agent.pipeline.plugins if isinstance(p, WatermarkPlugin))


def status_events(bus: MemoryBus) -> list[Event]:
    got: list[Event] = []
    bus.subscribe("agents.status", got.append)
    return got


def test_build_agent_wires_the_configured_plugins() -> None:
    settings = Settings()
    settings.agent.plugins = ["watermark", "statsd", "graphite", "publisher"]
    agent = build_agent("h1", BusyHost(ManualClock()), settings, MemoryBus(), ManualClock())
    kinds = [type(p) for p in agent.pipeline.plugins]
    assert kinds == [WatermarkPlugin, StatsdPlugin, GraphitePlugin, PublisherPlugin]
    assert agent.pipeline.budget_seconds == 5.0


def test_unknown_or_unbuildable_plugins_name_the_field() -> None:
    settings = AgentSettings(plugins=["watermark", "nope"])
    services = AgentServices(host="h", clock=ManualClock(), find_plugin=lambda name: None)
    with pytest.raises(InvalidInput, match="unknown plugin 'nope'") as err:
        build_pipeline(settings, services)
    assert err.value.field == "agent.plugins.1"
    with pytest.raises(InvalidInput, match="round-robin store") as err:
        build_pipeline(AgentSettings(plugins=["history"]), services)
    assert err.value.field == "agent.plugins.0"
    with pytest.raises(InvalidInput, match="needs a bus"):
        build_pipeline(AgentSettings(plugins=["publisher"]), services)


def test_third_party_plugins_come_from_their_factory_with_their_options() -> None:
    seen: list[PluginSetup] = []

    class Mine(QuietHooks):
        name = "mine"

    def factory(setup: PluginSetup) -> Mine:
        seen.append(setup)
        return Mine()

    settings = AgentSettings(plugins=["mine"], plugin_options={"mine": {"level": 3}})
    services = AgentServices(
        host="h", clock=ManualClock(), find_plugin=lambda n: factory if n == "mine" else None
    )
    pipeline = build_pipeline(settings, services)
    assert [p.name for p in pipeline.plugins] == ["mine"]
    assert seen[0].options == {"level": 3} and seen[0].host == "h"


def test_a_file_reload_swaps_plugins_and_keeps_alarm_state(tmp_path: Path) -> None:
    agent, reloader, clock, _, path = setup(tmp_path)
    assert poll(agent, clock, 2) == [AlarmState.ALARM]  # 90% > 80 on the 2nd poll
    publisher = agent.pipeline.plugins[1]
    path.write_text(CONFIG.format(threshold="85"))
    assert reloader.reload_file()
    assert watermark(agent).rules[0].threshold == 85
    assert agent.pipeline.plugins[1] is publisher  # unchanged plugins are kept
    assert poll(agent, clock, 2) == []  # still in alarm: no repeated transition
    path.write_text(CONFIG.format(threshold="95"))
    assert reloader.reload_file()
    assert poll(agent, clock) == [AlarmState.OK]  # the kept alarm clears under the new rule


def test_an_invalid_file_is_rejected_with_file_line_field_and_reason(tmp_path: Path) -> None:
    agent, reloader, clock, bus, path = setup(tmp_path)
    announced = status_events(bus)
    before = agent.pipeline
    path.write_text(CONFIG.format(threshold="very high"))
    assert not reloader.reload_file()
    error = reloader.last_error
    assert error is not None
    assert str(path) in error.source and "line 6" in error.source
    assert error.field == "agent.watermarks.0.threshold"
    assert "number" in error.problem
    assert agent.pipeline is before and watermark(agent).rules[0].threshold == 80
    assert announced[-1].type == "opendrs.agent.config.rejected"
    assert announced[-1].data["field"] == "agent.watermarks.0.threshold"
    assert poll(agent, clock, 2) == [AlarmState.ALARM]  # the running rules go on


def test_a_build_failure_leaves_every_plugin_untouched(tmp_path: Path) -> None:
    agent, reloader, _, _, path = setup(tmp_path)
    path.write_text(
        CONFIG.format(threshold="99").replace("[watermark, publisher]", "[watermark, nope]")
    )
    assert not reloader.reload_file()
    assert reloader.last_error is not None and reloader.last_error.field == "agent.plugins.1"
    assert watermark(agent).rules[0].threshold == 80  # the valid part was not half-applied


def test_a_version_pushed_on_the_bus_is_applied_once_and_bad_ones_rejected(tmp_path: Path) -> None:
    agent, reloader, clock, bus, _ = setup(tmp_path)
    announced = status_events(bus)
    reloader.subscribe(bus)
    section = {
        "plugins": ["watermark", "publisher"],
        "watermarks": [
            {"name": "host_cpu_high", "meter": "compute.node.cpu.percent", "threshold": 50}
        ],
    }

    def push(data: dict[str, object]) -> None:
        bus.publish(
            "agents.config",
            Event(type="opendrs.agent.config", source="server", time=0.0, data=data),
        )

    push({"version": 1, "agent": section})
    assert watermark(agent).rules[0].threshold == 50
    push({"version": 1, "agent": {**section, "watermarks": []}})  # not newer: ignored
    assert watermark(agent).rules[0].threshold == 50
    push({"version": 2, "agent": {**section, "plugins": ["watermark"]}, "hosts": ["other"]})
    assert len(agent.pipeline.plugins) == 2  # not for this host
    bad = {"name": "x", "meter": "m", "threshold": 1, "clear": 5}
    push({"version": 3, "agent": {**section, "watermarks": [bad]}})
    assert reloader.version == 1 and reloader.rejected == 1
    assert reloader.last_error is not None
    assert "agents.config" in reloader.last_error.source
    assert reloader.last_error.field == "watermarks.0"
    assert "clear 5 must be at or below the threshold 1" in reloader.last_error.problem
    push({"version": "4"})
    assert reloader.last_error.field == "version"
    assert [e.type for e in announced].count("opendrs.agent.config.applied") == 1
    assert poll(agent, clock, 2) == [AlarmState.ALARM]


def test_watchfiles_picks_up_an_edit(tmp_path: Path) -> None:
    agent, reloader, _, _, path = setup(tmp_path)
    stop = threading.Event()
    watcher = threading.Thread(target=reloader.watch, args=(stop,), kwargs={"debounce_ms": 50})
    watcher.start()
    try:
        deadline = time.monotonic() + 15
        while reloader.applied == 0 and time.monotonic() < deadline:
            # rewritten until seen: the watcher may not be watching yet at the first write
            path.write_text(CONFIG.format(threshold="70"))
            stop.wait(0.2)
        assert reloader.applied >= 1
        assert watermark(agent).rules[0].threshold == 70
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()
