"""The commands that train: `train` (with a flag for every config key, in panels) and `sweep`."""

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.interfaces.cli.common import (
    err,
    print_table,
)
from charrnn.interfaces.progress import TrainDisplay
from charrnn.tasks import registry
from charrnn.training.checkpoint import LAST
from charrnn.training.config import FIELDS, describe, flag, group, metavar

PANELS = {
    "data": "Data",
    "length": "How long (the first limit given that is reached stops the run)",
    "model": "Model",
    "training": "Training",
    "output": "Output",
    "lm": "Language model",
    "classify": "Classifier",
    "classify+tag+seq2seq": "Classifier, tagger and seq2seq",
    "seq2seq": "Seq2seq",
}
"""The panels of `train --help`, in their order: a config key's is its group (config.group)."""


def with_config_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` one option per config key (`--seq-len` for `seq_len`), with help and default from config.py,
    in the panel of its group. The command receives them as keyword arguments, None where the flag was not given."""
    params = [p for p in inspect.signature(command).parameters.values() if p.kind != p.VAR_KEYWORD]
    keys = sorted((key for key in FIELDS if key != "corpus"), key=lambda key: list(PANELS).index(group(key)))
    for key in keys:
        field = FIELDS[key]
        kind = str if field.metadata.get("duration") else field.type
        names = f"{flag(key)}/--no-{flag(key)[2:]}" if field.type is bool else flag(key)
        option = typer.Option(
            names,
            help=describe(key, with_choices=False),
            show_default=False,
            metavar=metavar(key),
            rich_help_panel=PANELS[group(key)],
        )
        params.append(
            inspect.Parameter(
                key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, option]
            )
        )
    command.__signature__ = inspect.Signature(params)
    return command


RUN = "Run"


@with_config_flags
def train(
    corpus: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="CORPUS",
            help="Text file(s) to learn from; with --resume, the run (folder or .npz).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML file of config keys; flags override it.", rich_help_panel=RUN),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run given (default: the most recent) exactly where it stopped.",
            rich_help_panel=RUN,
        ),
    ] = False,
    more: Annotated[
        str | None,
        typer.Option(
            metavar="N|DURATION",
            help="With --resume: train N more steps, or for a duration more (10m), from where the run is; its "
            "learning rate goes on from where it was.",
            show_default=False,
            rich_help_panel=RUN,
        ),
    ] = None,
    restart_schedule: Annotated[
        bool,
        typer.Option(
            "--restart-schedule",
            help="With --resume: run the learning-rate schedule anew (warm-up, peak, decay) over what is added.",
            rich_help_panel=RUN,
        ),
    ] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Start from this checkpoint's weights (a new run: fresh optimizer and steps).", rich_help_panel=RUN
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a run already in the run directory.", rich_help_panel=RUN)
    ] = False,
    **flags: object,
) -> None:
    """Train a model on CORPUS (or the corpus named in --config) and checkpoint it in the run directory."""
    with TrainDisplay(lines_to_stdout=True) as display:
        run = api.train(
            corpus,
            config=config,
            resume=resume,
            init_from=init_from,
            overwrite=overwrite,
            more=more,
            restart_schedule=restart_schedule,
            progress=False,
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
