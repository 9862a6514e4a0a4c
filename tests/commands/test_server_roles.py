"""`opendrs server` as a real deployment runs it: a server process with every role
over PostgreSQL and NATS JetStream, two hosts on libvirt's test:/// driver, and an
`opendrs agent --driver libvirt` process publishing one host's samples. Through
the HTTP API: the inventory shows the hosts and the VM, the agent's samples
reach the model, an audit made with POST /v1/audits runs, and its plan, once
started, reaches libvirt. libvirt's test driver refuses real migrations, so the
migration ending FAILED with libvirt's own "migration is not supported" is the
honest end-to-end proof that the applier drove the driver. SIGTERM stops the
server with exit status 0. Needs PostgreSQL (127.0.0.1:5432, db test) and NATS
(127.0.0.1:4222): skips without them, fails under CI=true."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from needs import unavailable
from postgres_schema import fresh_schema
from processes import WAIT, Process

FIXTURES = Path(__file__).parent.parent / "cloud" / "fixtures"
HOSTS = {
    "src": f"test://{FIXTURES / 'actions_src.xml'}",
    "dst": f"test://{FIXTURES / 'actions_dst.xml'}",
}


def nats_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    if not nats_up():
        unavailable("NATS is not running on 127.0.0.1:4222")
    settings = {
        "database": {"url": database_url},
        "bus": {
            "transport": "nats",
            "url": "nats://127.0.0.1:4222",
            "namespace": f"server-roles-{uuid.uuid4().hex[:12]}",
        },
        "cloud": {"driver": "libvirt", "libvirt": {"hosts": HOSTS}},
        "api": {"host": "127.0.0.1", "port": 0},
        "history": {"directory": str(tmp_path / "history"), "step": 1},
        "agent": {"poll_interval": 0.5, "plugins": ["publisher"]},
        "applier": {"retry_first_delay_s": 0.1},
        "server": {
            "inventory_interval_seconds": 0.5,
            "ingest_flush_seconds": 0.5,
            "decision_tick_seconds": 0.5,
            "applier_interval_seconds": 0.5,
        },
    }
    path = tmp_path / "opendrs.yaml"
    path.write_text(json.dumps(settings))  # JSON is YAML
    return path


class Api:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            pytest.fail(f"{method} {path}: {error.code} {error.read().decode()}")

    def until(self, path: str, ready: Callable[[Any], bool]) -> Any:
        """GET `path` until `ready` says yes; fails with the last answer if never."""
        end = time.monotonic() + WAIT
        last: Any = None
        while time.monotonic() < end:
            last = self.call("GET", path)
            if ready(last):
                return last
            time.sleep(0.3)
        pytest.fail(f"GET {path} never got there; last answer {last}")


def test_server_roles_drive_libvirt_end_to_end(config: Path) -> None:
    server = Process("server", "-c", str(config))
    agent = Process(
        "agent", "--driver", "libvirt", "--uri", HOSTS["src"], "--host", "src", "-c", str(config)
    )
    try:
        found = server.wait_for(r"API on (http://127\.0\.0\.1:\d+)/")
        api = Api(found.group(1))

        # inventory: both hosts with libvirt's capacity, the VM where libvirt has it
        hosts = api.until("/v1/hosts", lambda h: {x["name"] for x in h} == {"src", "dst"})
        by_name = {h["name"]: h for h in hosts}
        assert by_name["dst"]["vcpus"] == 4
        assert by_name["dst"]["memory_mb"] == 8192
        assert by_name["src"]["hypervisor_type"] == "TEST"
        instances = api.until("/v1/instances", lambda i: [x["name"] for x in i] == ["vm-a"])
        assert instances[0]["host"] == "src"
        assert instances[0]["flavor"]["vcpus"] == 1
        assert instances[0]["flavor"]["memory_mb"] == 1024

        # ingest: the agent's samples reach the cluster model
        api.until("/v1/instances", lambda i: "cpu_util" in i[0]["metrics"])
        api.until("/v1/hosts/src", lambda h: "compute.node.cpu.percent" in h["metrics"])

        # decision: an audit made through the API runs and recommends moving vm-a
        made = api.call(
            "POST",
            "/v1/audits",
            {"goal": "host_maintenance", "parameters": {"maintenance_node": "src"}},
        )
        assert made["audit"]["state"] == "SUCCEEDED", made
        plan_id = made["plan_id"]
        assert plan_id, made
        plan = api.call("GET", f"/v1/action_plans/{plan_id}")
        migrations = [a for a in plan["actions"] if a["type"] == "migrate"]
        assert [m["parameters"]["destination"] for m in migrations] == ["dst"]

        # applier: started, the plan reaches libvirt, whose test driver refuses
        api.call("POST", f"/v1/action_plans/{plan_id}/start")
        ended = api.until(
            f"/v1/action_plans/{plan_id}",
            lambda p: p["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"),
        )
        migrate = next(a for a in ended["actions"] if a["type"] == "migrate")
        assert ended["state"] == "FAILED", ended
        assert migrate["state"] == "FAILED", migrate
        assert "migration is not supported" in migrate["message"], migrate

        status = api.call("GET", "/v1/status")
        assert set(status["loops"]) == {"inventory", "ingest", "decision", "applier"}
        assert all(loop["running"] for loop in status["loops"].values()), status
        assert status["samples_ingested"] > 0
    finally:
        agent_status = agent.terminate()
        server_status = server.terminate()
    assert server_status == 0, "".join(server.output)
    assert agent_status == 0, "".join(agent.output)
    assert "stopped (clean)" in "".join(server.output)
