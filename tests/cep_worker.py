"""A CEP worker as a real `opendrs server --role cep` process, for the tests that
run several of them over a real bus: it reads the worker's log to know when it
holds its partitions, and stops it with SIGTERM."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

WAIT = 60.0  # seconds real processes may take; never asserted on


class Worker:
    def __init__(self, config: Path, namespace: str, partitions: str, name: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from opendrs.commands.server import server; server()",
                *("--config", str(config), "--role", "cep", "--partitions", partitions),
                *("--worker", name, "--namespace", namespace, "--interval", "0.5"),
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)
            self.lines.put(line)

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
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)
