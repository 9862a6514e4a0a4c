"""A local HTTP server that replays recorded Nova API exchanges (JSON fixture files
shaped by Nova's API reference) and records what the client sent, so the Nova driver
is tested through the real openstacksdk and keystoneauth over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parents[1] / "cloud" / "fixtures" / "nova"
PREFIX = "/compute/v2.1"


@dataclass
class Sent:
    method: str
    path: str
    body: Any
    microversion: str | None


@dataclass
class Replay:
    """Exchanges by (METHOD, path?query): each request takes the next one recorded
    for its key; the last one answers again once they are used up."""

    exchanges: dict[tuple[str, str], list[dict[str, Any]]]
    sent: list[Sent] = field(default_factory=list)
    used: dict[tuple[str, str], int] = field(default_factory=dict)
    url: str = ""

    def answer(self, method: str, path: str) -> dict[str, Any]:
        key = (method, path)
        recorded = self.exchanges.get(key)
        if not recorded:
            return {
                "status": 404,
                "body": {"itemNotFound": {"code": 404, "message": f"not recorded: {key}"}},
            }
        n = self.used.get(key, 0)
        self.used[key] = n + 1
        return recorded[min(n, len(recorded) - 1)]

    def requests(self, method: str) -> list[Sent]:
        return [s for s in self.sent if s.method == method]


def load(*names: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    exchanges: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for name in ("discovery", *names):
        for exchange in json.loads((FIXTURES / f"{name}.json").read_text())["exchanges"]:
            request = exchange["request"]
            exchanges.setdefault((request["method"], request["path"]), []).append(
                exchange["response"]
            )
    return exchanges


@contextmanager
def nova_replay(*fixtures: str) -> Iterator[Replay]:
    replay = Replay(load(*fixtures))

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.removeprefix(PREFIX) or "/"
            replay.sent.append(
                Sent(
                    self.command,
                    path,
                    json.loads(raw) if raw else None,
                    self.headers.get("OpenStack-API-Version"),
                )
            )
            response = replay.answer(self.command, path)
            body = response.get("body")
            data = (
                json.dumps(body).replace("{url}", replay.url).encode() if body is not None else b""
            )
            self.send_response(response["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    replay.url = f"http://127.0.0.1:{server.server_port}{PREFIX}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()


def sdk_connection(replay: Replay) -> Any:
    """A real openstacksdk connection whose token auth points straight at the replay."""
    import openstack.connection
    from keystoneauth1 import session
    from keystoneauth1.token_endpoint import Token

    return openstack.connection.Connection(session=session.Session(auth=Token(replay.url, "t0ken")))
