"""``mailfleet simulate SCENARIO --json PATH``: a scenario run on a virtual clock, then audited.

The world (sandbox, store, logs) lives in a temporary folder unless ``--keep DIR``
names one to keep for inspection. The command exits 1 when any violation count
is above zero, so a script or CI job can gate on it; the report is written first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailfleet.simulation import RunProgress, ScenarioError, load_scenario, run_scenario

console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]mailfleet:[/] {message}", highlight=False)
    return typer.Exit(code)


def _log_to(folder: Path) -> None:
    """Send the run's log lines to ``folder/simulation.log``, not over the progress bar."""
    handler = logging.FileHandler(folder / "simulation.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def _print_summary(report: dict[str, Any]) -> None:
    totals = report["totals"]
    console.print(
        f"[bold]{report['scenario']}[/]: {report['days']} day(s), "
        f"{report['fleet']['mailboxes']} mailboxes on {report['fleet']['domains']} domains, "
        f"{report['leads']} leads · accepted {totals['messages_accepted']} "
        f"(by step {totals['by_step']}) · run {report['runtime_seconds']['total']} s",
        highlight=False,
    )
    once = report["exactly_once"]
    console.print(
        f"exactly once: duplicates {once['duplicates']} · lost {once['lost']} · "
        f"unknown left for a person {once['unknown_never_accepted']}",
        highlight=False,
    )
    table = Table(title="Violations (from what the sandbox received)")
    table.add_column("check")
    table.add_column("count", justify="right")
    for name, count in report["violations"].items():
        table.add_row(name, f"[bold red]{count}[/]" if count else "0")
    console.print(table)
    for name, lines in report["violation_details"].get("examples", {}).items():
        for line in lines[:3]:
            console.print(f"  [yellow]![/] {name}: {line}", highlight=False)


def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML or YAML).")],
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON to this file.")
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Keep the world (database, log) in this folder."),
    ] = None,
) -> None:
    """Run a scenario against the sandbox on a virtual clock and audit what it received."""
    try:
        spec, campaign = load_scenario(scenario)
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[clock]}"),
        TextColumn("accepted {task.fields[accepted]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task(spec.name, total=spec.days * 86_400, clock="", accepted=0)

    def on_progress(state: RunProgress) -> None:
        progress.update(
            task,
            completed=(state.now - state.start).total_seconds(),
            clock=state.now.strftime("%a %d %b %H:%M UTC"),
            accepted=state.accepted,
        )

    with tempfile.TemporaryDirectory(prefix="mailfleet-simulate-") as scratch:
        workdir = keep if keep is not None else Path(scratch)
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            _log_to(workdir)
            with progress:
                report = asyncio.run(run_scenario(spec, campaign, workdir, on_progress))
        except OSError as exc:
            raise _fail(f"{exc.filename or workdir}: {exc.strerror or exc}") from None
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise _fail(f"cannot write {json_path}: {exc.strerror}") from None
    _print_summary(report)
    if json_path is not None:
        console.print(f"report written to {json_path}", highlight=False)
    if any(report["violations"].values()):
        raise typer.Exit(1)
