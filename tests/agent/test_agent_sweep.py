"""The whole-poll sweep makes the very samples, hook groups and rate table that
meters.instance_rows makes instance by instance, whatever the host does between
polls: instances and devices coming and going, counters reset, time standing
still, ops unknown."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.agent.meters import instance_rows
from opendrs.agent.plugin import Hook
from opendrs.agent.rates import RateTable
from opendrs.agent.sweep import PollSweep
from opendrs.domain.counters import DeviceBytes, InstanceCounters

_count = st.integers(0, 10**12)
_ops = st.none() | st.integers(0, 10**6)
_device = st.builds(DeviceBytes, _count, _count, _ops, _ops)
_names = st.sampled_from(["vda", "vdb", "tap1", "sda"])
_instance = st.fixed_dictionaries(
    {
        "instance": st.sampled_from(["a", "b", "c", "d"]),
        "vcpus": st.integers(1, 8),
        "cpu_time_ns": _count,
        "memory_mb": st.integers(0, 10**6),
        "memory_used_mb": st.none() | st.floats(0, 1e6),
        "disks": st.dictionaries(_names, _device, max_size=2),
        "volumes": st.dictionaries(_names, _device, max_size=1),
        "interfaces": st.dictionaries(_names, _device, max_size=2),
    }
)
# a poll: its time step (0 or backwards included) and its instances (a name once)
_poll = st.tuples(
    st.sampled_from([300.0, 300.0, 0.0, -10.0, 60.5]),
    st.lists(_instance, max_size=4, unique_by=lambda d: d["instance"]),
)


def _by_hand(
    polls: list[list[InstanceCounters]],
) -> tuple[list[list[object]], list[list[object]], RateTable]:
    table = RateTable()
    rows: list[list[object]] = []
    groups: list[list[object]] = []
    for found in polls:
        entries = [(c, instance_rows(c, table, "h")) for c in found]
        rows.append([row for _, by_hook in entries for group in by_hook.values() for row in group])
        groups.append([(c, {h: list(g) for h, g in by_hook.items()}) for c, by_hook in entries])
    return rows, groups, table


@settings(max_examples=200, deadline=None)
@given(st.lists(_poll, min_size=1, max_size=6), st.booleans())
def test_the_sweep_matches_instance_by_instance(
    script: list[tuple[float, list[dict[str, object]]]], steady: bool
) -> None:
    polls: list[list[InstanceCounters]] = []
    t = 1000.0
    for step, found in script:
        t += step
        polls.append([InstanceCounters(time=t, **d) for d in found])  # type: ignore[arg-type]
    if steady:  # the same instances and devices every poll: the sweep's own path
        polls = [[*polls[0]] for _ in polls]
    expected_rows, expected_groups, expected_table = _by_hand(polls)
    sweep = PollSweep()
    table = RateTable()
    for found, rows, groups in zip(polls, expected_rows, expected_groups, strict=True):
        out = sweep.columns(found, table, "h")
        assert out is not None
        got_columns, got_entries, _ = out
        assert got_columns.rows() == rows
        assert [(c, dict(by_hook)) for c, by_hook in got_entries] == groups
        assert all(set(by_hook) == set(Hook) - {Hook.HOST} for _, by_hook in got_entries)
    sweep.settle()  # the sweep keeps its counters' observations until asked
    assert table.observations(sorted(expected_table._last)) == [
        expected_table._last[k] for k in sorted(expected_table._last)
    ]
    assert table.resets == expected_table.resets


def test_a_steady_host_keeps_its_layout_and_a_change_makes_a_new_one() -> None:
    sweep = PollSweep()
    table = RateTable()
    disk = {"vda": DeviceBytes(10, 20, 1, 2)}

    def poll(t: float, *names: str) -> None:
        found = [InstanceCounters(n, t, 1, int(t * 1e9), 512, None, disk) for n in names]
        assert sweep.columns(found, table, "h") is not None

    poll(0.0, "a", "b")
    poll(300.0, "a", "b")
    poll(600.0, "a", "b")
    assert sweep.layouts == 1
    poll(900.0, "a")
    assert sweep.layouts == 2


def test_invalid_counters_or_a_name_twice_leave_it_to_instance_by_instance() -> None:
    sweep = PollSweep()
    table = RateTable()
    good = InstanceCounters("a", 0.0, 1, 10, 512)
    assert sweep.columns([good, InstanceCounters("b", 0.0, 0, 10, 512)], table, "h") is None
    assert sweep.columns([good, good], table, "h") is None
    assert sweep.columns([good], table, "h") is not None


@settings(max_examples=200, deadline=None)
@given(
    st.integers(-1, 2),
    st.integers(-1, 1),
    st.integers(-1, 1),
    st.sampled_from([0.0, float("nan"), float("inf")]),
    st.sampled_from(["", "a"]),
    st.sampled_from(["disks", "interfaces", "volumes"]),
    st.integers(-1, 1),
    st.integers(-1, 1),
)
def test_the_sweep_refuses_exactly_what_instance_by_instance_refuses(
    vcpus: int,
    cpu: int,
    memory: int,
    t: float,
    name: str,
    where: str,
    read: int,
    write: int,
) -> None:
    devices = {where: {"vda": DeviceBytes(read, write)}}
    counters = InstanceCounters(name, t, vcpus, cpu, memory, None, **devices)  # type: ignore[arg-type]
    try:
        instance_rows(counters, RateTable(), "h")
    except Exception:
        refused = True
    else:
        refused = False
    assert (PollSweep().columns([counters], RateTable(), "h") is None) == refused
