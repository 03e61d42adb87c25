"""The `charrnn` command: parse flags, call the library, draw with rich. No maths here.

Generated text goes to stdout; progress, messages and errors go to stderr.
"""

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from charrnn import __version__
from charrnn.bench import run_bench, synthetic_ids
from charrnn.checkpoint import find_checkpoint, load_model
from charrnn.config import FIELDS, build_config, describe
from charrnn.data import load_corpus
from charrnn.errors import CharRNNError
from charrnn.sample import generate
from charrnn.train import LOG2E, Trainer, TrainEvent, check_run_dir, default_run_dir, write_config

app = typer.Typer(
    help="Train character-level RNN, LSTM and GRU language models on any text, then sample from them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
err = Console(stderr=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        print(f"charrnn {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")] = False,
) -> None:
    """charrnn: character-level language models on a fast NumPy core."""


def _opt(key: str) -> typer.models.OptionInfo:
    return typer.Option(help=describe(key), show_default=False)


@app.command()
def train(
    corpus: Annotated[list[Path] | None, typer.Argument(help="Text file(s) to learn from.", show_default=False)] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML file of config keys; flags override it.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a run already in the run directory.")] = False,
    encoding: Annotated[str | None, _opt("encoding")] = None,
    val_frac: Annotated[float | None, _opt("val_frac")] = None,
    run_dir: Annotated[str | None, _opt("run_dir")] = None,
    cell: Annotated[str | None, _opt("cell")] = None,
    layers: Annotated[int | None, _opt("layers")] = None,
    hidden: Annotated[int | None, _opt("hidden")] = None,
    dtype: Annotated[str | None, _opt("dtype")] = None,
    batch_size: Annotated[int | None, _opt("batch_size")] = None,
    seq_len: Annotated[int | None, _opt("seq_len")] = None,
    reset_every: Annotated[int | None, _opt("reset_every")] = None,
    optimizer: Annotated[str | None, _opt("optimizer")] = None,
    lr: Annotated[float | None, _opt("lr")] = None,
    clip: Annotated[float | None, _opt("clip")] = None,
    clip_value: Annotated[float | None, _opt("clip_value")] = None,
    max_steps: Annotated[int | None, _opt("max_steps")] = None,
    epochs: Annotated[float | None, _opt("epochs")] = None,
    seed: Annotated[int | None, _opt("seed")] = None,
    eval_every: Annotated[int | None, _opt("eval_every")] = None,
    save_every: Annotated[int | None, _opt("save_every")] = None,
) -> None:
    """Train a model on CORPUS (or the corpus named in --config) and checkpoint it in the run directory."""
    flags = {key: value for key, value in locals().items() if key in FIELDS}
    flags["corpus"] = [str(p) for p in corpus] if corpus else None
    cfg = build_config(config, flags)
    if not cfg.corpus:
        raise CharRNNError(
            "no corpus given; pass a text file (`charrnn train data/pond.txt`) or a --config with `corpus:`."
        )
    run_dir = default_run_dir(cfg)
    check_run_dir(run_dir, overwrite)
    data = load_corpus(cfg.corpus, cfg.encoding, cfg.val_frac, cache_dir=run_dir)
    trainer = Trainer(cfg, data)
    write_config(run_dir, cfg)
    model = trainer.model
    err.print(
        f"charrnn: training {cfg.cell} {cfg.layers}×{cfg.hidden} ({model.num_params:,} parameters) on "
        f"{data.name}: {len(data.train):,} training and {len(data.val):,} validation characters, "
        f"vocabulary {len(data.vocab)}; {trainer.total_steps:,} steps of {cfg.batch_size}×{cfg.seq_len}, "
        f"run directory {trainer.run_dir}"
    )
    with TrainDisplay() as display:
        trainer.run(display.on_event)
    err.print(f"charrnn: done. Sample from it with: charrnn sample --run-dir {trainer.run_dir} --len 500")


@app.command()
def sample(
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint file (default: the run directory's last.npz).", show_default=False)
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default: the most recent under runs/).", show_default=False)
    ] = None,
    length: Annotated[int, typer.Option("--len", min=0, help="Characters to generate after the prime.")] = 500,
    temperature: Annotated[
        float, typer.Option(min=0.0, help="Softmax temperature: <1 safer, >1 wilder, 0 always the likeliest.")
    ] = 1.0,
    prime: Annotated[str, typer.Option(help="Text the model reads first; printed before the sample.")] = "",
    seed: Annotated[int | None, typer.Option(help="Random seed; the same seed gives the same text.")] = None,
) -> None:
    """Write LEN characters in the style of the training text, streamed to stdout."""
    path = find_checkpoint(checkpoint, run_dir)
    model, vocab, _, _, _ = load_model(path)
    err.print(f"charrnn: sampling from {path}", style="dim")
    text = generate(model, vocab, length, temperature, prime, seed)  # checks the prime before printing anything
    first = next(text, "")
    out = sys.stdout
    out.write(prime + first)
    for ch in text:
        out.write(ch)
        out.flush()
    if out.isatty():
        out.write("\n")
    out.flush()


@app.command()
def bench(
    corpus: Annotated[
        Path | None, typer.Argument(help="Text to train on (default: random ids).", show_default=False)
    ] = None,
    cell: Annotated[str, typer.Option(help="rnn, lstm or gru.")] = "lstm",
    layers: Annotated[int, typer.Option(min=1)] = 2,
    hidden: Annotated[int, typer.Option(min=1)] = 256,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    seq_len: Annotated[int, typer.Option(min=1)] = 64,
    dtype: Annotated[str, typer.Option(help="float32 or float64.")] = "float32",
    vocab_size: Annotated[int, typer.Option(min=2, help="Vocabulary of the random ids.")] = 65,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed steps first.")] = 5,
    steps: Annotated[int, typer.Option(min=1, help="Timed training steps.")] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Time full training steps and single-stream sampling; report chars/s, GFLOP/s and peak memory."""
    flags = {"cell": cell, "layers": layers, "hidden": hidden, "batch_size": batch_size, "seq_len": seq_len}
    cfg = build_config(None, {**flags, "dtype": dtype})
    if corpus is not None:
        data = load_corpus([corpus], val_frac=0.0)
        ids, vocab_size = data.train, len(data.vocab)
    else:
        ids = synthetic_ids(vocab_size, (warmup + steps + 1) * batch_size * seq_len + 1)
    result = run_bench(ids, vocab_size, **flags, dtype=cfg.dtype, warmup=warmup, steps=steps)
    if json_output:
        print(json.dumps(result))
        return
    table = Table(title=f"charrnn bench: {cell} {layers}×{hidden}, batch {batch_size}×{seq_len}, {dtype}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("training chars/s", f"{result['train_chars_per_sec']:,.0f}")
    table.add_row("ms per step", f"{result['ms_per_step']:.1f}")
    split = (result["forward_frac"], result["backward_frac"], result["update_frac"])
    table.add_row("forward / backward / update", " / ".join(f"{100 * f:.0f} %" for f in split))
    table.add_row("GFLOP/s (one-hot model FLOPs)", f"{result['gflops']:.1f}")
    table.add_row("sampling chars/s (one stream)", f"{result['sample_chars_per_sec']:,.0f}")
    table.add_row("peak resident memory", f"{result['peak_rss_mb']:,.0f} MB")
    table.add_row("parameters", f"{result['params']:,}")
    Console().print(table)


class TrainDisplay:
    """Draws TrainEvents: a live progress bar on stderr and, per evaluation, one plain line scripts can read."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("step {task.fields[step]}"),
            BarColumn(bar_width=24),
            TextColumn("epoch {task.fields[epoch]:.2f} · loss {task.fields[loss]} · val {task.fields[val]}"),
            TextColumn("· {task.fields[speed]} chars/s ·"),
            TimeRemainingColumn(),
            console=err,
        )
        self.task = self.progress.add_task("train", total=None, step="0", epoch=0.0, loss="-", val="-", speed="-")
        self.lines_to_stdout = not (sys.stdout.isatty() and err.is_terminal)

    def __enter__(self) -> "TrainDisplay":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_event(self, event: TrainEvent) -> None:
        val = "-" if event.val_loss is None else f"{event.val_loss:.3f}"
        self.progress.update(
            self.task,
            completed=event.step,
            total=event.total_steps,
            step=f"{event.step:,}/{event.total_steps:,}",
            epoch=event.epoch,
            loss=f"{event.train_loss:.3f}",
            val=val,
            speed=f"{event.chars_per_sec:,.0f}",
        )
        if event.kind == "eval":
            self.line(event)

    def line(self, event: TrainEvent) -> None:
        parts = [f"step {event.step}", f"epoch {event.epoch:.2f}", f"train {event.train_loss:.3f}"]
        if event.val_loss is not None:
            parts.append(f"val_loss={event.val_loss:.4f} nats/char ({event.val_loss * LOG2E:.3f} bits/char)")
        parts.append(f"{event.chars_per_sec:,.0f} chars/s")
        if event.saved:
            parts.append(f"saved {event.saved}")
        text = " · ".join(parts)
        if self.lines_to_stdout:
            print(text, flush=True)
        else:
            self.progress.console.print(text, markup=False)


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
