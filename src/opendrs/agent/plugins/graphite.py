"""The graphite plugin: each poll's samples in Graphite's plaintext protocol
(`path value timestamp`) over one TCP connection to carbon, reconnecting when it
drops. Lines that could not be sent wait in a bounded buffer (oldest dropped
first, counted) and go out after the reconnection."""

from __future__ import annotations

import logging
import select
import socket
from collections import deque
from collections.abc import Sequence

import numpy as np

from opendrs.agent.batch import ColumnLayout, PollColumns, columns_of
from opendrs.agent.plugin import PollResult, QuietHooks
from opendrs.agent.plugins.naming import PathNamer
from opendrs.agent.plugins.numbers import framed, interleaved, joints, number_texts
from opendrs.config import GraphiteSettings
from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.sample import Sample

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_STAMP = b"\x00"  # where the poll's timestamp goes: never in a safe path


class _Plan:
    """The lines of one layout's polls: the rows sent (those of the configured
    meters) and each line's fixed parts, `_STAMP` standing for the time."""

    __slots__ = ("chosen", "end", "heads", "joints", "layout")

    def __init__(self, layout: ColumnLayout, chosen: list[int] | None, paths: list[str]) -> None:
        self.layout = layout
        self.chosen = None if chosen is None else np.array(chosen, dtype=np.intp)
        heads = [f"{path} ".encode() for path in paths]
        self.heads = np.array(heads, dtype=object)
        self.end = b" " + _STAMP + b"\n"
        self.joints = joints(heads, [self.end] * len(heads))


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
        self._plan: _Plan | None = None
        self._pending: deque[tuple[bytes, int]] = deque()  # a poll's lines, how many
        self._next_attempt = float("-inf")
        self.lines_sent = 0
        self.lines_dropped = 0
        self.connects = 0
        self.send_errors = 0

    @property
    def pending(self) -> int:
        """Polls whose lines wait for carbon to come back."""
        return len(self._pending)

    def lines(self, samples: Sequence[Sample]) -> list[bytes]:
        return [line + b"\n" for line in self._payload(columns_of(samples))[0].splitlines()]

    def _payload(self, columns: PollColumns) -> tuple[bytes, int]:
        """The poll's lines, each ending in a newline, and how many there are. A
        value or time that is not a finite number leaves its line out."""
        plan = self._plan
        if plan is None or plan.layout is not columns.layout:
            layout = columns.layout
            meters = self._meters
            chosen = None
            if meters:
                chosen = [at for at, meter in enumerate(layout.meters) if meter in meters]
            plan = self._plan = _Plan(layout, chosen, self._namer.paths_of(layout, chosen))
        values, times = columns.values, columns.times
        if plan.chosen is not None:
            values, times = values[plan.chosen], times[plan.chosen]
        if not len(values):
            return b"", 0
        keep = np.isfinite(values)
        first = times[0]
        if np.isfinite(first) and (times == first).all():
            # one time for the poll (the usual case): one text, the stamp put in after
            stamp = str(int(first)).encode()
            if keep.all():
                text = interleaved(plan.joints, number_texts(values), plan.end)
                return text.replace(_STAMP, stamp), len(values)
            at = np.flatnonzero(keep)
            end = b" " + stamp + b"\n"
            return framed(plan.heads[at].tolist(), number_texts(values[at]), [end] * len(at)), len(
                at
            )
        keep &= np.isfinite(times)
        at = np.flatnonzero(keep)
        ends = [b" %d\n" % stamp for stamp in times[at].astype(np.int64).tolist()]
        return framed(plan.heads[at].tolist(), number_texts(values[at]), ends), len(at)

    def on_poll_done(self, result: PollResult) -> None:
        payload, count = self._payload(columns_of(result.samples))
        if count:
            self._pending.append((payload, count))
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
