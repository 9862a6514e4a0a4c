"""The pipeline's time budget and its plugin-after-plugin delivery: a slow plugin
is counted and skipped like a raising one, quiet hooks are never called."""

from __future__ import annotations

from collections.abc import Sequence

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import PollContext, PollResult, QuietHooks
from opendrs.agent.poller import Agent
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.clock import ManualClock
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.sample import Sample


class Ticks:
    """A fake timer: each plugin call advances it by what the plugin says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Stats:
    def __init__(self, clock: ManualClock, count: int = 3) -> None:
        self.clock = clock
        self.count = count

    def host_counters(self, host: str) -> HostCounters:
        return HostCounters(host, self.clock.now(), 2, 0, 1024, 512.0)

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        t = self.clock.now()
        return [InstanceCounters(f"vm-{i}", t, 1, 0, 256) for i in range(self.count)]


class Slow(QuietHooks):
    """Takes `cost` seconds of the fake timer per on_cpu call, and reports."""

    def __init__(self, name: str, ticks: Ticks, cost: float) -> None:
        self.name = name
        self.ticks = ticks
        self.cost = cost
        self.seen: list[str] = []
        self.done = 0

    def on_cpu(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        self.ticks.now += self.cost
        self.seen.append(instance.instance)
        ctx.report(
            AlarmTransition(self.name, instance.instance, AlarmState.OK, AlarmState.ALARM, 0, 1)
        )

    def on_poll_done(self, result: PollResult) -> None:
        self.done += 1


def test_a_plugin_over_its_budget_is_skipped_counted_and_disabled() -> None:
    ticks, clock = Ticks(), ManualClock()
    slow, fast = Slow("slow", ticks, 0.4), Slow("fast", ticks, 0.01)
    pipeline = PluginPipeline(
        [slow, fast], failures_before_disable=2, budget_seconds=1.0, timer=ticks
    )
    agent = Agent("h", Stats(clock, count=5), pipeline, clock)
    result = agent.poll_once()
    # 0.4 s per instance: over 1 s during the third one, then no more calls
    assert slow.seen == ["vm-0", "vm-1", "vm-2"]
    assert fast.seen == [f"vm-{i}" for i in range(5)]
    assert "plugin slow over its time budget of 1 s" in result.errors
    assert [t.rule for t in result.transitions].count("fast") == 5
    assert [t.rule for t in result.transitions].count("slow") == 2  # the overrunning call's dropped
    assert slow.done == 0 and fast.done == 1
    assert pipeline.over_budget["slow"] == 1
    agent.poll_once()
    assert pipeline.disabled == ["slow"]
    assert pipeline.failures == {"slow": 2}


def test_within_budget_nothing_is_counted_and_quiet_hooks_are_not_called() -> None:
    ticks, clock = Ticks(), ManualClock()

    class CountsCalls(QuietHooks):
        name = "counts"
        calls = 0

        def __getattribute__(self, name: str) -> object:
            if name.startswith("on_") and name not in ("on_cpu", "on_poll_done"):
                type(self).calls += 1
            return object.__getattribute__(self, name)

        def on_cpu(
            self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
        ) -> None:
            return None

    plugin = CountsCalls()
    pipeline = PluginPipeline([plugin], budget_seconds=1.0, timer=ticks)
    result = Agent("h", Stats(clock), pipeline, clock).poll_once()
    assert result.errors == ()
    assert CountsCalls.calls == 0  # on_ram, on_disk... were never looked up nor called
