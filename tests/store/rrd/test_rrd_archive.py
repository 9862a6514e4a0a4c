"""The wide round-robin file: columns behave exactly like RRD data sources,
columns come and go without touching the others' history, bad input changes
nothing."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rrd_oracle import Oracle

from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import InvalidInput, NotFound
from opendrs.store.rrd import compat
from opendrs.store.rrd.archive import RoundRobinFile
from opendrs.store.rrd.definition import (
    DataSource,
    SourceType,
    default_archives,
    default_sources,
    parse_archive,
    parse_data_source,
)

BASE = 1_700_000_000
ALIGNED = BASE - BASE % 300
ARCHIVES = [parse_archive(a, 300) for a in ("RRA:AVERAGE:0.5:1:20", "RRA:MAX:0.5:3:10")]


def _sources() -> list[DataSource]:
    return [
        DataSource("vm1/cpu_util", SourceType.GAUGE, 600, 0.0, 100.0),
        DataSource("vm1/rx", SourceType.COUNTER, 600, 0.0, math.nan),
        DataSource("vm1/wr", SourceType.DERIVE, 600, 0.0, math.nan),
    ]


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_numeric_updates_equal_rrdtool_string_updates(tmp_path: Path) -> None:
    """The vectorised API and the rrdtool-compatible one store the same rows."""
    wide = RoundRobinFile.create(
        tmp_path / "w.odrs", step=300, archives=ARCHIVES, sources=_sources(), start=BASE
    )
    compat.create(
        str(tmp_path / "c.rrd"),
        "--step", "300", "--start", str(BASE),
        "DS:a:GAUGE:600:0:100", "DS:b:COUNTER:600:0:U", "DS:c:DERIVE:600:0:U",
        "RRA:AVERAGE:0.5:1:20", "RRA:MAX:0.5:3:10",
    )  # fmt: skip
    rng = np.random.default_rng(3)
    counter = 10**12
    t = BASE
    for _ in range(60):
        t += int(rng.integers(1, 700))
        counter += int(rng.integers(0, 10**6))
        gauge = round(float(rng.uniform(0, 100)), 2)
        wide.update(t, [gauge, counter, counter])
        compat.update(str(tmp_path / "c.rrd"), f"{t}:{gauge}:{counter}:{counter}")
    with RoundRobinFile.open(tmp_path / "c.rrd") as reference:
        for index in range(2):
            assert np.array_equal(
                wide.stored_rows(index)[1], reference.stored_rows(index)[1], equal_nan=True
            )
    wide.close()


def test_a_column_added_later_starts_like_a_fresh_rrd(oracle: Oracle, tmp_path: Path) -> None:
    wide = RoundRobinFile.create(
        tmp_path / "w.odrs", step=300, archives=ARCHIVES, sources=_sources()[:1], start=BASE
    )
    t = BASE
    for i in range(7):
        t += 250
        wide.update(t, [i * 10.0])
    stamps, values = wide.stored_rows(0, ["vm1/cpu_util"])
    before = dict(zip(stamps.tolist(), values[:, 0].tolist(), strict=True))
    added_at = t
    wide.add_columns([DataSource("vm2/cpu_util", SourceType.GAUGE, 600, 0.0, 100.0)])
    fresh = str(tmp_path / "fresh.rrd")
    oracle.binding.create(
        fresh, "--step", "300", "--start", str(added_at), "DS:g:GAUGE:600:0:100",
        "RRA:AVERAGE:0.5:1:20", "RRA:MAX:0.5:3:10",
    )  # fmt: skip
    for i in range(20):
        t += 170
        wide.update(t, [1.0, 50.0 + i])
        oracle.binding.update(fresh, f"{t}:{50.0 + i}")
    # the older column's history is untouched by the addition
    stamps, values = wide.stored_rows(0, ["vm1/cpu_util"])
    after = dict(zip(stamps.tolist(), values[:, 0].tolist(), strict=True))
    common = [ts for ts in before if ts in after and ts <= added_at - added_at % 300]
    assert len(common) >= 5
    assert np.array_equal(
        [after[ts] for ts in common], [before[ts] for ts in common], equal_nan=True
    )
    expected = oracle.rows(fresh)
    for index in range(2):
        got = wide.stored_rows(index, ["vm2/cpu_util"])[1]
        assert np.array_equal(got, expected[index][1], equal_nan=True)
    wide.close()


def test_growing_past_capacity_appends_without_rewriting(tmp_path: Path) -> None:
    path = str(tmp_path / "w.odrs")
    wide = RoundRobinFile.create(
        path, step=300, archives=ARCHIVES, sources=_sources(), start=ALIGNED, capacity=3
    )
    for i in range(1, 30):
        wide.update(ALIGNED + 300 * i, [i, i * 1000, i * 100])
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        old_bytes = f.read()
    first_block_end = size
    wide.add_columns([DataSource(f"vm{i}/cpu_util", SourceType.GAUGE, 600) for i in range(2, 6)])
    assert os.path.getsize(path) > size
    with open(path, "rb") as f:
        new_bytes = f.read()
    # the first block (everything after the header) is byte for byte the same
    assert new_bytes[16384:first_block_end] == old_bytes[16384:first_block_end]
    wide.update(ALIGNED + 300 * 30, [30, 30000, 3000, 1, 2, 3, 4])
    fetched = wide.fetch("AVERAGE", ALIGNED + 300 * 25, ALIGNED + 300 * 30)
    assert fetched.names[:3] == tuple(s.name for s in _sources())
    assert fetched.values[-2, 0] == 30.0
    assert fetched.values[-2, 3] == 1.0
    wide.close()


def test_retired_columns_keep_history_and_take_unknowns(tmp_path: Path) -> None:
    wide = RoundRobinFile.create(
        tmp_path / "w.odrs", step=300, archives=ARCHIVES, sources=_sources(), start=BASE
    )
    for i in range(1, 10):
        wide.update(BASE + 300 * i, [i, i * 1000, i])
    wide.retire_columns(["vm1/rx"])
    assert wide.columns == ["vm1/cpu_util", "vm1/wr"]
    assert wide.retired == ["vm1/rx"]
    for i in range(10, 13):
        wide.update(BASE + 300 * i, [i, i])
    wide.add_columns([DataSource("vm1/rx", SourceType.COUNTER, 600, 0.0)])
    wide.update(BASE + 300 * 13, [13, 1, 13])
    assert wide.columns == ["vm1/cpu_util", "vm1/wr", "vm1/rx"]
    rows = wide.fetch("AVERAGE", BASE + 300 * 8, BASE + 300 * 13)
    assert np.isnan(rows.values[:, 2]).all()  # the new rx starts unknown
    wide.close()


def test_reopening_sees_the_same_everything(tmp_path: Path) -> None:
    path = tmp_path / "w.odrs"
    with RoundRobinFile.create(
        path, step=300, archives=default_archives(), sources=default_sources(), start=BASE
    ) as wide:
        for i in range(1, 40):
            wide.update(BASE + 300 * i + 7, [i % 100, i * 999, i * 998, i * 5, i * 6])
        info = wide.info()
    with RoundRobinFile.open(path, writable=False) as again:
        assert again.info() == info
        assert again.columns == [s.name for s in default_sources()]


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "named"),
    [
        ("DS:cpu:GAUGE:600:0", "DS:name:TYPE:heartbeat:min:max"),
        ("DS:cpu:GAGE:600:0:100", "GAGE"),
        ("DS:cpu:GAUGE:0:0:100", "heartbeat"),
        ("DS:cpu:GAUGE:600:100:0", "min must be less than max"),
        ("DS:cpu:GAUGE:600:x:100", "'x'"),
        ("DS:this_name_is_far_too_long:GAUGE:600:0:100", "name"),
        ("DS:cpu:COMPUTE:a,b,+", "DS:name:TYPE"),
    ],
)
def test_invalid_data_source_is_named(definition: str, named: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_data_source(definition)
    assert named in str(error.value)
    assert definition in str(error.value)


@pytest.mark.parametrize(
    ("definition", "named"),
    [
        ("RRA:AVG:0.5:1:800", "AVG"),
        ("RRA:AVERAGE:1.0:1:800", "xff"),
        ("RRA:AVERAGE:0.5:0:800", "steps"),
        ("RRA:AVERAGE:0.5:1", "RRA:CF:xff:steps:rows"),
        ("RRA:AVERAGE:0.5:7m:800", "not a whole multiple"),
    ],
)
def test_invalid_archive_is_named(definition: str, named: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_archive(definition, 300)
    assert named in str(error.value)


def test_durations_are_accepted_like_rrdtool() -> None:
    assert parse_archive("RRA:MAX:0.5:30m:1w", 300).steps == 6
    assert parse_archive("RRA:MAX:0.5:30m:1w", 300).rows == 336
    assert parse_data_source("DS:x:GAUGE:10m:U:U").heartbeat == 600


@pytest.fixture
def filled(tmp_path: Path) -> tuple[RoundRobinFile, str]:
    path = str(tmp_path / "w.odrs")
    wide = RoundRobinFile.create(path, step=300, archives=ARCHIVES, sources=_sources(), start=BASE)
    for i in range(1, 8):
        wide.update(BASE + 300 * i, [i, i * 10, i * 10])
    return wide, path


def test_time_going_backwards_is_refused_and_changes_nothing(
    filled: tuple[RoundRobinFile, str],
) -> None:
    wide, path = filled
    digest = _digest(path)
    with pytest.raises(InvalidInput, match="last update time") as error:
        wide.update_many([BASE + 300 * 8, BASE + 300 * 8 - 1], [[1, 1, 1], [2, 2, 2]])
    assert error.value.field == "time"
    assert _digest(path) == digest
    with pytest.raises(InvalidInput, match="illegal attempt"):
        wide.update(BASE + 300 * 7, [1, 1, 1])
    assert _digest(path) == digest


@pytest.mark.parametrize(
    "values",
    [["abc", 1, 1], [1, 1.5, 1], [1, -5, 1], [1, 2], [1, 2, 3, 4]],
)
def test_bad_values_are_refused_and_change_nothing(
    filled: tuple[RoundRobinFile, str], values: list[object]
) -> None:
    wide, path = filled
    digest = _digest(path)
    with pytest.raises(InvalidInput):
        wide.update(BASE + 300 * 9, values)
    assert _digest(path) == digest
    wide.update(BASE + 300 * 9, [1, 100, 100])  # and the file still works


def test_compat_bad_value_names_the_data_source(tmp_path: Path) -> None:
    path = str(tmp_path / "c.rrd")
    compat.create(path, "--start", str(BASE), "DS:rx:COUNTER:600:0:U", "RRA:AVERAGE:0.5:1:10")
    compat.update(path, f"{BASE + 300}:100")
    digest = _digest(path)
    with pytest.raises(InvalidInput) as error:
        compat.update(path, f"{BASE + 600}:200", f"{BASE + 900}:12ab")
    assert error.value.field == "rx"
    assert "12ab" in str(error.value)
    assert _digest(path) == digest


def test_unknown_archive_and_cf_and_column_are_named(filled: tuple[RoundRobinFile, str]) -> None:
    wide, path = filled
    with pytest.raises(InvalidInput, match="archive 5 does not exist"):
        wide.stored_rows(5)
    coarse = RoundRobinFile.create(
        path + ".2", step=300, archives=[parse_archive("RRA:AVERAGE:0.5:3:10", 300)],
        sources=_sources(), start=BASE,
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="no archive holds consolidation function MAX"):
        coarse.fetch("MAX", BASE, BASE + 3600)
    coarse.close()
    with pytest.raises(InvalidInput, match="unknown consolidation function 'MEDIAN'"):
        wide.fetch("MEDIAN", BASE, BASE + 3600)
    with pytest.raises(NotFound, match="nope"):
        wide.fetch("AVERAGE", BASE, BASE + 3600, columns=["nope"])
    with pytest.raises(InvalidInput, match="archive 9 does not exist"):
        compat.first(path, 9)


def test_manual_clock_drives_now(tmp_path: Path) -> None:
    clock = ManualClock(BASE)
    path = str(tmp_path / "c.rrd")
    compat.create(path, "DS:g:GAUGE:600:U:U", "RRA:AVERAGE:0.5:1:10", clock=clock)
    assert compat.last(path) == BASE - 10
    clock.advance(300)
    compat.update(path, "N:5", clock=clock)
    assert compat.last(path) == BASE + 300
    clock.advance(300)
    compat.update(path, "N:5", clock=clock)
    (_, _, step), names, rows = compat.fetch(
        path, "AVERAGE", "--start", "end-1h", "--end", "now", clock=clock
    )
    assert (step, names) == (300, ("g",))
    assert rows[-2] == (5.0,)  # the last complete step; the open one is unknown
    assert rows[-1] == (None,)


@settings(max_examples=30, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=40),
    split=st.integers(min_value=1, max_value=39),
)
def test_batched_updates_equal_one_by_one(
    tmp_path_factory: pytest.TempPathFactory, gaps: list[int], split: int
) -> None:
    """update_many of a stream = the same stream one update at a time."""
    d = tmp_path_factory.mktemp("b")
    one = RoundRobinFile.create(
        d / "1", step=300, archives=ARCHIVES, sources=_sources(), start=BASE
    )
    many = RoundRobinFile.create(
        d / "2", step=300, archives=ARCHIVES, sources=_sources(), start=BASE
    )
    times = list(np.cumsum(gaps) + BASE)
    values = [[(t % 97) * 1.0, int(t) * 3, int(t) * 2] for t in times]
    for t, v in zip(times, values, strict=True):
        one.update(t, v)
    cut = min(split, len(times))
    many.update_many(times[:cut], values[:cut])
    if cut < len(times):
        many.update_many(times[cut:], values[cut:])
    for index in range(len(ARCHIVES)):
        assert np.array_equal(one.stored_rows(index)[1], many.stored_rows(index)[1], equal_nan=True)
    assert one.info()["rra[1].cdp_prep[0].value"] == many.info()["rra[1].cdp_prep[0].value"]
    one.close()
    many.close()
