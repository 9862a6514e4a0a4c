"""The plugin pipeline: calls every enabled plugin's hooks for a poll and keeps
a failing plugin from hurting the others (counted, logged, skipped for the poll,
disabled after N consecutive failing polls)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from opendrs.agent.plugin import Hook, MetricPlugin, PollContext, PollResult
from opendrs.domain.alarm import AlarmTransition
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.sample import Sample

log = logging.getLogger(__name__)


class PluginPipeline:
    """The plugins of one agent, in order, with their failure records."""

    def __init__(
        self, plugins: Sequence[MetricPlugin], *, failures_before_disable: int = 5
    ) -> None:
        if failures_before_disable < 1:
            raise ValueError(
                f"failures_before_disable must be at least 1, got {failures_before_disable}"
            )
        names = [p.name for p in plugins]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"plugin names must be unique: {', '.join(duplicates)}")
        self._plugins = list(plugins)
        self._limit = failures_before_disable
        self.failures: Counter[str] = Counter()
        self._streaks: Counter[str] = Counter()
        self._disabled: set[str] = set()

    @property
    def plugins(self) -> list[MetricPlugin]:
        return list(self._plugins)

    @property
    def enabled(self) -> list[str]:
        return [p.name for p in self._plugins if p.name not in self._disabled]

    @property
    def disabled(self) -> list[str]:
        return [p.name for p in self._plugins if p.name in self._disabled]

    def enable(self, name: str) -> None:
        """Give a disabled plugin another chance (after a fix or a reload)."""
        if name not in {p.name for p in self._plugins}:
            raise KeyError(name)
        self._disabled.discard(name)
        self._streaks[name] = 0

    def begin(self, host: str, time: float) -> PollRun:
        """Start one poll; the run is used for its hook calls, then finished."""
        return PollRun(self, host, time)

    # used by PollRun
    def _active(self) -> list[MetricPlugin]:
        return [p for p in self._plugins if p.name not in self._disabled]

    def _settle(self, failed: set[str]) -> None:
        for plugin in self._active():
            name = plugin.name
            if name not in failed:
                self._streaks[name] = 0
                continue
            self._streaks[name] += 1
            if self._streaks[name] >= self._limit:
                self._disabled.add(name)
                log.error(
                    "plugin %s disabled after %d consecutive failing polls",
                    name,
                    self._streaks[name],
                )


class PollRun:
    """One poll going through the pipeline: hook calls, then `finish`."""

    def __init__(self, pipeline: PluginPipeline, host: str, time: float) -> None:
        self._pipeline = pipeline
        self.host = host
        self.time = time
        self._plugins = pipeline._active()
        self._failed: set[str] = set()
        self._transitions: list[AlarmTransition] = []

    def call(
        self,
        hook: Hook,
        subject: InstanceCounters | HostCounters,
        samples: Sequence[Sample],
    ) -> None:
        """Call `hook` on every plugin still healthy in this poll."""
        for plugin in self._plugins:
            if plugin.name in self._failed:
                continue
            ctx = PollContext(self.host, self.time)
            try:
                getattr(plugin, hook.value)(ctx, subject, samples)
            except Exception:
                self._fail(plugin, hook.value)
                continue
            self._transitions.extend(ctx.reported)

    def finish(self, samples: Sequence[Sample], errors: Sequence[str] = ()) -> PollResult:
        """Call `on_poll_done`, settle failure streaks and return the poll's result."""
        result = PollResult(
            samples=tuple(samples),
            transitions=tuple(self._transitions),
            host=self.host,
            time=self.time,
            errors=tuple(errors),
        )
        for plugin in self._plugins:
            if plugin.name in self._failed:
                continue
            try:
                plugin.on_poll_done(result)
            except Exception:
                self._fail(plugin, "on_poll_done")
        self._pipeline._settle(self._failed)
        failures = tuple(f"plugin {name} failed" for name in sorted(self._failed))
        if not failures:
            return result
        return PollResult(
            samples=result.samples,
            transitions=result.transitions,
            host=result.host,
            time=result.time,
            errors=(*result.errors, *failures),
        )

    def _fail(self, plugin: MetricPlugin, hook: str) -> None:
        self._failed.add(plugin.name)
        self._pipeline.failures[plugin.name] += 1
        log.exception(
            "plugin %s failed in %s on %s; skipped for this poll", plugin.name, hook, self.host
        )
