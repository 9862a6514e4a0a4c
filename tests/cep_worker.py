"""A CEP worker as a real `opendrs server --role cep` process, for the tests that
run several of them over a real bus: it reads the worker's log to know when it
holds its partitions, and stops it with SIGTERM."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from processes import WAIT, Process

__all__ = ["WAIT", "Worker"]


class Worker(Process):
    def __init__(self, config: Path, namespace: str, partitions: str, name: str) -> None:
        super().__init__(
            *("server", "--config", str(config), "--role", "cep", "--partitions", partitions),
            *("--worker", name, "--namespace", namespace, "--interval", "0.5"),
        )

    def wait_holding(self, partitions: str) -> None:
        wanted = f"holding partitions {partitions}"
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                pytest.fail(f"worker never said {wanted!r}: {''.join(self.output)}")
            if wanted in line:
                return

    def stop(self) -> int:
        return self.terminate()
