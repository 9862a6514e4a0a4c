"""Group rules and followed_by patterns with several CEP workers: the same
stream of partitioned sample batches, ticks and deletions, run through the
embedded single engine and through one, two or three workers splitting the
partitions (members and halves handed over on the in-memory bus), makes the
same transitions (times, values, reasons, details, notifications) and ends in
the same alarm states."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendrs.bus import codec, subjects
from opendrs.bus.memory import MemoryBus
from opendrs.bus.partitioning import partition_group, partition_of
from opendrs.cep.engine import CepEngine
from opendrs.cep.handoff import GroupNews, MemberNews, news_to_dict, placement
from opendrs.cep.rule import ThresholdRule
from opendrs.domain.alarm import Alarm, AlarmTransition
from opendrs.domain.clock import ManualClock
from opendrs.domain.event import Event
from opendrs.domain.ports import Subscription
from opendrs.domain.sample import EntityKind, Sample, SampleType
from opendrs.rulefiles.schema import load_rule_file
from opendrs.services.detection import ENTITY_DELETED, HANDOFF_TYPE, Detection

P = 8
HOSTS = [f"h{i}" for i in range(4)]
VMS = [f"vm{i}" for i in range(10)]
TICK = "test.tick"

RULES = """\
rules:
  - name: host_low_ram
    meter: memory.free.percent
    op: "<"
    threshold: 15
    for: 1m
    missing: {policy: no_data, after: 5m}
  - name: guests_hot              # judged where the host's partition is held
    meter: cpu_util
    group_by: [host]
    group_aggregate: max
    op: ">"
    threshold: 90
    n_of_m: [2, 3]
    clear_threshold: 80
    missing: {policy: no_data, after: 3m}
    flapping: {transitions: 3, within: 10m}
  - name: tier_busy               # members from every worker
    meter: cpu_util
    aggregate: max
    window: 2m
    group_by: [tier]
    group_aggregate: mean
    op: ">"
    threshold: 78
    for: 1m
    missing: {policy: no_data, after: 4m}
  - name: tier_thin
    meter: cpu_util
    group_by: [tier]
    group_aggregate: count
    op: "<"
    threshold: 3
    missing: {policy: keep}
  - name: ram_then_oom            # first on the host's worker, then on the VMs'
    followed_by:
      first: host_low_ram
      then: {meter: instance.oom, op: ">", threshold: 0}
      within: 5m
      on: [host]
    clear_for: 15m
  - name: vm_hot                  # one alarm per VM, VMs of a host on several workers
    meter: cpu_util
    op: ">"
    threshold: 90
    missing: {policy: no_data, after: 3m}
  - name: vm_hot_then_oom         # cleared when no VM of the host fires any more
    followed_by:
      first: vm_hot
      then: {meter: instance.oom, op: ">", threshold: 0}
      within: 5m
      on: [host]
  - name: spike_then_guests_hot   # a condition first, a group alarm then
    followed_by:
      first: {meter: cpu_util, op: ">", threshold: 95}
      then: guests_hot
      within: 5m
      on: [host]
    clear_for: 10m
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[ThresholdRule]:
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(RULES)
    return load_rule_file(path)


# --- the stream -------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class Tick:
    time: float


@dataclass(frozen=True)
class Delete:
    entity: str
    time: float


Step = Batch | Tick | Delete


def vm_sample(meter: str, vm: int, value: float, time: float) -> Sample:
    return Sample(
        meter,
        VMS[vm],
        value,
        "%",
        SampleType.GAUGE,
        time,
        EntityKind.INSTANCE,
        HOSTS[vm % len(HOSTS)],
        {"tier": "gold" if vm % 3 else "silver"},
    )


def host_sample(host: int, value: float, time: float) -> Sample:
    return Sample(
        "memory.free.percent", HOSTS[host], value, "%", SampleType.GAUGE, time, EntityKind.HOST
    )


@st.composite
def streams(draw: st.DrawFn) -> list[Step]:
    steps: list[Step] = []
    time = 1_000.0
    deleted: set[str] = set()
    for _ in range(draw(st.integers(5, 30))):
        time += draw(st.sampled_from([20.0, 30.0, 60.0, 120.0]))
        kind = draw(st.sampled_from(["poll", "poll", "poll", "tick", "delete"]))
        if kind == "tick":
            steps.append(Tick(time))
            continue
        if kind == "delete":
            entity = draw(st.sampled_from(VMS))
            deleted.add(entity)
            steps.append(Delete(entity, time))
            continue
        samples: list[Sample] = []
        for vm in draw(st.sets(st.integers(0, len(VMS) - 1), min_size=1)):
            if VMS[vm] in deleted:
                continue
            value = draw(st.sampled_from([10.0, 50.0, 70.0, 85.0, 92.0, 97.0]))
            samples.append(vm_sample("cpu_util", vm, value, time))
            if draw(st.integers(0, 5)) == 0:
                samples.append(vm_sample("instance.oom", vm, 1.0, time))
        for host in draw(st.sets(st.integers(0, len(HOSTS) - 1))):
            samples.append(host_sample(host, draw(st.sampled_from([5.0, 12.0, 40.0])), time))
        steps.append(Batch(tuple(samples)))
    return steps


# --- the setups ---------------------------------------------------------------


@dataclass
class Recorder:
    """An AlarmRepository keeping what was recorded, in order."""

    seen: list[AlarmTransition] = field(default_factory=list)

    def record(self, transition: AlarmTransition) -> None:
        self.seen.append(transition)

    def list_alarms(self, include_ok: bool = False) -> list[Alarm]:
        return []

    def history(self, limit: int = 100) -> list[AlarmTransition]:
        return self.seen[-limit:]


@dataclass
class SavedState:
    """A CepStateRepository in memory, shared by the workers of a setup."""

    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def save_cep_state(
        self, changed: Sequence[Mapping[str, Any]], removed: Sequence[tuple[str, str]] = ()
    ) -> None:
        for key in removed:
            self.rows.pop(key, None)
        for entry in changed:
            # through JSON, as the SQL store keeps it
            self.rows[(str(entry["rule"]), str(entry["entity"]))] = json.loads(json.dumps(entry))

    def load_cep_state(self) -> list[dict[str, Any]]:
        return [dict(self.rows[key]) for key in sorted(self.rows)]


class Setup:
    """Detection processes on one in-memory bus; `homes` None is the embedded
    default (one process consuming every partition, nothing spread)."""

    def __init__(self, rules: list[ThresholdRule], homes: list[list[int]] | None) -> None:
        self.rules = rules
        self.bus = MemoryBus()
        self.clock = ManualClock(0.0)
        self.recorder = Recorder()
        self.state = SavedState()
        self.workers: list[Detection] = []
        self._consuming: dict[int, list[Subscription]] = {}
        for home in homes or [[]]:
            self.workers.append(self.worker(home if homes is not None else None))
        # A tick reaches every worker before anything they hand over is delivered,
        # as one engine advances all its alarms before matching patterns.
        self.bus.subscribe(TICK, self._tick)
        self.handed: list[Event] = []
        self.bus.subscribe(f"{subjects.CEP_HANDOFF}.>", self.handed.append)

    def worker(self, home: list[int] | None) -> Detection:
        detection = Detection(
            self.bus,
            CepEngine(self.rules),
            self.recorder,
            clock=self.clock,
            state=self.state,
            consume=home is None,
        )
        detection.start()
        if home is not None:
            self.hold(detection, home)
        return detection

    def hold(self, detection: Detection, home: list[int]) -> None:
        """What a PartitionWorker and `opendrs server` do as ownership changes."""
        for sub in self._consuming.pop(id(detection), []):
            sub.close()
        detection.hold(home, P)
        self._consuming[id(detection)] = [
            self.bus.subscribe(subjects.samples(p), detection.on_samples, partition_group("cep", p))
            for p in home
        ]

    def die(self, index: int) -> None:
        """A worker stops without a word (its state was saved after each batch)."""
        detection = self.workers.pop(index)
        for sub in self._consuming.pop(id(detection), []):
            sub.close()
        detection.stop()

    def _tick(self, event: Event) -> None:
        self.clock.set(event.time)
        for worker in self.workers:
            worker.tick()

    def run(self, steps: list[Step]) -> None:
        for step in steps:
            if isinstance(step, Batch):
                self.clock.set(step.samples[0].time if step.samples else self.clock.now())
                by_partition: dict[int, list[Sample]] = {}
                for s in step.samples:
                    by_partition.setdefault(partition_of(s.entity, P), []).append(s)
                for p, found in sorted(by_partition.items()):
                    event = codec.samples_event(found, source="test", time=found[0].time)
                    self.bus.publish(subjects.samples(p), event)
            elif isinstance(step, Tick):
                self.bus.publish(TICK, Event(type="test.tick", source="test", time=step.time))
            else:
                self.clock.set(step.time)
                deleted = Event(
                    type="opendrs.inventory.deleted",
                    source="test",
                    time=step.time,
                    data={"entity": step.entity},
                )
                self.bus.publish(ENTITY_DELETED, deleted)
        assert not self.bus.failures, self.bus.failures

    def moves(self) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
        out: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for t in self.recorder.seen:
            out.setdefault((t.rule, t.entity), []).append(
                (
                    t.time,
                    t.previous.value,
                    t.current.value,
                    t.value,
                    t.notified,
                    t.reason,
                    json.dumps(t.details, sort_keys=True),
                )
            )
        return out

    def states(self) -> list[tuple[str, str, str, float]]:
        found = [
            (a.rule, a.entity, a.state.value, a.since)
            for worker in self.workers
            for a in worker.engine.states()
        ]
        return sorted(found)


SPLITS = {
    "one worker": [list(range(P))],
    "two workers": [[0, 1, 2, 3], [4, 5, 6, 7]],
    "three workers": [[0, 3, 6], [1, 4, 7], [2, 5]],
}


def run_all(rules: list[ThresholdRule], steps: list[Step]) -> Iterator[tuple[str, Setup]]:
    for name, homes in [("embedded", None), *SPLITS.items()]:
        setup = Setup(rules, homes)
        setup.run(steps)
        yield name, setup


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=streams())
def test_split_workers_make_the_transitions_one_engine_makes(
    rules: list[ThresholdRule], steps: list[Step]
) -> None:
    results = dict(run_all(rules, steps))
    embedded = results.pop("embedded")
    for name, setup in results.items():
        assert setup.moves() == embedded.moves(), name
        assert setup.states() == embedded.states(), name


def mixed_stream() -> list[Step]:
    """A fixed stream touching every rule: groups across workers, a pattern whose
    first and then are on different workers, silence, a deletion."""
    steps: list[Step] = []
    time = 1_000.0
    for i in range(12):
        time += 60.0
        cpu = [97.0 if (vm + i) % 4 == 0 else 40.0 + 5 * i for vm in range(len(VMS))]
        samples = [vm_sample("cpu_util", vm, value, time) for vm, value in enumerate(cpu)]
        samples += [host_sample(h, 5.0 if i < 8 else 40.0, time) for h in range(len(HOSTS))]
        if i in (3, 4):
            samples += [vm_sample("instance.oom", vm, 1.0, time) for vm in (1, 2, 6)]
        steps.append(Batch(tuple(samples)))
        if i == 6:
            steps.append(Delete("vm1", time + 1))
    steps.append(Tick(time + 600.0))
    return steps


def test_a_fixed_stream_exercises_every_rule_and_every_split(rules: list[ThresholdRule]) -> None:
    results = dict(run_all(rules, mixed_stream()))
    embedded = results.pop("embedded")
    fired = {rule for rule, _ in embedded.moves()}
    assert fired == {r.name for r in rules}  # the stream does exercise every rule
    for name, setup in results.items():
        assert setup.moves() == embedded.moves(), name
        assert setup.states() == embedded.states(), name
    # the split setups did hand members and halves over the bus
    assert not results["one worker"].handed
    assert results["two workers"].handed
    assert results["three workers"].handed


@pytest.mark.parametrize("taken", [2, 3, 4, 5])
def test_group_and_pattern_state_follow_a_takeover_and_a_hand_back(
    rules: list[ThresholdRule], taken: int
) -> None:
    steps = mixed_stream()
    embedded = Setup(rules, None)
    embedded.run(steps)
    split = Setup(rules, SPLITS["two workers"])
    split.run(steps[:taken])
    assert any(entity.startswith("member:") for _, entity in split.state.rows)
    split.die(1)  # the worker of partitions 4-7 goes silent...
    split.hold(split.workers[0], list(range(P)))  # ...and the survivor takes them over
    split.run(steps[taken : taken + 3])
    split.hold(split.workers[0], [0, 1, 2, 3])  # it lets them go (saving) as 4-7 return home
    split.workers.append(split.worker([4, 5, 6, 7]))
    split.run(steps[taken + 3 :])
    assert split.moves() == embedded.moves()
    assert split.states() == embedded.states()


def test_news_reaching_a_worker_that_let_its_partition_go_goes_on_to_the_holder(
    rules: list[ThresholdRule],
) -> None:
    setup = Setup(rules, SPLITS["two workers"])
    left, right = setup.workers
    group = {"tier": "gold"}
    placed = partition_of(placement(group), P)
    holder, other = (left, right) if placed < 4 else (right, left)
    astray = 0 if other is left else 4  # a partition the other worker holds
    news = GroupNews(
        "tier_thin", group, (MemberNews("vm1{tier=gold}", {"instance": "vm1"}, 10.0, 50.0),), 10.0
    )
    event = Event(type=HANDOFF_TYPE, source="test", time=10.0, data=news_to_dict([news]))
    setup.bus.publish(subjects.cep_handoff(astray), event)
    assert not setup.bus.failures
    assert [a.entity for a in holder.engine.states()] == ["tier=gold"]
    assert other.engine.states() == []


def test_a_bad_handoff_is_dead_lettered_and_the_worker_carries_on(
    rules: list[ThresholdRule],
) -> None:
    setup = Setup(rules, SPLITS["two workers"])
    dead: list[Event] = []
    setup.bus.subscribe(subjects.DEAD_LETTER, dead.append)
    bad = Event(type=HANDOFF_TYPE, source="test", time=1.0, data={"groups": [{"rule": 3}]})
    setup.bus.publish(subjects.cep_handoff(0), bad)
    assert len(dead) == 1
    setup.bus.failures.clear()
    setup.run(mixed_stream()[:2])
    assert setup.recorder.seen
