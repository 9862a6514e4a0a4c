"""The round's shortcuts give exactly what the plain definitions give: the placer
against find_host, the detectors' fast paths against their general ones, the one-SVD
maximum correlation against a regression per VM, and the Load's sums."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from consolidation_builders import snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.decision.consolidation.detectors import (
    _FULL_QUARTILES,
    Detector,
    InterquartileRange,
    LocalRegression,
    MedianAbsoluteDeviation,
    Threshold,
    _history,
    _quartile_positions,
    _utilisation,
)
from opendrs.decision.consolidation.load import HostMembers, Load
from opendrs.decision.consolidation.placement import Placer, find_host
from opendrs.decision.consolidation.selection import MaximumCorrelation, _clear_winner
from opendrs.decision.consolidation.snapshot import HISTORY_LENGTH, Snapshot

DETECTORS: list[Detector] = [
    Threshold(0.8),
    MedianAbsoluteDeviation(2.5),
    InterquartileRange(1.5),
    LocalRegression(1.2),
]


def random_snapshot(
    seed: int, hosts: int = 40, vms: int = 60, full_share: float | None = None
) -> Snapshot:
    """Hosts of two kinds, half of them idle; VMs of four sizes with random, partly
    short histories (so every fallback of the detectors is exercised); `full_share`:
    the chance that a VM's history is full instead."""
    rng = np.random.default_rng(seed)
    mips = [3720.0 if i % 2 else 5320.0 for i in range(hosts)]
    busy = rng.choice(hosts, size=hosts // 2, replace=False)
    kinds = [(2500.0, 870.0), (2000.0, 1740.0), (1000.0, 1740.0), (500.0, 613.0)]
    table = []
    histories = []
    for _ in range(vms):
        nominal, ram = kinds[int(rng.integers(4))]
        demand = float(rng.uniform(0.0, 0.9)) * nominal
        table.append((int(rng.choice(busy)), nominal, demand, ram))
        length = int(rng.choice([5, 11, 12, 20, HISTORY_LENGTH, HISTORY_LENGTH]))
        if full_share is not None:
            length = HISTORY_LENGTH if rng.random() < full_share else int(rng.integers(1, 30))
        histories.append(rng.uniform(0.0, 0.9, size=length).round(2).tolist())
    return snapshot(mips, table, histories)


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("seed", range(12))
def test_placer_finds_what_find_host_finds(detector: Detector, seed: int) -> None:
    s = random_snapshot(seed)
    rng = np.random.default_rng(1000 + seed)
    plain, quick = Load(s), Load(s)
    excluded = rng.random(s.hosts) < 0.1
    placer = Placer(quick, detector, excluded)
    excluded = excluded.copy()
    for vm in rng.permutation(s.vms).tolist():
        if rng.random() < 0.2:
            host = int(rng.integers(s.hosts))
            excluded[host] = True
            placer.exclude_host(host)
        expected = find_host(plain, vm, excluded, detector)
        assert placer.find(vm) == expected
        if expected >= 0:
            for load in (plain, quick):
                load.remove(vm, int(s.vm_host[vm]))
                load.add(vm, expected)


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
@given(
    seed=st.integers(0, 100_000),
    full_share=st.floats(0.0, 1.0),
    exclusion=st.floats(0.0, 0.5),
    hosts=st.integers(4, 60),
)
@settings(max_examples=30, deadline=None)
def test_placer_finds_what_find_host_finds_as_hosts_fill(
    detector: Detector, seed: int, full_share: float, exclusion: float, hosts: int
) -> None:
    """Every VM placed in turn (so hosts fill, idle ones wake and detectors start to
    flag): the placer's shortcuts (idle kinds, the cheapest host kept when the
    detector spares it) against the plain search."""
    s = random_snapshot(seed, hosts=hosts, full_share=full_share)
    rng = np.random.default_rng(seed)
    plain, quick = Load(s), Load(s)
    excluded = rng.random(s.hosts) < exclusion
    placer = Placer(quick, detector, excluded)
    for vm in rng.permutation(s.vms).tolist():
        expected = find_host(plain, vm, excluded, detector)
        assert placer.find(vm) == expected
        if expected >= 0 and expected != int(s.vm_host[vm]):
            for load in (plain, quick):
                load.remove(vm, int(s.vm_host[vm]))
                load.add(vm, expected)


def test_placer_tries_one_idle_host_of_each_kind() -> None:
    s = random_snapshot(3, hosts=200)
    placer = Placer(Load(s), Threshold(0.8), np.zeros(s.hosts, dtype=np.bool_))
    placer.find(0)
    idle = int((s.host_used_mips == 0.0).sum())
    assert len(placer._candidates()) == s.hosts - idle + 2


@pytest.mark.parametrize(
    "detector",
    [MedianAbsoluteDeviation(2.5), InterquartileRange(1.5)],
    ids=lambda d: type(d).__name__,
)
def test_robust_detectors_full_history_path_matches_the_general_one(
    detector: MedianAbsoluteDeviation | InterquartileRange,
) -> None:
    for seed in range(10):
        s = random_snapshot(seed)
        load = Load(s)
        hosts = np.arange(s.hosts)
        for vm in np.flatnonzero(load.vm_trimmed == HISTORY_LENGTH).tolist():
            rows, lengths = _history(load, hosts, vm)
            general = detector._decide(_utilisation(load, hosts, vm), rows, lengths)
            np.testing.assert_array_equal(detector.overloaded_with(load, hosts, vm), general)


def test_local_regression_fast_path_matches_the_general_one() -> None:
    detector = LocalRegression(1.2)
    for seed in range(10):
        s = random_snapshot(seed)
        load = Load(s)
        assert load.one_step_migrations
        hosts = np.flatnonzero(s.host_used_mips > 0.0)
        for vm in range(s.vms):
            quick = detector.overloaded_with(load, hosts, vm)
            load.one_step_migrations = False
            general = detector.overloaded_with(load, hosts, vm)
            load.one_step_migrations = True
            np.testing.assert_array_equal(quick, general)
            if load.vm_trimmed[vm] >= 10:  # every host has history enough: no fallback
                predicted = detector.predicted(load, hosts, vm)
                np.testing.assert_array_equal(predicted * detector.safety >= 1.0, general)


def test_one_step_migrations_needs_every_move_within_one_interval() -> None:
    short = snapshot([3720.0], [(0, 1000.0, 100.0, 1740.0)])
    assert Load(short).one_step_migrations  # 1740 MB at 62.5 MB/s: 28 s of 300
    huge = snapshot([3720.0], [(0, 1000.0, 100.0, 20000.0)])
    assert not Load(huge).one_step_migrations  # 320 s: two intervals ahead


def test_load_history_sums_each_hosts_vms_in_order() -> None:
    s = random_snapshot(5)
    expected = np.zeros((s.hosts, HISTORY_LENGTH))
    shares = s.vm_history * (s.vm_mips / s.host_mips[s.vm_host])[:, None]
    np.add.at(expected, s.vm_host, shares)
    assert Load(s).history.tobytes() == expected.tobytes()


def regression_scores(data: np.ndarray) -> np.ndarray:
    """R² of each row regressed on the others with an intercept, one fit each."""
    n, samples = data.shape
    scores = []
    for i in range(n):
        design = np.column_stack([np.ones(samples), np.delete(data, i, axis=0).T])
        coefficients = np.linalg.lstsq(design, data[i], rcond=None)[0]
        residual = data[i] - design @ coefficients
        scores.append(1.0 - residual @ residual / ((data[i] - data[i].mean()) ** 2).sum())
    return np.array(scores)


def test_clear_winner_is_the_largest_r2_or_nothing() -> None:
    rng = np.random.default_rng(7)
    decided = 0
    for _ in range(300):
        n = int(rng.integers(2, 12))
        samples = int(rng.integers(n + 1, HISTORY_LENGTH + 1))
        data = rng.integers(0, 100, size=(n, samples)) / 100.0
        if rng.random() < 0.3:  # a VM that follows two others closely
            data[0] = (data[1] + data[-1]) / 2 + rng.normal(0, 0.01, samples)
        winner = _clear_winner(data)
        if winner is not None:
            decided += 1
            assert winner == int(np.argmax(regression_scores(data)))
    assert decided > 250


def test_clear_winner_leaves_collinear_and_tied_histories_to_the_regressions() -> None:
    flat = np.array([[0.5] * 10, [0.1, 0.2] * 5, [0.3, 0.1] * 5])
    assert _clear_winner(flat) is None  # a constant VM: the fits are singular
    twins = np.array([[0.1, 0.4, 0.2, 0.5, 0.3, 0.2], [0.2, 0.8, 0.4, 1.0, 0.6, 0.4]])
    assert _clear_winner(twins) is None  # both explain each other perfectly


def test_maximum_correlation_picks_the_vm_the_others_explain() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.1, 0.5, 30), rng.uniform(0.1, 0.5, 30)
    mixed = (a + b) / 2 + rng.normal(0, 0.005, 30)
    noise = rng.uniform(0.1, 0.5, 30)
    histories = [noise.tolist(), a.tolist(), mixed.tolist(), b.tolist()]
    vms = [(0, 1000.0, 100.0, 613.0)] * 4
    load = Load(snapshot([5320.0], vms, histories))
    expected = int(np.argmax(regression_scores(np.array(histories))))
    assert MaximumCorrelation().pick(load, 0) == expected
    assert MaximumCorrelation()._regressions(load, 0, [0, 1, 2, 3], np.array(histories)) == (
        expected
    )


def plain_robust_flags(
    detector: MedianAbsoluteDeviation | InterquartileRange, load: Load, hosts: np.ndarray, vm: int
) -> list[bool]:
    """The robust detectors' rule host by host in plain Python floats (the same IEEE
    operations, so the same values): MAD or IQR of the host's trimmed history, with
    `vm` added when vm >= 0, and THR 0.7 when fewer than 12 points are known."""
    s = load.snapshot
    flags = []
    for h in hosts.tolist():
        requested = float(load.requested[h])
        row = load.history[h].tolist()
        length = int(load.history_length[h])
        if vm >= 0:
            requested += float(s.vm_demand[vm])
            factor = float(s.vm_mips[vm]) / float(s.host_mips[h])
            row = [r + v * factor for r, v in zip(row, s.vm_history[vm].tolist(), strict=True)]
            length = max(length, int(load.vm_trimmed[vm]))
        u = requested / float(s.host_mips[h])
        if length < 12:
            flags.append(u > 0.7)
            continue
        known = row[:length]
        ordered = sorted(known)
        if isinstance(detector, MedianAbsoluteDeviation):
            median = (ordered[(length - 1) // 2] + ordered[length // 2]) / 2.0
            deviations = sorted(abs(x - median) for x in known)
            spread = (deviations[(length - 1) // 2] + deviations[length // 2]) / 2.0
        else:
            q1, q3 = _quartile_positions(length)
            spread = ordered[q3] - ordered[q1]
        flags.append(u > 1.0 - detector.safety * spread)
    return flags


@pytest.mark.parametrize(
    "detector",
    [MedianAbsoluteDeviation(2.5), InterquartileRange(1.5)],
    ids=lambda d: type(d).__name__,
)
@given(seed=st.integers(0, 10_000), full_share=st.floats(0.0, 1.0))
@settings(max_examples=40, deadline=None)
def test_robust_detectors_decide_as_the_plain_rule(
    detector: MedianAbsoluteDeviation | InterquartileRange, seed: int, full_share: float
) -> None:
    """Every path (full rows, the VM's full history, masks, the fallback) against the
    rule computed host by host, with and without a VM added."""
    s = random_snapshot(seed, full_share=full_share)
    load = Load(s)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        hosts = np.sort(rng.choice(s.hosts, size=int(rng.integers(1, s.hosts)), replace=False))
        expected = plain_robust_flags(detector, load, hosts, -1)
        assert detector.overloaded(load, hosts).tolist() == expected
        vm = int(rng.integers(s.vms))
        expected = plain_robust_flags(detector, load, hosts, vm)
        assert detector.overloaded_with(load, hosts, vm).tolist() == expected


def test_full_quartiles_are_the_quartile_positions_of_a_full_history() -> None:
    assert _quartile_positions(HISTORY_LENGTH) == _FULL_QUARTILES


@given(seed=st.integers(0, 10_000), full_share=st.floats(0.0, 1.0))
@settings(max_examples=40, deadline=None)
def test_local_regression_without_a_vm_matches_the_general_path(
    seed: int, full_share: float
) -> None:
    """`overloaded` takes a shortcut when every host has 10 points and moves last one
    interval; the general path (horizons from the migration times) must agree. The
    safety puts the threshold amid the predictions, so flags go both ways."""
    s = random_snapshot(seed, full_share=full_share)
    load = Load(s)
    assert load.one_step_migrations
    rng = np.random.default_rng(seed)
    known = np.flatnonzero(load.history_length >= 10)
    for mixed in (False, True):
        pool = np.arange(s.hosts) if mixed else known
        if not pool.size:
            continue
        hosts = np.sort(rng.choice(pool, size=int(rng.integers(1, pool.size + 1)), replace=False))
        predictions = LocalRegression(1.0).predicted(load, hosts)
        middle = float(np.median(predictions))
        detector = LocalRegression(1.0 / middle if middle > 0 else 1.2)
        quick = detector.overloaded(load, hosts)
        load.one_step_migrations = False
        general = detector.overloaded(load, hosts)
        load.one_step_migrations = True
        np.testing.assert_array_equal(quick, general)


@given(
    st.integers(1, 30).flatmap(
        lambda n: st.lists(
            st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n), min_size=2, max_size=25
        )
    )
)
@settings(max_examples=60, deadline=None)
def test_clear_winner_reductions_are_sum_and_mean(rows: list[list[float]]) -> None:
    """`_clear_winner` calls the ufuncs' reduce where it once called sum() and mean()
    and squares by multiplying: the same values, bit for bit."""
    x = np.array(rows)
    assert np.add.reduce(x * x, axis=0).tobytes() == (x**2).sum(axis=0).tobytes()
    mean = np.add.reduce(x, axis=1, keepdims=True) / x.shape[1]
    assert mean.tobytes() == x.mean(axis=1, keepdims=True).tobytes()


@given(seed=st.integers(0, 10_000), threshold=st.floats(0.0, 1.2))
@settings(max_examples=40, deadline=None)
def test_threshold_judges_one_host_as_it_judges_it_among_others(
    seed: int, threshold: float
) -> None:
    s = random_snapshot(seed)
    load = Load(s)
    detector = Threshold(threshold)
    hosts = np.arange(s.hosts)
    for vm in range(s.vms):
        together = detector.overloaded_with(load, hosts, vm).tolist()
        alone = [detector.host_overloaded_with(load, h, vm) for h in range(s.hosts)]
        assert alone == together


@given(hosts=st.integers(1, 12), placement=st.lists(st.integers(0, 11), max_size=40))
def test_host_members_are_each_hosts_vms_in_index_order(hosts: int, placement: list[int]) -> None:
    vm_host = np.array([h % hosts for h in placement], dtype=np.int64)
    members = HostMembers(vm_host, hosts)
    assert len(members) == hosts
    # Looked at in any order, and twice: the same lists, kept (changed in place).
    for host in reversed(range(hosts)):
        assert members[host] == [vm for vm, h in enumerate(vm_host.tolist()) if h == host]
    members[0].append(99)
    assert members[0][-1] == 99


def plain_add(load: Load, vm: int, host: int) -> None:
    """Load.add as numpy arithmetic on the snapshot's arrays (its definition)."""
    s = load.snapshot
    alloc = float(min(s.vm_demand[vm], s.host_pe_mips[host]))
    load.members[host].append(vm)
    load.requested[host] += s.vm_demand[vm]
    load.used[host] += alloc
    load.free[host] -= alloc
    load.memory_free[host] -= s.vm_memory_mb[vm]
    load.history[host] += s.vm_history[vm] * (s.vm_mips[vm] / s.host_mips[host])
    load.history_length[host] = max(load.history_length[host], load.vm_trimmed[vm])
    load.max_memory[host] = max(load.max_memory[host], s.vm_memory_mb[vm])
    load.where[vm] = host


@given(seed=st.integers(0, 100_000), moves=st.integers(1, 30))
@settings(max_examples=40, deadline=None)
def test_load_adds_in_python_numbers_what_numpy_adds(seed: int, moves: int) -> None:
    s = random_snapshot(seed, hosts=8, vms=20)
    rng = np.random.default_rng(seed)
    quick, plain = Load(s), Load(s)
    for _ in range(moves):
        vm, host = int(rng.integers(s.vms)), int(rng.integers(s.hosts))
        quick.add(vm, host)
        plain_add(plain, vm, host)
    for name in ("requested", "used", "free", "memory_free", "history", "max_memory"):
        assert getattr(quick, name).tobytes() == getattr(plain, name).tobytes(), name
    assert quick.history_length.tolist() == plain.history_length.tolist()
    assert quick.where.tolist() == plain.where.tolist()
    assert [quick.members[h] for h in range(s.hosts)] == [plain.members[h] for h in range(s.hosts)]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
@given(seed=st.integers(0, 100_000), memory=st.booleans(), hosts=st.integers(4, 40))
@settings(max_examples=25, deadline=None)
def test_placer_follows_a_round_of_emptying_hosts(
    detector: Detector, seed: int, memory: bool, hosts: int
) -> None:
    """As `_underload` uses it: each source is excluded, then its VMs placed one by
    one (added elsewhere, not taken off it), and sometimes every placement of the
    source undone, so hosts the placer keeps track of are excluded, filled and
    emptied again in between its searches; with reserved memory or without."""
    s = random_snapshot(seed, hosts=hosts)
    rng = np.random.default_rng(seed)
    if memory:
        s = dataclasses.replace(
            s, host_memory_free_mb=rng.choice([2000.0, 4000.0, 8000.0], size=s.hosts)
        )
    plain, quick = Load(s), Load(s)
    excluded = np.zeros(s.hosts, dtype=np.bool_)
    placer = Placer(quick, detector, excluded)
    for source in rng.permutation(s.hosts).tolist():
        excluded[source] = True
        placer.exclude_host(source)
        placed: list[tuple[int, int]] = []
        for vm in list(quick.members[source]):
            expected = find_host(plain, vm, excluded, detector)
            assert placer.find(vm) == expected
            if expected < 0:
                break
            for load in (plain, quick):
                load.add(vm, expected)
            placed.append((vm, expected))
        if rng.random() < 0.5:
            for vm, host in placed:
                for load in (plain, quick):
                    load.remove(vm, host)


@given(seed=st.integers(0, 100_000), steps=st.integers(1, 60))
@settings(max_examples=40, deadline=None)
def test_load_reuses_a_rebuilt_host_only_as_it_would_rebuild_it(seed: int, steps: int) -> None:
    """VMs put on hosts and taken off again (as a host that cannot be emptied is
    given back): what a remove keeps and reuses is what working it out again gives."""
    s = random_snapshot(seed, hosts=6, vms=16)
    rng = np.random.default_rng(seed)
    reusing, fresh = Load(s), Load(s)
    for _ in range(steps):
        host = int(rng.integers(s.hosts))
        placed = reusing.members[host]
        if placed and rng.random() < 0.5:
            vm = placed[int(rng.integers(len(placed)))]
            fresh._rebuilt.clear()
            for load in (reusing, fresh):
                load.remove(vm, host)
        else:
            vm = int(rng.integers(s.vms))
            for load in (reusing, fresh):
                load.add(vm, host)
    for name in ("requested", "used", "free", "memory_free", "history", "max_memory"):
        assert getattr(reusing, name).tobytes() == getattr(fresh, name).tobytes(), name
    assert reusing.history_length.tolist() == fresh.history_length.tolist()
