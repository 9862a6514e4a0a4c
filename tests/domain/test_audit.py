"""An audit's schedule: a positive interval, run times that move on with each run,
and no next run once the audit has ended."""

from __future__ import annotations

import math

import pytest

from opendrs.domain.audit import Audit, AuditState, AuditType
from opendrs.domain.errors import InvalidInput, InvalidTransition


def every(interval: float) -> Audit:
    return Audit(
        "g", "s", audit_type=AuditType.CONTINUOUS, interval=interval, next_run_at=100.0
    ).moved_to(AuditState.ONGOING)


@pytest.mark.parametrize("interval", [0.0, -1.0, math.nan])
def test_an_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        every(interval)
    assert caught.value.field == "interval"


def test_a_run_sets_the_last_run_and_the_next_one_an_interval_later() -> None:
    audit = every(60.0).ran(130.0)
    assert (audit.last_run_at, audit.next_run_at) == (130.0, 190.0)
    assert audit.scheduled and audit.state == AuditState.ONGOING


def test_only_a_scheduled_audit_runs_again() -> None:
    plain = Audit("g", "s", audit_type=AuditType.CONTINUOUS)
    assert not plain.scheduled
    assert not Audit("g", "s", interval=5.0).scheduled  # a oneshot with an interval
    with pytest.raises(InvalidInput):
        plain.ran(1.0)


def test_suspending_keeps_the_next_run_and_ending_drops_it() -> None:
    suspended = every(60.0).moved_to(AuditState.SUSPENDED)
    assert suspended.next_run_at == 100.0
    assert suspended.moved_to(AuditState.ONGOING).next_run_at == 100.0
    for end in (AuditState.CANCELLED, AuditState.FAILED, AuditState.SUCCEEDED):
        assert every(60.0).moved_to(end).next_run_at is None
    with pytest.raises(InvalidTransition):
        every(60.0).moved_to(AuditState.CANCELLED).moved_to(AuditState.ONGOING)
