"""The commands that use a language model (`sample`, `score`, `predict`) and `info`, which reads any checkpoint."""

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from charrnn.data.text import char_name, printable, read_text
from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.interfaces.cli.common import (
    CheckpointOption,
    RunDirOption,
    err,
    load_model,
    print_json,
    print_table,
)
from charrnn.nn.metrics import LOG2E
from charrnn.tasks import registry


def sample(
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    length: Annotated[int, typer.Option("--len", min=0, help="Characters to generate after the prime.")] = 500,
    temperature: Annotated[
        float, typer.Option(min=0.0, help="Softmax temperature: <1 safer, >1 wilder, 0 always the likeliest.")
    ] = 1.0,
    top_k: Annotated[int, typer.Option(min=0, help="Draw only from the K likeliest characters (0: all).")] = 0,
    top_p: Annotated[
        float, typer.Option(help="Draw only from the smallest set of characters whose probability reaches P.")
    ] = 1.0,
    prime: Annotated[str, typer.Option(help="Text the model reads first; printed before the sample.")] = "",
    prime_file: Annotated[Path | None, typer.Option(help="Read the prime from this file.", show_default=False)] = None,
    unknown: Annotated[
        str, typer.Option(help="Prime characters the model never saw: error (name them) or skip them.")
    ] = "error",
    num_samples: Annotated[int, typer.Option(min=1, help="Independent samples, drawn side by side.")] = 1,
    stop: Annotated[str, typer.Option(help="End a sample once it writes this string (kept).")] = "",
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of stdout.", show_default=False)
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed; the same seed gives the same text.")] = None,
) -> None:
    """Write LEN characters in the style of the training text (one-to-many), streamed to stdout."""
    if prime_file is not None:
        if prime:
            raise CharRNNError("give the prime with --prime or with --prime-file, not both.")
        prime = read_text(prime_file)
    model = load_model(checkpoint, run_dir).able("sample", "sampling")
    options = {
        "temperature": temperature,
        "prime": prime,
        "seed": seed,
        "top_k": top_k,
        "top_p": top_p,
        "stop": stop,
        "unknown": unknown,
    }
    stream = num_samples == 1 and output is None  # print each character as it is drawn
    # Any mistake in the options is reported here, before anything is printed or a file is made.
    drawn = model.generate(length, **options) if stream else model.sample(length, num_samples=num_samples, **options)
    err.print(f"charrnn: sampling from {model.path}", style="dim")
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        if stream:
            out.write(model.readable(prime, unknown))
            for ch in drawn:
                out.write(ch)
                out.flush()
        else:
            texts = [drawn] if num_samples == 1 else drawn
            for i, text in enumerate(texts, 1):
                header = f"─── sample {i} of {num_samples} ───\n" if num_samples > 1 else ""
                out.write(f"{header}{text}" + ("\n" if num_samples > 1 else ""))
        if out.isatty():
            out.write("\n")
    finally:
        if output:
            out.close()
            err.print(f"charrnn: wrote {output}")
        else:
            out.flush()


def score(
    files: Annotated[list[Path], typer.Argument(help="Text files to score.")],
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    per_line: Annotated[bool, typer.Option("--per-line", help="Score every line on its own.")] = False,
    sort: Annotated[str, typer.Option(help="With --per-line: none, asc (most typical first) or desc.")] = "none",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Cross-entropy of whole texts under the model (many-to-one): nats/char, bits/char, perplexity."""
    model = load_model(checkpoint, run_dir).able("scores", "scoring text")
    records = api.score_records(model, {str(f): read_text(f) for f in files}, per_line, sort)
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
    unknown = Counter(records[-1]["unknown"])
    if unknown:
        listed = ", ".join(f"{c!r} ({n})" for c, n in unknown.most_common(20))
        err.print(f"charrnn: {unknown.total()} characters outside the vocabulary were left out: {listed}")


def predict(
    text: Annotated[str, typer.Argument(help="The text the model reads; it predicts what comes next.")],
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    top_k: Annotated[int, typer.Option(min=1, help="How many of the likeliest next characters to show.")] = 10,
    unknown: Annotated[str, typer.Option(help="Characters the model never saw: error or skip.")] = "error",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """The likeliest next characters after TEXT, with their probabilities (one-to-one)."""
    model = load_model(checkpoint, run_dir).able("predict", "predicting the next character")
    top = model.predict(text, top_k, unknown)
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
    checkpoint: Annotated[
        Path | None, typer.Argument(help="Checkpoint file (default: the most recent run).", show_default=False)
    ] = None,
    run_dir: RunDirOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """What a checkpoint holds: the model, its vocabulary, how far it trained, on what, and its config."""
    model = load_model(checkpoint, run_dir)
    record, config = model.info, model.config
    if json_output:
        print_json(record)
        return
    table = Table(title=f"charrnn info: {model.path}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")

    task = registry.get(config.task)
    unit = f"/{task.loss_unit}"

    def loss(value: float | None) -> str:
        bits = f" ({value * LOG2E:.3f} bits{unit})" if value is not None and task.counts == "characters" else ""
        return "-" if value is None else f"{value:.4f} nats{unit}{bits}"

    direction = "bidirectional " if config.bidirectional else ""
    table.add_row("task", task.describe_model(config))
    embedding = f", {config.embed}-wide character embedding" if config.embed else ""
    averaged = f", weights averaged over training (ema {config.ema})" if config.ema else ""
    parameters = f"{record['parameters']:,} parameters, {config.dtype}{averaged}"
    table.add_row("model", f"{direction}{config.cell} {config.layers}×{config.hidden}{embedding}, {parameters}")
    table.add_row("vocabulary", f"{record['vocab_size']} characters: {printable(record['vocab'])}")
    if model.outputs:
        table.add_row(model.outputs_name, f"{len(model.outputs)}: {model.outputs_text()}")
    minutes = "" if record["train_seconds"] is None else f", {record['train_seconds'] / 60:.1f} min of training"
    table.add_row("trained", f"{record['step']:,} steps, {record['epoch']:.2f} epochs{minutes}")
    figures = "".join(f"; {figure}" for figure in task.format_figures(record["metrics"]))
    table.add_row("validation", f"last {loss(record['val_loss'])}{figures}; best {loss(record['best_val_loss'])}")
    corpus = record["corpus"]
    if "train_examples" in corpus:
        size = f"{corpus['train_examples']:,} training and {corpus.get('val_examples', 0):,} validation examples"
    else:
        size = f"{corpus.get('train_chars', 0):,} training and {corpus.get('val_chars', 0):,} validation characters"
    table.add_row("corpus", f"{', '.join(config.corpus)}: {size}")
    table.add_row("config", config.to_yaml().strip())
    print_table(table)
