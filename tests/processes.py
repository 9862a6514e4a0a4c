"""A child `opendrs` process for the tests that run real ones (servers, agents,
CEP workers): its stderr is kept and read as it comes, so a test can wait for a
line, and it is stopped with SIGTERM."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

WAIT = 90.0  # seconds real processes may take to get somewhere; never asserted on


class Process:
    """A child `opendrs` process whose stderr is kept and can be waited on."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "opendrs", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str) -> re.Match[str]:
        # The banner may be wrapped by the console: match on the joined output.
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            found = re.search(pattern, "".join(self.output).replace("\n", ""))
            if found:
                return found
            if self.process.poll() is not None and self.lines.empty():
                break
            time.sleep(0.1)
        pytest.fail(f"never printed {pattern!r}: {''.join(self.output)}")

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"did not stop on SIGTERM: {''.join(self.output)}")
