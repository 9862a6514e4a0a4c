"""Routing notifications: inhibition (host down mutes its instances), grouping,
rate limits, and resolutions announced only for what was announced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opendrs.cep.routing import Inhibition, NotificationRouter, RoutingPolicy
from opendrs.domain.alarm import AlarmState, AlarmTransition

OK, ALARM, PENDING = AlarmState.OK, AlarmState.ALARM, AlarmState.PENDING


def move(
    rule: str, entity: str, previous: AlarmState, current: AlarmState, t: float, **labels: str
) -> AlarmTransition:
    return AlarmTransition(rule, entity, previous, current, t, 1.0, labels=labels)


def vm(name: str, current: AlarmState, t: float, host: str = "h1") -> AlarmTransition:
    previous = OK if current == ALARM else ALARM
    return move("vm_cpu", name, previous, current, t, instance=name, host=host)


def host_down(current: AlarmState, t: float, host: str = "h1") -> AlarmTransition:
    previous = OK if current == ALARM else ALARM
    return move("host_down", host, previous, current, t, host=host)


def names(batches: list) -> list[list[tuple[str, str]]]:
    return [[(t.entity, t.current.value) for t in b.notifications] for b in batches]


INHIBIT = RoutingPolicy(inhibitions=(Inhibition(source={"rule": "host_down"}),))


def test_a_host_that_is_down_mutes_its_instances_then_releases_them() -> None:
    router = NotificationRouter(INHIBIT)
    assert names(router.route([host_down(ALARM, 0)], 0)) == [[("h1", "alarm")]]
    muted = router.route([vm("vm1", ALARM, 10), vm("vm9", ALARM, 10, host="h2")], 10)
    assert names(muted) == [[("vm9", "alarm")]]  # only the other host's instance
    assert router.counts.muted == 1
    released = router.route([host_down(OK, 20)], 20)
    assert names(released) == [[("h1", "ok"), ("vm1", "alarm")]]


def test_an_instance_resolved_while_muted_is_never_announced() -> None:
    router = NotificationRouter(INHIBIT)
    router.route([host_down(ALARM, 0), vm("vm1", ALARM, 1)], 1)
    assert names(router.route([vm("vm1", OK, 2)], 2)) == []
    assert names(router.route([host_down(OK, 3)], 3)) == [[("h1", "ok")]]


def test_batches_group_by_host() -> None:
    router = NotificationRouter(RoutingPolicy(group_by=("host",)))
    batches = router.route([vm("a", ALARM, 0), vm("b", ALARM, 0, host="h2"), vm("c", ALARM, 0)], 0)
    assert [b.group for b in batches] == [(("host", "h1"),), (("host", "h2"),)]
    assert names(batches) == [[("a", "alarm"), ("c", "alarm")], [("b", "alarm")]]


def test_rate_limit_per_group_and_the_limited_alarm_resolves_silently() -> None:
    router = NotificationRouter(RoutingPolicy(max_per_group=2, per=60))
    first = router.route([vm("a", ALARM, 0), vm("b", ALARM, 0), vm("c", ALARM, 0)], 0)
    assert names(first) == [[("a", "alarm"), ("b", "alarm")]]
    assert router.counts.limited == 1
    assert names(router.route([vm("c", OK, 5), vm("a", OK, 5)], 5)) == [[("a", "ok")]]
    assert names(router.route([vm("d", ALARM, 61)], 61)) == [[("d", "alarm")]]


def test_after_a_restart_every_resolution_passes() -> None:
    router = NotificationRouter()  # knows nothing of what was announced before
    assert names(router.route([vm("a", OK, 0)], 0)) == [[("a", "ok")]]


def test_pending_and_held_transitions_are_not_sent() -> None:
    router = NotificationRouter()
    pending = move("r", "x", OK, PENDING, 0)
    held = AlarmTransition("r", "y", OK, ALARM, 0, 1.0, held=True)
    assert router.route([pending, held], 0) == []


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=30))
def test_the_dedup_key_of_a_batch_is_stable(steps: list[tuple[str, bool]]) -> None:
    transitions = [vm(n, ALARM if up else OK, float(i)) for i, (n, up) in enumerate(steps)]
    one = NotificationRouter(RoutingPolicy(max_per_group=1000)).route(transitions, 0)
    two = NotificationRouter(RoutingPolicy(max_per_group=1000)).route(transitions, 0)
    assert [b.dedup_key for b in one] == [b.dedup_key for b in two]
