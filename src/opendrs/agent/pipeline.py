"""The plugin pipeline: calls every enabled plugin's hooks for a poll and keeps
a failing or slow plugin from hurting the others (counted, logged, skipped for
the poll, disabled after N consecutive failing polls)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from opendrs.agent.batch import PollBatch, SampleBatch, SampleRow
from opendrs.agent.plugin import Hook, MetricPlugin, PollContext, PollResult, QuietHooks
from opendrs.domain.alarm import AlarmTransition
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.sample import Sample

log = logging.getLogger(__name__)

INSTANCE_HOOKS = (Hook.CPU, Hook.RAM, Hook.DISK, Hook.VOLUME, Hook.BANDWIDTH)

# One instance of a poll: its counters and its sample rows by hook.
InstanceEntry = tuple[InstanceCounters, Mapping[Hook, Sequence[SampleRow]]]


def _implements(plugin: MetricPlugin, hook: str) -> bool:
    """False when the plugin kept QuietHooks' do-nothing hook: no need to call it."""
    return getattr(type(plugin), hook, None) is not getattr(QuietHooks, hook)


def _batches(plugin: MetricPlugin) -> bool:
    """True when the plugin has its own `on_batch` (optional, not in MetricPlugin)."""
    found = getattr(type(plugin), "on_batch", None)
    return found is not None and found is not QuietHooks.on_batch


class PluginPipeline:
    """The plugins of one agent, in order, with their failure records."""

    def __init__(
        self,
        plugins: Sequence[MetricPlugin],
        *,
        failures_before_disable: int = 5,
        budget_seconds: float | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        """`budget_seconds` bounds the time one plugin may take in one poll (all its
        hooks): past it the plugin is counted as failing and skipped for the rest
        of the poll. Python cannot interrupt a call, so a plugin that blocks is
        caught when the call returns; plugins doing I/O must bound it themselves."""
        if budget_seconds is not None and budget_seconds <= 0:
            raise ValueError(f"budget_seconds must be positive, got {budget_seconds}")
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
        self.budget_seconds = budget_seconds
        self.timer = timer
        self.over_budget: Counter[str] = Counter()
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
        self._reasons: dict[str, str] = {}
        self._spent: dict[str, float] = {}
        self._transitions: list[AlarmTransition] = []

    def call(
        self,
        hook: Hook,
        subject: InstanceCounters | HostCounters,
        samples: Sequence[Sample],
    ) -> None:
        """Call `hook` on every plugin still healthy in this poll."""
        timer = self._pipeline.timer
        for plugin in self._plugins:
            if plugin.name in self._failed:
                continue
            ctx = PollContext(self.host, self.time)
            start = timer()
            try:
                getattr(plugin, hook.value)(ctx, subject, samples)
            except Exception:
                self._fail(plugin, hook.value)
                continue
            if self._charge(plugin, timer() - start, hook.value):
                continue
            self._transitions.extend(ctx.reported)

    def deliver(
        self,
        instances: Sequence[InstanceEntry],
        host: tuple[HostCounters, Sequence[SampleRow]] | None,
        batch: PollBatch | None = None,
    ) -> None:
        """Every instance hook, then `on_host`, plugin after plugin: each plugin sees
        the instances in order, then the host. A plugin with a batch hook
        (`on_batch`) gets the whole poll in that one call instead. Hooks a plugin
        left to QuietHooks are not called at all; Samples are made only for the
        plugins that take them hook by hook (once, shared by those plugins)."""
        timer = self._pipeline.timer
        budget = self._pipeline.budget_seconds
        made: dict[int, tuple[Sample, ...]] = {}

        def samples(rows: Sequence[SampleRow]) -> tuple[Sample, ...]:
            found = made.get(id(rows))
            if found is None:
                found = made[id(rows)] = tuple([Sample(*row) for row in rows])
            return found

        for plugin in self._plugins:
            if plugin.name in self._failed:
                continue
            if _batches(plugin):
                if batch is None:
                    batch = _batch_of(instances, host)
                self._batch(plugin, batch)
                continue
            hooks = [
                (hook, getattr(plugin, hook.value))
                for hook in INSTANCE_HOOKS
                if _implements(plugin, hook.value)
            ]
            wants_host = host is not None and bool(host[1]) and _implements(plugin, "on_host")
            if not hooks and not wants_host:
                continue
            ctx = PollContext(self.host, self.time)
            reported = ctx._reported
            start = timer()
            current = ""
            mark = 0
            try:
                if hooks:
                    limit = (
                        None
                        if budget is None
                        else start + budget - self._spent.get(plugin.name, 0.0)
                    )
                    for counters, by_hook in instances:
                        for hook, method in hooks:
                            group = by_hook.get(hook)
                            if group:
                                current, mark = hook.value, len(reported)
                                method(ctx, counters, samples(group))
                        if limit is not None and timer() > limit:
                            break
                if wants_host and host is not None:
                    current, mark = "on_host", len(reported)
                    plugin.on_host(ctx, host[0], samples(host[1]))
            except Exception:
                del reported[mark:]  # the failing call's reports are dropped
                self._transitions.extend(reported)
                self._fail(plugin, current)
                continue
            if self._charge(plugin, timer() - start, current):
                del reported[mark:]
            self._transitions.extend(reported)

    def _batch(self, plugin: MetricPlugin, batch: PollBatch) -> None:
        timer = self._pipeline.timer
        ctx = PollContext(self.host, self.time)
        start = timer()
        try:
            plugin.on_batch(ctx, batch)  # type: ignore[attr-defined]
        except Exception:
            self._fail(plugin, "on_batch")  # its reports of this poll are dropped
            return
        if not self._charge(plugin, timer() - start, "on_batch"):
            self._transitions.extend(ctx._reported)

    def finish(self, samples: Sequence[Sample], errors: Sequence[str] = ()) -> PollResult:
        """Call `on_poll_done`, settle failure streaks and return the poll's result."""
        result = PollResult(
            samples=samples if isinstance(samples, SampleBatch) else tuple(samples),
            transitions=tuple(self._transitions),
            host=self.host,
            time=self.time,
            errors=tuple(errors),
        )
        timer = self._pipeline.timer
        for plugin in self._plugins:
            if plugin.name in self._failed:
                continue
            start = timer()
            try:
                plugin.on_poll_done(result)
            except Exception:
                self._fail(plugin, "on_poll_done")
                continue
            self._charge(plugin, timer() - start, "on_poll_done")
        self._pipeline._settle(self._failed)
        failures = tuple(
            f"plugin {name} {self._reasons.get(name, 'failed')}" for name in sorted(self._failed)
        )
        if not failures:
            return result
        return PollResult(
            samples=result.samples,
            transitions=result.transitions,
            host=result.host,
            time=result.time,
            errors=(*result.errors, *failures),
        )

    def _charge(self, plugin: MetricPlugin, seconds: float, hook: str) -> bool:
        """Add to the plugin's time in this poll; True if that put it over budget."""
        budget = self._pipeline.budget_seconds
        name = plugin.name
        spent = self._spent[name] = self._spent.get(name, 0.0) + seconds
        if budget is None or spent <= budget:
            return False
        self._failed.add(name)
        self._reasons[name] = f"over its time budget of {budget:g} s"
        self._pipeline.failures[name] += 1
        self._pipeline.over_budget[name] += 1
        log.error(
            "plugin %s took %.3f s (budget %g s) by %s on %s; skipped for this poll",
            name,
            spent,
            budget,
            hook,
            self.host,
        )
        return True

    def _fail(self, plugin: MetricPlugin, hook: str) -> None:
        self._failed.add(plugin.name)
        self._pipeline.failures[plugin.name] += 1
        log.exception(
            "plugin %s failed in %s on %s; skipped for this poll", plugin.name, hook, self.host
        )


def _batch_of(
    instances: Sequence[InstanceEntry], host: tuple[HostCounters, Sequence[SampleRow]] | None
) -> PollBatch:
    rows: list[SampleRow] = []
    for _, by_hook in instances:
        for hook in INSTANCE_HOOKS:
            rows.extend(by_hook.get(hook, ()))
    if host is not None:
        rows.extend(host[1])
    return PollBatch(
        SampleBatch(rows),
        {counters.instance: counters for counters, _ in instances},
        None if host is None else host[0],
    )
