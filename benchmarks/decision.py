"""Decision engine benchmark: audit time and result quality of server consolidation
(host_packing) and workload balancing (workload_balance) at 100, 1,000 and 10,000
hosts with about 10 VMs per host, against a naive single-pass greedy of the kind
OpenStack Watcher ships, run in the same process on the same clusters.

Quality: consolidation is measured as hosts left running over the lower bound
(total demand / host capacity, per dimension); balancing as the CPU standard
deviation before and after. The peers ignore server groups; the violations they
create are counted.

Times are CPU seconds of this process (time.process_time): the project's box is
shared, and wall time there measures the neighbours as much as the audit.

Run: .venv/bin/python benchmarks/decision.py [--sizes 100,1000,10000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import dataclass

from opendrs.decision.strategies.host_packing import HostPacking, lower_bound_hosts
from opendrs.decision.strategies.workload_balance import WorkloadBalance
from opendrs.domain.cluster import Cluster
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, GroupPolicy, Instance, ServerGroup

HOST_VCPUS = 32
HOST_RAM = 131072
CPU_RATIO = 2.0
FLAVORS = (
    Flavor("m1.small", 1, 2048, 20),
    Flavor("m1.medium", 2, 4096, 40),
    Flavor("m1.large", 4, 8192, 80),
    Flavor("m1.xlarge", 8, 16384, 160),
)
FLAVOR_WEIGHTS = (4, 4, 2, 1)
TARGETS = {
    "consolidation_1000_s": 1.0,
    "consolidation_10000_s": 10.0,
    "balance_1000_s": 1.0,
    "balance_10000_s": 10.0,
}


def make_cluster(hosts: int, seed: int) -> Cluster:
    """Homogeneous hosts; ~10 VMs per host placed at random where they fit; 3% of
    the VMs in anti-affinity groups of three."""
    rng = random.Random(seed)
    names = [f"h{n:05d}" for n in range(hosts)]
    free_cpu = {h: HOST_VCPUS * CPU_RATIO for h in names}
    free_ram = {h: float(HOST_RAM) for h in names}
    instances: list[Instance] = []
    groups: list[ServerGroup] = []
    target = hosts * 10
    group_members: list[str] = []
    for n in range(target):
        flavor = rng.choices(FLAVORS, FLAVOR_WEIGHTS)[0]
        for _ in range(20):
            host = names[rng.randrange(hosts)]
            if free_cpu[host] >= flavor.vcpus and free_ram[host] >= flavor.memory_mb:
                break
        else:
            continue
        free_cpu[host] -= flavor.vcpus
        free_ram[host] -= flavor.memory_mb
        in_group: tuple[str, ...] = ()
        if rng.random() < 0.03:
            group = f"g{len(groups)}"
            group_members.append(f"vm{n:06d}")
            in_group = (group,)
            if len(group_members) == 3:
                groups.append(ServerGroup(group, GroupPolicy.ANTI_AFFINITY))
                group_members = []
        instances.append(
            Instance(
                name=f"vm{n:06d}",
                host=host,
                flavor=flavor,
                groups=in_group,
                metrics={"cpu_util": rng.uniform(2.0, 45.0)},
            )
        )
    if group_members:
        groups.append(ServerGroup(f"g{len(groups)}", GroupPolicy.ANTI_AFFINITY))
    # Anti-affinity groups must start valid: drop members that share a host.
    seen: set[tuple[str, str]] = set()
    kept: list[Instance] = []
    for i in instances:
        key = (i.groups[0], i.host) if i.groups else None
        if key and key in seen:
            i = Instance(i.name, i.host, i.flavor, metrics=i.metrics)
        elif key:
            seen.add(key)
        kept.append(i)
    host_values = [
        Host(h, vcpus=HOST_VCPUS, memory_mb=HOST_RAM, local_gb=4000, cpu_allocation_ratio=CPU_RATIO)
        for h in names
    ]
    return Cluster.of(host_values, kept, groups)


@dataclass
class PeerResult:
    seconds: float
    hosts_after: int
    migrations: int
    group_violations: int
    std_after: float = 0.0


def _state(
    cluster: Cluster,
) -> tuple[dict[str, list[Instance]], dict[str, float], dict[str, float]]:
    on: dict[str, list[Instance]] = {h: [] for h in cluster.hosts}
    for i in cluster.instances.values():
        on[i.host].append(i)
    cpu = {h: HOST_VCPUS * CPU_RATIO - sum(i.vcpus for i in v) for h, v in on.items()}
    ram = {h: HOST_RAM - sum(i.memory_mb for i in v) for h, v in on.items()}
    return on, cpu, ram


def _violations(cluster: Cluster, where: dict[str, str]) -> int:
    seen: dict[tuple[str, str], int] = {}
    for name, host in where.items():
        for g in cluster.instances[name].groups:
            seen[(g, host)] = seen.get((g, host), 0) + 1
    return sum(c - 1 for c in seen.values() if c > 1)


def watcher_like_consolidation(cluster: Cluster) -> PeerResult:
    """Watcher's basic_consolidation in spirit: score hosts by CPU use, take the
    least loaded, move each of its VMs to the first host in descending score order
    where vCPU and RAM fit (no groups, no measured-CPU ceiling), one pass."""
    start = time.process_time()
    on, cpu, ram = _state(cluster)
    score = {h: sum(i.cpu_cores_used for i in v) / HOST_VCPUS for h, v in on.items()}
    order = sorted((h for h in on if on[h]), key=lambda h: score[h])
    released: set[str] = set()
    where = {i.name: i.host for i in cluster.instances.values()}
    migrations = 0
    for source in order:
        destinations = sorted(
            (h for h in on if h != source and h not in released and on[h]),
            key=lambda h: -score[h],
        )
        plan: list[tuple[Instance, str]] = []
        took_cpu: dict[str, float] = {}
        took_ram: dict[str, float] = {}
        for vm in on[source]:
            for dest in destinations:
                if (
                    cpu[dest] - took_cpu.get(dest, 0) >= vm.vcpus
                    and ram[dest] - took_ram.get(dest, 0) >= vm.memory_mb
                ):
                    plan.append((vm, dest))
                    took_cpu[dest] = took_cpu.get(dest, 0) + vm.vcpus
                    took_ram[dest] = took_ram.get(dest, 0) + vm.memory_mb
                    break
            else:
                break
        if len(plan) != len(on[source]):
            continue
        for vm, dest in plan:
            on[dest].append(vm)
            cpu[dest] -= vm.vcpus
            ram[dest] -= vm.memory_mb
            score[dest] += vm.cpu_cores_used / HOST_VCPUS
            where[vm.name] = dest
            migrations += 1
        on[source] = []
        released.add(source)
    hosts_after = sum(1 for v in on.values() if v)
    return PeerResult(
        time.process_time() - start, hosts_after, migrations, _violations(cluster, where)
    )


def watcher_like_balance(cluster: Cluster) -> PeerResult:
    """Watcher's workload_balance in spirit: for each host above the mean CPU plus
    a margin, move the one VM that best closes the gap to the least loaded host
    where it fits, one pass."""
    start = time.process_time()
    on, cpu, ram = _state(cluster)
    load = {h: sum(i.cpu_cores_used for i in v) for h, v in on.items()}
    mean = statistics.fmean(load.values())
    where = {i.name: i.host for i in cluster.instances.values()}
    migrations = 0
    for source in sorted(on, key=lambda h: -load[h]):
        if load[source] <= mean * 1.1:
            break
        coolest = min(on, key=lambda h: load[h])
        gap = (load[source] - load[coolest]) / 2
        fitting = [
            vm for vm in on[source] if cpu[coolest] >= vm.vcpus and ram[coolest] >= vm.memory_mb
        ]
        if not fitting:
            continue
        vm = min(fitting, key=lambda v: abs(v.cpu_cores_used - gap))
        on[source].remove(vm)
        on[coolest].append(vm)
        load[source] -= vm.cpu_cores_used
        load[coolest] += vm.cpu_cores_used
        cpu[coolest] -= vm.vcpus
        ram[coolest] -= vm.memory_mb
        where[vm.name] = coolest
        migrations += 1
    std = statistics.pstdev(100 * v / HOST_VCPUS for v in load.values())
    return PeerResult(time.process_time() - start, 0, migrations, _violations(cluster, where), std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures: dict[str, float] = {}
    peers: dict[str, float] = {}
    rows: list[str] = []
    header = (
        f"{'hosts':>6} {'vms':>7} | {'audit':<13} {'ours s':>7} {'peer s':>7} | "
        f"{'ours':>12} {'peer':>12} {'bound':>6} | {'moves':>6} {'peer mv':>7} "
        f"{'peer viol':>9}"
    )
    for size in sizes:
        cluster = make_cluster(size, args.seed)
        vms = len(cluster.instances)
        bound = lower_bound_hosts(cluster, sorted(cluster.hosts), 80.0)

        start = time.process_time()
        packed = HostPacking.from_parameters({"exact": False}).execute(cluster)
        ours_s = time.process_time() - start
        after = int(packed.efficacy["active_hosts_after"])
        peer = watcher_like_consolidation(cluster)
        figures[f"consolidation_{size}_s"] = round(ours_s, 3)
        figures[f"consolidation_{size}_hosts_over_bound"] = round(after / bound, 3)
        figures[f"consolidation_{size}_migrations"] = len(packed.moves)
        peers[f"consolidation_{size}_s"] = round(peer.seconds, 3)
        peers[f"consolidation_{size}_hosts_over_bound"] = round(peer.hosts_after / bound, 3)
        peers[f"consolidation_{size}_group_violations"] = peer.group_violations
        rows.append(
            f"{size:>6} {vms:>7} | {'consolidation':<13} {ours_s:>7.2f} {peer.seconds:>7.2f} | "
            f"{after:>6} hosts {peer.hosts_after:>6} hosts {bound:>6} | "
            f"{len(packed.moves):>6} {peer.migrations:>7} {peer.group_violations:>9}"
        )

        start = time.process_time()
        balanced = WorkloadBalance.from_parameters({"metric": "cpu"}).execute(cluster)
        ours_s = time.process_time() - start
        before = balanced.efficacy["standard_deviation_before_audit"]
        std_after = balanced.efficacy["standard_deviation_after_audit"]
        peer = watcher_like_balance(cluster)
        figures[f"balance_{size}_s"] = round(ours_s, 3)
        figures[f"balance_{size}_std_before"] = round(before, 2)
        figures[f"balance_{size}_std_after"] = round(std_after, 2)
        peers[f"balance_{size}_s"] = round(peer.seconds, 3)
        peers[f"balance_{size}_std_after"] = round(peer.std_after, 2)
        rows.append(
            f"{size:>6} {vms:>7} | {'balance':<13} {ours_s:>7.2f} {peer.seconds:>7.2f} | "
            f"std {before:>4.1f}→{std_after:>4.1f}  std →{peer.std_after:>5.1f} {'':>6} | "
            f"{len(balanced.moves):>6} {peer.migrations:>7} {peer.group_violations:>9}"
        )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(row)
    checked = {k: v for k, v in TARGETS.items() if k in figures}
    met = bool(checked) and all(figures[k] < v for k, v in checked.items())
    print(
        json.dumps(
            {
                "benchmark": "decision",
                "figures": figures,
                "peers": peers,
                "targets": TARGETS,
                "met": met,
            }
        )
    )


if __name__ == "__main__":
    main()
