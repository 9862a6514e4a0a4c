"""Benchmark of `opendrs simulate`: wall time and peak memory of one simulated day
(20110303, cloudsim profile, 800 hosts) per policy, each in a fresh process, plus a
10x fleet (8,000 hosts, 10,000 VMs). Peer: CloudSim 3.0.3's published cost of 30-60 s
and ~2.5 GB per simulated day per policy (stated, not run here: no JVM in this repo).

Run: .venv/bin/python benchmarks/simulate.py [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys

from rich.console import Console
from rich.table import Table

POLICIES = (
    "npa",
    "dvfs",
    "thr-mmt-0.8",
    "iqr-mmt-1.5",
    "mad-mmt-2.5",
    "lr-mmt-1.2",
    "lrr-mmt-1.2",
    "lr-mc-1.2",
    "lr-rs-1.2",
    "lr-mu-1.2",
    "opendrs",
)
LARGE = ("dvfs", "opendrs")
CHILD = """
import json, resource, sys
from opendrs.services.simulation import simulate_day
day, policy, profile, hosts, vms = sys.argv[1:6]
result = simulate_day(day, policy, profile, int(hosts), vms=int(vms) if vms != "-" else None)
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""
CLOUDSIM_SECONDS = (30.0, 60.0)
CLOUDSIM_MB = 2500.0
TARGET_SECONDS = 4.0
TARGET_MB = 500.0


def run(policy: str, hosts: int, vms: str, profile: str = "cloudsim") -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "20110303", policy, profile, str(hosts), vms],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    quick = "--quick" in sys.argv
    console = Console()
    policies = ("dvfs", "lr-mmt-1.2", "opendrs") if quick else POLICIES
    table = Table(title="one day (20110303, cloudsim profile, 800 hosts), fresh process each")
    for column in (
        "policy",
        "wall s",
        "peak RSS MB",
        "energy kWh",
        "migrations",
        "vs CloudSim 30 s",
    ):
        table.add_column(column, justify="right")
    figures: dict[str, float] = {}
    worst_s = worst_mb = 0.0
    for policy in policies:
        r = run(policy, 800, "-")
        wall, rss = float(r["wall_seconds"]), float(r["peak_rss_mb"])
        worst_s, worst_mb = max(worst_s, wall), max(worst_mb, rss)
        figures[f"{policy}_wall_s"] = round(wall, 2)
        figures[f"{policy}_peak_mb"] = round(rss, 1)
        table.add_row(
            policy,
            f"{wall:.2f}",
            f"{rss:.0f}",
            f"{r['energy_kwh']:.2f}",
            f"{r['migrations']:,}",
            f"{CLOUDSIM_SECONDS[0] / wall:.1f}x",
        )
    console.print(table)
    large = Table(title="8,000 hosts, 10,000 VMs (traces of 20110303 repeated)")
    for column in ("policy", "wall s", "peak RSS MB", "energy kWh", "migrations"):
        large.add_column(column, justify="right")
    for policy in LARGE:
        r = run(policy, 8000, "10000")
        figures[f"{policy}_8000h_wall_s"] = round(float(r["wall_seconds"]), 2)
        figures[f"{policy}_8000h_peak_mb"] = round(float(r["peak_rss_mb"]), 1)
        large.add_row(
            policy,
            f"{r['wall_seconds']:.2f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['energy_kwh']:.2f}",
            f"{r['migrations']:,}",
        )
    console.print(large)
    figures["worst_wall_s"] = round(worst_s, 2)
    figures["worst_peak_mb"] = round(worst_mb, 1)
    figures["speedup_vs_cloudsim_30s_worst"] = round(CLOUDSIM_SECONDS[0] / worst_s, 1)
    met = worst_s < TARGET_SECONDS and worst_mb < TARGET_MB
    console.print(
        f"slowest policy {worst_s:.2f} s, largest {worst_mb:.0f} MB; "
        f"target < {TARGET_SECONDS:g} s and < {TARGET_MB:g} MB: {'met' if met else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "benchmark": "simulate",
                "figures": figures,
                "peers": {
                    "cloudsim_3_0_3_wall_s_low": CLOUDSIM_SECONDS[0],
                    "cloudsim_3_0_3_wall_s_high": CLOUDSIM_SECONDS[1],
                    "cloudsim_3_0_3_peak_mb": CLOUDSIM_MB,
                    "source": "published/stated in the issue, not run here",
                },
                "targets": {"wall_s_per_day_800_hosts": "< 4", "peak_mb": "< 500"},
                "met": met,
            }
        )
    )


if __name__ == "__main__":
    main()
