"""The local driver: this machine's counters through psutil, turned into host
samples by a real agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.poller import Agent
from opendrs.cloud.local import LocalStats
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import DriverError


def test_host_counters_match_psutil() -> None:
    stats = LocalStats(clock=ManualClock(42.0))
    counters = stats.host_counters("this-box")
    assert (counters.host, counters.time) == ("this-box", 42.0)
    assert counters.cores == psutil.cpu_count(logical=True)
    total_mb = psutil.virtual_memory().total // (1024 * 1024)
    assert counters.memory_mb == total_mb
    assert 0 < counters.memory_free_mb <= counters.memory_mb
    assert counters.cpu_time_ns > 0
    assert 0 < counters.local_gb_free <= counters.local_gb + 1
    assert stats.instance_counters("this-box") == []


def test_cpu_time_never_decreases_and_the_agent_gives_host_samples() -> None:
    clock = ManualClock(0.0)
    stats = LocalStats(clock=clock)
    agent = Agent("this-box", stats, PluginPipeline([]), clock)
    first = stats.host_counters("this-box").cpu_time_ns
    agent.poll_once()
    sum(i * i for i in range(200_000))  # some CPU work between the polls
    clock.advance(1.0)
    result = agent.poll_once()
    assert stats.host_counters("this-box").cpu_time_ns >= first
    meters = {s.meter: s for s in result.samples}
    assert set(meters) == {
        "compute.node.cpu.percent",
        "memory.free",
        "memory.used",
        "memory.free.percent",
    }
    assert 0 <= meters["compute.node.cpu.percent"].value <= 100
    assert result.errors == ()


def test_unreadable_disk_is_a_transient_driver_error(tmp_path: Path) -> None:
    stats = LocalStats(disk_path=tmp_path / "missing")
    with pytest.raises(DriverError, match="cannot read") as err:
        stats.host_counters("h")
    assert err.value.transient


def test_psutil_failure_is_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "virtual_memory", boom)
    with pytest.raises(DriverError):
        LocalStats().host_counters("h")
