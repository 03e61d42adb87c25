"""What every command group shares: the consoles and printers, the options that name a model or inputs, and
loading the model they name."""

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from charrnn.data.examples import unknown_report
from charrnn.data.text import read_text, text_lines
from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.training.checkpoint import find_checkpoint
from charrnn.training.run import json_safe

err = Console(stderr=True, highlight=False)
err.soft_wrap = not err.is_terminal  # a terminal's messages wrap between words; a log keeps each one on a line


def print_table(table: Table) -> None:
    """Print a table on stdout; piped or logged, at its natural width rather than cut to 80 columns."""
    console = Console()
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update(max_width=1000)).maximum
        console = Console(width=max(80, natural))
    console.print(table)


def print_json(value: Any) -> None:
    """One JSON document on stdout: strict JSON (a value that is not a finite number is null)."""
    print(json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False))


CheckpointOption = Annotated[
    Path | None,
    typer.Option("--checkpoint", help="Checkpoint file (default: the run directory's last.npz).", show_default=False),
]
RunDirOption = Annotated[
    Path | None,
    typer.Option("--run-dir", help="Run directory (default: the most recent under runs/).", show_default=False),
]


def _voters_option(flag: str, what: str) -> Any:
    return typer.Option(flag, help=f"{what}; give several to let the models vote.", metavar="PATH", show_default=False)


CheckpointsOption = Annotated[
    list[Path] | None, _voters_option("--checkpoint", "Checkpoint file (default: the run directory's last.npz)")
]
RunDirsOption = Annotated[
    list[Path] | None, _voters_option("--run-dir", "Run directory (default: the most recent under runs/)")
]


def load_model(checkpoint: Path | None, run_dir: Path | None) -> api.Model:
    """The one model --checkpoint or --run-dir names, else the most recent run's (see `load_models`)."""
    if checkpoint is not None and run_dir is not None:
        raise CharRNNError("give the model with --run-dir or with --checkpoint, not both.")
    return load_models([checkpoint] if checkpoint else [], [run_dir] if run_dir else [])


def load_models(checkpoints: list[Path] | None, run_dirs: list[Path] | None) -> api.Model:
    """The models --checkpoint and --run-dir name (several vote together), else the most recent run's."""
    if checkpoints or run_dirs:
        return api.load_from(checkpoints or [], run_dirs or [])
    return api.load(most_recent_checkpoint())


def most_recent_checkpoint() -> Path:
    """The last.npz of the most recent run under runs/, named on stderr before anything else is printed: a user
    who trained two runs sees which one answers."""
    path = find_checkpoint()
    err.print(f"charrnn: using {path.parent} (the most recent run; pass --run-dir to choose)", markup=False)
    return path


def file_to_write(path: Path, flag: str = "--out") -> Path:
    """`path`, where a command will write a file: a folder there is refused before any work is done (else the
    work would be lost to an OS error at the end)."""
    if path.is_dir():
        raise CharRNNError(f"{flag} {path} is a folder; give the path of the file to write, e.g. {path / 'NAME'}.")
    return path


def check_inputs(texts: list[str] | None, file: Path | None) -> None:
    """Refuse, before a model is loaded, inputs given both as TEXT and --file, or not at all."""
    if bool(texts) == (file is not None):
        raise CharRNNError("give the inputs as TEXT arguments or with --file FILE, one of the two.")


def read_inputs(texts: list[str] | None, file: Path | None, encoding: str) -> list[str]:
    """TEXT arguments, or the lines of --file read in `encoding` (the part before a tab, so a labelled file can be
    read too); `check_inputs` has refused giving both or neither."""
    if file is None:
        return list(texts)
    lines = [line.split("\t")[0] for line in text_lines(read_text(file, encoding, what="file")) if line.strip()]
    if not lines:
        raise CharRNNError(f"{file} holds no inputs; write one per line.")
    return lines


BeamOption = Annotated[int, typer.Option(help="seq2seq: beam width (1: greedy).")]
LengthPenaltyOption = Annotated[
    float, typer.Option(help="seq2seq: rank outputs by log-probability / length ** this (0: no normalisation).")
]
InputsArgument = Annotated[list[str] | None, typer.Argument(help="Inputs to read.", show_default=False)]
FileOption = Annotated[
    Path | None, typer.Option("--file", "-f", help="Read the inputs from this file, one per line.", show_default=False)
]
UnknownOption = Annotated[
    str,
    typer.Option(
        metavar="error|skip",
        help="Input characters the model never saw: error (name them) or skip them (and say which).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
EncodingOption = Annotated[
    str | None,
    typer.Option(
        help="Text encoding of the files read (default: that of the model's training text).", show_default=False
    ),
]


def note_skipped(unseen: Counter, where: str) -> None:
    """Say on stderr which characters --unknown skip left out, and how many: never silently."""
    if unseen:
        err.print(f"charrnn: {unknown_report(unseen, 'characters', where)}; left out (--unknown skip).", markup=False)


def renamed(old: str, new: str, why: str) -> Any:
    """A hidden option under a flag's former name: giving it is one sentence naming the new one and `why`, rather
    than "no such option" (and rather than an alias, which would leave two names for one thing)."""

    def refuse(value: str | None) -> None:
        if value is not None:
            raise CharRNNError(f"{old} is now {new} ({why}); give {new} {value}.")

    return typer.Option(old, hidden=True, callback=refuse, expose_value=False)
