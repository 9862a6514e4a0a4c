"""Our webhook payload against a real Alertmanager (Debian's
prometheus-alertmanager on loopback): we feed it through its API, it calls a
webhook receiver of ours, and what it sends must look like what we send.
Without the binary the test skips, and fails under CI=true."""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from needs import unavailable
from opendrs.cep.routing import Batch
from opendrs.domain.alarm import AlarmState, AlarmTransition, Severity
from opendrs.domain.errors import DriverError
from opendrs.notify.alertmanager import DEDUP_HEADER, AlertmanagerNotifier, WebhookNotifier

BINARY = "prometheus-alertmanager"
WAIT = 30.0  # seconds a real server may take; never asserted on


class Receiver:
    """A webhook receiver on loopback that queues what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.received: queue.Queue[tuple[dict[str, Any], dict[str, str]]] = queue.Queue()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                owner.received.put((body, dict(self.headers)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self) -> tuple[dict[str, Any], dict[str, str]]:
        return self.received.get(timeout=WAIT)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[str]:
    binary = shutil.which(BINARY)
    if binary is None:
        unavailable(f"{BINARY} is not installed (apt-get install prometheus-alertmanager)")
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: hook\n"
        "  group_by: [host]\n"
        "  group_wait: 0s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: hook\n"
        "    webhook_configs:\n"
        f"      - url: {receiver.url}\n"
        "        send_resolved: true\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    ready = threading.Event()
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"{BINARY} exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/-/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        ready.wait(0.1)  # polling an outside server; the outcome, not the time, is asserted
    pytest.fail(f"{BINARY} did not become ready")


def transition(current: AlarmState, time: float) -> AlarmTransition:
    previous = AlarmState.OK if current == AlarmState.ALARM else AlarmState.ALARM
    return AlarmTransition(
        rule="host_low_free_ram",
        entity="h1",
        previous=previous,
        current=current,
        time=time,
        value=12.0,
        severity=Severity.WARNING,
        reason="memory.free.percent < 15 for 180s",
        labels={"host": "h1", "team": "compute"},
        rule_version="abc123",
        annotations={"summary": "free RAM below 15%"},
    )


def shape(payload: dict[str, Any]) -> dict[str, Any]:
    """What must agree between Alertmanager's payload and ours."""
    [alert] = payload["alerts"]
    return {
        "keys": sorted(payload),
        "alert_keys": sorted(alert),
        "status": payload["status"],
        "groupLabels": payload["groupLabels"],
        "groupKey": payload["groupKey"],
        "commonLabels": payload["commonLabels"],
        "labels": alert["labels"],
        "alert_status": alert["status"],
        "version": payload["version"],
    }


def test_our_webhook_payload_is_alertmanagers(alertmanager: str, receiver: Receiver) -> None:
    feed = AlertmanagerNotifier(alertmanager)
    ours = WebhookNotifier(receiver.url, receiver="hook")
    for state, time in ((AlarmState.ALARM, 1_700_000_000.0), (AlarmState.OK, 1_700_000_300.0)):
        batch = Batch((("host", "h1"),), (transition(state, time),))
        feed.send(batch)
        theirs, _ = receiver.next()
        ours.send(batch)
        mine, headers = receiver.next()
        assert shape(mine) == shape(theirs)
        assert headers[DEDUP_HEADER] == batch.dedup_key
        assert theirs["alerts"][0]["annotations"]["summary"] == "free RAM below 15%"
    feed.close()
    ours.close()


def test_a_receiver_error_is_a_driver_error() -> None:
    failing = Receiver(status=503)
    try:
        batch = Batch((("host", "h1"),), (transition(AlarmState.ALARM, 0.0),))
        with pytest.raises(DriverError, match="503") as caught:
            WebhookNotifier(failing.url).send(batch)
        assert caught.value.transient
    finally:
        failing.close()
    with pytest.raises(DriverError) as refused:
        WebhookNotifier(f"http://127.0.0.1:{free_port()}/none").send(batch)
    assert refused.value.transient
