"""Round-robin history: opendrs vs RRDtool (one file per series, and one wide
file) vs whisper, same data, same machine, same run.

Ingest: 10,000 series (2,000 instances x cpu GAUGE 0..100, rx/tx/rd/wr COUNTER),
288 updates each (one day at step 300), into the default 8-archive layout
(AVERAGE and MAX at 1, 6, 24, 288 steps x 800 rows). Every peer gets one update
call per poll and per file, the way a collector writes; rrdtool gets its
update strings pre-formatted. Peers with one file per series are run on a
subset (their cost is per call, so values/s does not depend on the count) and
that is said in the table.

Run: .venv/bin/python benchmarks/rrd.py [--series N] [--per-file-series N]
Last line: one JSON object (see DESIGN.md, "Quality bars")."""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from opendrs.store.rrd.archive import RoundRobinFile
from opendrs.store.rrd.collection import HostArchives
from opendrs.store.rrd.definition import (
    DEFAULT_ARCHIVES,
    DEFAULT_DATA_SOURCES,
    DataSource,
    default_archives,
    default_sources,
)

STEP = 300
UPDATES = 288
START = 1_700_000_000 - 1_700_000_000 % STEP
KINDS = ("cpu", "rx", "tx", "rd", "wr")
console = Console(stderr=True)


def load_rrdtool() -> ModuleType | None:
    """Debian's python3-rrdtool, loaded into this venv."""
    for candidate in sorted(glob.glob("/usr/lib/python3/dist-packages/rrdtool*.so")):
        spec = importlib.util.spec_from_file_location("rrdtool", candidate)
        if spec and spec.loader:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None


def make_data(series: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Values (UPDATES x series) and, per update, the text of each value."""
    rng = np.random.default_rng(seed)
    instances = series // len(KINDS)
    values = np.empty((UPDATES, series))
    gauge = np.round(rng.uniform(0, 100, (UPDATES, instances)), 2)
    values[:, 0 :: len(KINDS)] = gauge
    for k in range(1, len(KINDS)):
        rates = rng.integers(0, 1_000_000, (UPDATES, instances)) * STEP // 1000
        values[:, k :: len(KINDS)] = np.cumsum(rates, axis=0) + 10**9
    texts = []
    kinds = np.arange(series) % len(KINDS)
    for row in values:
        texts.append(
            [f"{v:.2f}" if k == 0 else str(int(v)) for v, k in zip(row, kinds, strict=True)]
        )
    return values, kinds, texts


def times() -> list[int]:
    # regular polls a few seconds after each step boundary, as a collector does
    return [START + STEP * (i + 1) + 7 for i in range(UPDATES)]


@contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn(f"{label:<34}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)


def best_of(runs: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Shortest of a few runs (reads are repeated by their users: warm cache)."""
    best = float("inf")
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - t0)
    return best, result


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


# --- opendrs ----------------------------------------------------------------


def opendrs_wide(work: str, values: np.ndarray) -> dict[str, float]:
    series = values.shape[1]
    sources = [
        DataSource(
            f"vm{i // len(KINDS)}/{KINDS[i % len(KINDS)]}", s.type, s.heartbeat, s.min, s.max
        )
        for i, s in ((i, default_sources()[i % len(KINDS)]) for i in range(series))
    ]
    path = os.path.join(work, "wide.odrs")
    t0 = time.perf_counter()
    rrd = RoundRobinFile.create(
        path, step=STEP, archives=default_archives(), sources=sources, start=START, capacity=series
    )
    created = time.perf_counter() - t0
    stamps = times()
    with progress("opendrs: one wide file", UPDATES) as advance:
        t0 = time.perf_counter()
        for i, when in enumerate(stamps):
            rrd.update(when, values[i])
            advance(1)
        ingest = time.perf_counter() - t0
    end = stamps[-1]
    read, day = best_of(3, lambda: rrd.fetch("AVERAGE", end - 86400, end))
    rrd.close()
    return {
        "values_per_s": series * UPDATES / ingest,
        "ingest_s": ingest,
        "create_s": created,
        "read_s": read,
        "read_shape": day.values.shape,
        "bytes_per_series": os.path.getsize(path) / series,
        "day": day.values,
    }


def opendrs_hosts(work: str, values: np.ndarray, per_host: int) -> dict[str, float]:
    series = values.shape[1]
    directory = os.path.join(work, "hosts")
    hosts = series // per_host
    archives = HostArchives(directory, step=STEP)
    sources = default_sources()
    handles = []
    for h in range(hosts):
        columns = [
            DataSource(f"vm{(h * per_host + c) // len(KINDS)}/{KINDS[c % len(KINDS)]}",
                       s.type, s.heartbeat, s.min, s.max)
            for c, s in ((c, sources[c % len(KINDS)]) for c in range(per_host))
        ]  # fmt: skip
        handles.append(
            RoundRobinFile.create(
                archives.path(f"host{h:04d}"),
                step=STEP,
                archives=default_archives(),
                sources=columns,
                start=START,
                capacity=per_host,
            )
        )
    stamps = times()
    with progress(f"opendrs: {hosts} host files", UPDATES) as advance:
        t0 = time.perf_counter()
        for i, when in enumerate(stamps):
            row = values[i]
            for h, handle in enumerate(handles):
                handle.update(when, row[h * per_host : (h + 1) * per_host])
            advance(1)
        ingest = time.perf_counter() - t0
    for handle in handles:
        handle.close()
    end = stamps[-1]
    read, matrix = best_of(3, lambda: archives.read("AVERAGE", end - 86400, end))
    archives.close()
    return {
        "values_per_s": series * UPDATES / ingest,
        "ingest_s": ingest,
        "read_s": read,
        "read_shape": matrix.values.shape,
        "bytes_per_series": dir_size(directory) / series,
        "hosts": hosts,
        "per_host": per_host,
    }


# --- rrdtool ----------------------------------------------------------------


def rrdtool_wide(work: str, rrdtool: ModuleType, texts: list[list[str]]) -> dict[str, Any]:
    series = len(texts[0])
    path = os.path.join(work, "wide.rrd")
    definitions = [
        DEFAULT_DATA_SOURCES[i % len(KINDS)].replace(f":{KINDS[i % len(KINDS)]}:", f":s{i}:", 1)
        for i in range(series)
    ]
    t0 = time.perf_counter()
    rrdtool.create(
        path, "--step", str(STEP), "--start", str(START), *definitions, *DEFAULT_ARCHIVES
    )
    created = time.perf_counter() - t0
    lines = [f"{when}:" + ":".join(row) for when, row in zip(times(), texts, strict=True)]
    with progress("rrdtool: one wide file", UPDATES) as advance:
        t0 = time.perf_counter()
        for line in lines:
            rrdtool.update(path, line)
            advance(1)
        ingest = time.perf_counter() - t0
    end = times()[-1]
    t0 = time.perf_counter()
    (_, _, _), _, rows = rrdtool.fetch(
        path, "AVERAGE", "--start", str(end - 86400), "--end", str(end)
    )
    read = time.perf_counter() - t0
    day = np.array([[np.nan if v is None else v for v in row] for row in rows])
    return {
        "values_per_s": series * UPDATES / ingest,
        "ingest_s": ingest,
        "create_s": created,
        "read_s": read,
        "bytes_per_series": os.path.getsize(path) / series,
        "day": day,
    }


def rrdtool_files(
    work: str, rrdtool: ModuleType, texts: list[list[str]], count: int
) -> dict[str, Any]:
    directory = os.path.join(work, "rrdfiles")
    os.makedirs(directory)
    paths = []
    for i in range(count):
        path = os.path.join(directory, f"s{i}.rrd")
        definition = DEFAULT_DATA_SOURCES[i % len(KINDS)]
        rrdtool.create(
            path, "--step", str(STEP), "--start", str(START), definition, *DEFAULT_ARCHIVES
        )
        paths.append(path)
    stamps = times()
    with progress(f"rrdtool: {count} files (1/series)", UPDATES) as advance:
        t0 = time.perf_counter()
        for when, row in zip(stamps, texts, strict=True):
            for i, path in enumerate(paths):
                rrdtool.update(path, f"{when}:{row[i]}")
            advance(1)
        ingest = time.perf_counter() - t0
    end = stamps[-1]
    read, _ = best_of(
        3,
        lambda: [
            rrdtool.fetch(path, "AVERAGE", "--start", str(end - 86400), "--end", str(end))
            for path in paths
        ],
    )
    return {
        "values_per_s": count * UPDATES / ingest,
        "ingest_s": ingest,
        "read_s_per_10000": read * 10_000 / count,
        "bytes_per_series": dir_size(directory) / count,
        "series_run": count,
    }


# --- whisper ----------------------------------------------------------------


def whisper_files(work: str, values: np.ndarray, count: int) -> dict[str, Any] | None:
    try:
        import whisper  # type: ignore[import-not-found]
    except ImportError:
        return None
    directory = os.path.join(work, "whisper")
    os.makedirs(directory)
    # whisper keeps one aggregation per file: the AVERAGE half of the layout
    layout = [(STEP * steps, 800) for steps in (1, 6, 24, 288)]
    paths = []
    for i in range(count):
        path = os.path.join(directory, f"s{i}.wsp")
        whisper.create(path, layout, xFilesFactor=0.5, aggregationMethod="average")
        paths.append(path)
    stamps = times()
    with progress(f"whisper: {count} files (1/series)", UPDATES) as advance:
        t0 = time.perf_counter()
        for k, when in enumerate(stamps):
            row = values[k]
            for i, path in enumerate(paths):
                whisper.update(path, float(row[i]), timestamp=when, now=stamps[-1] + 1)
            advance(1)
        ingest = time.perf_counter() - t0
    end = stamps[-1]
    read, _ = best_of(3, lambda: [whisper.fetch(p, end - 86400, end, now=end + 1) for p in paths])
    return {
        "values_per_s": count * UPDATES / ingest,
        "ingest_s": ingest,
        "read_s_per_10000": read * 10_000 / count,
        "bytes_per_series": dir_size(directory) / count,
        "series_run": count,
        "note": "AVERAGE archives only; raw values, no counter rates",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--per-file-series", type=int, default=400,
                        help="series run for the one-file-per-series peers")  # fmt: skip
    parser.add_argument("--per-host", type=int, default=100)
    args = parser.parse_args()
    series = args.series - args.series % len(KINDS)
    work = tempfile.mkdtemp(prefix="opendrs-bench-rrd-")
    try:
        console.print(f"making {series} series x {UPDATES} updates …")
        values, _, texts = make_data(series)
        rrdtool = load_rrdtool()
        wide = opendrs_wide(work, values)
        hosts = opendrs_hosts(work, values, args.per_host)
        peers: dict[str, Any] = {}
        same_values = None
        if rrdtool is not None:
            peers["rrdtool_wide"] = rrdtool_wide(work, rrdtool, texts)
            same_values = bool(
                np.array_equal(wide["day"], peers["rrdtool_wide"]["day"], equal_nan=True)
            )
            peers["rrdtool_files"] = rrdtool_files(
                work, rrdtool, texts, min(args.per_file_series, series)
            )
        whisper_result = whisper_files(work, values, min(args.per_file_series, series))
        if whisper_result is not None:
            peers["whisper_files"] = whisper_result
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(series, wide, hosts, peers, same_values)


def report(series: int, wide: dict[str, Any], hosts: dict[str, Any], peers: dict[str, Any],
           same_values: bool | None) -> None:  # fmt: skip
    table = Table(
        title=f"round-robin ingest and read: {series} series x {UPDATES} updates, 8 archives"
    )
    for column in (
        "store",
        "ingest values/s",
        "read 24h, all series (best of 3)",
        "bytes/series",
        "note",
    ):
        table.add_column(column)
    wide_read = wide["read_s"]
    rate, size = f"{wide['values_per_s']:,.0f}", f"{wide['bytes_per_series']:,.0f}"
    table.add_row("opendrs, 1 wide file", rate, f"{wide_read:.3f} s", size,
                  f"create {wide['create_s']:.2f} s")  # fmt: skip
    rate, size = f"{hosts['values_per_s']:,.0f}", f"{hosts['bytes_per_series']:,.0f}"
    table.add_row("opendrs, host files", rate, f"{hosts['read_s']:.3f} s", size,
                  f"{hosts['hosts']} files of {hosts['per_host']} series")  # fmt: skip
    labels = {
        "rrdtool_wide": "rrdtool 1.7.2, 1 wide file",
        "rrdtool_files": "rrdtool 1.7.2, 1 file/series",
        "whisper_files": "whisper, 1 file/series",
    }
    for key, peer in peers.items():
        read = peer.get("read_s", peer.get("read_s_per_10000"))
        note = (
            f"run on {peer['series_run']} series, read scaled to {series}"
            if "series_run" in peer
            else ""
        )
        if "note" in peer:
            note += "; " + peer["note"]
        table.add_row(labels[key], f"{peer['values_per_s']:,.0f}", f"{read:.3f} s",
                      f"{peer['bytes_per_series']:,.0f}", note)  # fmt: skip
    Console(width=150).print(table)
    figures = {
        "opendrs_wide_values_per_s": round(wide["values_per_s"]),
        "opendrs_wide_read_24h_s": round(wide_read, 4),
        "opendrs_wide_bytes_per_series": round(wide["bytes_per_series"]),
        "opendrs_hosts_values_per_s": round(hosts["values_per_s"]),
        "opendrs_hosts_read_24h_s": round(hosts["read_s"], 4),
        "opendrs_hosts_bytes_per_series": round(hosts["bytes_per_series"]),
    }
    peer_figures: dict[str, Any] = {}
    for key, peer in peers.items():
        peer_figures[f"{key}_values_per_s"] = round(peer["values_per_s"])
        peer_figures[f"{key}_read_24h_s"] = round(
            peer.get("read_s", peer.get("read_s_per_10000")), 4
        )
        peer_figures[f"{key}_bytes_per_series"] = round(peer["bytes_per_series"])
        if "series_run" in peer:
            peer_figures[f"{key}_series_run"] = peer["series_run"]
    targets: dict[str, Any] = {"ingest_vs_rrdtool_wide": ">= 3.0"}
    met = False
    if "rrdtool_wide" in peers:
        ratio = wide["values_per_s"] / peers["rrdtool_wide"]["values_per_s"]
        figures["ingest_vs_rrdtool_wide"] = round(ratio, 2)
        figures["ingest_vs_rrdtool_files"] = round(
            wide["values_per_s"] / peers["rrdtool_files"]["values_per_s"], 2
        )
        figures["read_vs_rrdtool_wide"] = round(peers["rrdtool_wide"]["read_s"] / wide_read, 2)
        figures["same_values_as_rrdtool"] = same_values
        met = ratio >= 3.0 and bool(same_values)
        verdict = "the same" if same_values else "DIFFERENT"
        console.print(f"opendrs wide ingest is {ratio:.1f}x rrdtool's wide file; "
                      f"the 24 h read returns {verdict} values")  # fmt: skip
    else:
        console.print("[red]rrdtool binding not found (apt-get install rrdtool python3-rrdtool)")
    print(json.dumps({"benchmark": "rrd", "figures": figures, "peers": peer_figures,
                      "targets": targets, "met": met}))  # fmt: skip


if __name__ == "__main__":
    main()
