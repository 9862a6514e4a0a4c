"""CPU time of one agent poll cycle for 1000 instances through rates and every
built-in plugin (watermark, statsd, graphite, history, publisher), the driver's
own calls excluded (its counters are generated before the clock starts), next
to a naive agent doing the same work in the same run. statsd and carbon are
loopback sockets drained by another process; the publisher's bus encodes every
event as a network transport does (the decoding is the consumer's work: the
rows with the in-memory bus, and with a real NATS JetStream server when one is
reachable, show the whole picture).

Run: .venv/bin/python benchmarks/agent.py [--instances N] [--cycles N]
Prints a table, then one JSON line:
{"benchmark": "agent", "figures": {...}, "peers": {...}, "targets": {...}, "met": bool}
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import socket
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opendrs.agent.batch import columns_of
from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import MetricPlugin
from opendrs.agent.plugins.graphite import GraphitePlugin
from opendrs.agent.plugins.history import HistoryPlugin
from opendrs.agent.plugins.publisher import PublisherPlugin
from opendrs.agent.plugins.statsd import StatsdPlugin
from opendrs.agent.plugins.watermark import WatermarkPlugin
from opendrs.agent.poller import Agent
from opendrs.bus import codec
from opendrs.bus.memory import MemoryBus
from opendrs.config import (
    AgentSettings,
    GraphiteSettings,
    StatsdSettings,
    WatermarkOverride,
    WatermarkRule,
)
from opendrs.domain.clock import ManualClock
from opendrs.domain.counters import DeviceBytes, HostCounters, InstanceCounters
from opendrs.domain.event import Event
from opendrs.domain.sample import Sample

TARGET_MS = 20.0
NATS_URL = "nats://127.0.0.1:4222"
STEP = 300.0


# --- the host: counters generated up front ------------------------------------


def generate(instances: int, cycles: int) -> list[tuple[HostCounters, list[InstanceCounters]]]:
    """Counters of `cycles` polls of a host with `instances` VMs (1 disk, 1 NIC)."""
    polls = []
    for cycle in range(cycles):
        t = 1_700_000_000.0 + cycle * STEP
        found = []
        for i in range(instances):
            load = 0.05 + (i % 97) / 100.0
            vcpus = 1 + i % 4
            found.append(
                InstanceCounters(
                    instance=f"instance-{i:05d}",
                    time=t,
                    vcpus=vcpus,
                    cpu_time_ns=int(t * 1e9 * vcpus * load),
                    memory_mb=2048,
                    memory_used_mb=1024.0 + i % 512,
                    disks={
                        "vda": DeviceBytes(
                            int(t * 1e5 * load), int(t * 5e4), int(t * load), int(t * 0.5)
                        )
                    },
                    interfaces={
                        f"tap{i:05d}": DeviceBytes(
                            int(t * 1e6 * load), int(t * 2e6 * load), int(t * load), int(t)
                        )
                    },
                    flavor=("m1.small", "m1.large")[i % 2],
                    metadata={f"qos.outbound_bps.tap{i:05d}": "5e9"} if i % 10 == 0 else {},
                )
            )
        host = HostCounters("bench-host", t, 64, int(t * 30e9), 262144, 65536.0)
        polls.append((host, found))
    return polls


class Replay:
    """A StatsSource handing out the pre-generated counters, one poll at a time."""

    def __init__(self, polls: list[tuple[HostCounters, list[InstanceCounters]]]) -> None:
        self._polls = polls
        self.cycle = 0

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        return self._polls[self.cycle][1]

    def host_counters(self, host: str) -> HostCounters:
        return self._polls[self.cycle][0]


# --- the sinks: real sockets on loopback ---------------------------------------


class Sinks:
    """A UDP socket for statsd and a TCP listener for carbon, both drained by
    another process: its CPU time is not the agent's, nor does it contend for
    the agent's GIL (a drain thread in the agent's process would take the GIL
    at every datagram, which no statsd daemon does)."""

    def __init__(self) -> None:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        self.udp_port = int(udp.getsockname()[1])
        self.tcp_port = int(tcp.getsockname()[1])
        self._drainer = multiprocessing.get_context("fork").Process(
            target=_drain, args=(udp, tcp), daemon=True
        )
        self._drainer.start()
        udp.close()
        tcp.close()

    def close(self) -> None:
        self._drainer.terminate()
        self._drainer.join()


def _drain(udp: socket.socket, tcp: socket.socket) -> None:
    """In the sinks' process: read and drop whatever arrives."""

    def datagrams() -> None:
        while True:
            udp.recv(65536)

    def stream(client: socket.socket) -> None:
        while client.recv(1 << 20):
            pass

    threading.Thread(target=datagrams, daemon=True).start()
    while True:
        client, _ = tcp.accept()
        threading.Thread(target=stream, args=(client,), daemon=True).start()


class LastValues:
    """A stand-in for the round-robin store: the last value of every series. It
    reads the columns of the SampleBatch the history plugin hands over, naming
    the series once per layout, as the real store (`HostRecorder`) does."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str], float] = {}
        self._named: tuple[object, list[tuple[str, str, str]]] | None = None

    def record(self, time: float, samples: Sequence[Sample]) -> None:
        columns = columns_of(samples)
        named = self._named
        if named is None or named[0] is not columns.layout:
            layout = columns.layout
            keys = [
                (entity, meter, (labels.get("device") or labels.get("interface") or ""))
                for entity, meter, labels in zip(
                    layout.entities, layout.meters, layout.labels, strict=True
                )
            ]
            named = self._named = (layout, keys)
        self.values.update(zip(named[1], columns.values.tolist(), strict=True))


def rules() -> list[WatermarkRule]:
    return [
        *AgentSettings().watermarks,
        WatermarkRule(
            name="instance_cpu_saturated",
            meter="cpu_util",
            entity="instance",
            op=">=",
            threshold=99.0,
            clear=90.0,
            for_samples=3,
        ),
        WatermarkRule(
            name="instance_over_bandwidth_limit",
            meter="network.outgoing.bytes.rate",
            entity="instance",
            scale=8,
            threshold=math.inf,
            threshold_metadata="qos.outbound_bps.{interface}",
            overrides=[WatermarkOverride(flavor="m1.small", threshold=20e9)],
        ),
    ]


class EncodingBus:
    """A transport that encodes every event to bytes, as NATS and RabbitMQ do
    before they write to their socket, and keeps only the byte count: the
    agent's side of publishing. (The in-memory bus also decodes every event,
    which is the consumer's work, not the agent's.)"""

    def __init__(self) -> None:
        self.bytes = 0

    def publish(self, subject: str, event: Event) -> None:
        self.bytes += len(codec.encode(event))

    def subscribe(self, pattern: str, handler: Any, group: str = "") -> Any:
        raise NotImplementedError

    def drain(self, timeout: float = 5.0) -> bool:
        return True

    def close(self) -> None:
        return None


def plugins(sinks: Sinks, clock: ManualClock, bus: Any = None) -> list[MetricPlugin]:
    return [
        WatermarkPlugin(rules()),
        StatsdPlugin(StatsdSettings(port=sinks.udp_port)),
        GraphitePlugin(GraphiteSettings(port=sinks.tcp_port), clock=clock),
        HistoryPlugin(LastValues()),
        PublisherPlugin(bus or EncodingBus(), 8, "opendrs.agent/bench-host"),
    ]


# --- measuring -------------------------------------------------------------------


def measure(
    cycle: Callable[[int], object], cycles: int, between: Callable[[], None] = lambda: None
) -> list[float]:
    """CPU seconds of this thread for each cycle after the first (rates need two)."""
    cycle(0)
    spent = []
    for i in range(1, cycles):
        between()
        start = time.thread_time()
        cycle(i)
        spent.append(time.thread_time() - start)
    return spent


def agent_cycles(
    polls: list[tuple[HostCounters, list[InstanceCounters]]],
    chosen: list[MetricPlugin],
    *,
    relayout: bool = False,
) -> Callable[[int], object]:
    """Poll `i` of `polls`; with `relayout`, as if the host's instances had
    changed before every poll (the agent's sweep makes its layout again)."""
    clock = ManualClock(polls[0][0].time)
    stats = Replay(polls)
    agent = Agent("bench-host", stats, PluginPipeline(chosen), clock)

    def cycle(i: int) -> object:
        stats.cycle = i
        clock.set(polls[i][0].time)
        sweep = getattr(agent, "_sweep", None)  # (an agent before it had none)
        if relayout and sweep is not None:
            sweep.forget()
        return agent.poll_once()

    return cycle


def through_nats(
    polls: list[tuple[HostCounters, list[InstanceCounters]]],
    sinks: Sinks,
    clock: ManualClock,
    cycles: int,
) -> list[float] | None:
    """The whole cycle publishing to a real NATS JetStream server, each cycle
    until the server confirmed every event: CPU time of the whole process (the
    client's event-loop thread included). None when no server is reachable."""
    try:
        from opendrs.bus.nats import NatsBus

        bus = NatsBus(NATS_URL, namespace="opendrs-bench-agent")
    except Exception as exc:
        print(f"(no NATS server at {NATS_URL}: {exc}; that row is left out)")
        return None
    try:
        cycle = agent_cycles(polls, plugins(sinks, clock, bus))
        cycle(0)
        bus.drain(10.0)
        spent = []
        for i in range(1, cycles):
            start = time.process_time()
            cycle(i)
            bus.drain(10.0)
            spent.append(time.process_time() - start)
        return spent
    finally:
        bus.close()


# --- the naive peer --------------------------------------------------------------


class NaiveAgent:
    """The same work written the obvious way: a sample dict per value, every rule
    tried on every sample, one statsd datagram and one carbon write per line, one
    bus event per sample."""

    def __init__(self, sinks: Sinks) -> None:
        self.last: dict[tuple[str, str], tuple[float, float]] = {}
        self.rules = rules()
        self.state: dict[tuple[str, str], int] = {}
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp_address = ("127.0.0.1", sinks.udp_port)
        self.tcp = socket.create_connection(("127.0.0.1", sinks.tcp_port))
        self.bus = EncodingBus()
        self.history: dict[str, float] = {}

    def rate(self, key: tuple[str, str], value: float, t: float) -> float | None:
        previous = self.last.get(key)
        self.last[key] = (value, t)
        if previous is None or value < previous[0] or t <= previous[1]:
            return None
        return (value - previous[0]) / (t - previous[1])

    def poll(self, host: HostCounters, instances: list[InstanceCounters]) -> None:
        samples: list[dict[str, Any]] = []
        for c in instances:
            base = {"entity": c.instance, "time": c.time, "kind": "instance", "host": host.host}
            samples.append(
                {**base, "meter": "cpu", "value": float(c.cpu_time_ns), "type": "cumulative"}
            )
            r = self.rate((c.instance, "cpu"), float(c.cpu_time_ns), c.time)
            if r is not None:
                util = min(max(r / (c.vcpus * 1e9) * 100, 0.0), 100.0)
                samples.append({**base, "meter": "cpu_util", "value": util, "type": "gauge"})
            samples.append({**base, "meter": "vcpus", "value": float(c.vcpus), "type": "gauge"})
            samples.append(
                {**base, "meter": "memory", "value": float(c.memory_mb), "type": "gauge"}
            )
            samples.append(
                {**base, "meter": "memory.usage", "value": c.memory_used_mb, "type": "gauge"}
            )
            for kind, found, label in (
                ("disk.device", c.disks, "device"),
                ("network", c.interfaces, "interface"),
            ):
                for dev, counts in found.items():
                    names = (
                        ("read.bytes", "write.bytes", "read.requests", "write.requests")
                        if kind == "disk.device"
                        else (
                            "incoming.bytes",
                            "outgoing.bytes",
                            "incoming.packets",
                            "outgoing.packets",
                        )
                    )
                    values = (counts.read, counts.write, counts.read_ops, counts.write_ops)
                    for name, value in zip(names, values, strict=True):
                        meter = f"{kind}.{name}"
                        sample = {
                            **base,
                            "meter": meter,
                            "value": float(value or 0),
                            "type": "cumulative",
                            "labels": {label: dev},
                        }
                        samples.append(sample)
                        if name.endswith("bytes"):
                            r = self.rate((c.instance, meter + dev), float(value or 0), c.time)
                            if r is not None:
                                samples.append(
                                    {
                                        **sample,
                                        "meter": meter + ".rate",
                                        "value": r,
                                        "type": "gauge",
                                    }
                                )
        free = host.memory_free_mb
        samples.append(
            {
                "entity": host.host,
                "time": host.time,
                "kind": "host",
                "host": host.host,
                "meter": "memory.free.percent",
                "value": 100 * free / host.memory_mb,
                "type": "gauge",
            }
        )
        for s in samples:
            for rule in self.rules:
                if rule.meter == s["meter"] and rule.entity == s["kind"]:
                    breach = (
                        s["value"] * rule.scale > rule.threshold
                        if rule.op[0] == ">"
                        else s["value"] < rule.threshold
                    )
                    key = (rule.name, s["entity"])
                    self.state[key] = self.state.get(key, 0) + 1 if breach else 0
        for s in samples:
            name = f"opendrs.{s['kind']}.{s['entity']}.{s['meter']}"
            self.udp.sendto(f"{name}:{s['value']:g}|g".encode(), self.udp_address)
            self.tcp.sendall(f"{name} {s['value']} {int(s['time'])}\n".encode())
            if s["type"] == "gauge":
                self.history[name] = s["value"]
            self.bus.publish(
                "samples.0", Event(type="opendrs.sample", source="naive", time=s["time"], data=s)
            )


# --- the run ---------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=11)
    args = parser.parse_args()
    polls = generate(args.instances, args.cycles)
    sinks = Sinks()
    clock = ManualClock(polls[0][0].time)
    every = plugins(sinks, clock)
    rows: list[tuple[str, list[float]]] = []
    measure(agent_cycles(polls, every), min(args.cycles, 4))  # warm-up, not counted
    rows.append(("rates only (no plugin)", measure(agent_cycles(polls, []), args.cycles)))
    relaid = agent_cycles(polls, [], relayout=True)
    rows.append(("rates only, layout made every poll", measure(relaid, args.cycles)))
    for plugin in every:
        alone = agent_cycles(polls, [plugin])
        rows.append((f"rates + {plugin.name}", measure(alone, args.cycles)))
    # statsd keeps a gauge's last value: the option to send only changed ones. The
    # synthetic load is constant, so every gauge repeats here (a bound: on a real
    # host the rates move and mostly vcpus, memory and the like repeat).
    if "only_changed_gauges" in StatsdSettings.model_fields:  # (not in a run of older code)
        only = StatsdSettings(port=sinks.udp_port, only_changed_gauges=True)
        changed = agent_cycles(polls, [StatsdPlugin(only)])
        rows.append(("rates + statsd, only changed gauges", measure(changed, args.cycles)))
    full = measure(agent_cycles(polls, plugins(sinks, clock)), args.cycles)
    rows.append(("rates + all built-in plugins", full))
    changing = agent_cycles(polls, plugins(sinks, clock), relayout=True)
    rows.append(("all, layout made every poll", measure(changing, args.cycles)))
    memory = measure(agent_cycles(polls, plugins(sinks, clock, MemoryBus())), args.cycles)
    rows.append(("all, in-memory bus decoding too", memory))
    nats = through_nats(polls, sinks, clock, args.cycles)
    if nats is not None:
        rows.append(("all, NATS JetStream, every thread", nats))
    naive = NaiveAgent(sinks)
    naive_times = measure(lambda i: naive.poll(*polls[i]), args.cycles)
    rows.append(("naive agent (peer)", naive_times))
    sinks.close()

    steady = agent_cycles(polls, [])
    steady(0)  # the second poll has every rate: count that one
    samples = len(steady(1).samples)  # type: ignore[attr-defined]
    print(f"agent poll cycle, {args.instances} instances, {samples} samples/cycle, CPU time")
    print(f"{'configuration':<34}{'median ms':>12}{'min ms':>10}{'µs/instance':>14}")
    for name, spent in rows:
        median = statistics.median(spent) * 1e3
        print(
            f"{name:<34}{median:>12.2f}{min(spent) * 1e3:>10.2f}"
            f"{median * 1e3 / args.instances:>14.2f}"
        )
    full_ms = statistics.median(full) * 1e3
    naive_ms = statistics.median(naive_times) * 1e3
    figures = {name: round(statistics.median(spent) * 1e3, 3) for name, spent in rows[:-1]}
    figures["samples_per_cycle"] = samples
    figures["us_per_instance"] = round(full_ms * 1e3 / args.instances, 2)
    result = {
        "benchmark": "agent",
        "figures": figures,
        "peers": {"naive agent": round(naive_ms, 3), "speedup": round(naive_ms / full_ms, 2)},
        "targets": {"rates + all built-in plugins": f"< {TARGET_MS:g} ms per cycle"},
        "met": full_ms < TARGET_MS,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
