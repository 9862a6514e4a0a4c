"""A picture of one simulated day: active hosts, cumulative energy and hosts short of
CPU, step by step (matplotlib, drawn off-screen)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opendrs.services.simulation import Run


def draw_day(run: Run, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = run.centre.totals.series
    hours = [t / 3600.0 for t, _, _, _ in series]
    active = [a for _, a, _, _ in series]
    energy = [e for _, _, e, _ in series]
    short = [s for _, _, _, s in series]
    r = run.result
    figure, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    axes[0].plot(hours, active, color="tab:blue")
    axes[0].set_ylabel("active hosts")
    axes[1].plot(hours, energy, color="tab:green")
    axes[1].set_ylabel("energy (kWh)")
    axes[2].plot(hours, short, color="tab:red")
    axes[2].set_ylabel("hosts short of CPU")
    axes[2].set_xlabel("hour of the day")
    figure.suptitle(
        f"{r['policy']} · {r['day']} · {r['profile']}: {r['energy_kwh']:.1f} kWh, "
        f"{r['migrations']:,} migrations, SLAV {r['slav']:.2e}"
    )
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=90)
    finally:
        plt.close(figure)
