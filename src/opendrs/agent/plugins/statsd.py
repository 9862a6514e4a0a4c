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
from math import isfinite

import numpy as np
import numpy.typing as npt

from opendrs.agent.batch import ColumnLayout, PollColumns, columns_of
from opendrs.agent.plugin import PollResult, QuietHooks
from opendrs.agent.plugins.naming import PathNamer
from opendrs.agent.plugins.numbers import (
    framed,
    interleaved,
    joints,
    number_text,
    number_texts,
)
from opendrs.config import StatsdSettings
from opendrs.domain.sample import Sample, SampleType

log = logging.getLogger(__name__)

_CUMULATIVE = SampleType.CUMULATIVE
_GAUGE = SampleType.GAUGE
_Floats = npt.NDArray[np.float64]
_Indexes = npt.NDArray[np.intp]


class _Plan:
    """How to write the polls of one layout: the rows it sends (those of the
    configured meters), each line's fixed parts, where the gauges and counters
    are, and each counter's last value."""

    __slots__ = (
        "chosen",
        "counters",
        "end",
        "gauges",
        "gauges_sent",
        "heads",
        "joints",
        "known",
        "layout",
        "paths",
        "previous",
        "tails",
        "types",
        "usable",
    )

    def __init__(
        self,
        layout: ColumnLayout,
        chosen: _Indexes | None,
        paths: list[str],
        types: list[SampleType],
        suffix: str,
    ) -> None:
        self.layout = layout
        self.chosen = chosen
        self.paths = paths
        self.types = types
        heads = [f"{path}:".encode() for path in paths]
        tails = [
            b"|g\n" if kind is _GAUGE else suffix.encode() if kind is _CUMULATIVE else b"|c\n"
            for kind in types
        ]
        self.heads = np.array(heads, dtype=object)
        self.tails = np.array(tails, dtype=object)
        # a line's end and the next one's start, for a poll sending every line
        self.joints = joints(heads, tails)
        self.end = tails[-1] if tails else b""
        self.gauges = np.array([i for i, k in enumerate(types) if k is _GAUGE], dtype=np.intp)
        self.counters = np.array(
            [i for i, k in enumerate(types) if k is _CUMULATIVE], dtype=np.intp
        )
        self.previous: _Floats = np.zeros(len(self.counters))
        self.known: npt.NDArray[np.bool_] = np.zeros(len(self.counters), dtype=bool)
        # two counters on one path see each other's value: only row by row does that
        counter_paths = [paths[at] for at in self.counters.tolist()]
        self.usable = len(set(counter_paths)) == len(counter_paths)
        self.gauges_sent: _Floats | None = None

    def counter_paths(self) -> list[str]:
        return [self.paths[at] for at in self.counters.tolist()]


class StatsdPlugin(QuietHooks):
    """Sends to `settings.host:port`; `rng` decides which counter lines a sample
    rate below 1 keeps (seed it in tests)."""

    name = "statsd"

    def __init__(self, settings: StatsdSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._namer = PathNamer(settings.prefix)
        self._rng = rng or random.Random()
        self._meters = frozenset(settings.meters)
        rate = settings.sample_rate
        self._suffix = f"|c|@{rate:g}\n" if rate < 1.0 else "|c\n"
        self._last: dict[str, float] = {}  # by path, while no plan holds them
        self._plan: _Plan | None = None
        self._polls_since_all = 0
        self._socket: socket.socket | None = None
        self.lines_sent = 0
        self.packets_sent = 0
        self.lines_too_long = 0
        self.send_errors = 0

    def lines(self, samples: Sequence[Sample]) -> list[str]:
        """The statsd lines of one poll (counter state moves on)."""
        return self._payload(columns_of(samples))[0].decode().splitlines()

    def _payload(self, columns: PollColumns) -> tuple[bytes, int]:
        """The poll's lines, each ending in a newline, and how many there are.
        A value that is not a finite number is left out (statsd has no text for it)."""
        plan = self._plan
        if plan is None or plan.layout is not columns.layout:
            plan = self._replan(columns)
        values = columns.values if plan.chosen is None else columns.values[plan.chosen]
        if plan.usable:
            return self._planned(plan, values)
        return self._row_by_row(plan, values)

    def _replan(self, columns: PollColumns) -> _Plan:
        layout = columns.layout
        # the counters' last values move from the old plan to the table, then on
        last = self._settle()
        meters = self._meters
        chosen: list[int] | None = None
        if meters:
            chosen = [at for at, meter in enumerate(layout.meters) if meter in meters]
        paths = self._namer.paths_of(layout, chosen)
        types = layout.types if chosen is None else [layout.types[at] for at in chosen]
        if len(last) > 4 * max(len(paths), 1):
            # forget series that are gone, so the table does not grow forever
            present = set(paths)
            last = self._last = {k: v for k, v in last.items() if k in present}
        picked = None if chosen is None else np.array(chosen, dtype=np.intp)
        plan = self._plan = _Plan(layout, picked, paths, types, self._suffix)
        if plan.usable:
            counter_paths = plan.counter_paths()
            plan.known = np.array([path in last for path in counter_paths], dtype=bool)
            plan.previous = np.array([last.get(path, 0.0) for path in counter_paths], dtype=float)
        return plan

    def _settle(self) -> dict[str, float]:
        """The counters' table, with what the current plan holds written back."""
        plan = self._plan
        last = self._last
        if plan is not None and plan.usable:
            for path, value, known in zip(
                plan.counter_paths(), plan.previous.tolist(), plan.known.tolist(), strict=True
            ):
                if known:
                    last[path] = value
            plan.usable = False  # its state now lives in the table
        return last

    def _planned(self, plan: _Plan, values: _Floats) -> tuple[bytes, int]:
        """The lines of a poll, array by array: the same lines, in the same order,
        as row by row."""
        counters = plan.counters
        current = values[counters]
        # first sight (unknown) or a reset (a decrease): no increase to count
        sent = plan.known & ~(current < plan.previous)
        with np.errstate(all="ignore"):  # inf - inf: a NaN, as in Python
            increase = current - plan.previous
        plan.previous = current
        plan.known = np.ones(len(counters), dtype=bool)
        rate = self.settings.sample_rate
        if rate < 1.0:
            at = np.flatnonzero(sent)
            random_ = self._rng.random
            draws = np.array([random_() for _ in range(len(at))], dtype=float)
            sent[at[draws >= rate]] = False
        out = values + 0.0  # a copy, with -0.0 as 0.0 (a leading sign means "change by")
        out[counters] = increase
        gauges = values[plan.gauges]
        changed = self._changed_gauges(plan, gauges)
        keep = np.isfinite(out)
        keep[counters] &= sent
        if changed is not None:
            keep[plan.gauges] &= changed
        negative = plan.gauges[gauges < 0]
        negative = negative[keep[negative]]
        if not negative.size and keep.all():
            return interleaved(plan.joints, number_texts(out), plan.end), len(out)
        heads = plan.heads
        if negative.size:
            heads = heads.copy()
        for at in negative.tolist():
            # a leading sign means "change by" in statsd: reset, then set
            heads[at] = f"{plan.paths[at]}:0|g\n".encode() + heads[at]
        at = np.flatnonzero(keep)
        text = framed(heads[at].tolist(), number_texts(out[at]), plan.tails[at].tolist())
        return text, len(at) + len(negative)

    def _changed_gauges(self, plan: _Plan, gauges: _Floats) -> npt.NDArray[np.bool_] | None:
        """With `only_changed_gauges`, the gauges to send (None: all of them):
        those whose value is not the one last sent (statsd keeps it), and every
        one on the first poll of a layout and each `all_gauges_every` polls."""
        if not self.settings.only_changed_gauges:
            return None
        last = plan.gauges_sent
        plan.gauges_sent = gauges
        self._polls_since_all += 1
        if last is None or self._polls_since_all >= self.settings.all_gauges_every:
            self._polls_since_all = 0
            return None
        changed: npt.NDArray[np.bool_] = gauges != last  # a NaN is never the value sent
        return changed

    def _row_by_row(self, plan: _Plan, values: _Floats) -> tuple[bytes, int]:
        rate = self.settings.sample_rate
        sampled = rate < 1.0
        suffix = self._suffix.encode()
        random_ = self._rng.random
        last = self._last  # by path: one per entity, meter and device
        out: list[bytes] = []
        append = out.append
        for name, kind, value in zip(plan.paths, plan.types, values.tolist(), strict=True):
            head = f"{name}:".encode()
            if kind is _CUMULATIVE:
                previous = last.get(name)
                last[name] = value
                if previous is None or value < previous:
                    continue
                if sampled and random_() >= rate:
                    continue
                value -= previous
                if isfinite(value):
                    append(head + number_text(value) + suffix)
            elif isfinite(value):
                if kind is _GAUGE:
                    if value < 0:
                        append(head + b"0|g\n")
                    append(head + number_text(value + 0.0) + b"|g\n")
                else:
                    append(head + number_text(value) + b"|c\n")
        return b"".join(out), len(out)

    def packets(self, lines: Iterable[str]) -> list[bytes]:
        """Lines joined by newlines into datagrams of at most `max_packet` bytes;
        a line alone longer than that is dropped and counted."""
        return self._cut("\n".join(lines).encode())

    def _cut(self, data: bytes) -> list[bytes]:
        limit = self.settings.max_packet
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
        payload, count = self._payload(columns_of(result.samples))
        if not count:
            return
        for packet in self._cut(payload[:-1]):
            self._send(packet)
        self.lines_sent += count

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, packet: bytes) -> None:
        try:
            sock = self._socket
            if sock is None:
                family, _, _, _, address = socket.getaddrinfo(
                    self.settings.host, self.settings.port, type=socket.SOCK_DGRAM
                )[0]
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.setblocking(False)
                # connected: the kernel resolves the route once, not per datagram
                sock.connect(address)
                self._socket = sock
            sock.send(packet)
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
