"""The statsd plugin: each poll's samples in the statsd line protocol over UDP —
gauges as gauges (`|g`), cumulative meters as counters of their increase since
the previous poll (`|c`, sampled at `sample_rate` with `|@rate`) — packed into
datagrams under `max_packet` bytes. Fire and forget: a lost daemon is counted,
never raised, so it cannot get the plugin disabled."""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Iterable, Sequence

from opendrs.agent.batch import SampleRow, rows_of
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
        self._last: dict[str, float] = {}
        self._socket: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self.lines_sent = 0
        self.packets_sent = 0
        self.lines_too_long = 0
        self.send_errors = 0

    def lines(self, samples: Sequence[Sample]) -> list[str]:
        """The statsd lines of one poll (counter state moves on)."""
        return self._lines(rows_of(samples))

    def _lines(self, rows: Sequence[SampleRow]) -> list[str]:
        rate = self.settings.sample_rate
        sampled = rate < 1.0
        suffix = f"|c|@{rate:g}" if sampled else "|c"
        random_ = self._rng.random
        meters = self._meters
        if meters:
            rows = [row for row in rows if row[0] in meters]
        last = self._last  # by path: one per entity, meter and device
        out: list[str] = []
        append = out.append
        for name, row in zip(self._namer.paths_of(rows), rows, strict=True):
            kind = row[4]
            value = row[2]
            if kind is _GAUGE:
                if value < 0:
                    # a leading sign means "change by" in statsd: reset, then set
                    append(f"{name}:0|g")
                    append(f"{name}:{value:g}|g")
                else:
                    append(f"{name}:{value:g}|g")
            elif kind is _CUMULATIVE:
                previous = last.get(name)
                last[name] = value
                if previous is None or value < previous:
                    continue  # first sight or a reset: no increase to count
                if sampled and random_() >= rate:
                    continue
                append(f"{name}:{value - previous:g}{suffix}")
            else:
                append(f"{name}:{value:g}|c")
        return out

    def packets(self, lines: Iterable[str]) -> list[bytes]:
        """Lines joined by newlines into datagrams of at most `max_packet` bytes;
        a line alone longer than that is dropped and counted."""
        limit = self.settings.max_packet
        data = "\n".join(lines).encode()
        packets: list[bytes] = []
        size = len(data)
        start = 0
        # cut at the last newline that keeps a datagram within the limit
        while start < size:
            end = start + limit
            if end >= size:
                packets.append(data[start:])
                break
            cut = data.rfind(b"\n", start, end + 1)
            if cut > start:
                packets.append(data[start:cut])
                start = cut + 1
                continue
            # the first line alone is too long: drop it
            self.lines_too_long += 1
            cut = data.find(b"\n", start)
            start = size if cut < 0 else cut + 1
        return packets

    def on_poll_done(self, result: PollResult) -> None:
        rows = rows_of(result.samples)
        lines = self._lines(rows)
        # forget counters of series that are gone, so the table does not grow forever
        if len(self._last) > 4 * max(len(rows), 1):
            present = set(self._namer.paths_of(rows))
            self._last = {k: v for k, v in self._last.items() if k in present}
        if not lines:
            return
        for packet in self.packets(lines):
            self._send(packet)
        self.lines_sent += len(lines)
        # forget counters of entities that left, so the table does not grow forever
        if len(self._last) > 4 * max(len(result.samples), 1):
            present = {row[1] for row in rows}
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
