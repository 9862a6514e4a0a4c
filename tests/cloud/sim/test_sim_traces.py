"""Loading, selecting and interpolating PlanetLab traces."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.cloud.sim.traces import Trace, Workload, find_trace_dir, load_day, select_traces
from opendrs.domain.errors import InvalidInput

DAY = "20110303"


def trace_dir() -> Path:
    """The PlanetLab traces, found as the demo finds them (an error if they are missing)."""
    return find_trace_dir(None)


def write_day(directory: Path, lines: list[str], day: str = "20990101") -> Path:
    path = directory / f"{day}.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")
    return path


def trace(name: str, percents: list[int]) -> Trace:
    values = np.array([*percents, percents[-1]], dtype=np.float64) / 100.0
    return Trace(name, values)


def test_real_day_loads_every_row_with_cloudsim_extra_point() -> None:
    traces = load_day(trace_dir(), DAY)
    assert len(traces) == 1052
    assert all(len(t.values) == 289 for t in traces)
    assert all(t.values[288] == t.values[287] for t in traces)
    assert traces[0].name == "146-179_surfsnel_dsl_internl_net_colostate_557"
    assert traces[0].values[0] == pytest.approx(0.24)
    assert any(" " in t.name for t in traces)  # names with spaces are kept verbatim
    overall = np.mean([t.values[:-1] for t in traces]) * 100
    assert overall == pytest.approx(12.31, abs=0.01)  # the README's statistics


def test_busiest_selection_is_highest_mean_then_name() -> None:
    traces = [trace("b", [50, 50]), trace("a", [50, 50]), trace("c", [90, 90]), trace("d", [1, 1])]
    chosen = select_traces(traces, 3, "busiest")
    assert [t.name for t in chosen] == ["c", "a", "b"]


def test_sorted_selection_is_name_order() -> None:
    traces = [trace("b", [1, 1]), trace("a", [2, 2]), trace("c", [3, 3])]
    assert [t.name for t in select_traces(traces, 2, "sorted")] == ["a", "b"]


def test_selecting_more_than_available_names_the_source() -> None:
    with pytest.raises(InvalidInput, match="3 traces asked, only 1") as err:
        select_traces([trace("a", [1, 1])], 3, "busiest", source="day.csv.gz")
    assert err.value.source == "day.csv.gz"


def test_real_busiest_are_busier_than_sorted() -> None:
    traces = load_day(trace_dir(), DAY)
    busiest = select_traces(traces, 20, "busiest")
    first = select_traces(traces, 20, "sorted")
    assert min(t.mean for t in busiest) >= max(t.mean for t in traces if t not in busiest)
    assert np.mean([t.mean for t in busiest]) > np.mean([t.mean for t in first])


def test_interpolation_is_linear_between_points() -> None:
    t = trace("x", [10, 30, 20])
    assert t.at(0.0) == pytest.approx(0.10)
    assert t.at(150.0) == pytest.approx(0.20)
    assert t.at(300.0) == pytest.approx(0.30)
    assert t.at(450.0) == pytest.approx(0.25)
    # the appended point repeats the last one: flat over the last step
    assert t.at(750.0, wrap=False) == pytest.approx(0.20)


def test_past_the_end_clamps_or_wraps() -> None:
    t = trace("x", [10, 30, 20])  # 3 steps: period 900 s
    assert t.at(5000.0, wrap=False) == pytest.approx(0.20)
    assert t.at(900.0 + 150.0, wrap=True) == pytest.approx(0.20)
    assert t.at(-10.0) == pytest.approx(0.10)


@given(st.floats(min_value=0, max_value=10 * 86400, allow_nan=False))
def test_workload_matches_each_trace(t: float) -> None:
    traces = [trace("a", [0, 100, 50, 20]), trace("b", [99, 1, 7, 7])]
    workload = Workload(traces, wrap=True)
    values = workload.at(t)
    assert values[0] == pytest.approx(traces[0].at(t))
    assert values[1] == pytest.approx(traces[1].at(t))
    assert np.all((values >= 0) & (values <= 1))


def test_missing_file_is_invalid_input_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no trace file") as err:
        load_day(tmp_path, "20000101")
    assert "20000101.csv.gz" in err.value.source


@pytest.mark.parametrize(
    ("lines", "where", "field"),
    [
        (["vm,t0,t1", "a,1,2", "b,1"], "line 3", ""),
        (["vm,t0,t1", "a,1,2", "b,1,x"], "line 3", "t1"),
        (["vm,t0,t1", "a,101,2"], "line 2", "t0"),
        (["vm,t0,t1", "a,-1,2"], "line 2", "t0"),
        (["name,t0,t1", "a,1,2"], "line 1", "header"),
        (["vm,t0,t1", "a,1,2", "a,3,4"], "line 3", "vm"),
    ],
)
def test_bad_rows_name_file_and_line(
    tmp_path: Path, lines: list[str], where: str, field: str
) -> None:
    path = write_day(tmp_path, lines)
    with pytest.raises(InvalidInput) as err:
        load_day(tmp_path, "20990101")
    assert err.value.source == f"{path} {where}"
    assert err.value.field == field


def test_not_gzip_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "20990101.csv.gz").write_text("vm,t0\na,1\n")
    with pytest.raises(InvalidInput, match="cannot read"):
        load_day(tmp_path, "20990101")


def test_knots_are_the_sample_times_inside_an_interval() -> None:
    workload = Workload([trace("a", [1, 2, 3])])
    assert workload.knots_between(0.0, 900.0) == [300.0, 600.0]
    assert workload.knots_between(300.0, 600.0) == []
    assert workload.knots_between(250.0, 610.0) == [300.0, 600.0]


CELLS = st.one_of(
    st.integers(0, 100).map(str),
    st.sampled_from(["-1", "101", " 7", "+8", "1_0", "٣", "", "x", "5.0", "0100"]),
)


@given(st.lists(st.lists(CELLS, min_size=3, max_size=3), min_size=1, max_size=5))
def test_quick_row_reading_gives_what_the_cell_by_cell_reading_gives(
    rows: list[list[str]],
) -> None:
    """Valid rows take a quick path (one int() per cell, one division per row); any
    other falls back to the cell by cell reading, whose error names the cell. Same
    floats, same errors, either way."""
    from opendrs.cloud.sim import traces as module

    lines = [["vm", "t0", "t1", "t2"], *([f"vm{i}", *row] for i, row in enumerate(rows))]

    def read() -> list[tuple[str, bytes]] | str:
        try:
            return [(t.name, t.values.tobytes()) for t in module._parse(iter(lines), "f")]
        except InvalidInput as error:
            return str(error)

    quick = read()
    original = module._quick_values
    module._quick_values = lambda row, width: None
    try:
        plain = read()
    finally:
        module._quick_values = original
    assert quick == plain
