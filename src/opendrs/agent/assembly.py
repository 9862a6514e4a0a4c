"""Building one host's agent and its plugins from the `agent` settings: the
built-in plugins by name, third-party ones through the `opendrs.agent.plugins`
entry points. A rebuild for a reload reuses the plugins whose settings did not
change (their connections, buffers and alarm states go on)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import MetricPlugin
from opendrs.agent.plugins.graphite import GraphitePlugin
from opendrs.agent.plugins.history import HistoryPlugin, HostHistory
from opendrs.agent.plugins.publisher import PublisherPlugin
from opendrs.agent.plugins.statsd import StatsdPlugin
from opendrs.agent.plugins.watermark import WatermarkPlugin
from opendrs.agent.poller import Agent
from opendrs.agent.spool import DiskSpool, MemorySpool, Spool
from opendrs.config import AgentSettings, PublisherSettings, Settings
from opendrs.domain.clock import Clock
from opendrs.domain.errors import InvalidInput
from opendrs.domain.ports import Bus, StatsSource

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "opendrs.agent.plugins"
BUILT_IN = ("watermark", "statsd", "graphite", "history", "publisher")


@dataclass(frozen=True)
class PluginSetup:
    """What a third-party plugin factory (an `opendrs.agent.plugins` entry point,
    called with this one argument) is given to build its plugin."""

    host: str
    options: Mapping[str, Any]
    settings: AgentSettings
    clock: Clock
    bus: Bus | None = None
    partitions: int = 1


@dataclass
class AgentServices:
    """What plugins may need beyond their settings; `history` is the host's
    round-robin store (required only when the history plugin is configured)."""

    host: str
    clock: Clock
    bus: Bus | None = None
    partitions: int = 1
    history: HostHistory | None = None
    source: str = ""
    find_plugin: Callable[[str], Callable[[PluginSetup], MetricPlugin] | None] = field(
        default=lambda name: _entry_point(name)
    )

    def __post_init__(self) -> None:
        if not self.source:
            self.source = f"opendrs.agent/{self.host}"


def build_agent(
    host: str,
    stats: StatsSource,
    settings: Settings,
    bus: Bus | None,
    clock: Clock,
    *,
    history: HostHistory | None = None,
) -> Agent:
    """One host's agent with the plugins `settings.agent` configures."""
    services = AgentServices(
        host=host, clock=clock, bus=bus, partitions=settings.bus.partitions, history=history
    )
    return Agent(host, stats, build_pipeline(settings.agent, services), clock)


def build_pipeline(
    settings: AgentSettings,
    services: AgentServices,
    *,
    previous: Sequence[MetricPlugin] = (),
    previous_settings: AgentSettings | None = None,
) -> PluginPipeline:
    """The pipeline of `settings`, reusing from `previous` (built from
    `previous_settings`) every plugin whose configuration is unchanged, and the
    watermark plugin always (its rules are replaced, its alarm states kept).

    Everything is built and validated before anything old is touched: on
    InvalidInput the previous plugins are exactly as they were.
    """
    old = {p.name: p for p in previous}
    staged: list[tuple[MetricPlugin, Callable[[], None] | None]] = []
    for index, name in enumerate(settings.plugins):
        where = f"agent.plugins.{index}"
        staged.append(_stage(name, where, settings, services, old, previous_settings))
    if len({p.name for p, _ in staged}) != len(staged):
        names = [p.name for p, _ in staged]
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInput(
            f"a plugin is listed twice: {', '.join(twice)}", source="agent", field="agent.plugins"
        )
    pipeline = PluginPipeline(
        [plugin for plugin, _ in staged],
        failures_before_disable=settings.plugin_failures_before_disable,
        budget_seconds=settings.plugin_budget_seconds,
    )
    # commit: nothing below raises
    for _, commit in staged:
        if commit is not None:
            commit()
    kept = {id(p) for p, _ in staged}
    for plugin in previous:
        if id(plugin) not in kept:
            _close(plugin)
    return pipeline


def _stage(
    name: str,
    where: str,
    settings: AgentSettings,
    services: AgentServices,
    old: Mapping[str, MetricPlugin],
    old_settings: AgentSettings | None,
) -> tuple[MetricPlugin, Callable[[], None] | None]:
    before = old.get(name)
    if name == "watermark":
        fresh = WatermarkPlugin(settings.watermarks)  # validates the rules
        if isinstance(before, WatermarkPlugin):
            return before, lambda: before.replace_rules(settings.watermarks)
        return fresh, None
    if name == "statsd":
        if isinstance(before, StatsdPlugin) and before.settings == settings.statsd:
            return before, None
        return StatsdPlugin(settings.statsd), None
    if name == "graphite":
        if isinstance(before, GraphitePlugin) and before.settings == settings.graphite:
            return before, None
        return GraphitePlugin(settings.graphite, clock=services.clock), None
    if name == "history":
        if services.history is None:
            raise InvalidInput(
                "the history plugin needs the host's round-robin store, and none is set up",
                source="agent",
                field=where,
            )
        if isinstance(before, HistoryPlugin) and (
            old_settings is not None and old_settings.history == settings.history
        ):
            return before, None
        return HistoryPlugin(services.history, meters=settings.history.meters), None
    if name == "publisher":
        if services.bus is None:
            raise InvalidInput("the publisher plugin needs a bus", source="agent", field=where)
        if isinstance(before, PublisherPlugin) and (
            old_settings is not None and old_settings.publisher == settings.publisher
        ):
            return before, None
        spool = _spool(settings.publisher)
        plugin = PublisherPlugin(services.bus, services.partitions, services.source, spool=spool)
        if isinstance(before, PublisherPlugin):
            return plugin, lambda: _move(before.spool, spool)
        return plugin, None
    return _third_party(name, where, settings, services, before, old_settings), None


def _third_party(
    name: str,
    where: str,
    settings: AgentSettings,
    services: AgentServices,
    before: MetricPlugin | None,
    old_settings: AgentSettings | None,
) -> MetricPlugin:
    options = settings.plugin_options.get(name, {})
    if (
        before is not None
        and old_settings is not None
        and old_settings.plugin_options.get(name, {}) == options
    ):
        return before
    factory = services.find_plugin(name)
    if factory is None:
        raise InvalidInput(
            f"unknown plugin {name!r}: not built in ({', '.join(BUILT_IN)}) and no "
            f"{ENTRY_POINT_GROUP!r} entry point of that name is installed",
            source="agent",
            field=where,
        )
    setup = PluginSetup(
        host=services.host,
        options=options,
        settings=settings,
        clock=services.clock,
        bus=services.bus,
        partitions=services.partitions,
    )
    try:
        plugin = factory(setup)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"plugin {name!r} could not be built: {exc}", source="agent", field=where
        ) from exc
    if getattr(plugin, "name", None) != name:
        raise InvalidInput(
            f"plugin built for {name!r} calls itself {getattr(plugin, 'name', None)!r}",
            source="agent",
            field=where,
        )
    return plugin


def _entry_point(name: str) -> Callable[[PluginSetup], MetricPlugin] | None:
    for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
        loaded: Callable[[PluginSetup], MetricPlugin] = point.load()
        return loaded
    return None


def _spool(settings: PublisherSettings) -> Spool:
    if settings.buffer_dir is None:
        return MemorySpool(
            max_events=settings.buffer_max_events, max_bytes=settings.buffer_max_bytes
        )
    return DiskSpool(
        settings.buffer_dir,
        max_events=settings.buffer_max_events,
        max_bytes=settings.buffer_max_bytes,
    )


def _move(source: Spool, target: Spool) -> None:
    """What a replaced publisher still held goes to its successor, in order."""
    while (item := source.peek()) is not None:
        target.put(*item)
        source.pop()
    source.commit()


def _close(plugin: MetricPlugin) -> None:
    close = getattr(plugin, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.exception("closing plugin %s failed", plugin.name)
