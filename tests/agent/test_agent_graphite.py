"""The graphite plugin against a real TCP listener on loopback: plaintext lines,
reconnection after carbon drops the connection or goes away, bounded buffer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from opendrs.agent.plugin import PollResult
from opendrs.agent.plugins.graphite import GraphitePlugin
from opendrs.config import GraphiteSettings
from opendrs.domain.clock import ManualClock
from opendrs.domain.sample import EntityKind, Sample, SampleType


class Carbon:
    """A plaintext listener: keeps every line it receives, per connection."""

    def __init__(self, port: int = 0) -> None:
        self.lines: list[str] = []
        self.connections = 0
        self._changed = threading.Condition()
        self._clients: list[socket.socket] = []
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", port))
        self._server.listen()
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._changed:
                self.connections += 1
                self._clients.append(client)
            threading.Thread(target=self._read, args=(client,), daemon=True).start()

    def _read(self, client: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            *complete, buffer = buffer.split(b"\n")
            with self._changed:
                self.lines.extend(line.decode() for line in complete)
                self._changed.notify_all()

    def wait_for(self, count: int) -> list[str]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.lines) >= count, timeout=10)
            return list(self.lines)

    def drop_clients(self) -> None:
        with self._changed:
            for client in self._clients:
                client.shutdown(socket.SHUT_RDWR)
                client.close()
            self._clients.clear()

    def stop(self) -> None:
        self.drop_clients()
        # shutdown wakes the thread blocked in accept; close alone would not
        self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()


@pytest.fixture
def carbon() -> Iterator[Carbon]:
    server = Carbon()
    yield server
    server.stop()


def poll(t: float, *values: float) -> PollResult:
    samples = tuple(
        Sample("cpu_util", f"vm-{i}", v, "%", SampleType.GAUGE, t, EntityKind.INSTANCE, "h")
        for i, v in enumerate(values)
    )
    return PollResult(samples, ())


def test_plaintext_lines_reach_carbon(carbon: Carbon) -> None:
    plugin = GraphitePlugin(GraphiteSettings(port=carbon.port, prefix="dc1"))
    disk = Sample(
        "disk.device.read.bytes.rate",
        "web.example",
        1234.5,
        "B/s",
        SampleType.GAUGE,
        1700000000.9,
        EntityKind.INSTANCE,
        "h",
        {"device": "vda"},
    )
    plugin.on_poll_done(PollResult((disk,), ()))
    assert carbon.wait_for(1) == [
        "dc1.instance.web_example.disk.device.read.bytes.rate.vda 1234.5 1700000000"
    ]
    assert plugin.lines_sent == 1


def test_reconnects_after_carbon_drops_the_connection(carbon: Carbon) -> None:
    plugin = GraphitePlugin(GraphiteSettings(port=carbon.port))
    plugin.on_poll_done(poll(1.0, 10.0, 11.0))
    carbon.wait_for(2)
    carbon.drop_clients()
    plugin.on_poll_done(poll(2.0, 20.0, 21.0))
    lines = carbon.wait_for(4)
    assert [line.split()[1] for line in lines] == ["10", "11", "20", "21"]  # nothing lost
    assert (plugin.connects, carbon.connections) == (2, 2)


def test_buffers_while_carbon_is_away_and_replays_in_order() -> None:
    clock = ManualClock()
    first = Carbon()
    port = first.port
    plugin = GraphitePlugin(GraphiteSettings(port=port, retry_seconds=30), clock=clock)
    plugin.on_poll_done(poll(1.0, 1.0))
    first.wait_for(1)
    first.stop()
    plugin.on_poll_done(poll(2.0, 2.0))  # refused: waits
    clock.advance(10)
    plugin.on_poll_done(poll(3.0, 3.0))  # too early to try again
    assert plugin.pending == 2
    errors = plugin.send_errors
    second = Carbon(port)
    try:
        clock.advance(10)
        plugin.on_poll_done(poll(4.0, 4.0))
        assert plugin.send_errors == errors and plugin.pending == 3  # still waiting to retry
        clock.advance(15)
        plugin.on_poll_done(poll(5.0, 5.0))
        lines = second.wait_for(4)
        assert [line.split()[1] for line in lines] == ["2", "3", "4", "5"]
        assert plugin.pending == 0
    finally:
        second.stop()


def test_the_buffer_is_bounded_and_drops_the_oldest() -> None:
    clock = ManualClock()
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plugin = GraphitePlugin(
        GraphiteSettings(port=port, buffer_lines=4, retry_seconds=0), clock=clock
    )
    for t in range(5):
        plugin.on_poll_done(poll(float(t), 1.0, 2.0))
    assert plugin.pending == 2  # two polls of two lines fit in 4
    assert plugin.lines_dropped == 6
    carbon = Carbon(port)
    try:
        plugin.flush()
        assert [line.split()[2] for line in carbon.wait_for(4)] == ["3", "3", "4", "4"]
    finally:
        carbon.stop()
