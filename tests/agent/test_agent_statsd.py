"""The statsd plugin: line protocol, packing under the MTU, sample rate, and a
real statsd daemon (npm's `statsd`, installed by the fixture) reading what the
plugin sent and flushing it to a file through a small JSON backend."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from needs import unavailable
from opendrs.agent.plugin import PollResult
from opendrs.agent.plugins.statsd import StatsdPlugin
from opendrs.config import StatsdSettings
from opendrs.domain.sample import EntityKind, Sample, SampleType

STATSD_VERSION = "0.9.0"
STATSD_DIR = Path(
    os.environ.get(
        "OPENDRS_STATSD_DIR", Path(tempfile.gettempdir()) / f"opendrs-statsd-{STATSD_VERSION}"
    )
)

# A statsd backend of our own: every flush appended to a file as one JSON line.
JSON_BACKEND = """
var fs = require('fs');
exports.init = function (startup, config, events) {
  events.on('flush', function (timestamp, metrics) {
    fs.appendFileSync(config.jsonfile.path, JSON.stringify({
      time: timestamp, counters: metrics.counters, gauges: metrics.gauges
    }) + '\\n');
  });
  return true;
};
"""


def gauge(meter: str, entity: str, value: float, **labels: str) -> Sample:
    return Sample(
        meter, entity, value, "%", SampleType.GAUGE, 1.0, EntityKind.INSTANCE, "h", labels
    )


def counter(meter: str, entity: str, value: float, **labels: str) -> Sample:
    kind = SampleType.CUMULATIVE
    return Sample(meter, entity, value, "B", kind, 1.0, EntityKind.INSTANCE, "h", labels)


def test_gauges_and_counter_increases_in_statsd_lines() -> None:
    plugin = StatsdPlugin(StatsdSettings(prefix="dc1.agents"))
    first = plugin.lines(
        [
            gauge("cpu_util", "vm.1", 42.5),
            counter("network.incoming.bytes", "vm.1", 1000, interface="tap 0"),
        ]
    )
    assert first == ["dc1.agents.instance.vm_1.cpu_util:42.5|g"]  # a counter needs two values
    second = plugin.lines(
        [
            counter("network.incoming.bytes", "vm.1", 1600, interface="tap 0"),
            gauge("delta", "vm.1", -3.0),
        ]
    )
    assert second == [
        "dc1.agents.instance.vm_1.network.incoming.bytes.tap_0:600|c",
        "dc1.agents.instance.vm_1.delta:0|g",
        "dc1.agents.instance.vm_1.delta:-3|g",
    ]
    # a decrease is a reset: nothing counted, the new value is the base
    assert plugin.lines([counter("network.incoming.bytes", "vm.1", 10, interface="tap 0")]) == []


def test_sample_rate_keeps_a_fraction_of_counter_lines_and_says_so() -> None:
    plugin = StatsdPlugin(StatsdSettings(sample_rate=0.25), rng=random.Random(7))
    kept: list[str] = []
    for step in range(400):
        kept.extend(
            plugin.lines([counter("cpu", "vm", float(step * 10)), gauge("cpu_util", "vm", 1.0)])
        )
    counters = [line for line in kept if "|c" in line]
    gauges = [line for line in kept if line.endswith("|g")]
    assert len(gauges) == 400  # gauges are never sampled
    assert 60 <= len(counters) <= 140  # about a quarter of 399 increases
    assert all(line.endswith(":10|c|@0.25") for line in counters)


def test_packets_stay_under_the_limit_and_overlong_lines_are_counted() -> None:
    plugin = StatsdPlugin(StatsdSettings(max_packet=100))
    lines = [f"opendrs.instance.vm-{i:04d}.cpu_util:{i}.5|g" for i in range(50)]
    packets = plugin.packets([*lines, "x" * 101])
    assert all(len(p) <= 100 for p in packets)
    assert b"\n".join(packets).decode().split("\n") == lines
    assert plugin.lines_too_long == 1
    default = StatsdPlugin(StatsdSettings())
    long_lines = [
        f"opendrs.instance.vm-{i:05d}.disk.device.read.bytes.rate.vda:1e+06|g" for i in range(500)
    ]
    big = default.packets(long_lines)
    assert max(len(p) for p in big) <= 1432
    # densely packed: the next packet's first line would not have fitted
    for packet, following in itertools.pairwise(big):
        assert len(packet) + 1 + len(following.split(b"\n")[0]) > 1432


def test_an_unreachable_daemon_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    plugin = StatsdPlugin(StatsdSettings(host="statsd.example", port=8125))
    plugin.on_poll_done(PollResult((gauge("cpu_util", "vm", 1.0),), ()))
    plugin.on_poll_done(PollResult((gauge("cpu_util", "vm", 1.0),), ()))
    assert plugin.send_errors == 2
    assert plugin.packets_sent == 0


# --- against the real daemon -----------------------------------------------------


def _require(found: bool, why: str) -> None:
    if not found:
        unavailable(why)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def statsd_main() -> Path:
    """npm's statsd, installed on first use (the command scripts/setup can run too)."""
    main = STATSD_DIR / "node_modules" / "statsd" / "stats.js"
    _require(
        shutil.which("node") is not None and shutil.which("npm") is not None, "node/npm missing"
    )
    if not main.exists():
        command = [
            "npm", "install", "--no-audit", "--no-fund", "--prefix", str(STATSD_DIR),
            f"statsd@{STATSD_VERSION}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        _require(done.returncode == 0, f"npm install statsd failed: {done.stderr[-2000:]}")
    return main


@pytest.fixture
def daemon(statsd_main: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    port, mgmt = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    backend = tmp_path / "json_backend.js"
    backend.write_text(JSON_BACKEND)
    flushed = tmp_path / "flushed.jsonl"
    config = tmp_path / "config.js"
    config.write_text(
        json.dumps(
            {
                "address": "127.0.0.1",
                "port": port,
                "mgmt_address": "127.0.0.1",
                "mgmt_port": mgmt,
                "flushInterval": 200,
                "backends": [str(backend)],
                "jsonfile": {"path": str(flushed)},
            }
        )
    )
    process = subprocess.Popen(
        ["node", str(statsd_main), str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=statsd_main.parent,
    )
    try:
        # ready when its management port answers (bounded)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", mgmt), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"statsd did not start: {process.stderr.read() if process.stderr else ''}"
                    )
                threading.Event().wait(0.05)
        yield {"port": port, "flushed": flushed}
    finally:
        process.terminate()
        process.wait(timeout=10)


def _flushes(path: Path, until: Any) -> list[dict[str, Any]]:
    """Flushes read from the file until `until(flushes)` holds (bounded wait)."""
    deadline = time.monotonic() + 15
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        flushes = [json.loads(line) for line in lines]
        if until(flushes) or time.monotonic() > deadline:
            return flushes
        threading.Event().wait(0.05)


def test_a_real_statsd_daemon_gets_gauges_and_counters(daemon: dict[str, Any]) -> None:
    plugin = StatsdPlugin(StatsdSettings(port=daemon["port"], prefix="test"))
    # 300 instances: several datagrams, each under 1432 bytes
    for step in (1, 2, 3):
        samples = []
        for i in range(300):
            samples.append(gauge("cpu_util", f"vm-{i:03d}", float(i % 100) + step))
            samples.append(
                counter(
                    "network.outgoing.bytes",
                    f"vm-{i:03d}",
                    float(step * 1000 * (i + 1)),
                    interface="tap0",
                )
            )
        plugin.on_poll_done(PollResult(tuple(samples), ()))
    assert plugin.packets_sent > 3 and plugin.send_errors == 0

    def total(flushes: list[dict[str, Any]], name: str) -> float:
        return sum(f["counters"].get(name, 0) for f in flushes)

    last_vm = "test.instance.vm-299.network.outgoing.bytes.tap0"
    flushes = _flushes(
        daemon["flushed"],
        lambda fs: (
            total(fs, last_vm) >= 600_000
            and fs[-1]["gauges"].get("test.instance.vm-299.cpu_util") == 102
        ),
    )
    assert flushes, "statsd never flushed"
    gauges = flushes[-1]["gauges"]
    assert gauges["test.instance.vm-000.cpu_util"] == 3.0
    assert gauges["test.instance.vm-299.cpu_util"] == 102.0
    # increases of polls 2 and 3: 2 × 1000 × (i + 1)
    assert total(flushes, "test.instance.vm-000.network.outgoing.bytes.tap0") == 2000
    assert total(flushes, last_vm) == 600_000
    counted = [k for f in flushes for k, v in f["counters"].items() if k.startswith("test.") and v]
    assert len(set(counted)) == 300
