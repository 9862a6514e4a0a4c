"""Vectorised evaluation of threshold rules, one numpy pass per batch: the
same state machine as `engine.CepEngine` (windows, `for` durations, N-of-M,
hysteresis with clear_for, no_data after silence), for the many series a
busy cloud sends, with Python touched only for the transitions.

Rules sharing a meter and a selector form a group whose per-(rule, series) state
lives in (rules x series) arrays. Each series keeps its last `capacity` samples
in a ring, so a window holds at most that many samples. Rules that need the
scalar engine (flapping, breaching absence, rate, group_by, followed_by) are
refused with the reason."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from opendrs.cep.rule import Aggregate, MissingPolicy, Op, ThresholdRule
from opendrs.cep.series import series_labels, series_name
from opendrs.domain.alarm import Alarm, AlarmState, AlarmTransition
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import Sample

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_STATES = (AlarmState.OK, AlarmState.PENDING, AlarmState.ALARM, AlarmState.NO_DATA)
_NAMES = tuple(state.value for state in _STATES)
OK, PENDING, ALARM, NO_DATA = 0, 1, 2, 3
_NAN = math.nan


def _compare(op: Op, a: F64, b: F64) -> Bools:
    if op == Op.GT:
        return np.greater(a, b)
    if op == Op.GE:
        return np.greater_equal(a, b)
    if op == Op.LT:
        return np.less(a, b)
    if op == Op.LE:
        return np.less_equal(a, b)
    if op == Op.EQ:
        return np.equal(a, b)
    return np.not_equal(a, b)


def check_vectorisable(rule: ThresholdRule) -> None:
    """Raise InvalidInput naming what keeps `rule` off the vectorised path."""
    reasons = []
    if rule.flapping is not None:
        reasons.append("flapping")
    if rule.missing.policy == MissingPolicy.BREACHING:
        reasons.append("missing: breaching")
    if rule.aggregate == Aggregate.RATE:
        reasons.append("aggregate: rate")
    if rule.group_by:
        reasons.append("group_by")
    if rule.followed_by is not None:
        reasons.append("followed_by")
    if rule.n_of_m is not None and rule.n_of_m[1] > 64:
        reasons.append("n_of_m over 64 samples")
    if reasons:
        raise InvalidInput(
            f"rule {rule.name!r} needs the scalar engine ({', '.join(reasons)})",
            field="rules",
        )


@dataclass(frozen=True, slots=True)
class _Series:
    meter: str
    labels: dict[str, str]
    name: str


class _Group:
    """Rules sharing a meter and a selector, and the state of their series, in
    (series x rules) arrays so a batch gathers whole rows."""

    def __init__(self, rules: list[ThresholdRule]) -> None:
        self.rules = rules
        first = rules[0]
        self.meter = first.meter
        self.selector = dict(first.selector)
        r = len(rules)

        def row(values: Iterable[float]) -> F64:
            return np.array(list(values), dtype=np.float64).reshape(1, r)

        self.threshold = row(x.threshold for x in rules)
        self.clear = row(x.clear_limit for x in rules)
        self.scale = row(x.scale for x in rules)
        self.scaled = bool((self.scale != 1.0).any())
        self.for_seconds = row(x.for_seconds for x in rules)
        self.need = row((x.n_of_m[0] if x.n_of_m else 0) for x in rules)
        self.counted = self.need > 0
        self.any_counted = bool(self.counted.any())
        self.mask = np.array(
            [((1 << x.n_of_m[1]) - 1) if x.n_of_m else 0 for x in rules], dtype=np.uint64
        ).reshape(1, r)
        self.clear_for = row(x.clear_for for x in rules)
        self.clear_samples = row(x.clear_samples for x in rules)
        self.after = row(x.missing.after for x in rules)
        self.no_data = np.array(
            [x.missing.policy == MissingPolicy.NO_DATA for x in rules], dtype=np.bool_
        ).reshape(1, r)
        self.ops: list[tuple[Op, I64]] = []
        for op in dict.fromkeys(x.op for x in rules):
            self.ops.append((op, np.array([i for i, x in enumerate(rules) if x.op == op])))
        self.reductions: list[tuple[Aggregate, float, I64]] = []
        for key in dict.fromkeys((x.aggregate, x.window) for x in rules):
            same = [i for i, x in enumerate(rules) if (x.aggregate, x.window) == key]
            self.reductions.append((key[0], key[1], np.array(same)))
        # Per (aggregate, window): the loosest upward threshold, the loosest
        # downward one (in the aggregate's units), and whether == / != need all rows.
        self.screens: dict[tuple[Aggregate, float], tuple[float, float, bool]] = {}
        for aggregate, window, cols in self.reductions:
            picked = [rules[i] for i in cols.tolist()]
            ups = [x.threshold / x.scale for x in picked if x.op in (Op.GT, Op.GE)]
            downs = [x.threshold / x.scale for x in picked if x.op in (Op.LT, Op.LE)]
            self.screens[(aggregate, window)] = (
                min(ups, default=math.inf),
                max(downs, default=-math.inf),
                any(x.op in (Op.EQ, Op.NE) for x in picked),
            )
        self.members: list[int] = []
        self._member_array = np.zeros(0, dtype=np.int64)
        self.pressure = np.zeros(0, dtype=np.bool_)
        self.min_after = float(
            min(
                (x.missing.after for x in rules if x.missing.policy == MissingPolicy.NO_DATA),
                default=math.inf,
            )
        )
        self.state = np.zeros((0, r), dtype=np.int8)
        self.active = np.zeros((0, r))
        self.clear_since = np.zeros((0, r))
        self.clear_count = np.zeros((0, r), dtype=np.int64)
        self.bits = np.zeros((0, r), dtype=np.uint64)
        self.since = np.zeros((0, r))
        self.value = np.zeros((0, r))

    def member_array(self) -> I64:
        if self._member_array.size != len(self.members):
            self._member_array = np.array(self.members, dtype=np.int64)
        return self._member_array

    def selects(self, meter: str, labels: Mapping[str, str]) -> bool:
        return meter == self.meter and all(labels.get(k) == v for k, v in self.selector.items())

    def add_member(self, series: int) -> int:
        local = len(self.members)
        self.members.append(series)
        if local >= self.state.shape[0]:
            grow = max(16, self.state.shape[0])
            r = len(self.rules)
            self.state = np.concatenate([self.state, np.zeros((grow, r), dtype=np.int8)])
            for name in ("active", "clear_since", "value"):
                extra = np.full((grow, r), _NAN)
                setattr(self, name, np.concatenate([getattr(self, name), extra]))
            self.since = np.concatenate([self.since, np.zeros((grow, r))])
            self.clear_count = np.concatenate(
                [self.clear_count, np.zeros((grow, r), dtype=np.int64)]
            )
            self.bits = np.concatenate([self.bits, np.zeros((grow, r), dtype=np.uint64)])
            self.pressure = np.concatenate([self.pressure, np.zeros(grow, dtype=np.bool_)])
        return local


class _Ring:
    """The windows of some series at the time of their newest sample, with the
    gathers and masks shared by every rule that reads them."""

    def __init__(self, engine: VectorEngine, s: I64, t: F64, v: F64) -> None:
        self.engine = engine
        self.s = s
        self.t = t
        self.v = v
        self._times: F64 | None = None
        self._values: F64 | None = None
        self._inside: dict[float, Bools] = {}
        self._cache: dict[tuple[Aggregate, float], F64] = {}
        self._bounds: tuple[F64, F64] | None = None

    def subset(self, rows: I64) -> _Ring:
        return _Ring(self.engine, self.s[rows], self.t[rows], self.v[rows])

    def bounds(self) -> tuple[F64, F64]:
        """The largest and smallest value kept for each series: bounds of every
        last / mean / max / min over any window the ring holds."""
        if self._bounds is None:
            values = self.engine._ring_v[self.s]
            self._bounds = (values.max(axis=1), values.min(axis=1))
        return self._bounds

    def reduce(self, aggregate: Aggregate, window: float) -> F64:
        if window <= 0 or aggregate == Aggregate.LAST:
            # a window of 0 holds the latest sample only
            return np.ones_like(self.v) if aggregate == Aggregate.COUNT else self.v
        key = (aggregate, window)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._reduce(aggregate, window)
        return found

    def _reduce(self, aggregate: Aggregate, window: float) -> F64:
        if self._times is None or self._values is None:
            self._times = self.engine._ring_t[self.s]
            self._values = self.engine._ring_v[self.s]
        inside = self._inside.get(window)
        if inside is None:
            inside = self._inside[window] = self._times > (self.t - window)[:, None]
        values = self._values
        result: F64
        if aggregate == Aggregate.COUNT:
            result = inside.sum(axis=1).astype(np.float64)
        elif aggregate == Aggregate.MAX:
            result = values.max(axis=1, where=inside, initial=-np.inf)
        elif aggregate == Aggregate.MIN:
            result = values.min(axis=1, where=inside, initial=np.inf)
        else:
            result = values.sum(axis=1, where=inside)
            if aggregate == Aggregate.MEAN:
                result = result / inside.sum(axis=1)
        return result


class VectorEngine:
    """Columnar input: `register` a series once, then `process(series, times, values)`."""

    def __init__(
        self, rules: Iterable[ThresholdRule], *, capacity: int = 16, partitions: int = 1
    ) -> None:
        rules = list(rules)
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise InvalidInput("duplicate rule names", field="rules")
        for rule in rules:
            check_vectorisable(rule)
        if capacity < 1 or partitions < 1:
            raise InvalidInput("capacity and partitions must be at least 1")
        grouped: dict[tuple[str, tuple[tuple[str, str], ...]], list[ThresholdRule]] = {}
        for rule in rules:
            grouped.setdefault((rule.meter, tuple(sorted(rule.selector.items()))), []).append(rule)
        self._groups = [_Group(g) for g in grouped.values()]
        self._capacity = capacity
        self._partitions = partitions
        self._series: list[_Series] = []
        self._index: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        # per series: its groups' local slots (-1 when not a member), ring, last time
        self._local = np.zeros((len(self._groups), 0), dtype=np.int64)
        # rings are (series x capacity): one series' window is one or two cache lines
        self._ring_t = np.zeros((0, capacity))
        self._ring_v = np.zeros((0, capacity))
        self._head = np.zeros(0, dtype=np.int64)
        self._last = np.zeros(0)
        self.partition = np.zeros(0, dtype=np.int64)
        self._meter_of = np.zeros(0, dtype=np.int64)
        self._meter_ids: dict[str, int] = {}
        self._groups_of_meter: dict[int, list[int]] = {}
        for g, group in enumerate(self._groups):
            mid = self._meter_ids.setdefault(group.meter, len(self._meter_ids))
            self._groups_of_meter.setdefault(mid, []).append(g)
        self.ignored = 0
        # the labels of (rule, series) keys that have moved, shared by their transitions
        self._labels: dict[tuple[str, int], dict[str, str]] = {}
        self._described = {r.name: r.describe() for r in rules}
        self._details = {
            r.name: MappingProxyType(
                {
                    "vectorised": True,
                    "aggregate": r.aggregate.value,
                    "window": r.window,
                    "op": r.op.value,
                    "threshold": r.threshold,
                    "clear_threshold": r.clear_threshold,
                }
            )
            for r in rules
        }

    @property
    def series_count(self) -> int:
        return len(self._series)

    # --- series -----------------------------------------------------------

    def register(self, meter: str, labels: Mapping[str, str]) -> int:
        """The id of the series (meter, labels), creating it on first sight."""
        key = (meter, tuple(sorted(labels.items())))
        found = self._index.get(key)
        if found is not None:
            return found
        sid = len(self._series)
        self._index[key] = sid
        self._series.append(_Series(meter, dict(labels), series_name(labels)))
        if sid >= self._last.shape[0]:
            self._grow(max(64, 2 * self._last.shape[0]))
        entity = labels.get("instance") or labels.get("volume") or labels.get("host", "")
        self.partition[sid] = zlib.crc32(entity.encode()) % self._partitions
        self._meter_of[sid] = self._meter_ids.setdefault(meter, len(self._meter_ids))
        for g, group in enumerate(self._groups):
            if group.selects(meter, labels):
                self._local[g, sid] = group.add_member(sid)
        return sid

    def _grow(self, size: int) -> None:
        extra = size - self._last.shape[0]
        k = self._capacity
        self._local = np.concatenate(
            [self._local, np.full((len(self._groups), extra), -1, dtype=np.int64)], 1
        )
        self._ring_t = np.concatenate([self._ring_t, np.full((extra, k), -np.inf)])
        self._ring_v = np.concatenate([self._ring_v, np.zeros((extra, k))])
        self._head = np.concatenate([self._head, np.zeros(extra, dtype=np.int64)])
        self._last = np.concatenate([self._last, np.full(extra, -np.inf)])
        self.partition = np.concatenate([self.partition, np.zeros(extra, dtype=np.int64)])
        self._meter_of = np.concatenate([self._meter_of, np.zeros(extra, dtype=np.int64)])

    # --- evaluation -------------------------------------------------------

    def process_samples(self, samples: Iterable[Sample]) -> list[AlarmTransition]:
        """Object input, for tests and small batches: the same as `process`."""
        sids: list[int] = []
        times: list[float] = []
        values: list[float] = []
        for s in samples:
            if not math.isfinite(s.value):
                continue
            sids.append(self.register(s.meter, series_labels(s)))
            times.append(s.time)
            values.append(s.value)
        return self.process(np.array(sids, dtype=np.int64), np.array(times), np.array(values))

    def process(self, series: I64, times: F64, values: F64) -> list[AlarmTransition]:
        """One batch in columns; a series may appear several times (in time order)."""
        if series.size == 0:
            return []
        order = np.lexsort((times, series))
        s_sorted = series[order]
        starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        rank = np.arange(s_sorted.size) - np.repeat(starts, np.diff(np.r_[starts, s_sorted.size]))
        out: list[AlarmTransition] = []
        if rank.max() == 0:
            out += self._wave(series, times, values)
            return out
        for wave in range(int(rank.max()) + 1):
            pick = order[rank == wave]
            out += self._wave(series[pick], times[pick], values[pick])
        return out

    def _wave(self, s: I64, t: F64, v: F64) -> list[AlarmTransition]:
        """Samples of distinct series."""
        fresh = t > self._last[s]
        if not fresh.all():
            self.ignored += int((~fresh).sum())
            s, t, v = s[fresh], t[fresh], v[fresh]
            if s.size == 0:
                return []
        k = self._capacity
        slot = self._head[s] % k
        self._ring_t[s, slot] = t
        self._ring_v[s, slot] = v
        self._head[s] += 1
        self._last[s] = t
        out: list[AlarmTransition] = []
        # Rows by meter, so each group sees only its meter's rows.
        meter = self._meter_of[s]
        order = np.argsort(meter, kind="stable")
        ordered = meter[order]
        starts = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1]
        found = ordered[starts]
        ends = np.r_[starts[1:], order.size]
        for m, start, end in zip(found.tolist(), starts.tolist(), ends.tolist(), strict=True):
            groups = self._groups_of_meter.get(m)
            if not groups:
                continue
            rows = order[start:end]
            ms, mt, mv = s[rows], t[rows], v[rows]
            ring = _Ring(self, ms, mt, mv)
            for g in groups:
                local = self._local[g, ms]
                member = local >= 0
                if member.all():
                    out += self._evaluate(self._groups[g], ring, local)
                elif member.any():
                    picked = np.flatnonzero(member)
                    sub = _Ring(self, ms[picked], mt[picked], mv[picked])
                    out += self._evaluate(self._groups[g], sub, local[picked])
        return out

    def _evaluate(self, group: _Group, ring: _Ring, local: I64) -> list[AlarmTransition]:
        # First screen rows with 1-D tests: a row can only change if some rule's
        # condition may hold (its aggregate passes the loosest threshold) or
        # something is under way (a state other than ok, N-of-M hits remembered).
        busy_mask = group.pressure[local].copy()
        for aggregate, window, _ in group.reductions:
            lowest, highest, anything = group.screens[(aggregate, window)]
            if anything or aggregate in (Aggregate.SUM, Aggregate.COUNT):
                busy_mask[:] = True
                break
            if window <= 0 or aggregate == Aggregate.LAST:
                upper = lower = ring.v
            else:
                upper, lower = ring.bounds()
            busy_mask |= (upper >= lowest) | (lower <= highest)
        busy = np.flatnonzero(busy_mask)
        if busy.size == 0:
            return []
        if busy.size < busy_mask.size:
            ring = ring.subset(busy)
            local = local[busy]
        s, t = ring.s, ring.t
        r = len(group.rules)
        n = s.size
        if len(group.reductions) == 1:
            aggregate, window, _ = group.reductions[0]
            seen = np.broadcast_to(ring.reduce(aggregate, window)[:, None], (n, r))
        else:
            seen = np.empty((n, r))
            for aggregate, window, cols in group.reductions:
                seen[:, cols] = ring.reduce(aggregate, window)[:, None]
        if group.scaled:
            seen = seen * group.scale
        if len(group.ops) == 1:
            breach = _compare(group.ops[0][0], seen, group.threshold)
        else:
            breach = np.empty((n, r), dtype=np.bool_)
            for op, cols in group.ops:
                breach[:, cols] = _compare(op, seen[:, cols], group.threshold[:, cols])
        state = group.state[local]
        if group.any_counted:
            # every sample moves the N-of-M histories, a good one pushing an old hit out
            group.bits[local] = (group.bits[local] << np.uint64(1)) | breach.astype(np.uint64)
        if len(group.ops) == 1:
            hold = _compare(group.ops[0][0], seen, group.clear)
        else:
            hold = np.empty(breach.shape, dtype=np.bool_)
            for op, cols in group.ops:
                hold[:, cols] = _compare(op, seen[:, cols], group.clear[:, cols])
        tt = t[:, None]
        active = group.active[local]
        clear_since = group.clear_since[local]
        clear_count = group.clear_count[local]
        alarm = state == ALARM
        # firing: hold, or count towards clearing
        clearing = alarm & ~hold
        holding = alarm & hold
        clear_since = np.where(clearing & np.isnan(clear_since), tt, clear_since)
        clear_since = np.where(holding, _NAN, clear_since)
        clear_count = np.where(clearing, clear_count + 1, np.where(holding, 0, clear_count))
        cleared = (
            clearing & (tt - clear_since >= group.clear_for) & (clear_count >= group.clear_samples)
        )
        # not firing: start or stop the hold timer, fire when `for` is met
        other = ~alarm
        quiet = other & ~breach
        breaching = other & breach
        active = np.where(breaching & np.isnan(active), tt, active)
        active = np.where(quiet, _NAN, active)
        if group.any_counted:
            hits = np.bitwise_count(group.bits[local] & group.mask)
            met = np.where(group.counted, hits >= group.need, (tt - active) >= group.for_seconds)
        else:
            met = (tt - active) >= group.for_seconds
        new = state.copy()
        new[cleared | quiet] = OK
        new[breaching & met] = ALARM
        new[breaching & ~met] = PENDING
        if cleared.any():
            active = np.where(cleared, _NAN, active)
            clear_since = np.where(cleared, _NAN, clear_since)
            clear_count = np.where(cleared, 0, clear_count)
            if group.any_counted:
                group.bits[local] = np.where(cleared, np.uint64(0), group.bits[local])
        group.active[local] = active
        group.clear_since[local] = clear_since
        group.clear_count[local] = clear_count
        still = new.any(axis=1)
        if group.any_counted:
            still |= group.bits[local].any(axis=1)
        group.pressure[local] = still
        changed = new != state
        if not changed.any():
            return []
        group.state[local] = new
        rows, cols = np.nonzero(changed)
        slots = local[rows]
        group.since[slots, cols] = t[rows]
        values = seen[rows, cols]
        group.value[slots, cols] = values
        transition = self._transition
        rules = group.rules
        return [
            transition(rules[i], sid, before, after, when, value)
            for i, sid, before, after, when, value in zip(
                cols.tolist(),
                s[rows].tolist(),
                state[rows, cols].tolist(),
                new[rows, cols].tolist(),
                t[rows].tolist(),
                values.tolist(),
                strict=True,
            )
        ]

    def advance(self, now: float) -> list[AlarmTransition]:
        """Series silent for their rule's `missing.after` go to no_data."""
        out: list[AlarmTransition] = []
        for group in self._groups:
            m = len(group.members)
            if not m or not group.no_data.any():
                continue
            members = group.member_array()
            last = self._last[members][:, None]
            if float(last.min()) + group.min_after > now:
                continue  # the usual case: every series spoke recently enough
            gone_at = last + group.after
            state = group.state[:m]
            due = group.no_data & (state != NO_DATA) & (gone_at <= now) & np.isfinite(last)
            if not due.any():
                continue
            rows, cols = np.nonzero(due)
            for j, i in zip(rows.tolist(), cols.tolist(), strict=True):
                previous = int(state[j, i])
                when = float(gone_at[j, i])
                group.state[j, i] = NO_DATA
                group.pressure[j] = True
                group.active[j, i] = _NAN
                group.clear_since[j, i] = _NAN
                group.clear_count[j, i] = 0
                group.bits[j, i] = 0
                group.since[j, i] = when
                group.value[j, i] = _NAN
                out.append(
                    self._transition(
                        group.rules[i], group.members[j], previous, NO_DATA, when, None
                    )
                )
        return out

    def states(self) -> list[Alarm]:
        """Every (rule, series) not in ok, ordered by rule then series name."""
        out: list[Alarm] = []
        for group in self._groups:
            m = len(group.members)
            rows, cols = np.nonzero(group.state[:m] != OK)
            for j, i in zip(rows.tolist(), cols.tolist(), strict=True):
                rule = group.rules[i]
                series = self._series[group.members[j]]
                value = float(group.value[j, i])
                out.append(
                    Alarm(
                        rule=rule.name,
                        entity=series.name,
                        state=_STATES[int(group.state[j, i])],
                        since=float(group.since[j, i]),
                        value=None if math.isnan(value) else value,
                        severity=rule.severity,
                        labels={**series.labels, **rule.labels},
                    )
                )
        return sorted(out, key=lambda a: (a.rule, a.entity))

    def _transition(
        self,
        rule: ThresholdRule,
        sid: int,
        previous: int,
        current: int,
        time: float,
        value: float | None,
    ) -> AlarmTransition:
        series = self._series[sid]
        state = _STATES[current]
        if value is None:
            reason = f"{rule.meter} sent nothing for {rule.missing.after:g}s"
        else:
            reason = f"{_NAMES[current]}: {self._described[rule.name]}, seen {value:g}"
        key = (rule.name, sid)
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels[key] = {**series.labels, **rule.labels}
        return AlarmTransition(
            rule.name,
            series.name,
            _STATES[previous],
            state,
            time,
            value,
            rule.severity,
            "cep",
            reason,
            labels,
            rule.version,
            self._details[rule.name],
            False,
            rule.annotations,
        )
