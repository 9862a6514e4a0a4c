"""The graphite plugin: each poll's samples in Graphite's plaintext protocol
(`path value timestamp`) over one TCP connection to carbon, reconnecting when it
drops. Lines that could not be sent wait in a bounded buffer (oldest dropped
first, counted) and go out after the reconnection."""

from __future__ import annotations

import logging
import math
import select
import socket
from collections import deque
from collections.abc import Sequence
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from opendrs.agent.batch import SampleRow, rows_of
from opendrs.agent.plugin import PollResult, QuietHooks
from opendrs.agent.plugins.naming import PathNamer, PollLayout
from opendrs.config import GraphiteSettings
from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.sample import Sample

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_VALUE = itemgetter(2)
_TIME = itemgetter(5)
_STAMP = "\x00"  # where the poll's timestamp goes: never in a safe path


class GraphitePlugin(QuietHooks):
    """Sends to carbon at `settings.host:port`; after a failure, tries to connect
    again at most every `retry_seconds` of `clock` time."""

    name = "graphite"

    def __init__(self, settings: GraphiteSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self._clock: Clock = clock or WallClock()
        self._namer = PathNamer(settings.prefix)
        self._meters = frozenset(settings.meters)
        self._socket: socket.socket | None = None
        self._template: tuple[PollLayout, npt.NDArray[np.bool_], str] | None = None
        self._pending: deque[tuple[bytes, int]] = deque()  # a poll's lines, how many
        self._next_attempt = float("-inf")
        self.lines_sent = 0
        self.lines_dropped = 0
        self.connects = 0
        self.send_errors = 0

    @property
    def pending(self) -> int:
        """Lines waiting for carbon to come back."""
        return len(self._pending)

    def lines(self, samples: Sequence[Sample]) -> list[bytes]:
        return self._lines(rows_of(samples))

    def _lines(self, rows: Sequence[SampleRow]) -> list[bytes]:
        return [line.encode() + b"\n" for line in self._text(rows).splitlines()]

    def _text(self, rows: Sequence[SampleRow]) -> str:
        """The poll's lines, each ending in a newline."""
        meters = self._meters
        if meters:
            rows = [row for row in rows if row[0] in meters]
        if not rows:
            return ""
        layout = self._namer.layout(rows)
        times = np.fromiter(map(_TIME, rows), dtype=float, count=len(rows))
        first = times[0]
        if math.isfinite(first) and (times == first).all():
            # one time for the poll (the usual case): one format over the lot
            return self._formatted(layout, rows).replace(_STAMP, str(int(first)))
        values = tuple(map(_VALUE, rows))
        stamps: dict[float, int] = {}  # one poll has one or few times
        out: list[str] = []
        append = out.append
        for path, value, t in zip(layout.paths, values, times.tolist(), strict=True):
            stamp = stamps.get(t)
            if stamp is None:
                stamp = stamps[t] = int(t)
            append(f"{path} {value:.17g} {stamp}\n")
        return "".join(out)

    def _formatted(self, layout: PollLayout, rows: Sequence[SampleRow]) -> str:
        """The lines with `_STAMP` for the time. A whole number (a counter, most
        often) is written as an integer: the very text `%.17g` makes of it, at a
        quarter of the cost."""
        values = np.fromiter(map(_VALUE, rows), dtype=float, count=len(rows))
        with np.errstate(invalid="ignore"):
            whole = (values == np.floor(values)) & (np.abs(values) < 1e15) & ~np.signbit(values)
        template = self._template
        if template is None or template[0] is not layout or not np.array_equal(template[1], whole):
            template = self._template = (
                layout,
                whole,
                "".join(
                    [
                        f"{path} %d {_STAMP}\n" if integer else f"{path} %.17g {_STAMP}\n"
                        for path, integer in zip(layout.paths, whole.tolist(), strict=True)
                    ]
                ),
            )
        out = values.astype(object)
        out[whole] = values[whole].astype(np.int64).tolist()
        return template[2] % tuple(out.tolist())

    def on_poll_done(self, result: PollResult) -> None:
        text = self._text(rows_of(result.samples))
        if text:
            self._pending.append((text.encode(), text.count("\n")))
            self._bound()
        self.flush()

    def flush(self) -> bool:
        """Send what is pending; False if carbon is not reachable now."""
        while self._pending:
            sock = self._connected()
            if sock is None:
                return False
            chunk, lines = self._pending[0]
            try:
                sock.sendall(chunk)
            except OSError as exc:
                self._lost(f"send failed: {exc}")
                continue
            self._pending.popleft()
            self.lines_sent += lines
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _connected(self) -> socket.socket | None:
        sock = self._socket
        if sock is not None and _peer_closed(sock):
            self._lost("carbon closed the connection")
            sock = None
        if sock is not None:
            return sock
        now = self._clock.now()
        if now < self._next_attempt:
            return None
        address = (self.settings.host, self.settings.port)
        try:
            sock = socket.create_connection(address, timeout=self.settings.timeout)
        except OSError as exc:
            self.send_errors += 1
            self._next_attempt = now + self.settings.retry_seconds
            log.warning("graphite %s:%d unreachable: %s", *address, exc)
            return None
        self._socket = sock
        self.connects += 1
        return sock

    def _lost(self, why: str) -> None:
        self.send_errors += 1
        log.warning("graphite %s:%d: %s; reconnecting", self.settings.host, self.settings.port, why)
        self.close()

    def _bound(self) -> None:
        limit = self.settings.buffer_lines
        waiting = sum(lines for _, lines in self._pending)
        while waiting > limit and self._pending:
            # the oldest poll goes first: the newest values matter most
            _, lines = self._pending.popleft()
            waiting -= lines
            self.lines_dropped += lines
            log.warning("graphite buffer full: dropped %d lines", lines)


def _peer_closed(sock: socket.socket) -> bool:
    """Carbon never writes to us: a readable socket means it closed (or reset) it.
    Writing first would succeed into a dead connection and lose the lines."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(_CHUNK, socket.MSG_PEEK) == b""
    except OSError:
        return True
