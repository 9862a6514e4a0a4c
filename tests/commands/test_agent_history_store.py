"""`opendrs agent` gives the history plugin the host's round-robin store, and
what the plugin records can be read back from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opendrs.agent.assembly import build_agent
from opendrs.cloud.sim import build_sim_cloud
from opendrs.cloud.sim.traces import find_trace_dir
from opendrs.commands.agent import host_history
from opendrs.config import Settings
from opendrs.domain.clock import ManualClock
from opendrs.store.rrd.collection import HostArchives


def test_without_the_history_plugin_there_is_no_store() -> None:
    assert host_history(Settings(), "h", ManualClock()) is None


def test_the_history_plugin_writes_the_hosts_round_robin_file(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "cloud": {"sim": {"hosts": 2, "instances": 4}},
            "agent": {"plugins": ["history"], "history": {"directory": str(tmp_path)}},
        }
    )
    clock = ManualClock(1_299_110_400.0)
    cloud = build_sim_cloud(settings.cloud.sim, clock, find_trace_dir(None))
    host = cloud.list_hosts()[0].name
    history = host_history(settings, host, clock)
    assert history is not None
    agent = build_agent(host, cloud, settings, None, clock, history=history)
    for _ in range(12):
        agent.poll_once()
        clock.advance(300)
    archives = HostArchives(tmp_path, clock=clock)
    assert archives.hosts() == [host]
    now = int(clock.now())
    matrix = archives.read("AVERAGE", now - 3000, now, hosts=[host])
    cpu = [
        i
        for i, (_, column) in enumerate(matrix.keys)
        if column.endswith("/compute.node.cpu.percent")
    ]
    assert cpu, matrix.keys
    # Rates exist from the second poll on, so most rows of the last 50 minutes are known.
    known = ~np.isnan(matrix.values[:, cpu[0]])
    assert known.sum() >= len(known) // 2
    assert ((matrix.values[known, cpu[0]] >= 0) & (matrix.values[known, cpu[0]] <= 100)).all()
