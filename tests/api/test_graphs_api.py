"""GET /v1/graphs/... pictures and GET /metrics, over real round-robin files."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as prometheus_families

from fakes.repositories import MemoryRepositories
from opendrs.api.app import create_app
from opendrs.api.graphs import graphs_router
from opendrs.api.metrics import metrics_router
from opendrs.domain.clock import ManualClock
from opendrs.store.rrd.collection import HostArchives

T0 = 1_700_000_000 - 1_700_000_000 % 300


@pytest.fixture
def archives(tmp_path: Path) -> Iterator[HostArchives]:
    with HostArchives(tmp_path) as history:
        counter = 0
        for k in range(1, 400):
            when = T0 + 300 * k + 3
            counter += 300 * 1000 * (k % 7)
            host = "h1" if k < 300 else "h2"  # vm1 migrates to h2 at step 300
            history.update(
                host,
                when,
                {"vm1/cpu_util": float(k % 100), "vm1/network.incoming.bytes": counter},
                retire_missing=True,
            )
            history.update("h3", when, {"h3/power": 200.0 + k % 50})
        yield history


@pytest.fixture
def client(archives: HostArchives) -> TestClient:
    clock = ManualClock(T0 + 300 * 400)
    app = create_app(
        MemoryRepositories(),
        extra_routers=[
            graphs_router(archives, clock=clock),
            metrics_router(archives, clock=clock),
        ],
        dashboard=False,
    )
    return TestClient(app)


def _png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", body[16:24])
    return width, height


def test_host_graph_is_a_png_of_the_asked_size(client: TestClient) -> None:
    response = client.get("/v1/graphs/hosts/h1", params={"meter": "cpu_util", "period": "day"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert _png_size(response.content) == (800, 300)
    wide = client.get(
        "/v1/graphs/hosts/h3", params={"meter": "power", "width": 1200, "height": 400}
    )
    assert _png_size(wide.content) == (1200, 400)


def test_svg_for_week_and_month(client: TestClient) -> None:
    for period in ("week", "month"):
        response = client.get(
            "/v1/graphs/hosts/h1",
            params={"series": "vm1/network.incoming.bytes", "period": period, "format": "svg"},
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
        root = ET.fromstring(response.content)
        assert root.tag.endswith("svg")
        assert b"B/s" in response.content  # the unit of a counter's rate


def test_instance_graph_spans_the_hosts_it_ran_on(client: TestClient) -> None:
    response = client.get(
        "/v1/graphs/instances/vm1", params={"meter": "cpu_util", "start": T0, "end": T0 + 300 * 400}
    )
    assert response.status_code == 200
    assert _png_size(response.content) == (800, 300)


def test_instance_history_merges_hosts(archives: HostArchives) -> None:
    stamps, values = archives.history("vm1/cpu_util", "AVERAGE", T0 + 300 * 290, T0 + 300 * 310)
    known = dict(zip(stamps.tolist(), values.tolist(), strict=True))
    # time-weighted: 297 s of this step's reading, 3 s of the previous one
    assert known[T0 + 300 * 295] == pytest.approx(295 % 100 - 0.01)  # still on h1
    assert known[T0 + 300 * 305] == pytest.approx(305 % 100 - 0.01)  # already on h2


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/graphs/hosts/nowhere", {}, 404),
        ("/v1/graphs/hosts/h1", {"meter": "no.such.meter"}, 404),
        ("/v1/graphs/hosts/h1", {"period": "fortnight"}, 422),
        ("/v1/graphs/hosts/h1", {"format": "gif"}, 422),
        ("/v1/graphs/hosts/h1", {"start": T0 + 600, "end": T0}, 422),
        ("/v1/graphs/instances/vm9", {}, 404),
    ],
)
def test_bad_requests_are_named(
    client: TestClient, path: str, params: dict[str, object], status: int
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_metrics_are_valid_openmetrics_with_the_latest_values(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    cpu = families["opendrs_cpu_util"]
    (sample,) = cpu.samples  # h1 stopped reporting: its stale vm1 row is left out
    assert sample.labels == {"host": "h2", "entity": "vm1"}
    assert sample.value == pytest.approx(399 % 100 - 0.01)
    assert sample.timestamp.sec == T0 + 300 * 399
    rate = families["opendrs_network_incoming_bytes_per_second"].samples[0]
    # 3 s at the rate of update 398 and 297 s at the rate of update 399
    assert rate.value == pytest.approx((3 * 1000 * (398 % 7) + 297 * 1000 * (399 % 7)) / 300)
    power = families["opendrs_power"].samples[0]
    assert power.labels == {"host": "h3", "entity": "h3"}


def test_metrics_default_to_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    names = {f.name for f in prometheus_families(response.text)}
    assert "opendrs_cpu_util" in names
