"""`opendrs rules`: check rule files and run their promtool-like unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from opendrs.domain.errors import InvalidInput
from opendrs.rulefiles.cases import FileResult, run_test_file
from opendrs.rulefiles.schema import load_rule_files

FILES = click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False)
)


@click.group(name="rules")
def rules() -> None:
    """CEP rule files: check them, test them."""


@rules.command(name="test")
@FILES
def test_command(files: tuple[Path, ...]) -> None:
    """Run the unit tests in FILES; the last line is `N passed, N failed`."""
    out = Console(highlight=False, soft_wrap=True)
    passed = failed = 0
    for path in files:
        result = run_test_file(path)
        _report(out, result)
        passed += result.passed
        failed += result.failed
    out.print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


@rules.command(name="check")
@FILES
def check_command(files: tuple[Path, ...]) -> None:
    """Validate rule FILES (names unique across them); exit 2 naming the first error."""
    out = Console(highlight=False, soft_wrap=True)
    try:
        found = load_rule_files(list(files))
    except InvalidInput as exc:
        out.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    out.print(f"{len(found)} rule(s) OK in {len(files)} file(s)")


def _report(out: Console, result: FileResult) -> None:
    if result.error:
        out.print(f"[red]FAIL[/red] {result.path}: {result.error}")
    for case in result.cases:
        if case.passed:
            out.print(f"[green]PASS[/green] {result.path}: {case.name}")
            continue
        out.print(f"[red]FAIL[/red] {result.path}: {case.name}")
        for failure in case.failures:
            out.print("  " + failure.replace("\n", "\n  "), markup=False)
