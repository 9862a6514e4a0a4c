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
from itertools import compress
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from opendrs.agent.batch import SampleRow, rows_of
from opendrs.agent.plugin import PollResult, QuietHooks
from opendrs.agent.plugins.naming import PathNamer, PollLayout
from opendrs.config import StatsdSettings
from opendrs.domain.sample import Sample, SampleType

log = logging.getLogger(__name__)

_CUMULATIVE = SampleType.CUMULATIVE
_GAUGE = SampleType.GAUGE
_VALUE = itemgetter(2)


class _Plan:
    """How to write a poll of one layout: a format per row (all of them joined in
    `template`), where the gauges and counters are, and each counter's last value."""

    __slots__ = (
        "counters",
        "formats",
        "gauges",
        "gauges_sent",
        "known",
        "layout",
        "paths",
        "previous",
        "template",
        "usable",
    )

    def __init__(
        self,
        layout: PollLayout,
        formats: list[str],
        gauges: npt.NDArray[np.intp],
        counters: npt.NDArray[np.intp],
        paths: list[str],
    ) -> None:
        self.layout = layout
        self.formats = formats
        self.template = "".join(formats)
        self.gauges = gauges
        self.counters = counters
        self.paths = paths  # of the counters
        self.previous: npt.NDArray[np.float64] = np.zeros(len(counters))
        self.known: npt.NDArray[np.bool_] = np.zeros(len(counters), dtype=bool)
        self.usable = True
        self.gauges_sent: npt.NDArray[np.float64] | None = None


class StatsdPlugin(QuietHooks):
    """Sends to `settings.host:port`; `rng` decides which counter lines a sample
    rate below 1 keeps (seed it in tests)."""

    name = "statsd"

    def __init__(self, settings: StatsdSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._namer = PathNamer(settings.prefix)
        self._rng = rng or random.Random()
        self._meters = frozenset(settings.meters)
        self._last: dict[str, float] = {}  # by path, while no plan holds them
        self._plan: _Plan | None = None
        self._polls_since_all = 0
        self._socket: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self.lines_sent = 0
        self.packets_sent = 0
        self.lines_too_long = 0
        self.send_errors = 0

    def lines(self, samples: Sequence[Sample]) -> list[str]:
        """The statsd lines of one poll (counter state moves on)."""
        return self._text(rows_of(samples))[0].splitlines()

    def _text(self, rows: Sequence[SampleRow]) -> tuple[str, int]:
        """The poll's lines, each ending in a newline, and how many there are."""
        meters = self._meters
        if meters:
            rows = [row for row in rows if row[0] in meters]
        layout = self._namer.layout(rows)
        plan = self._plan
        if plan is None or plan.layout is not layout:
            plan = self._replan(layout, rows)
        if plan.usable:
            return self._planned(plan, rows)
        return self._row_by_row(rows, layout.paths)

    def _replan(self, layout: PollLayout, rows: Sequence[SampleRow]) -> _Plan:
        # the counters' last values move from the old plan to the table, then on
        last = self._settle()
        if len(last) > 4 * max(len(rows), 1):
            # forget series that are gone, so the table does not grow forever
            present = set(layout.paths)
            last = self._last = {k: v for k, v in last.items() if k in present}
        rate = self.settings.sample_rate
        suffix = f"|c|@{rate:g}\n" if rate < 1.0 else "|c\n"
        formats: list[str] = []
        gauges: list[int] = []
        counters: list[int] = []
        for at, (path, row) in enumerate(zip(layout.paths, rows, strict=True)):
            kind = row[4]
            if kind is _GAUGE:
                gauges.append(at)
                formats.append(f"{path}:%g|g\n")
            elif kind is _CUMULATIVE:
                counters.append(at)
                formats.append(f"{path}:%g{suffix}")
            else:
                formats.append(f"{path}:%g|c\n")
        paths = [layout.paths[at] for at in counters]
        plan = self._plan = _Plan(
            layout,
            formats,
            np.array(gauges, dtype=np.intp),
            np.array(counters, dtype=np.intp),
            paths,
        )
        # two counters on one path see each other's value: only row by row does that
        plan.usable = len(set(paths)) == len(paths)
        if plan.usable:
            plan.known = np.array([path in last for path in paths], dtype=bool)
            plan.previous = np.array([last.get(path, 0.0) for path in paths], dtype=float)
        return plan

    def _settle(self) -> dict[str, float]:
        """The counters' table, with what the current plan holds written back."""
        plan = self._plan
        last = self._last
        if plan is not None and plan.usable:
            for path, value, known in zip(
                plan.paths, plan.previous.tolist(), plan.known.tolist(), strict=True
            ):
                if known:
                    last[path] = value
            plan.usable = False  # its state now lives in the table
        return last

    def _planned(self, plan: _Plan, rows: Sequence[SampleRow]) -> tuple[str, int]:
        """The lines of a poll shaped like the previous one, array by array: the
        same lines, in the same order, as row by row."""
        values = np.fromiter(map(_VALUE, rows), dtype=float, count=len(rows))
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
        out = values.copy()
        out[counters] = increase
        gauges = values[plan.gauges]
        changed = self._changed_gauges(plan, gauges)
        negative = plan.gauges[gauges < 0]
        if not negative.size and changed is None and sent.all():
            return plan.template % tuple(out.tolist()), len(rows)
        keep = np.ones(len(rows), dtype=bool)
        keep[counters] = sent
        if changed is not None:
            keep[plan.gauges] = changed
            negative = negative[keep[negative]]
        formats = plan.formats
        if negative.size:
            # a leading sign means "change by" in statsd: reset, then set
            formats = list(formats)
            for at in negative.tolist():
                formats[at] = f"{plan.layout.paths[at]}:0|g\n{formats[at]}"
        kept = keep.tolist()
        text = "".join(compress(formats, kept)) % tuple(compress(out.tolist(), kept))
        return text, int(keep.sum()) + int(negative.size)

    def _changed_gauges(
        self, plan: _Plan, gauges: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.bool_] | None:
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

    def _row_by_row(self, rows: Sequence[SampleRow], paths: Sequence[str]) -> tuple[str, int]:
        rate = self.settings.sample_rate
        sampled = rate < 1.0
        suffix = f"|c|@{rate:g}" if sampled else "|c"
        random_ = self._rng.random
        last = self._last  # by path: one per entity, meter and device
        out: list[str] = []
        append = out.append
        for name, row in zip(paths, rows, strict=True):
            kind = row[4]
            value = row[2]
            if kind is _GAUGE:
                if value < 0:
                    append(f"{name}:0|g\n")
                append(f"{name}:{value:g}|g\n")
            elif kind is _CUMULATIVE:
                previous = last.get(name)
                last[name] = value
                if previous is None or value < previous:
                    continue
                if sampled and random_() >= rate:
                    continue
                append(f"{name}:{value - previous:g}{suffix}\n")
            else:
                append(f"{name}:{value:g}|c\n")
        return "".join(out), len(out)

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
        text, count = self._text(rows_of(result.samples))
        if not count:
            return
        for packet in self._cut(text[:-1].encode()):
            self._send(packet)
        self.lines_sent += count

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
