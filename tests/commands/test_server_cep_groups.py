"""`opendrs server --role cep` over NATS JetStream and RabbitMQ, group rules and
patterns: two worker processes owning partitions 0-3 and 4-7 hand each other
group members and pattern halves (`cep.handoff.<partition>`) and record exactly
the transitions the engine computes in-process over every sample. Needs NATS on
127.0.0.1:4222 and RabbitMQ (guest/guest) on 127.0.0.1:5672: skips without
them, fails under CI=true."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path

import pytest

from cep_worker import WAIT, Worker
from needs import unavailable
from opendrs.bus import codec, subjects
from opendrs.bus.nats import NatsBus
from opendrs.bus.partitioning import partition_of
from opendrs.bus.rabbitmq import RabbitBus
from opendrs.bus.transports import open_bus
from opendrs.cep.engine import CepEngine
from opendrs.config import BusSettings
from opendrs.domain.clock import WallClock
from opendrs.domain.sample import EntityKind, Sample, SampleType
from opendrs.rulefiles.schema import load_rule_file
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore

PARTITIONS = 8
HOSTS = [f"h{i}" for i in range(4)]
VMS = [f"vm{i}" for i in range(16)]

# `min` over members that move together: a group's alarm does not depend on the
# order in which its members' news reach the judge within a poll.
RULES = """\
rules:
  - name: tier_hot
    meter: cpu_util
    group_by: [tier]
    group_aggregate: min
    op: ">"
    threshold: 80
    missing: {policy: keep}
  - name: tier_full               # every member counts, from both workers
    meter: cpu_util
    group_by: [tier]
    group_aggregate: count
    op: ">="
    threshold: 8
    missing: {policy: keep}
  - name: host_guest_peak         # one guest at a time peaks, on the other worker
    meter: cpu_util
    group_by: [host]
    group_aggregate: max
    op: ">"
    threshold: 90
    missing: {policy: keep}
  - name: host_low_ram
    meter: memory.free.percent
    op: "<"
    threshold: 15
    missing: {policy: keep}
  - name: ram_then_oom
    followed_by:
      first: host_low_ram
      then: {meter: instance.oom, op: ">", threshold: 0}
      within: 10m
      on: [host]
    clear_for: 1h
"""

Moves = set[tuple[str, str, str, str, float]]
PEAKS = {1: 1, 5: 4}  # step: the VM whose cpu_util peaks
OOMS = (1, 4, 5, 9)  # VMs out of memory at step 3 (host h0, h1, h1, h2)


SERVERS = {
    "nats": ("nats://127.0.0.1:4222", 4222),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672/", 5672),
}


@pytest.fixture(params=sorted(SERVERS))
def transport(request: pytest.FixtureRequest) -> str:
    name = str(request.param)
    try:
        with socket.create_connection(("127.0.0.1", SERVERS[name][1]), timeout=1.0):
            pass
    except OSError:
        unavailable(f"{name} is not running on 127.0.0.1:{SERVERS[name][1]}")
    return name


def vm(i: int, meter: str, value: float, time: float) -> Sample:
    return Sample(
        meter,
        VMS[i],
        value,
        "%",
        SampleType.GAUGE,
        time,
        EntityKind.INSTANCE,
        HOSTS[i // 4],
        {"tier": "gold" if i % 2 else "silver"},
    )


def workload(start: float) -> list[list[Sample]]:
    """Polls in which every group turns (so each poll makes transitions to wait
    for); a host runs out of RAM, then its guests run out of memory. The workers
    tick on the wall clock: `start` is now, so no `clear_for` runs out."""
    polls: list[list[Sample]] = []
    for step in range(8):
        time = start + 60 * step
        hot = 85.0 if step % 2 == 0 else 20.0
        peak = PEAKS.get(step)
        poll = [vm(i, "cpu_util", 99.0 if i == peak else hot, time) for i in range(len(VMS))]
        low = step in (2, 3)
        poll += [
            Sample("memory.free.percent", h, 5.0 if low and h in ("h0", "h1") else 50.0, "%",
                   SampleType.GAUGE, time, EntityKind.HOST)
            for h in HOSTS
        ]  # fmt: skip
        if step == 3:
            poll += [vm(i, "instance.oom", 1.0, time) for i in OOMS]
        polls.append(poll)
    return polls


def expected_by_poll(rules: Path, start: float) -> list[Moves]:
    engine = CepEngine(load_rule_file(rules))
    found: list[Moves] = []
    for poll in workload(start):
        found.append(
            {
                (t.rule, t.entity, t.previous.value, t.current.value, t.time)
                for t in engine.process(poll).transitions
            }
        )
    return found


def remove_namespace(bus: object) -> None:
    """The test's streams, consumers and queues go with it."""
    if isinstance(bus, NatsBus | RabbitBus):
        bus.remove_namespace()


def recorded(store: SqlStore) -> Moves:
    return {
        (t.rule, t.entity, t.previous.value, t.current.value, t.time)
        for t in store.history(limit=100_000)
    }


def wait_for(store: SqlStore, count: int) -> Moves:
    pause = threading.Event()
    for _ in range(int(WAIT * 10)):
        found = recorded(store)
        if len(found) >= count:
            return found
        pause.wait(0.1)  # polling other processes' writes
    return recorded(store)


def test_two_workers_judge_groups_and_patterns_as_one_engine_does(
    tmp_path: Path, transport: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    url = f"sqlite:///{tmp_path / 'cep.db'}"
    config = tmp_path / "settings.yaml"
    config.write_text(
        f"database: {{url: '{url}'}}\n"
        f"bus: {{transport: {transport}, url: '{SERVERS[transport][0]}', partitions: 8}}\n"
        f"cep: {{rules: [], rule_files: ['{rules}'], notify: {{log: false}}}}\n"
    )
    start = float(int(WallClock().now()))
    expected = expected_by_poll(rules, start)
    every = set().union(*expected)
    assert {rule for rule, *_ in every} == {
        "tier_hot",
        "tier_full",
        "host_guest_peak",
        "host_low_ram",
        "ram_then_oom",
    }

    # each group has members on both workers; peaks and OOMs happen on the worker
    # that does not judge their host's group and pattern
    def left(name: str) -> bool:
        return partition_of(name, PARTITIONS) < 4

    for tier in ("gold", "silver"):
        assert {left(VMS[i]) for i in range(len(VMS)) if (tier == "gold") == bool(i % 2)} == {
            True,
            False,
        }
    assert all(left(VMS[i]) != left(HOSTS[i // 4]) for i in (*PEAKS.values(), 1, 4))
    namespace = f"t{uuid.uuid4().hex[:10]}"
    workers = [
        Worker(config, namespace, "0-3", "left"),
        Worker(config, namespace, "4-7", "right"),
    ]
    database = open_database(url)
    bus = open_bus(
        BusSettings(transport=transport, url=SERVERS[transport][0]),  # type: ignore[arg-type]
        namespace=namespace,
    )
    try:
        workers[0].wait_holding("0,1,2,3")
        workers[1].wait_holding("4,5,6,7")
        store = SqlStore(database)
        handed: list[object] = []
        bus.subscribe(f"{subjects.CEP_HANDOFF}.>", handed.append)
        wanted: Moves = set()
        for poll, moves in zip(workload(start), expected, strict=True):
            by_partition: dict[int, list[Sample]] = {}
            for s in poll:
                by_partition.setdefault(partition_of(s.entity, PARTITIONS), []).append(s)
            for partition, samples in sorted(by_partition.items()):
                event = codec.samples_event(samples, source="test", time=samples[0].time)
                bus.publish(subjects.samples(partition), event)
            assert bus.drain(timeout=WAIT)
            wanted |= moves
            # one poll at a time: the next starts once this one's effects are in
            found = wait_for(store, len(wanted))
            assert found == wanted
        assert handed  # the workers did hand members and halves to each other
    finally:
        codes = [w.stop() for w in workers]
        remove_namespace(bus)
        bus.close()
        database.close()
    assert codes == [0, 0], [w.output for w in workers]
