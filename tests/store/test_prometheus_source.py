"""The Prometheus-compatible history source against a real VictoriaMetrics
(Debian's `victoria-metrics`), started on loopback for these tests. Missing
binary: skip on a developer machine, fail when CI=true."""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from needs import unavailable
from opendrs.domain.errors import InvalidInput, StoreError
from opendrs.store.prometheus import PrometheusSource

T0 = 1_700_000_000 - 1_700_000_000 % 300
STEPS = 48


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str, attempts: int = 200) -> None:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)  # waiting for a real server process to listen
    raise AssertionError("victoria-metrics did not start")


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("victoria-metrics")
    if binary is None:
        message = "victoria-metrics not found: apt-get install victoria-metrics"
        unavailable(message)
    port = _free_port()
    data = tmp_path_factory.mktemp("vm")
    process = subprocess.Popen(
        [
            binary,
            f"-storageDataPath={data}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-search.disableCache",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _ready(url)
        _load(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _load(url: str) -> None:
    lines = []
    for k in range(STEPS):
        stamp_ms = (T0 + 300 * k) * 1000
        lines.append(f'cpu_util{{host="h1",vm="vm1"}} {k % 10} {stamp_ms}')
        lines.append(f'cpu_util{{host="h1",vm="vm2"}} {50 + k % 5} {stamp_ms}')
        lines.append(f'network_bytes_total{{host="h1",vm="vm1"}} {k * 300_000} {stamp_ms}')
    request = urllib.request.Request(
        url + "/api/v1/import/prometheus", data="\n".join(lines).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    with urllib.request.urlopen(url + "/internal/force_flush", timeout=10):
        pass
    # ingested rows become searchable shortly after the flush
    for _ in range(200):
        query = urllib.parse.urlencode({"query": "count(cpu_util)", "time": str(T0 + 300 * 10)})
        with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=5) as response:
            result = json.loads(response.read())["data"]["result"]
        if result and result[0]["value"][1] == "2":
            return
        time.sleep(0.05)
    raise AssertionError("imported samples never became searchable")


def test_range_of_raw_series(victoria: str) -> None:
    source = PrometheusSource(victoria)
    matrix = source.query_range('cpu_util{host="h1"}', T0, T0 + 300 * 20, 300)
    assert len(matrix.timestamps) == 21
    by_vm = {labels["vm"]: matrix.values[:, i] for i, labels in enumerate(matrix.labels)}
    assert list(by_vm["vm1"][:12]) == [float(k % 10) for k in range(12)]
    assert list(by_vm["vm2"][:5]) == [50.0, 51.0, 52.0, 53.0, 54.0]


def test_functions_the_decision_engine_uses(victoria: str) -> None:
    source = PrometheusSource(victoria)
    rate = source.query_range("rate(network_bytes_total[10m])", T0 + 3000, T0 + 6000, 600)
    assert all(v == pytest.approx(1000.0) for v in rate.values[:, 0] if not math.isnan(v))
    peak = source.query_range('max_over_time(cpu_util{vm="vm1"}[1h])', T0 + 3600, T0 + 7200, 3600)
    assert peak.values[0, 0] == 9.0


def test_a_bad_query_is_invalid_input(victoria: str) -> None:
    with pytest.raises(InvalidInput) as error:
        PrometheusSource(victoria).query_range("rate(cpu_util[", T0, T0 + 600, 300)
    assert error.value.field == "query"


def test_an_unreachable_server_is_a_transient_store_error(tmp_path: Path) -> None:
    source = PrometheusSource(f"http://127.0.0.1:{_free_port()}", timeout=2)
    with pytest.raises(StoreError) as error:
        source.query_range("up", T0, T0 + 600, 300)
    assert error.value.transient


def test_bad_arguments_are_named() -> None:
    with pytest.raises(InvalidInput, match="not an http"):
        PrometheusSource("ftp://x")
    with pytest.raises(InvalidInput, match="step"):
        PrometheusSource("http://127.0.0.1:1").query_range("up", T0, T0 + 60, 0)
