"""Which archive answers a fetch and which rows it returns, by librrd 1.7.2's
rules (rrd_fetch_fn): the finest archive whose reach covers the start, with
start rounded down and end rounded up (an aligned end still moves one step)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opendrs.domain.errors import InvalidInput
from opendrs.store.rrd.definition import EARLIEST_TIME, Archive, Consolidation

_INTERCHANGEABLE = frozenset(Consolidation)


@dataclass(frozen=True, slots=True)
class FetchPlan:
    archive: int
    start: int
    end: int
    step: int

    @property
    def rows(self) -> int:
        return (self.end - self.start) // self.step


def parse_cf(name: str) -> Consolidation:
    try:
        return Consolidation[str(name).upper()]
    except KeyError:
        supported = ", ".join(c.name for c in Consolidation)
        raise InvalidInput(
            f"unknown consolidation function {name!r} (use one of {supported})",
            source="fetch",
            field="cf",
        ) from None


def plan_fetch(
    archives: Sequence[Archive],
    step: int,
    last_up: int,
    cf: Consolidation,
    start: int,
    end: int,
    resolution: int = 1,
) -> FetchPlan:
    """Choose the archive and the aligned range as rrdtool's fetch does."""
    if start < EARLIEST_TIME:
        raise InvalidInput(f"start {start} is before 1980", source="fetch", field="start")
    if end < start:
        raise InvalidInput(f"start ({start}) should be less than end ({end})", source="fetch")
    if resolution < 1:
        raise InvalidInput(f"resolution {resolution} must be positive", source="fetch")
    best_full: int | None = None
    best_full_diff = 0
    best_part: int | None = None
    best_part_diff = 0
    best_match = 0
    for index, archive in enumerate(archives):
        usable = archive.cf is cf or (
            archive.steps == 1 and cf in _INTERCHANGEABLE and archive.cf in _INTERCHANGEABLE
        )
        if not usable:
            continue
        archive_step = step * archive.steps
        cal_end = last_up - last_up % archive_step
        cal_start = cal_end - archive_step * archive.rows
        step_diff = abs(resolution - archive_step)
        if cal_start <= start:
            if best_full is None or step_diff < best_full_diff:
                best_full, best_full_diff = index, step_diff
        else:
            match = (end - start) - (cal_start - start)
            if (
                best_part is None
                or best_match < match
                or (best_match == match and step_diff < best_part_diff)
            ):
                best_part, best_part_diff, best_match = index, step_diff, match
    chosen = best_full if best_full is not None else best_part
    if chosen is None:
        raise InvalidInput(
            f"no archive holds consolidation function {cf.name}", source="fetch", field="cf"
        )
    rra_step = step * archives[chosen].steps
    aligned_start = start - start % rra_step
    aligned_end = end + (rra_step - end % rra_step)
    return FetchPlan(chosen, aligned_start, aligned_end, rra_step)


def row_slots(
    archive: Archive, step: int, last_up: int, cur_row: int, plan: FetchPlan
) -> tuple[int, npt.NDArray[np.int64]]:
    """Where the returned rows (timestamps plan.start+step … plan.end) live in
    the ring: the index of the first result row the ring holds, and the ring
    slots of that row and the following ones. Rows the ring does not hold (older
    than its oldest row, newer than the last update) stay NaN."""
    rra_step = plan.step
    rra_end = last_up - last_up % rra_step
    rra_start = rra_end - rra_step * (archive.rows - 1)
    first_ts = plan.start + rra_step
    lo = max(first_ts, rra_start)
    hi = min(plan.end, rra_end)
    if lo > hi:
        return 0, np.zeros(0, dtype=np.int64)
    first = (lo - first_ts) // rra_step
    count = (hi - lo) // rra_step + 1
    age = (lo - rra_start) // rra_step
    # the ring has one spare slot: the live rows are the `rows` slots ending at cur_row
    oldest = cur_row - archive.rows + 1
    slots = (oldest + age + np.arange(count, dtype=np.int64)) % (archive.rows + 1)
    return first, slots
