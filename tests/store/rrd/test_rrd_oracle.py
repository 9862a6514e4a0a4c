"""opendrs against real RRDtool 1.7.2: the same irregular update streams go to
both; every stored row of every archive, the consolidation state and many
fetches must be identical (bit for bit where rrdtool gives full doubles)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rrd_oracle import Oracle

from opendrs.store.rrd import compat
from opendrs.store.rrd.archive import RoundRobinFile

BASE = 1_700_000_000


@dataclass
class Case:
    create: list[str]
    updates: list[list[str]]  # one list per update call
    fetches: list[list[str]]
    names: list[str]


def _gauge(rng: random.Random, low: float, high: float) -> str:
    value = rng.uniform(low, high)
    decimals = rng.choice([0, 0, 1, 2, 3, 6])
    return str(round(value)) if decimals == 0 else f"{value:.{decimals}f}"


class _Counter:
    def __init__(self, rng: random.Random, kind: str) -> None:
        self.rng = rng
        self.kind = kind
        self.value = rng.choice([0, 1000, 2**32 - 5000, 2**63, 2**64 - 10**9])
        if kind == "DERIVE" and rng.random() < 0.3:
            self.value = -rng.randint(0, 10**6)

    def next(self) -> str:
        r = self.rng.random()
        if r < 0.08:
            return "U"
        if r < 0.12:  # 32-bit wrap
            self.value = (self.value + self.rng.randint(1, 10**6)) % 2**32 if self.value >= 0 else 5
        elif r < 0.15:  # reset
            self.value = self.rng.randint(0, 5000)
        elif r < 0.18 and self.kind == "COUNTER":  # 64-bit wrap
            self.value = (self.value + self.rng.randint(1, 10**9)) % 2**64
        elif self.kind == "DERIVE" and r < 0.25:
            self.value -= self.rng.randint(0, 10**5)
        else:
            self.value += self.rng.randint(0, 2 * 10**5)
        if self.kind == "COUNTER":
            self.value = max(0, self.value) % 2**64
        return str(self.value)


SOURCES = [
    ("GAUGE", "0", "100"),
    ("GAUGE", "U", "U"),
    ("GAUGE", "-5", "50"),
    ("COUNTER", "0", "U"),
    ("COUNTER", "0", "1000"),
    ("DERIVE", "0", "U"),
    ("DERIVE", "U", "U"),
    ("ABSOLUTE", "0", "U"),
]


def make_case(seed: int) -> Case:
    rng = random.Random(seed)
    step = rng.choice([300, 300, 300, 60, 10])
    start = BASE + rng.randrange(0, step * 7)
    chosen = rng.sample(SOURCES, rng.randint(2, 5))
    names = [f"d{i}" for i in range(len(chosen))]
    heartbeats = [
        rng.choice([2 * step, 2 * step, step, 3 * step, max(1, step // 2)]) for _ in chosen
    ]
    create = ["--step", str(step), "--start", str(start)]
    create += [
        f"DS:{n}:{kind}:{hb}:{lo}:{hi}"
        for n, (kind, lo, hi), hb in zip(names, chosen, heartbeats, strict=True)
    ]
    cfs = ["AVERAGE", *rng.sample(["MIN", "MAX", "LAST"], rng.randint(1, 3))]
    archive_steps = [1, rng.choice([2, 3, 6]), rng.choice([4, 12, 24])]
    for cf in cfs:
        for steps in archive_steps:
            if rng.random() < 0.8 or steps == 1:
                xff = rng.choice([0, 0.3, 0.5, 0.5, 0.9])
                create.append(f"RRA:{cf}:{xff}:{steps}:{rng.randint(3, 30)}")
    counters = [_Counter(rng, kind) for kind, _, _ in chosen]
    t: float = start
    updates: list[list[str]] = []
    for _ in range(rng.randint(30, 160)):
        r = rng.random()
        if r < 0.35:
            dt: float = rng.randint(1, max(1, step // 3))
        elif r < 0.5:
            dt = step - (int(t) % step) or step
        elif r < 0.65:
            dt = step
        elif r < 0.80:
            dt = step * rng.randint(2, 5) + rng.choice([0, 0, rng.randint(1, step - 1)])
        elif r < 0.87:
            dt = max(heartbeats) + rng.randint(1, 3 * step)
        elif r < 0.90:
            dt = step * rng.randint(30, 400) + rng.randint(0, step)
        else:
            dt = rng.randint(1, step) + rng.choice([0.5, 0.25, 0.125])
        t += dt
        stamp = f"{t:.3f}" if t % 1 else str(int(t))
        values = []
        for (kind, _, _), counter in zip(chosen, counters, strict=True):
            if kind.startswith("GAUGE"):
                values.append("U" if rng.random() < 0.1 else _gauge(rng, -10, 120))
            elif kind == "ABSOLUTE":
                values.append("U" if rng.random() < 0.1 else str(rng.randint(0, 10**5)))
            else:
                values.append(counter.next())
        line = ":".join([stamp, *values])
        if updates and rng.random() < 0.2:
            updates[-1].append(line)  # several updates in one call
        else:
            updates.append([line])
    end = int(t)
    fetches = []
    for _ in range(12):
        cf = rng.choice(["AVERAGE", "MIN", "MAX", "LAST"])
        span = rng.choice([step * 10, step * 50, 86400, step * 1000])
        stop = end + rng.choice([0, 0, step, -step * rng.randint(1, 100)])
        request = [cf, "--start", str(stop - span), "--end", str(stop)]
        if rng.random() < 0.5:
            request += ["-r", str(rng.choice([1, step, 2 * step, 6 * step, 3600, 86400]))]
        if rng.random() < 0.2:
            request.append("-a")
        fetches.append(request)
    return Case(create, updates, fetches, names)


def _run(module: Any, path: str, case: Case) -> list[str]:
    """Feed a case; returns the error text of every update call that failed
    (both must fail on the same calls)."""
    module.create(path, *case.create)
    errors = []
    for call in case.updates:
        try:
            module.update(path, *call)
        except Exception as exc:  # compared between the two
            errors.append(f"{len(errors)}:{type(exc).__name__}")
    return errors


def compare(oracle: Oracle, tmp: Path, case: Case) -> None:
    theirs = str(tmp / "rrdtool.rrd")
    ours = str(tmp / "opendrs.rrd")
    their_errors = _run(oracle.binding, theirs, case)
    our_errors = _run(compat, ours, case)
    assert len(their_errors) == len(our_errors)
    # every stored row of every archive
    with RoundRobinFile.open(ours, writable=False) as rrd:
        for index, (stamps, values) in enumerate(oracle.rows(theirs)):
            our_stamps, our_values = rrd.stored_rows(index)
            assert list(our_stamps) == list(stamps), f"archive {index} timestamps"
            if not np.array_equal(our_values, values, equal_nan=True):
                bad = np.argwhere(
                    ~((our_values == values) | (np.isnan(our_values) & np.isnan(values)))
                )
                row, col = bad[0]
                raise AssertionError(
                    f"archive {index} ({case.create[4 + len(case.names) + index]}) row "
                    f"{stamps[row]} column {case.names[col]}: rrdtool {values[row, col]!r}, "
                    f"opendrs {our_values[row, col]!r} ({len(bad)} differences)"
                )
    # consolidation state (the CLI prints 11 significant digits)
    their_info = oracle.cli_info(theirs)
    our_info = compat.info(ours)
    for key, expected in their_info.items():
        if key in ("filename", "header_size") or key.endswith(".cur_row"):
            continue
        got = our_info[key]
        if key.endswith(".last_ds"):
            assert (expected == "U") == (got == "U"), key
            if expected != "U":
                assert float(got) == pytest.approx(float(expected), rel=1e-12), key
        elif isinstance(expected, float):
            if math.isnan(expected):
                assert got is None, key
            else:
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-300), key
        else:
            assert got == expected, key
    # fetches, exactly as the binding returns them
    for request in case.fetches:
        try:
            expected_fetch = oracle.binding.fetch(theirs, *request)
        except Exception:
            with pytest.raises(compat.OperationalError):
                compat.fetch(ours, *request)
            continue
        assert compat.fetch(ours, *request) == expected_fetch, request


@pytest.mark.parametrize("seed", range(40))
def test_random_streams_match_rrdtool(oracle: Oracle, tmp_path: Path, seed: int) -> None:
    compare(oracle, tmp_path, make_case(seed))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(min_value=1000, max_value=2**31))
def test_any_stream_matches_rrdtool(
    oracle: Oracle, tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    compare(oracle, tmp_path_factory.mktemp("h"), make_case(seed))


def _explicit(create: list[str], lines: list[str], fetches: list[list[str]]) -> Case:
    names = [c.split(":")[1] for c in create if c.startswith("DS:")]
    return Case(create, [[line] for line in lines], fetches, names)


SCENARIOS = {
    "default layout, regular updates": _explicit(
        ["--step", "300", "--start", str(BASE - 1)]
        + [
            "DS:cpu:GAUGE:600:0:100",
            "DS:rx:COUNTER:600:0:1250000",
            "DS:tx:COUNTER:600:0:1250000",
            "DS:rd:COUNTER:600:0:U",
            "DS:wr:COUNTER:600:0:U",
        ]
        + [f"RRA:{cf}:0.5:{s}:800" for cf in ("AVERAGE", "MAX") for s in (1, 6, 24, 288)],
        [
            f"{BASE + 300 * i + (i * 37) % 290}:{(i * 7) % 100}:"
            f"{i * 12345}:{i * 54321}:{i * 999}:{i * 4096}"
            for i in range(1, 700)
        ],
        [
            ["AVERAGE", "--start", str(BASE), "--end", str(BASE + 86400)],
            ["MAX", "--start", str(BASE), "--end", str(BASE + 300 * 700), "-r", "1800"],
            ["AVERAGE", "--start", str(BASE - 86400 * 30), "--end", str(BASE + 300 * 700)],
            ["LAST", "--start", str(BASE + 3600), "--end", str(BASE + 7200)],
        ],
    ),
    "unknown tail closing a mostly unknown PDP is still known": _explicit(
        ["--step", "300", "--start", str(BASE), "DS:g:GAUGE:600:U:U", "RRA:AVERAGE:0.5:1:10"],
        [f"{BASE + 290}:U", f"{BASE + 300}:4", f"{BASE + 310}:U", f"{BASE + 600}:U"],
        [["AVERAGE", "--start", str(BASE), "--end", str(BASE + 900)]],
    ),
    "32-bit wrap corrects by 2**32-1": _explicit(
        ["--step", "300", "--start", str(BASE), "DS:c:COUNTER:600:U:U", "RRA:AVERAGE:0.5:1:10"],
        [f"{BASE + 300}:4294966796", f"{BASE + 600}:500", f"{BASE + 900}:1500"],
        [["AVERAGE", "--start", str(BASE), "--end", str(BASE + 900)]],
    ),
    "64-bit wrap near 2**64 rounds like rrd_diff": _explicit(
        ["--step", "300", "--start", str(BASE), "DS:c:COUNTER:600:U:U", "RRA:AVERAGE:0.5:1:10"],
        [f"{BASE + 300}:18446744073000000000", f"{BASE + 600}:500000000"],
        [["AVERAGE", "--start", str(BASE), "--end", str(BASE + 900)]],
    ),
    "xff boundary: 3 of 6 unknown is still known": _explicit(
        [
            "--step",
            "300",
            "--start",
            str(BASE - BASE % 1800),
            "DS:g:GAUGE:300:U:U",
            "RRA:AVERAGE:0.5:6:10",
            "RRA:MAX:0.5:6:10",
            "RRA:AVERAGE:0.5:1:20",
        ],
        [f"{BASE - BASE % 1800 + 300 * i}:{'U' if i in (2, 4, 6) else i}" for i in range(1, 20)],
        [["AVERAGE", "--start", str(BASE - 3600), "--end", str(BASE + 7200), "-r", "1800"]],
    ),
    "a gap beyond the heartbeat and a long heartbeat": _explicit(
        [
            "--step",
            "300",
            "--start",
            str(BASE),
            "DS:a:GAUGE:600:U:U",
            "DS:b:GAUGE:86400:U:U",
            "RRA:AVERAGE:0.5:1:50",
            "RRA:AVERAGE:0.5:6:20",
        ],
        [f"{BASE + 100}:1:1", f"{BASE + 250}:2:2", f"{BASE + 5000}:3:3", f"{BASE + 5100}:4:4"],
        [["AVERAGE", "--start", str(BASE), "--end", str(BASE + 6000)]],
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios_match_rrdtool(oracle: Oracle, tmp_path: Path, name: str) -> None:
    compare(oracle, tmp_path, SCENARIOS[name])


def test_errors_match_rrdtool(oracle: Oracle, tmp_path: Path) -> None:
    """Both refuse the same bad updates (times going back, words for counters)."""
    create = [
        "--step",
        "300",
        "--start",
        str(BASE),
        "DS:c:COUNTER:600:U:U",
        "DS:g:GAUGE:600:U:U",
        "RRA:AVERAGE:0.5:1:10",
    ]
    for bad in (
        [f"{BASE}:1:1"],
        [f"{BASE + 10}:abc:1"],
        [f"{BASE + 10}:1.5:1"],
        [f"{BASE + 10}:1:x"],
        [f"{BASE + 10}:1"],
        [f"{BASE + 10}:1:2:3"],
    ):
        for module, name in ((oracle.binding, "a.rrd"), (compat, "b.rrd")):
            path = str(tmp_path / name)
            module.create(path, *create)
            with pytest.raises(Exception):  # noqa: B017 - both must refuse
                module.update(path, *bad)
