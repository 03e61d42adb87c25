"""The `charrnn` command: parse flags, call the library, draw with rich. No maths here.

Generated text goes to stdout; progress, messages and errors go to stderr. The commands live in groups (train, use,
runs, tasks, data, tools), one module each; this module puts them on one app in the order `charrnn --help` lists them.
"""

import sys
import traceback
from typing import Annotated

import typer

from charrnn.errors import CharRNNError
from charrnn.interfaces.cli import data, runs, serve, tasks, tools, train, use
from charrnn.interfaces.cli.common import err
from charrnn.interfaces.cli.help import HelpCommand
from charrnn.version import __version__

app = typer.Typer(
    help=(
        "Train character-level recurrent networks (RNN, LSTM, GRU) on text: language models that write more of it, "
        "classifiers, per-character taggers and encoder-decoders with attention; then use, inspect, export, time them."
    ),
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"charrnn {__version__}")
        raise typer.Exit()


def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")] = False,
) -> None:
    """charrnn: character-level recurrent networks on NumPy: language models, classifiers, taggers and
    encoder-decoders."""


app.callback()(_main)
COMMANDS = {
    "train": train.train,
    "sample": use.sample,
    "score": use.score,
    "predict": use.predict,
    "info": use.info,
    "runs": runs.runs,
    "classify": tasks.classify,
    "tag": tasks.tag,
    "eval": tasks.evaluate,
    "translate": tasks.translate,
    "sweep": train.sweep,
    "viz": tools.viz,
    "export": tools.export_model,
    "plot": tools.plot,
    "bench": tools.bench,
    "serve": serve.serve_command,
}
for name, command in COMMANDS.items():
    app.command(name, cls=HelpCommand)(command)
for info in data.app.registered_commands:
    info.cls = HelpCommand
app.add_typer(data.app, name="data")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; a user's mistake is one red sentence and exit code 2, not a traceback."""
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, prog_name="charrnn")  # Typer itself reports usage errors (exit 2) and exits
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (CharRNNError, OSError) as e:
        if "--debug" in args:
            traceback.print_exc()
        message = str(e) if isinstance(e, CharRNNError) else f"{e.strerror or e}: {e.filename or ''}".rstrip(": ")
        err.print(f"charrnn: error: {message}", style="red", markup=False)
        return 2 if isinstance(e, CharRNNError) else 1
    return 0
