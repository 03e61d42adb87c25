"""The commands that use a language model (`sample`, `score`, `predict`) and `info`, which reads any checkpoint."""

import contextlib
import itertools
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from charrnn.data.text import char_name, printable
from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.interfaces.cli.common import (
    CheckpointOption,
    EncodingOption,
    JsonOption,
    RunDirOption,
    UnknownOption,
    err,
    file_to_write,
    load_model,
    note_skipped,
    print_json,
    print_table,
    renamed,
)
from charrnn.nn.metrics import LOG2E
from charrnn.tasks import registry
from charrnn.training.config import NETWORK_KEYS, RESUMABLE, tasks_using, written


def sample(
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    length: Annotated[int, typer.Option("--len", "-n", min=0, help="Characters to generate after the prime.")] = 500,
    temperature: Annotated[
        float,
        typer.Option("--temperature", "-t", min=0.0, help="Softmax temperature: <1 safer, >1 wilder, 0 the likeliest."),
    ] = 1.0,
    top_k: Annotated[int, typer.Option(min=0, help="Draw only from the K likeliest characters (0: all).")] = 0,
    top_p: Annotated[
        float, typer.Option(help="Draw only from the smallest set of characters whose probability reaches P.")
    ] = 1.0,
    prime: Annotated[
        str, typer.Option("--prime", "-p", help="Text the model reads first; printed before the sample.")
    ] = "",
    prime_file: Annotated[Path | None, typer.Option(help="Read the prime from this file.", show_default=False)] = None,
    encoding: EncodingOption = None,
    unknown: UnknownOption = "error",
    num_samples: Annotated[int, typer.Option(min=1, help="Independent samples, drawn side by side.")] = 1,
    stop: Annotated[str, typer.Option(help="End a sample once it writes this string (kept).")] = "",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.", show_default=False)
    ] = None,
    output: Annotated[str | None, renamed("--output", "--out", "as in every command that writes a file")] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", "-s", help="Random seed; the same seed gives the same text.")
    ] = None,
) -> None:
    """Write LEN characters in the style of the training text (one-to-many), streamed to stdout; the output ends
    with a line break."""
    model = load_model(checkpoint, run_dir).able("sample", "sampling")
    if prime_file is not None:
        if prime:
            raise CharRNNError("give the prime with --prime or with --prime-file, not both.")
        prime = model.read(prime_file, encoding)
    if out is not None:
        file_to_write(out)
    options = {
        "temperature": temperature,
        "prime": prime,
        "seed": seed,
        "top_k": top_k,
        "top_p": top_p,
        "stop": stop,
        "unknown": unknown,
    }
    stream = num_samples == 1 and out is None  # print each character as it is drawn
    # Any mistake in the options is reported here, before anything is printed or a file is made.
    drawn = model.generate(length, **options) if stream else model.sample(length, num_samples=num_samples, **options)
    note_skipped(model.unseen([prime], unknown), "the prime")
    with out.open("w", encoding="utf-8") if out else contextlib.nullcontext(sys.stdout) as stream_to:
        if stream:
            _write_line(stream_to, itertools.chain([model.readable(prime, unknown)], drawn))
        else:
            texts = [drawn] if num_samples == 1 else drawn
            for i, text in enumerate(texts, 1):
                if num_samples > 1:
                    stream_to.write(f"─── sample {i} of {num_samples} ───\n")
                _write_line(stream_to, [text])
    if out:
        err.print(f"charrnn: wrote {out}", markup=False)


def _write_line(out: TextIO, pieces: Iterable[str]) -> None:
    """Write the pieces as they come, flushed, then a line break unless they ended with one: a sample ends its
    line, whether on a terminal, in a pipe or in a file, so the shell's prompt never follows it on the same line."""
    last = ""
    for piece in pieces:
        out.write(piece)
        out.flush()
        last = piece[-1:] or last
    if last != "\n":
        out.write("\n")
    out.flush()


def score(
    files: Annotated[list[Path], typer.Argument(help="Text files to score.")],
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    per_line: Annotated[bool, typer.Option("--per-line", help="Score every line on its own.")] = False,
    sort: Annotated[
        str, typer.Option(metavar="none|asc|desc", help="With --per-line: the order (asc: the most typical first).")
    ] = "none",
    encoding: EncodingOption = None,
    unknown: UnknownOption = "error",
    json_output: JsonOption = False,
) -> None:
    """Cross-entropy of whole texts under the model (many-to-one): nats/char, bits/char, perplexity."""
    model = load_model(checkpoint, run_dir).able("scores", "scoring text")
    texts = {str(f): model.read(f, encoding) for f in files}
    records = api.score_records(model, texts, per_line, sort, unknown)
    note_skipped(Counter(records[-1]["unknown"]), ", ".join(texts))  # the last record: the total, or the only one
    if json_output:
        print_json(records)
        return
    table = Table(title=f"charrnn score: {model.path}")
    for column in ("line" if per_line else "file", "chars", "nats/char", "bits/char", "perplexity", "total nats"):
        table.add_column(column, justify="left" if column in ("file", "line") else "right")
    for i, r in enumerate(records):
        total = len(records) > 1 and i == len(records) - 1
        table.add_row(
            printable(r["name"]) if per_line and not total else r["name"],
            f"{r['chars']:,}",
            f"{r['nats_per_char']:.4f}",
            f"{r['bits_per_char']:.4f}",
            f"{r['perplexity']:.3f}",
            f"{r['total_nats']:,.2f}",
            style="bold" if total else None,
        )
    print_table(table)


def predict(
    text: Annotated[str, typer.Argument(help="The text the model reads; it predicts what comes next.")],
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    top_k: Annotated[int, typer.Option(min=1, help="How many of the likeliest next characters to show.")] = 10,
    unknown: UnknownOption = "error",
    json_output: JsonOption = False,
) -> None:
    """The likeliest next characters after TEXT, with their probabilities (one-to-one)."""
    model = load_model(checkpoint, run_dir).able("predict", "predicting the next character")
    top = model.predict(text, top_k, unknown)
    note_skipped(model.unseen([text], unknown), "the text")
    if json_output:
        print_json([{"char": char, "p": p} for char, p in top])
        return
    table = Table(title=f"after {printable(text[-40:])!r}", caption=str(model.path))
    table.add_column("#", justify="right")
    table.add_column("next")
    table.add_column("probability", justify="right")
    table.add_column("")
    for rank, (char, p) in enumerate(top, 1):
        bar = "█" * round(30 * p / top[0][1])
        table.add_row(str(rank), char_name(char), f"{100 * p:.2f} %", bar)
    print_table(table)


def info(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A run folder or a checkpoint file (the same as --run-dir or --checkpoint).", show_default=False
        ),
    ] = None,
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """What a checkpoint holds: the model, the data it learnt from, how far it trained, how well it validates, and
    the config keys its task uses."""
    if path is not None and (checkpoint or run_dir):
        raise CharRNNError(f"give the model as {path} or with --run-dir/--checkpoint, not both.")
    model = api.load(path) if path is not None else load_model(checkpoint, run_dir)
    if json_output:
        print_json(model.info)
        return
    Console().print(_info_table(model))


DATA_KEYS = ("val_file", "encoding", "val_frac", "newline", "max_vocab", "max_len")  # how the corpus was read


def _info_table(model: api.Model) -> Table:
    """`charrnn info` in five groups, each with its config keys (those of the model's task only), wrapped to the
    terminal's width."""
    record, config = model.info, model.config
    task = registry.get(config.task)
    table = Table(title=f"charrnn info: {model.path}", show_header=False, box=None, padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")

    def group(name: str, rows: list[tuple[str, str]], keys: Iterable[str] = ()) -> None:
        table.add_row(Text(name, style="bold"), "")
        used = [f"{key}={written(key, getattr(config, key))}" for key in keys if config.task in tasks_using(key)]
        for what, value in [*rows, *([("config", "  ".join(used))] if used else [])]:
            table.add_row(f"  {what}", value)

    def loss(value: float | None) -> str:
        if value is None:
            return "-"
        bits = f" ({value * LOG2E:.3f} bits/{task.loss_unit})" if task.counts == "characters" else ""
        return f"{value:.4f} nats/{task.loss_unit}{bits}"

    direction = "bidirectional " if config.bidirectional else ""
    embedding = f", {config.embed}-wide character embedding" if config.embed else ""
    averaged = f", weights averaged over training (ema {config.ema})" if config.ema else ""
    network = f"{direction}{config.cell} {config.layers}×{config.hidden}{embedding}"
    rows = [
        ("task", task.describe_model(config)),
        ("network", f"{network}, {record['parameters']:,} parameters, {config.dtype}{averaged}"),
        # the space shown as ␠: one of the characters, not a place to break the line
        ("vocabulary", f"{record['vocab_size']} characters: {printable(record['vocab']).replace(' ', '␠')}"),
    ]
    if model.outputs:
        rows.append((model.outputs_name, f"{len(model.outputs)}: {model.outputs_text()}"))
    group("model", rows, (key for key in NETWORK_KEYS if key != "task"))
    corpus = record["corpus"]
    if "train_examples" in corpus:
        size = f"{corpus['train_examples']:,} training and {corpus.get('val_examples', 0):,} validation examples"
    else:
        size = f"{corpus.get('train_chars', 0):,} training and {corpus.get('val_chars', 0):,} validation characters"
    group("data", [("corpus", ", ".join(config.corpus)), ("size", size)], DATA_KEYS)
    minutes = "" if record["train_seconds"] is None else f", {record['train_seconds'] / 60:.1f} min"
    trained = [("progress", f"{record['step']:,} steps, {record['epoch']:.2f} epochs{minutes}")]
    grouped = {"corpus", *NETWORK_KEYS, *DATA_KEYS, "run_dir", *RESUMABLE}
    group("training", trained, (key for key in config.to_dict() if key not in grouped))
    figures = "".join(f"; {figure}" for figure in task.format_figures(record["metrics"]))
    group("validation", [("last", f"{loss(record['val_loss'])}{figures}"), ("best", loss(record["best_val_loss"]))])
    group("run", [("folder", str(model.path.parent))], RESUMABLE)  # where it is now, wherever it was trained
    return table
