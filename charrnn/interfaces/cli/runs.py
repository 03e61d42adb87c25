"""`charrnn runs`: the runs under runs/ (or a folder), one line each, readable at 80 columns."""

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from charrnn.interfaces import api
from charrnn.interfaces.cli.common import JsonOption, err, print_json, print_table
from charrnn.training.runs import RunSummary

NAME_KEPT = 20  # a run's name up to this long is never wrapped


def runs(
    folder: Annotated[
        Path | None,
        typer.Argument(help="Folder to search, with its subfolders (default: runs/).", show_default=False),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List the runs under runs/ (or FOLDER), the most recently changed last: task, model, step, best validation
    figures, last change, and whether each is training, finished (it reached its limit) or stopped (interrupted,
    failed, killed)."""
    found = api.runs(folder)
    if json_output:
        print_json([_record(run) for run in found])
        return
    if not found:
        err.print(f"charrnn: no runs under {folder or 'runs'}/; train one with: charrnn train FILE", markup=False)
        return
    now = datetime.now().astimezone()
    figures = any(run.figure for run in found)
    table = Table(box=None, header_style="bold", pad_edge=False)
    # At 80 columns the figure wraps first; a name only when it is long (a sweep's trials)
    table.add_column("run", no_wrap=max(len(run.name) for run in found) <= NAME_KEPT, overflow="fold")
    table.add_column("task", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("step", justify="right", no_wrap=True)
    table.add_column("best\nloss", justify="right", no_wrap=True)
    if figures:
        table.add_column("best\nfigure")
    table.add_column("changed", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for run in found:
        loss = "-" if run.best_val_loss is None else f"{run.best_val_loss:.4f}"
        step = "-" if run.step is None else f"{run.step:,}"
        figure = [run.figure or "-"] if figures else []
        when = _ago(run.changed, now)
        table.add_row(run.name, run.task or "-", run.model or "-", step, loss, *figure, when, run.state)
    print_table(table)
    for run in found:
        if run.problem:
            err.print(f"charrnn: {run.name}: {run.problem}", markup=False)


def _record(run: RunSummary) -> dict:
    """A run as --json prints it: every field, the time as ISO 8601."""
    return {**vars(run), "path": str(run.path), "changed": run.changed.isoformat(timespec="seconds")}


def _ago(when: datetime, now: datetime) -> str:
    """ "just now", "3 min ago", "5 h ago", "2 days ago", then the date."""
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    if seconds < 7 * 86400:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days > 1 else ''} ago"
    return when.strftime("%Y-%m-%d")
