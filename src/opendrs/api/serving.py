"""Serving the API app with uvicorn on a thread of a process that does other work
too (`opendrs server`): start, the address it is bound to, stop."""

from __future__ import annotations

import threading
import time

from fastapi import FastAPI

from opendrs.domain.errors import InvalidInput


class ApiServing:
    """`port` 0 takes any free port; `bound` tells which once started."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        import uvicorn  # a dependency, imported when the API role is built

        self.host = host
        self.port = port
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        )
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Serve; raises InvalidInput naming `api.port` when the address is taken."""
        # uvicorn installs signal handlers only on the main thread: here the
        # process's own handlers stay in charge.
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if not self._server.started:
            self.stop(5.0)
            raise InvalidInput(
                f"cannot serve the API on {self.host}:{self.port} (address in use?)",
                source="configuration",
                field="api.port",
            )

    @property
    def bound(self) -> int:
        servers = self._server.servers
        if servers and servers[0].sockets:
            return int(servers[0].sockets[0].getsockname()[1])
        return self.port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float) -> bool:
        """Finish the requests in flight and stop; False if that took too long."""
        self._server.should_exit = True
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
