"""`opendrs simulate`: replay PlanetLab days through the real decision engine, planner
and applier, faster than real time, and print energy, SLA and migration figures."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from opendrs.domain.errors import InvalidInput

SHOWN = (
    ("energy_kwh", "energy kWh", "{:.2f}"),
    ("migrations", "migrations", "{:,.0f}"),
    ("slatah", "SLATAH %", "{:.3%}"),
    ("pdm", "PDM %", "{:.4%}"),
    ("slav", "SLAV ×1e-5", "SLAV"),
    ("esv", "ESV ×1e-3", "ESV"),
    ("overall_sla_violation", "SLA viol. %", "{:.3%}"),
    ("host_shutdowns", "shutdowns", "{:,.0f}"),
    ("wall_seconds", "wall s", "{:.2f}"),
)


def _format(key: str, pattern: str, value: float) -> str:
    if pattern == "SLAV":
        return f"{value * 1e5:.4f}"
    if pattern == "ESV":
        return f"{value * 1e3:.4f}"
    return pattern.format(value)


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report


@click.command(name="simulate")
@click.option("--day", default="20110303", show_default=True, help="PlanetLab day (YYYYMMDD).")
@click.option(
    "--policy", default="lr-mmt-1.2", show_default=True, help="e.g. thr-mmt-0.8, opendrs."
)
@click.option(
    "--profile",
    type=click.Choice(["cloudsim", "realistic"]),
    default="realistic",
    show_default=True,
)
@click.option("--hosts", type=click.IntRange(min=1), default=None, help="Hosts (default 800).")
@click.option("--vms", type=click.IntRange(min=1), default=None, help="VMs (traces repeat).")
@click.option("--all-days", is_flag=True, help="Run the ten days; print mean and std dev.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Draw active hosts, energy and overload over the day to this PNG.",
)
@click.option(
    "--traces",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of <day>.csv.gz (default: $OPENDRS_TRACE_DIR or shared/data/planetlab).",
)
def simulate(
    day: str,
    policy: str,
    profile: str,
    hosts: int | None,
    vms: int | None,
    all_days: bool,
    as_json: bool,
    plot: Path | None,
    traces: Path | None,
) -> None:
    """Simulate a day of an 800-host cloud under a consolidation policy."""
    from opendrs.services.simulation import DAYS, run_day, simulate_all_days

    out = Console(highlight=False, soft_wrap=True)
    show_bar = sys.stderr.isatty()
    try:
        if all_days:
            with _progress(show_bar, f"{policy} · 10 days") as report:
                summary = simulate_all_days(
                    policy, profile, hosts, report, days=DAYS, traces=traces
                )
            if as_json:
                click.echo(json.dumps(summary))
            else:
                _days_table(out, policy, profile, summary)
            return
        with _progress(show_bar, f"{policy} · {day}") as report:
            run = run_day(day, policy, profile, hosts, report, traces=traces, vms=vms)
    except InvalidInput as error:
        raise click.UsageError(str(error)) from None
    if plot is not None:
        from opendrs.services.simulation_plot import draw_day

        draw_day(run, plot)
    if as_json:
        click.echo(json.dumps(run.result))
        return
    _one_table(out, run.result)
    if plot is not None:
        out.print(f"plot written to {plot}")


def _one_table(out: Console, result: dict[str, Any]) -> None:
    table = Table(
        title=f"{result['policy']} · {result['day']} · {result['profile']} · "
        f"{result['hosts']} hosts, {result['vms']} VMs"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, label, pattern in SHOWN:
        table.add_row(label, _format(key, pattern, float(result[key])))
    out.print(table)


def _days_table(out: Console, policy: str, profile: str, summary: dict[str, Any]) -> None:
    table = Table(title=f"{policy} · {profile} · all days")
    table.add_column("day")
    for _, label, _ in SHOWN:
        table.add_column(label, justify="right")
    rows: Sequence[dict[str, Any]] = summary["days"]
    for row in rows:
        table.add_row(row["day"], *(_format(k, p, float(row[k])) for k, _, p in SHOWN))
    for name in ("mean", "stdev"):
        table.add_row(name, *(_format(k, p, float(summary[name][k])) for k, _, p in SHOWN))
    out.print(table)
