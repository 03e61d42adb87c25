"""The commands that train: `train` (with a flag for every config key) and `sweep`, and the live display of a run."""

import inspect
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.interfaces.cli.common import (
    err,
    print_table,
)
from charrnn.nn.metrics import LOG2E
from charrnn.tasks import registry
from charrnn.training.checkpoint import LAST
from charrnn.training.config import FIELDS, describe, flag
from charrnn.training.trainer import TrainEvent


def with_config_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` one option per config key (`--seq-len` for `seq_len`), with help and default from config.py.

    The command receives them as keyword arguments, None where the flag was not given.
    """
    params = [p for p in inspect.signature(command).parameters.values() if p.kind != p.VAR_KEYWORD]
    for key, field in FIELDS.items():
        if key == "corpus":  # the positional argument
            continue
        kind = str if field.metadata.get("duration") else field.type
        names = f"{flag(key)}/--no-{flag(key)[2:]}" if field.type is bool else flag(key)
        option = typer.Option(names, help=describe(key), show_default=False)
        params.append(
            inspect.Parameter(
                key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, option]
            )
        )
    command.__signature__ = inspect.Signature(params)
    return command


@with_config_flags
def train(
    corpus: Annotated[
        list[Path] | None,
        typer.Argument(help="Text file(s) to learn from; with --resume, the run (folder or .npz).", show_default=False),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML file of config keys; flags override it.")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the run given (default: the most recent) exactly where it stopped."),
    ] = False,
    init_from: Annotated[
        Path | None, typer.Option(help="Start from this checkpoint's weights (a new run: fresh optimizer and steps).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a run already in the run directory.")] = False,
    **flags: object,
) -> None:
    """Train a model on CORPUS (or the corpus named in --config) and checkpoint it in the run directory."""
    with TrainDisplay() as display:
        run = api.train(
            corpus,
            config=config,
            resume=resume,
            init_from=init_from,
            overwrite=overwrite,
            callback=display.on_event,
            **flags,
        )
    if run.interrupted:
        err.print(
            f"charrnn: stopped at step {run.steps} and saved {run.run_dir / LAST}. "
            f"Resume with: charrnn train --resume {run.run_dir}"
        )
        raise typer.Exit(130)
    err.print(f"charrnn: done ({run.reason}). {registry.get(run.task).usage(f'--run-dir {run.run_dir}')}")


def sweep(
    sweep_file: Annotated[
        Path | None,
        typer.Argument(help="The sweep: config keys, then search, trials, metric, early_stop.", show_default=False),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="Run the trials on the Ray cluster at HOST:PORT (default: $RAY_ADDRESS, else a local one).",
            show_default=False,
        ),
    ] = None,
    cpus_per_trial: Annotated[int, typer.Option(min=1, help="CPUs (and BLAS threads) each trial gets.")] = 1,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue the sweep in this folder; finished trials are kept.", show_default=False),
    ] = None,
) -> None:
    """Train many runs with settings drawn from a search space, on Ray Tune (needs charrnn[sweep]), and rank them."""
    from charrnn.interfaces.sweep import run_sweep  # Ray is imported only by sweeps

    if (sweep_file is None) == (resume is None):
        raise CharRNNError("give a sweep file, or --resume FOLDER to continue one (not both).")
    status = Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True)
    task = status.add_task("starting Ray")

    def show(state: dict) -> None:
        best = "-" if state["best"] is None else f"{state['best']:.4f} ({state['best_trial']})"
        status.update(
            task,
            description=(
                f"sweep: {state['running']} running · {state['finished']} finished · {state['stopped early']} stopped "
                f"early · {state['failed']} failed, of {state['trials']} · best {best}"
            ),
        )

    with status:
        spec, sweep_dir, rows = run_sweep(sweep_file, address, cpus_per_trial, resume, show)
    table = Table(title=f"charrnn sweep {spec.name}: {len(rows)} trials, by {spec.metric} ({spec.mode})")
    for column in ("trial", *spec.search, spec.metric, "steps", "minutes", "status"):
        table.add_column(column, justify="left" if column in ("trial", "status") else "right")
    for row in rows:
        cells = [_cell(row[k]) for k in ("trial", *spec.search, spec.metric, "steps", "minutes", "status")]
        table.add_row(*cells, style="bold" if row is rows[0] else None)
    print_table(table)
    interrupted = [r for r in rows if r["status"] == "interrupted"]
    if interrupted:
        err.print(f"charrnn: {len(interrupted)} trials were stopped; continue with: charrnn sweep --resume {sweep_dir}")
        raise typer.Exit(130)
    err.print(
        f"charrnn: wrote {sweep_dir / 'results.csv'} and {sweep_dir / 'best.yaml'}; train the best with: "
        f"charrnn train --config {sweep_dir / 'best.yaml'}"
    )


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


class TrainDisplay:
    """Draws TrainEvents: a live progress bar on stderr and, per evaluation, one plain line scripts can read."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("step {task.fields[step]}"),
            BarColumn(bar_width=24),
            TextColumn("epoch {task.fields[epoch]:.2f} · loss {task.fields[loss]} · val {task.fields[val]}"),
            TextColumn("· {task.fields[speed]} ·"),
            TimeRemainingColumn(),
            console=err,
        )
        self.task = self.progress.add_task("train", total=None, step="0", epoch=0.0, loss="-", val="-", speed="-")
        self.lines_to_stdout = not (sys.stdout.isatty() and err.is_terminal)

    def __enter__(self) -> "TrainDisplay":
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_event(self, event: TrainEvent) -> None:
        if event.kind in ("start", "notice"):
            style = "yellow" if event.kind == "notice" else None
            self.progress.console.print(f"charrnn: {event.text}", style=style, markup=False)
            if event.kind == "start":  # the bar appears once the run has begun, not while its input is checked
                self.progress.start()
            return
        val = "-" if event.val_loss is None else f"{event.val_loss:.3f}"
        by_chars = registry.get(event.task).counts == "characters"
        speed = f"{event.chars_per_sec:,.0f} chars/s" if by_chars else f"{event.examples_per_sec:,.0f} ex/s"
        self.progress.update(
            self.task,
            completed=event.step,
            total=event.total_steps,
            step=f"{event.step:,}/{event.total_steps:,}",
            epoch=event.epoch,
            loss="-" if math.isnan(event.train_loss) else f"{event.train_loss:.3f}",
            val=val,
            speed=speed,
        )
        if event.kind == "eval":
            self.line(event)
        elif event.kind == "sample":
            self.progress.console.print(f"── sample at step {event.step} ──\n{event.text}", style="dim", markup=False)

    def line(self, event: TrainEvent) -> None:
        parts = [f"step {event.step}", f"epoch {event.epoch:.2f}", f"train {event.train_loss:.3f}"]
        if event.evaluated and event.val_loss is not None:
            task = registry.get(event.task)
            unit = f"/{task.loss_unit}"
            bits = f" ({event.val_loss * LOG2E:.3f} bits/char)" if task.counts == "characters" else ""
            parts.append(f"val_loss={event.val_loss:.4f} nats{unit}{bits}")
            parts += task.format_figures(event.metrics)
        if registry.get(event.task).counts == "characters":
            parts.append(f"{event.chars_per_sec:,.0f} chars/s")
        else:
            parts.append(f"{event.examples_per_sec:,.0f} examples/s")
        if event.best:
            parts.append("best")
        parts.append(f"lr {event.lr:.3g}")
        if event.saved:
            parts.append(f"saved {event.saved}")
        text = " · ".join(parts)
        if self.lines_to_stdout:
            print(text, flush=True)
        else:
            self.progress.console.print(text, markup=False)
