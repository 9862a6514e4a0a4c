"""The publisher plugin on the in-memory bus: partitioned sample batches and
alarm transitions, and an agent publishing end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import PollResult
from opendrs.agent.plugins.publisher import PublisherPlugin
from opendrs.agent.plugins.watermark import WatermarkPlugin
from opendrs.agent.poller import Agent
from opendrs.agent.spool import DiskSpool
from opendrs.bus import codec
from opendrs.bus.memory import MemoryBus
from opendrs.bus.partitioning import partition_of
from opendrs.cloud.sim.cloud import SimCloud
from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.specs import HostSpec, VmSpec
from opendrs.cloud.sim.traces import Trace
from opendrs.config import WatermarkRule
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.clock import ManualClock
from opendrs.domain.event import Event
from opendrs.domain.sample import EntityKind, Sample, SampleType


def sample(entity: str, value: float = 1.0) -> Sample:
    return Sample("cpu_util", entity, value, "%", SampleType.GAUGE, 10.0, EntityKind.INSTANCE, "h")


def listen(bus: MemoryBus, pattern: str) -> list[Event]:
    got: list[Event] = []
    bus.subscribe(pattern, got.append)
    return got


def test_samples_go_in_one_batch_per_partition() -> None:
    bus = MemoryBus()
    partitions = 4
    per_subject: dict[str, list[Sample]] = {}

    def collector(subject: str) -> Callable[[Event], None]:
        return lambda event: per_subject.setdefault(subject, []).extend(codec.samples_of(event))

    for p in range(partitions):
        bus.subscribe(f"samples.{p}", collector(f"samples.{p}"))
    samples = tuple(sample(f"vm-{i}", float(i)) for i in range(20))
    plugin = PublisherPlugin(bus, partitions, "opendrs.agent/h")
    plugin.on_poll_done(PollResult(samples, (), "h", 10.0))
    assert sorted(s.entity for got in per_subject.values() for s in got) == sorted(
        s.entity for s in samples
    )
    for subject, got in per_subject.items():
        assert {f"samples.{partition_of(s.entity, partitions)}" for s in got} == {subject}
    assert plugin.events_published == len(per_subject)
    assert plugin.samples_published == 20


def test_transitions_go_to_alarms_agent() -> None:
    bus = MemoryBus()
    got = listen(bus, "alarms.agent")
    transition = AlarmTransition(
        "host_cpu_high",
        "h",
        AlarmState.OK,
        AlarmState.ALARM,
        10.0,
        91.0,
        source="agent:h",
        labels={"host": "h"},
    )
    PublisherPlugin(bus, 2, "opendrs.agent/h").on_poll_done(
        PollResult((), (transition,), "h", 10.0)
    )
    assert len(got) == 1
    event = got[0]
    assert event.type == "opendrs.alarm.transition"
    assert event.subject == "h"
    assert codec.transition_from_dict(event.data) == transition


class FlakyBus(MemoryBus):
    """An in-memory bus that can be switched off."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def publish(self, subject: str, event: Event) -> None:
        if self.down:
            raise ConnectionError("bus unreachable")
        super().publish(subject, event)


def test_events_wait_in_the_spool_while_the_bus_is_down_and_replay_in_order(
    tmp_path: Path,
) -> None:
    bus = FlakyBus()
    got = listen(bus, ">")
    plugin = PublisherPlugin(bus, 2, "src", spool=DiskSpool(tmp_path / "buffer"))
    transition = AlarmTransition("r", "vm-1", AlarmState.OK, AlarmState.ALARM, 2.0, 1.0)
    plugin.on_poll_done(PollResult((sample("vm-1", 1.0),), (), "h", 1.0))
    bus.down = True
    plugin.on_poll_done(PollResult((sample("vm-1", 2.0),), (transition,), "h", 2.0))
    plugin.on_poll_done(PollResult((sample("vm-1", 3.0),), (), "h", 3.0))
    assert len(got) == 1
    assert (len(plugin.spool), plugin.events_buffered) == (3, 3)
    bus.down = False
    plugin.on_poll_done(PollResult((sample("vm-1", 4.0),), (), "h", 4.0))
    assert [e.type for e in got] == [
        "opendrs.samples",
        "opendrs.samples",
        "opendrs.alarm.transition",
        "opendrs.samples",
        "opendrs.samples",
    ]
    values = [codec.samples_of(e)[0].value for e in got if e.type == "opendrs.samples"]
    assert values == [1.0, 2.0, 3.0, 4.0]  # nothing lost, in order
    assert codec.transition_from_dict(got[2].data) == transition
    assert len(plugin.spool) == 0 and plugin.events_replayed == 3 and plugin.dropped == 0


def test_past_the_bound_the_oldest_are_dropped_counted_and_reported(tmp_path: Path) -> None:
    bus = FlakyBus()
    got = listen(bus, ">")
    plugin = PublisherPlugin(bus, 1, "src", spool=DiskSpool(tmp_path, max_events=3))
    bus.down = True
    for t in range(1, 7):
        plugin.on_poll_done(PollResult((sample("vm", float(t)),), (), "h", float(t)))
    assert plugin.dropped == 3
    bus.down = False
    plugin.on_poll_done(PollResult((), (), "h", 7.0))
    values = [codec.samples_of(e)[0].value for e in got if e.type == "opendrs.samples"]
    assert values == [4.0, 5.0, 6.0]
    [report] = [e for e in got if e.type == "opendrs.agent.buffer.dropped"]
    assert report.data == {"dropped": 3, "dropped_total": 3}
    plugin.on_poll_done(PollResult((), (), "h", 8.0))
    assert len([e for e in got if e.type == "opendrs.agent.buffer.dropped"]) == 1  # once


def test_the_disk_spool_survives_a_restart_of_the_agent(tmp_path: Path) -> None:
    bus = FlakyBus()
    bus.down = True
    first = PublisherPlugin(bus, 1, "src", spool=DiskSpool(tmp_path))
    for t in (1.0, 2.0):
        first.on_poll_done(PollResult((sample("vm", t),), (), "h", t))
    bus.down = False
    got = listen(bus, "samples.>")
    again = PublisherPlugin(bus, 1, "src", spool=DiskSpool(tmp_path))  # a new process
    assert again.replay()
    assert [codec.samples_of(e)[0].value for e in got] == [1.0, 2.0]
    assert len(DiskSpool(tmp_path)) == 0  # the replay was committed


def test_agent_publishes_samples_and_watermark_transitions() -> None:
    clock = ManualClock()
    power = PowerModel([100.0] * 11)
    values = np.full(289, 0.95)
    cloud = SimCloud(
        [HostSpec("h1", 1, 1000.0, 4096, 50, 1000.0, power)],
        [VmSpec("vm", 1, 1000.0, 1024, 10, Trace("vm", values))],
        {"vm": "h1"},
        clock,
    )
    bus = MemoryBus()
    samples = listen(bus, "samples.>")
    alarms = listen(bus, "alarms.agent")
    rule = WatermarkRule(name="hot", meter="compute.node.cpu.percent", threshold=80.0)
    pipeline = PluginPipeline(
        [WatermarkPlugin([rule]), PublisherPlugin(bus, 8, "opendrs.agent/h1")]
    )
    agent = Agent("h1", cloud, pipeline, clock)
    for _ in range(3):
        agent.poll_once()
        clock.advance(300)
    assert len(alarms) == 1  # fired on the second poll, and only once
    assert codec.transition_from_dict(alarms[0].data).current == AlarmState.ALARM
    published = [s for e in samples for s in codec.samples_of(e)]
    assert {s.entity for s in published} == {"vm", "h1"}
    cpu = [s.value for s in published if s.meter == "compute.node.cpu.percent"]
    assert cpu == pytest.approx([95.0, 95.0])
    assert bus.failures == {}
