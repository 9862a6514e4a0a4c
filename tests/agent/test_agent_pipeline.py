"""The plugin pipeline: order, transitions, and isolation of failing plugins."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import Hook, PollContext, PollResult, QuietHooks
from opendrs.agent.poller import Agent
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.clock import ManualClock
from opendrs.domain.counters import DeviceBytes, HostCounters, InstanceCounters
from opendrs.domain.sample import Sample


class FixedStats:
    """Two instances and a host whose counters grow with time."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def host_counters(self, host: str) -> HostCounters:
        t = self.clock.now()
        return HostCounters(host, t, 4, int(t * 1e9), 8192, 4096.0)

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        t = self.clock.now()
        return [
            InstanceCounters(
                name,
                t,
                1,
                int(t * 0.5e9),
                1024,
                512.0,
                disks={"vda": DeviceBytes(int(t), int(t))},
                interfaces={"vnet0": DeviceBytes(int(t), int(t))},
            )
            for name in ("vm-a", "vm-b")
        ]


def transition(rule: str) -> AlarmTransition:
    return AlarmTransition(rule, "e", AlarmState.OK, AlarmState.ALARM, 0.0, 1.0)


class Recorder(QuietHooks):
    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.calls: list[tuple[str, str]] = []
        self.results: list[PollResult] = []

    def on_cpu(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        self.calls.append(("on_cpu", instance.instance))
        ctx.report(transition(f"{self.name}-cpu"))

    def on_ram(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        self.calls.append(("on_ram", instance.instance))

    def on_disk(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        self.calls.append(("on_disk", instance.instance))

    def on_bandwidth(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        self.calls.append(("on_bandwidth", instance.instance))

    def on_host(self, ctx: PollContext, host: HostCounters, samples: Sequence[Sample]) -> None:
        self.calls.append(("on_host", host.host))

    def on_poll_done(self, result: PollResult) -> None:
        self.results.append(result)


class Failing(Recorder):
    """Raises in on_ram in the polls `failing` says (the test sets `poll`)."""

    def __init__(self, name: str, failing: list[bool]) -> None:
        super().__init__(name)
        self.failing = failing
        self.poll = 0

    def on_ram(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        super().on_ram(ctx, instance, samples)
        if self.failing[min(self.poll, len(self.failing) - 1)]:
            ctx.report(transition("from-a-failing-call"))
            raise RuntimeError("boom")


def agent_with(*plugins: Recorder, limit: int = 3) -> tuple[Agent, ManualClock, PluginPipeline]:
    clock = ManualClock(1000.0)
    pipeline = PluginPipeline(plugins, failures_before_disable=limit)
    return Agent("host-1", FixedStats(clock), pipeline, clock), clock, pipeline


def test_hooks_are_called_per_instance_then_host_then_poll_done() -> None:
    recorder = Recorder()
    agent, _, _ = agent_with(recorder)
    result = agent.poll_once()
    assert recorder.calls == [
        ("on_cpu", "vm-a"),
        ("on_ram", "vm-a"),
        ("on_disk", "vm-a"),
        ("on_bandwidth", "vm-a"),
        ("on_cpu", "vm-b"),
        ("on_ram", "vm-b"),
        ("on_disk", "vm-b"),
        ("on_bandwidth", "vm-b"),
        ("on_host", "host-1"),
    ]
    assert recorder.results == [result]
    assert [t.rule for t in result.transitions] == ["recorder-cpu", "recorder-cpu"]


def test_raising_plugin_is_skipped_for_the_poll_and_disabled_after_n() -> None:
    bad = Failing("bad", [True])
    good = Recorder("good")
    agent, clock, pipeline = agent_with(bad, good, limit=3)
    for poll in range(5):
        good.calls.clear()
        bad.calls.clear()
        result = agent.poll_once()
        clock.advance(60)
        assert len(good.calls) == 9  # the others go on, every hook
        if poll < 3:
            # skipped after its first failure in the poll: one on_cpu and one on_ram
            assert bad.calls == [("on_cpu", "vm-a"), ("on_ram", "vm-a")]
            assert "plugin bad failed" in result.errors
        else:
            assert bad.calls == []
        # a failing call's reports are dropped; its earlier successful call's are kept
        rules = [t.rule for t in result.transitions]
        assert "from-a-failing-call" not in rules
    assert pipeline.failures["bad"] == 3
    assert pipeline.disabled == ["bad"]
    assert pipeline.enabled == ["good"]
    assert len(good.results) == 5


def test_only_consecutive_failures_disable() -> None:
    flaky = Failing("flaky", [True, False, True, True, False, True, True, False])
    agent, clock, pipeline = agent_with(flaky, limit=3)
    for poll in range(8):
        flaky.poll = poll
        agent.poll_once()
        clock.advance(60)
    assert pipeline.failures["flaky"] == 5
    assert pipeline.disabled == []


def test_failing_poll_done_is_isolated_and_a_plugin_can_be_enabled_again() -> None:
    class BadFlush(Recorder):
        def on_poll_done(self, result: PollResult) -> None:
            raise RuntimeError("bus down")

    bad, good = BadFlush("flush"), Recorder("good")
    agent, _, pipeline = agent_with(bad, good, limit=1)
    result = agent.poll_once()
    assert result.errors == ("plugin flush failed",)
    assert len(good.results) == 1
    assert pipeline.disabled == ["flush"]
    pipeline.enable("flush")
    assert pipeline.enabled == ["flush", "good"]


def test_duplicate_names_and_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="unique: twice"):
        PluginPipeline([Recorder("twice"), Recorder("twice")])
    with pytest.raises(ValueError, match="at least 1"):
        PluginPipeline([], failures_before_disable=0)


def test_poll_run_can_be_driven_directly() -> None:
    recorder = Recorder()
    run = PluginPipeline([recorder]).begin("h", 5.0)
    counters = InstanceCounters("vm", 5.0, 1, 0, 1)
    run.call(Hook.CPU, counters, [])
    result = run.finish([], ["something failed"])
    assert (result.host, result.time, result.errors) == ("h", 5.0, ("something failed",))
    assert len(result.transitions) == 1
