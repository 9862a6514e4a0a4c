"""The round-robin update rules of librrd 1.7.2, as numpy work over all the
columns of an archive at once: readings become rate×seconds, time-weighted
primary data points, consolidated rows (see docs/rrd.md for the rules).

Time is shared by every column of an archive, so the step arithmetic of an
update is planned once (`plan`) and then applied to each block of columns
(`Engine.apply`). Nothing here does I/O: state and rings are arrays the caller
owns (views of a memory-mapped file, or plain arrays in tests)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opendrs.store.rrd.definition import Archive, Consolidation, SourceType
from opendrs.store.rrd.numbers import magnitudes_to_float

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
B = npt.NDArray[np.bool_]

NAN = math.nan
_WRAP32 = 4294967295.0  # librrd adds 2**32-1, not 2**32
_WRAP64 = 18446744069414584320.0  # 2**64 - 2**32


class ColumnParams:
    """What each column is (arrays of the block's capacity), with the masks the
    engine needs precomputed."""

    def __init__(self, kind: I64, heartbeat: F64, minimum: F64, maximum: F64) -> None:
        self.kind = kind
        self.heartbeat = heartbeat
        self.minimum = minimum
        self.maximum = maximum
        self.counter: B = kind == SourceType.COUNTER
        self.derive: B = kind == SourceType.DERIVE
        self.absolute: B = kind == SourceType.ABSOLUTE
        self.gauge: B = kind == SourceType.GAUGE
        self.has_counters = bool(np.any(self.counter | self.derive))
        self.has_wrap = bool(np.any(self.counter))
        self.has_absolute = bool(np.any(self.absolute))
        self.has_gauge = bool(np.any(self.gauge))
        self.all_gauge = bool(np.all(self.gauge))
        self.has_bounds = bool(np.any(~np.isnan(minimum) | ~np.isnan(maximum)))
        self.min_heartbeat = float(np.min(heartbeat)) if len(heartbeat) else math.inf


@dataclass(slots=True)
class ColumnState:
    """The per-column state librrd keeps in its pdp_prep and cdp_prep areas."""

    last_value: F64  # last GAUGE/ABSOLUTE reading, NaN for U
    last_mag: U64  # last COUNTER/DERIVE reading's magnitude
    last_sign: I64  # 0: U, 1: non-negative, -1: negative
    pdp_val: F64
    unknown_sec: I64
    cdp_val: list[F64]
    cdp_unknown: list[I64]


@dataclass(slots=True)
class Readings:
    """One update's values for every column of a block."""

    unknown: B
    value: F64
    magnitude: U64
    negative: B


@dataclass(frozen=True, slots=True)
class Pass:
    """One closing of PDPs inside an update: librrd closes a partly filled PDP on
    its own first when an update crosses several step boundaries."""

    interval: float
    pre_int: float
    post_int: float
    elapsed: int
    proc_pdp_cnt: int
    rows: tuple[int, ...]  # rows each archive writes in this pass
    start_offsets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Tick:
    """The step arithmetic of one update, shared by every column."""

    interval: float
    passes: tuple[Pass, ...]  # empty: no step boundary crossed
    second: int
    usec: int

    def rows_written(self, count: int) -> list[int]:
        total = [0] * count
        for p in self.passes:
            for i, n in enumerate(p.rows):
                total[i] += n
        return total


class Engine:
    """librrd's update for one archive layout (step and RRAs)."""

    def __init__(self, step: int, archives: Sequence[Archive]) -> None:
        self.step = step
        self.archives = tuple(archives)

    # --- time -------------------------------------------------------------

    def _rows(self, elapsed: int, proc_pdp_cnt: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        rows: list[int] = []
        offsets: list[int] = []
        for archive in self.archives:
            start_offset = archive.steps - proc_pdp_cnt % archive.steps
            offsets.append(start_offset)
            if start_offset <= elapsed:
                rows.append(min((elapsed - start_offset) // archive.steps + 1, archive.rows))
            else:
                rows.append(0)
        return tuple(rows), tuple(offsets)

    def plan(self, last_up: int, last_usec: int, second: int, usec: int) -> Tick:
        """What an update at `second`.`usec` does to the clock of an archive last
        updated at `last_up`.`last_usec` (the caller checked time moves forward)."""
        step = self.step
        interval = float(second - last_up) + float(usec - last_usec) / 1e6
        proc_pdp_st = last_up - last_up % step
        occu_pdp_age = second % step
        occu_pdp_st = second - occu_pdp_age
        if occu_pdp_st <= proc_pdp_st:
            return Tick(interval, (), second, usec)
        pre_int = float(occu_pdp_st - last_up) - last_usec / 1e6
        post_int = float(occu_pdp_age) + usec / 1e6
        proc_pdp_cnt = proc_pdp_st // step
        elapsed = (occu_pdp_st - proc_pdp_st) // step
        passes: list[Pass] = []
        if elapsed > 1:
            sec_open = int(pre_int) % step
            if sec_open > 0:
                rows, offsets = self._rows(1, proc_pdp_cnt)
                passes.append(
                    Pass(float(sec_open), float(sec_open), 0.0, 1, proc_pdp_cnt, rows, offsets)
                )
                pre_int -= sec_open
                elapsed -= 1
                proc_pdp_cnt += 1
        rows, offsets = self._rows(elapsed, proc_pdp_cnt)
        main_interval = interval - passes[0].interval if passes else interval
        passes.append(Pass(main_interval, pre_int, post_int, elapsed, proc_pdp_cnt, rows, offsets))
        return Tick(interval, tuple(passes), second, usec)

    # --- values -----------------------------------------------------------

    def apply(
        self,
        tick: Tick,
        params: ColumnParams,
        state: ColumnState,
        rings: Sequence[F64],
        cur_rows: Sequence[int],
        readings: Readings,
    ) -> list[int]:
        """Apply one planned update to one block of columns: state in place,
        rows into `rings` after positions `cur_rows`; returns the new positions."""
        positions = list(cur_rows)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            pdp_new = self._prepare(tick.interval, params, state, readings)
            if not tick.passes:
                self._simple(tick.interval, state, pdp_new)
                return positions
            if len(tick.passes) == 2:
                split = tick.passes[0]
                known = ~np.isnan(pdp_new)
                open_part = np.where(known, pdp_new * split.interval / tick.interval, NAN)
                pdp_new = np.where(known, pdp_new - open_part, pdp_new)
                pdp_temp = self._close_pdp(split, params, state, open_part)
                self._consolidate(split, state, pdp_temp, rings, positions)
            main = tick.passes[-1]
            pdp_temp = self._close_pdp(main, params, state, pdp_new)
            self._consolidate(main, state, pdp_temp, rings, positions)
        return positions

    def _prepare(
        self, interval: float, params: ColumnParams, state: ColumnState, readings: Readings
    ) -> F64:
        """update_pdp_prep: each reading as the rate×seconds it adds (NaN if unknown)."""
        unknown = readings.unknown
        if params.all_gauge:
            pdp_new = readings.value * interval
            rate = readings.value
        else:
            pdp_new = np.full(len(unknown), NAN)
            rate = np.full(len(unknown), NAN)
            if params.has_gauge:
                g = params.gauge
                pdp_new = np.where(g, readings.value * interval, pdp_new)
                rate = np.where(g, readings.value, rate)
            if params.has_absolute:
                a = params.absolute
                pdp_new = np.where(a, readings.value, pdp_new)
                rate = np.where(a, readings.value / interval, rate)
            if params.has_counters:
                delta = self._counter_delta(params, state, readings)
                c = params.counter | params.derive
                pdp_new = np.where(c, delta, pdp_new)
                rate = np.where(c, delta / interval, rate)
        if interval > params.min_heartbeat:
            unknown = unknown | (params.heartbeat < interval)
        if params.has_bounds:
            unknown = unknown | (rate > params.maximum) | (rate < params.minimum)
        if unknown.any():
            pdp_new = np.where(unknown, NAN, pdp_new)
        # the reading is remembered whatever happened to the interval
        if readings.unknown.any():
            state.last_value[:] = np.where(readings.unknown, NAN, readings.value)
            if params.has_counters:
                state.last_sign[:] = np.where(
                    readings.unknown, 0, np.where(readings.negative, -1, 1)
                )
        else:
            state.last_value[:] = readings.value
            if params.has_counters:
                state.last_sign[:] = np.where(readings.negative, -1, 1)
        if params.has_counters:
            state.last_mag[:] = readings.magnitude
        return pdp_new

    def _counter_delta(self, params: ColumnParams, state: ColumnState, readings: Readings) -> F64:
        """rrd_diff: the exact integer difference of two readings, NaN when either
        is U or their signs differ; COUNTERs then get librrd's wrap correction."""
        new = readings.magnitude
        old = state.last_mag
        grew = new >= old
        signs = bool(readings.negative.any() or (state.last_sign < 0).any())
        if grew.all():
            delta = magnitudes_to_float(new - old)
        else:
            delta = magnitudes_to_float(np.where(grew, new - old, old - new))
            delta = np.where(grew, delta, -delta)
        invalid = readings.unknown | (state.last_sign == 0)
        if signs:
            old_negative = state.last_sign < 0
            delta = np.where(readings.negative, -delta, delta)
            invalid = invalid | (readings.negative != old_negative)
        if params.has_wrap and (signs or not grew.all()):
            counter = params.counter
            delta = np.where(counter & (delta < 0), delta + _WRAP32, delta)
            delta = np.where(counter & (delta < 0), delta + _WRAP64, delta)
        return np.where(invalid, NAN, delta) if invalid.any() else delta

    @staticmethod
    def _simple(interval: float, state: ColumnState, pdp_new: F64) -> None:
        """No step boundary crossed: accumulate."""
        unknown = np.isnan(pdp_new)
        state.unknown_sec[:] = np.where(
            unknown, state.unknown_sec + math.floor(interval), state.unknown_sec
        )
        state.pdp_val[:] = np.where(
            unknown,
            state.pdp_val,
            np.where(np.isnan(state.pdp_val), pdp_new, state.pdp_val + pdp_new),
        )

    def _close_pdp(self, p: Pass, params: ColumnParams, state: ColumnState, pdp_new: F64) -> F64:
        """process_pdp_st: the value of the PDP(s) this update closes, and the
        start of the next one."""
        unknown = np.isnan(pdp_new)
        any_unknown = bool(unknown.any())
        val = state.pdp_val
        val_nan = np.isnan(val)
        if val_nan.any():
            val = np.where(val_nan, 0.0, val)
        share = pdp_new / p.interval
        if any_unknown:
            pre_unknown: F64 | float = np.where(unknown, p.pre_int, 0.0)
            val = np.where(unknown, state.pdp_val, val + share * p.pre_int)
        else:
            pre_unknown = 0.0
            val = val + share * p.pre_int
        unknown_sec = state.unknown_sec
        dumped = (self.step / 2.0) < unknown_sec
        if p.interval > params.min_heartbeat:
            dumped = dumped | (p.interval > params.heartbeat)
        diff = p.elapsed * self.step
        if unknown_sec.any():
            known_sec: F64 | float = (diff - unknown_sec).astype(np.float64) - pre_unknown
        else:
            known_sec = float(diff) - pre_unknown  # (double)(diff - 0) - pre_unknown
        pdp_temp = val / known_sec
        if dumped.any():
            pdp_temp = np.where(dumped, NAN, pdp_temp)
        if any_unknown:
            state.unknown_sec[:] = np.where(unknown, math.floor(p.post_int), 0)
            state.pdp_val[:] = np.where(unknown, NAN, share * p.post_int)
        else:
            state.unknown_sec[:] = 0
            np.multiply(share, p.post_int, out=state.pdp_val)
        return pdp_temp

    def _consolidate(
        self,
        p: Pass,
        state: ColumnState,
        pdp_temp: F64,
        rings: Sequence[F64],
        positions: list[int],
    ) -> None:
        """update_cdp_prep + write_to_rras for every archive."""
        unknown = np.isnan(pdp_temp)
        any_unknown = bool(unknown.any())
        elapsed = p.elapsed
        for index, archive in enumerate(self.archives):
            n_rows = p.rows[index]
            if archive.steps == 1:
                # one PDP per row: every row written is the PDP itself
                if n_rows:
                    positions[index] = _write(
                        rings[index], positions[index], n_rows, pdp_temp, pdp_temp
                    )
                continue
            cdp = state.cdp_val[index]
            unk = state.cdp_unknown[index]
            cf = archive.cf
            if n_rows == 0:
                self._accumulate(cf, cdp, unk, pdp_temp, unknown, any_unknown, elapsed)
                continue
            start_offset = p.start_offsets[index]
            unk_now = np.where(unknown, unk + start_offset, unk) if any_unknown else unk
            secondary = pdp_temp
            cdp_nan = np.isnan(cdp)
            some_cdp_nan = bool(cdp_nan.any())
            if cf is Consolidation.AVERAGE:
                cum = np.where(cdp_nan, 0.0, cdp) if some_cdp_nan else cdp
                cur = np.where(unknown, 0.0, pdp_temp) if any_unknown else pdp_temp
                value = (cum + cur * start_offset) / (archive.steps - unk_now).astype(np.float64)
            elif cf is Consolidation.MAX or cf is Consolidation.MIN:
                empty = -math.inf if cf is Consolidation.MAX else math.inf
                cum = np.where(cdp_nan, empty, cdp) if some_cdp_nan else cdp
                cur = np.where(unknown, empty, pdp_temp) if any_unknown else pdp_temp
                better = cur > cum if cf is Consolidation.MAX else cur < cum
                value = np.where(better, cur, cum)
            else:
                value = pdp_temp
            too_unknown = unk_now > archive.steps * archive.xff
            primary = np.where(too_unknown, NAN, value) if too_unknown.any() else value
            into = (elapsed - start_offset) % archive.steps
            if into == 0:
                cdp[:] = _EMPTY_CARRY[cf]
            else:
                filled = pdp_temp * into if cf is Consolidation.AVERAGE else pdp_temp
                cdp[:] = np.where(unknown, _EMPTY_CARRY[cf], filled) if any_unknown else filled
            if any_unknown:
                unk[:] = np.where(unknown, into, 0)
            else:
                unk[:] = 0
            positions[index] = _write(rings[index], positions[index], n_rows, primary, secondary)

    @staticmethod
    def _accumulate(
        cf: Consolidation,
        cdp: F64,
        unk: I64,
        pdp_temp: F64,
        unknown: B,
        any_unknown: bool,
        elapsed: int,
    ) -> None:
        """calculate_cdp_val: fold PDPs into a CDP that does not close yet."""
        if any_unknown:
            unk[:] = np.where(unknown, unk + elapsed, unk)
        cdp_nan = np.isnan(cdp)
        if not any_unknown and not cdp_nan.any():
            if cf is Consolidation.AVERAGE:
                cdp += pdp_temp * elapsed
            elif cf is Consolidation.MAX:
                np.copyto(cdp, pdp_temp, where=pdp_temp > cdp)
            elif cf is Consolidation.MIN:
                np.copyto(cdp, pdp_temp, where=pdp_temp < cdp)
            else:
                cdp[:] = pdp_temp
            return
        if cf is Consolidation.AVERAGE:
            grown = np.where(cdp_nan, pdp_temp * elapsed, cdp + pdp_temp * elapsed)
        elif cf is Consolidation.MAX:
            grown = np.where(cdp_nan, pdp_temp, np.where(pdp_temp > cdp, pdp_temp, cdp))
        elif cf is Consolidation.MIN:
            grown = np.where(cdp_nan, pdp_temp, np.where(pdp_temp < cdp, pdp_temp, cdp))
        else:
            grown = pdp_temp
        cdp[:] = np.where(unknown, cdp, grown) if any_unknown else grown


_EMPTY_CARRY = {
    Consolidation.AVERAGE: 0.0,
    Consolidation.MAX: -math.inf,
    Consolidation.MIN: math.inf,
    Consolidation.LAST: NAN,
}


def _write(ring: F64, position: int, count: int, primary: F64, secondary: F64) -> int:
    """Write `count` rows after `position` (wrapping): the first is `primary`,
    the rest repeat `secondary`. Returns the new position."""
    size = ring.shape[0]
    position = (position + 1) % size
    ring[position] = primary
    if count > 1:
        rest = (position + 1 + np.arange(count - 1)) % size
        ring[rest] = secondary
        position = int(rest[-1])
    return position


def initial_state_values(
    step: int, archives: Sequence[Archive], last_up: int
) -> tuple[int, list[int]]:
    """A fresh column's unknown seconds and per-archive unknown PDPs, as if its
    archive had been created with `--start last_up` (rrd_create reset_pdp_prep
    and init_cdp)."""
    unknown_sec = last_up % step
    unknown_pdps = [((last_up - unknown_sec) % (step * a.steps)) // step for a in archives]
    return unknown_sec, unknown_pdps
