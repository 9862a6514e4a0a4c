"""CEP throughput: samples/s through partitioning, windows and 100 threshold
rules on one core, vectorised per batch (cep/vector.py), against the scalar
engine (cep/engine.py) on the same rules and data in the same run; then the
same through the in-memory bus and end to end over NATS JetStream and RabbitMQ.

Workload: 5,000 instances x 10 meters = 50,000 series, one sample per series per
minute, each series wandering around its own level (AR(1)); 100 rules, 10 per
meter: last / for 2m / mean, max, min over 5m / N-of-M 3 of 5 / hysteresis with
clear_for / low-side thresholds; alarms fire and clear throughout (the table
gives the number of transitions). Samples are split into 8 partitions by
the entity's CRC-32 (as the bus routes them) and handed to the worker owning
the partition (two workers, 0-3 and 4-7, one engine each), all on this one core.

Bus paths carry columnar batches (2,000 samples per event: series keys, times,
values) through the real codec and transport; the consumer (its series known
from a first poll, as in steady state) interns the keys and evaluates them in
micro-batches of 25,000 samples. NATS and RabbitMQ must run on 127.0.0.1 (see
DEVELOPERS.md); a transport that cannot be reached is reported as not run.

Run: .venv/bin/python benchmarks/cep.py [--steps N] [--instances N]
Last line: one JSON object (see DESIGN.md, "Quality bars")."""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from opendrs.bus.memory import MemoryBus
from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import Missing, MissingPolicy, Op, ThresholdRule
from opendrs.cep.vector import VectorEngine
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus
from opendrs.domain.sample import EntityKind, Sample, SampleType

console = Console(stderr=True)
METERS = [f"meter{i}" for i in range(10)]
PARTITIONS = 8
WORKERS = 2
CAPACITY = 8  # samples kept per series: a 5-minute window at one a minute holds 5
STEP = 60.0
BATCH = 2_000
MICRO_BATCH = 25_000
TARGET = 1_000_000


def build_rules() -> list[ThresholdRule]:
    """10 rules per meter, on values that mostly stay within 0..100."""
    rules: list[ThresholdRule] = []
    missing = Missing(MissingPolicy.NO_DATA, 600.0)
    for meter in METERS:
        shapes: list[dict[str, Any]] = [
            {"threshold": 99.0},
            {"threshold": 98.0, "for_seconds": 120.0},
            {"threshold": 97.0, "aggregate": "mean", "window": 300.0},
            {"threshold": 99.5, "aggregate": "max", "window": 300.0},
            {"threshold": 96.0, "aggregate": "min", "window": 120.0},
            {"threshold": 97.0, "n_of_m": (3, 5)},
            {"threshold": 98.0, "clear_threshold": 90.0, "clear_for": 120.0},
            {"threshold": 1.0, "op": Op.LT},
            {"threshold": 2.0, "op": Op.LE, "for_seconds": 60.0},
            {"threshold": 99.0, "clear_threshold": 95.0, "clear_samples": 2},
        ]
        for i, shape in enumerate(shapes):
            rules.append(ThresholdRule(name=f"{meter}_r{i}", meter=meter, missing=missing, **shape))
    return rules


class Workload:
    def __init__(self, instances: int, steps: int, seed: int = 7) -> None:
        self.instances = instances
        self.steps = steps
        self.keys = [(m, f"vm{i}") for i in range(instances) for m in METERS]
        # Autocorrelated like real metrics: each series wanders around its own level
        # (AR(1), phi 0.8, sd 10), so excursions over a threshold last a while.
        rng = np.random.default_rng(seed)
        level = rng.uniform(20.0, 80.0, size=len(self.keys))
        values = np.empty((steps, len(self.keys)))
        current = level + rng.normal(0.0, 10.0, size=len(self.keys))
        for step in range(steps):
            current = level + 0.8 * (current - level) + rng.normal(0.0, 6.0, size=len(self.keys))
            values[step] = current
        self.values = values
        self.partition = np.array(
            [zlib.crc32(entity.encode()) % PARTITIONS for _, entity in self.keys]
        )

    @property
    def samples(self) -> int:
        return self.steps * len(self.keys)


def labels_of(entity: str) -> dict[str, str]:
    return {"instance": entity, "host": f"h{int(entity[2:]) // 20}"}


def run_vector(work: Workload, rules: list[ThresholdRule]) -> dict[str, Any]:
    """Two workers (partitions 0-3 and 4-7, one engine each, as `opendrs server
    --role cep --partitions 0-3` runs), both on this core: every batch is routed
    by partition to its worker, then evaluated. Series registered beforehand."""
    owner = work.partition // (PARTITIONS // WORKERS)
    engines = [VectorEngine(rules, capacity=CAPACITY) for _ in range(WORKERS)]
    local = np.zeros(len(work.keys), dtype=np.int64)
    for index, (meter, entity) in enumerate(work.keys):
        local[index] = engines[owner[index]].register(meter, labels_of(entity))
    transitions = 0
    started = time.process_time()
    for step in range(work.steps):
        now = step * STEP
        values = work.values[step]
        times = np.full(len(work.keys), now)
        # routing: the partition of every sample, then each worker's share
        partition = work.partition
        order = np.argsort(partition, kind="stable")
        bounds = np.searchsorted(
            partition[order], np.arange(0, PARTITIONS + 1, PARTITIONS // WORKERS)
        )
        for w, engine in enumerate(engines):
            pick = order[bounds[w] : bounds[w + 1]]
            transitions += len(engine.process(local[pick], times[pick], values[pick]))
            transitions += len(engine.advance(now))
    elapsed = time.process_time() - started
    return {"samples_per_s": work.samples / elapsed, "seconds": elapsed, "transitions": transitions}


def run_scalar(work: Workload, rules: list[ThresholdRule], steps: int) -> dict[str, Any]:
    engine = CepEngine(rules)
    batches = [
        [
            Sample(
                m,
                e,
                float(work.values[step, i]),
                "%",
                SampleType.GAUGE,
                step * STEP,
                EntityKind.INSTANCE,
                labels_of(e)["host"],
            )
            for i, (m, e) in enumerate(work.keys)
        ]
        for step in range(steps)
    ]
    transitions = 0
    started = time.process_time()
    for step, batch in enumerate(batches):
        transitions += len(engine.process(batch).transitions)
        transitions += len(engine.advance(step * STEP).transitions)
    elapsed = time.process_time() - started
    count = steps * len(work.keys)
    return {"samples_per_s": count / elapsed, "seconds": elapsed, "transitions": transitions}


class ColumnConsumer:
    """Receives columnar sample events, interns their keys, and evaluates them in
    micro-batches of at least MICRO_BATCH samples (an engine call has a fixed cost)."""

    def __init__(self, rules: list[ThresholdRule], expected: int) -> None:
        self.engine = VectorEngine(rules, capacity=CAPACITY)
        self._ids: dict[str, int] = {}
        self._pending: list[tuple[Any, Any, Any]] = []
        self._pending_count = 0
        self.received = 0
        self.transitions = 0
        self._expected = expected
        self.done = threading.Event()

    def warm(self, keys: Iterable[str]) -> None:
        for key in keys:
            meter, entity = key.split("|")
            self._ids[key] = self.engine.register(meter, labels_of(entity))

    def __call__(self, event: Event) -> None:
        keys = event.data["keys"]
        ids = self._ids
        sids = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            sid = ids.get(key)
            if sid is None:
                meter, entity = key.split("|")
                sid = ids[key] = self.engine.register(meter, labels_of(entity))
            sids[i] = sid
        times = np.asarray(event.data["time"], dtype=np.float64)
        values = np.asarray(event.data["value"], dtype=np.float64)
        self._pending.append((sids, times, values))
        self._pending_count += len(keys)
        self.received += len(keys)
        if self._pending_count >= MICRO_BATCH or self.received >= self._expected:
            parts = self._pending
            self._pending, self._pending_count = [], 0
            self.transitions += len(
                self.engine.process(
                    np.concatenate([p[0] for p in parts]),
                    np.concatenate([p[1] for p in parts]),
                    np.concatenate([p[2] for p in parts]),
                )
            )
        if self.received >= self._expected:
            self.done.set()


def column_events(work: Workload) -> list[Event]:
    keys = [f"{m}|{e}" for m, e in work.keys]
    events = []
    for step in range(work.steps):
        for start in range(0, len(keys), BATCH):
            chunk = slice(start, start + BATCH)
            events.append(
                Event(
                    type="opendrs.samples.columns",
                    source="bench",
                    time=step * STEP,
                    data={
                        "keys": keys[chunk],
                        "time": [step * STEP] * len(keys[chunk]),
                        "value": work.values[step, chunk].tolist(),
                    },
                )
            )
    return events


def run_bus(open_bus: Callable[[], Bus], work: Workload, rules: list[ThresholdRule],
            name: str) -> dict[str, Any]:  # fmt: skip
    """Publish everything, consume in one subscription, wall time to the last sample."""
    events = column_events(work)
    try:
        bus = open_bus()
    except Exception as exc:  # an unreachable server is reported, not fatal
        return {"error": f"{type(exc).__name__}: {exc}"}
    consumer = ColumnConsumer(rules, work.samples)
    consumer.warm(f"{m}|{e}" for m, e in work.keys)
    subject = f"bench.cep.{name}.{os.getpid()}"
    try:
        sub = bus.subscribe(subject, consumer)
        started = time.perf_counter()
        cpu_started = time.process_time()
        for event in events:
            bus.publish(subject, event)
        finished = consumer.done.wait(timeout=600)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        sub.close()
    finally:
        bus.close()
    if not finished:
        return {"error": f"received {consumer.received} of {work.samples} samples"}
    return {
        "samples_per_s": work.samples / elapsed,
        "samples_per_cpu_s": work.samples / cpu,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "transitions": consumer.transitions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5_000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scalar-steps", type=int, default=3)
    parser.add_argument("--bus-steps", type=int, default=10)
    args = parser.parse_args()
    rules = build_rules()
    work = Workload(args.instances, args.steps)
    console.print(f"{len(rules)} rules, {len(work.keys):,} series, {work.samples:,} samples")

    # best of a few runs: the box is shared, and interference only ever slows a run
    runs = [run_vector(work, rules) for _ in range(args.repeat)]
    vector = max(runs, key=lambda run: run["samples_per_s"])
    median = sorted(run["samples_per_s"] for run in runs)[len(runs) // 2]
    scalar = run_scalar(work, rules, min(args.scalar_steps, args.steps))
    bus_work = Workload(args.instances, min(args.bus_steps, args.steps))
    paths: dict[str, dict[str, Any]] = {"memory": run_bus(MemoryBus, bus_work, rules, "memory")}

    def nats() -> Bus:
        from opendrs.bus.nats import NatsBus

        return NatsBus(namespace=f"bench{os.getpid()}")

    def rabbit() -> Bus:
        from opendrs.bus.rabbitmq import RabbitBus

        return RabbitBus(namespace=f"bench{os.getpid()}")

    paths["nats"] = run_bus(nats, bus_work, rules, "nats")
    paths["rabbitmq"] = run_bus(rabbit, bus_work, rules, "rabbitmq")

    table = Table(title="CEP samples/s (one core; 100 rules, 8 partitions, 5-minute windows)")
    for column in ("path", "samples/s", "seconds", "transitions", "note"):
        table.add_column(column, justify="right" if column != "path" else "left")
    note = f"{work.samples:,} samples; best of {args.repeat}, median {median:,.0f}"
    table.add_row("vectorised, in memory", f"{vector['samples_per_s']:,.0f}",
                  f"{vector['seconds']:.2f} cpu", str(vector["transitions"]), note)  # fmt: skip
    table.add_row("scalar engine (peer)", f"{scalar['samples_per_s']:,.0f}",
                  f"{scalar['seconds']:.2f} cpu", str(scalar["transitions"]),
                  f"{args.scalar_steps} steps")  # fmt: skip
    for name, found in paths.items():
        if "error" in found:
            table.add_row(f"bus: {name}", "not run", "", "", found["error"][:60])
        else:
            note = (f"{bus_work.samples:,} samples, {BATCH}/event; "
                    f"{found['samples_per_cpu_s']:,.0f}/cpu-s (all threads)")  # fmt: skip
            rate, wall = f"{found['samples_per_s']:,.0f}", f"{found['seconds']:.2f} wall"
            table.add_row(f"bus: {name}, end to end", rate, wall, str(found["transitions"]), note)
    console.print(table)

    ratio = vector["samples_per_s"] / scalar["samples_per_s"]
    console.print(f"vectorised / scalar: {ratio:.0f}x")
    figures: dict[str, Any] = {
        "vector_samples_per_s": round(vector["samples_per_s"]),
        "vector_samples_per_s_median": round(median),
        "vector_vs_scalar": round(ratio, 1),
        "rules": len(rules),
        "series": len(work.keys),
        "partitions": PARTITIONS,
    }
    for name, found in paths.items():
        if "samples_per_s" in found:
            figures[f"{name}_end_to_end_samples_per_s"] = round(found["samples_per_s"])
            figures[f"{name}_end_to_end_samples_per_cpu_s"] = round(found["samples_per_cpu_s"])
    peers = {"scalar_engine_samples_per_s": round(scalar["samples_per_s"])}
    targets = {"vector_samples_per_s": f">= {TARGET}"}
    met = vector["samples_per_s"] >= TARGET
    print(json.dumps({"benchmark": "cep", "figures": figures, "peers": peers,
                      "targets": targets, "met": met}))  # fmt: skip


if __name__ == "__main__":
    main()
