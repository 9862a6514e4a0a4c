"""The statsd plugin: each poll's samples in the statsd line protocol over UDP —
gauges as gauges (`|g`), cumulative meters as counters of their increase since
the previous poll (`|c`, sampled at `sample_rate` with `|@rate`) — packed into
datagrams under `max_packet` bytes. Fire and forget: a lost daemon is counted,
never raised, so it cannot get the plugin disabled."""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Iterable

from opendrs.agent.plugin import PollResult, QuietHooks
from opendrs.agent.plugins.naming import PathNamer
from opendrs.config import StatsdSettings
from opendrs.domain.sample import Sample, SampleType

log = logging.getLogger(__name__)

_CUMULATIVE = SampleType.CUMULATIVE
_GAUGE = SampleType.GAUGE


class StatsdPlugin(QuietHooks):
    """Sends to `settings.host:port`; `rng` decides which counter lines a sample
    rate below 1 keeps (seed it in tests)."""

    name = "statsd"

    def __init__(self, settings: StatsdSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._namer = PathNamer(settings.prefix)
        self._rng = rng or random.Random()
        self._meters = frozenset(settings.meters)
        self._last: dict[tuple[str, str, str], float] = {}
        self._socket: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self.lines_sent = 0
        self.packets_sent = 0
        self.lines_too_long = 0
        self.send_errors = 0

    def lines(self, samples: Iterable[Sample]) -> list[str]:
        """The statsd lines of one poll (counter state moves on)."""
        rate = self.settings.sample_rate
        sampled = rate < 1.0
        suffix = f"|c|@{rate:g}" if sampled else "|c"
        random_ = self._rng.random
        meters = self._meters
        path = self._namer.path
        last = self._last
        out: list[str] = []
        append = out.append
        for sample in samples:
            if meters and sample.meter not in meters:
                continue
            kind = sample.type
            if kind is _GAUGE:
                value = sample.value
                if value < 0:
                    # a leading sign means "change by" in statsd: reset, then set
                    name = path(sample)
                    append(f"{name}:0|g")
                    append(f"{name}:{value:g}|g")
                else:
                    append(f"{path(sample)}:{value:g}|g")
            elif kind is _CUMULATIVE:
                labels = sample.labels
                series = (labels.get("device") or labels.get("interface") or "") if labels else ""
                key = (sample.entity, sample.meter, series)
                previous = last.get(key)
                last[key] = sample.value
                if previous is None or sample.value < previous:
                    continue  # first sight or a reset: no increase to count
                if sampled and random_() >= rate:
                    continue
                append(f"{path(sample)}:{sample.value - previous:g}{suffix}")
            else:
                append(f"{path(sample)}:{sample.value:g}|c")
        return out

    def packets(self, lines: Iterable[str]) -> list[bytes]:
        """Lines joined by newlines into datagrams of at most `max_packet` bytes;
        a line alone longer than that is dropped and counted."""
        limit = self.settings.max_packet
        packets: list[bytes] = []
        current: list[bytes] = []
        size = 0
        for line in lines:
            data = line.encode()
            length = len(data)
            if length > limit:
                self.lines_too_long += 1
                continue
            if current and size + 1 + length > limit:
                packets.append(b"\n".join(current))
                current, size = [], 0
            size += length + (1 if current else 0)
            current.append(data)
        if current:
            packets.append(b"\n".join(current))
        return packets

    def on_poll_done(self, result: PollResult) -> None:
        lines = self.lines(result.samples)
        if not lines:
            return
        for packet in self.packets(lines):
            self._send(packet)
        self.lines_sent += len(lines)
        # forget counters of entities that left, so the table does not grow forever
        if len(self._last) > 4 * max(len(result.samples), 1):
            present = {s.entity for s in result.samples}
            self._last = {k: v for k, v in self._last.items() if k[0] in present}

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, packet: bytes) -> None:
        try:
            if self._socket is None or self._address is None:
                family, _, _, _, address = socket.getaddrinfo(
                    self.settings.host, self.settings.port, type=socket.SOCK_DGRAM
                )[0]
                self._socket = socket.socket(family, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
                self._address = (str(address[0]), int(address[1]))
            self._socket.sendto(packet, self._address)
            self.packets_sent += 1
        except OSError as exc:
            self.send_errors += 1
            if self.send_errors == 1 or self.send_errors % 1000 == 0:
                log.warning(
                    "statsd %s:%d: %s (%d send errors so far)",
                    self.settings.host,
                    self.settings.port,
                    exc,
                    self.send_errors,
                )
            self.close()
