"""The `charrnn` command: parse flags, call the library, draw with rich. No maths here.

Generated text goes to stdout; progress, messages and errors go to stderr.
"""

import dataclasses
import inspect
import json
import math
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import filesize
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from charrnn.apps.export import DEFAULT_OPSET
from charrnn.apps.plot import plot_attention, plot_runs
from charrnn.apps.viz import cell_color, describe_cell
from charrnn.data import datasets
from charrnn.data.text import char_name, printable, read_text, text_lines
from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.tasks.scoring import Score
from charrnn.tasks.trace import MAX_LEN
from charrnn.training import registry
from charrnn.training.checkpoint import LAST
from charrnn.training.config import FIELDS, Config, describe, flag
from charrnn.training.trainer import LOG2E, TrainEvent, json_safe
from charrnn.version import __version__

app = typer.Typer(
    help="Train character-level RNN, LSTM and GRU language models on any text, then sample from them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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


def _with_config_flags(command: Callable[..., None]) -> Callable[..., None]:
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


@app.command()
@_with_config_flags
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


CheckpointOption = Annotated[
    Path | None,
    typer.Option("--checkpoint", help="Checkpoint file (default: the run directory's last.npz).", show_default=False),
]
RunDirOption = Annotated[
    Path | None,
    typer.Option("--run-dir", help="Run directory (default: the most recent under runs/).", show_default=False),
]


def _voters_option(flag: str, what: str) -> Any:
    return typer.Option(
        flag, help=f"{what}; give several to let the models vote.", metavar="<path>", show_default=False
    )


CheckpointsOption = Annotated[
    list[Path] | None, _voters_option("--checkpoint", "Checkpoint file (default: the run directory's last.npz)")
]
RunDirsOption = Annotated[
    list[Path] | None, _voters_option("--run-dir", "Run directory (default: the most recent under runs/)")
]


def _load(checkpoint: Path | None, run_dir: Path | None) -> api.Model:
    """The model --checkpoint (else --run-dir) names, else the most recent run's."""
    return api.load_from([checkpoint] if checkpoint else [], [run_dir] if run_dir and not checkpoint else [])


@app.command()
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
    model = _load(checkpoint, run_dir).able("sample", "sampling")
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


@app.command()
def score(
    files: Annotated[list[Path], typer.Argument(help="Text files to score.")],
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    per_line: Annotated[bool, typer.Option("--per-line", help="Score every line on its own.")] = False,
    sort: Annotated[str, typer.Option(help="With --per-line: none, asc (most typical first) or desc.")] = "none",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Cross-entropy of whole texts under the model (many-to-one): nats/char, bits/char, perplexity."""
    if sort not in ("none", "asc", "desc"):
        raise CharRNNError(f"--sort must be none, asc or desc (got {sort!r}).")
    model = _load(checkpoint, run_dir).able("scores", "scoring text")
    texts = {str(f): read_text(f) for f in files}
    scores = model.scores(list(texts.values()), per_line)
    if per_line:
        if sort != "none":
            scores.sort(key=lambda s: s.nats, reverse=sort == "desc")
    else:
        scores = [dataclasses.replace(s, name=name) for s, name in zip(scores, texts, strict=True)]
    total = Score(
        "total",
        sum(s.total_nats for s in scores),
        sum(s.chars for s in scores),
        sum((s.unknown for s in scores), Counter()),
    )
    rows = [*scores, total] if len(scores) > 1 else scores
    if json_output:
        print_json([s.record() for s in rows])
        return
    table = Table(title=f"charrnn score: {model.path}")
    for column in ("line" if per_line else "file", "chars", "nats/char", "bits/char", "perplexity", "total nats"):
        table.add_column(column, justify="left" if column in ("file", "line") else "right")
    for s in rows:
        label = printable(s.name) if per_line and s is not total else s.name
        table.add_row(
            label,
            f"{s.chars:,}",
            f"{s.nats:.4f}",
            f"{s.bits:.4f}",
            f"{s.perplexity:.3f}",
            f"{s.total_nats:,.2f}",
            style="bold" if s is total else None,
        )
    print_table(table)
    if total.unknown:
        listed = ", ".join(f"{c!r} ({n})" for c, n in total.unknown.most_common(20))
        err.print(f"charrnn: {total.unknown.total()} characters outside the vocabulary were left out: {listed}")


@app.command()
def predict(
    text: Annotated[str, typer.Argument(help="The text the model reads; it predicts what comes next.")],
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    top_k: Annotated[int, typer.Option(min=1, help="How many of the likeliest next characters to show.")] = 10,
    unknown: Annotated[str, typer.Option(help="Characters the model never saw: error or skip.")] = "error",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """The likeliest next characters after TEXT, with their probabilities (one-to-one)."""
    model = _load(checkpoint, run_dir).able("predict", "predicting the next character")
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


@app.command()
def info(
    checkpoint: Annotated[
        Path | None, typer.Argument(help="Checkpoint file (default: the most recent run).", show_default=False)
    ] = None,
    run_dir: RunDirOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """What a checkpoint holds: the model, its vocabulary, how far it trained, on what, and its config."""
    model = _load(checkpoint, run_dir)
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
    figures = "".join(f"; {k} {v:.4f}" for k, v in record["metrics"].items())
    table.add_row("validation", f"last {loss(record['val_loss'])}{figures}; best {loss(record['best_val_loss'])}")
    corpus = record["corpus"]
    if "train_examples" in corpus:
        size = f"{corpus['train_examples']:,} training and {corpus.get('val_examples', 0):,} validation examples"
    else:
        size = f"{corpus.get('train_chars', 0):,} training and {corpus.get('val_chars', 0):,} validation characters"
    table.add_row("corpus", f"{', '.join(config.corpus)}: {size}")
    table.add_row("config", config.to_yaml().strip())
    print_table(table)


def _read_inputs(texts: list[str] | None, file: Path | None) -> list[str]:
    """TEXT arguments, or the lines of --file (the part before a tab, so a labelled file can be read too)."""
    if bool(texts) == (file is not None):
        raise CharRNNError("give the inputs as TEXT arguments or with --file FILE, one of the two.")
    if file is None:
        return list(texts)
    lines = [line.split("\t")[0] for line in text_lines(read_text(file)) if line.strip()]
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
    str, typer.Option(help="Input characters the model never saw: error (name them) or skip them.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


@app.command()
def classify(
    texts: InputsArgument = None,
    file: FileOption = None,
    checkpoint: CheckpointsOption = None,
    run_dir: RunDirsOption = None,
    top_k: Annotated[int, typer.Option(min=1, help="How many of the likeliest labels to show.")] = 1,
    unknown: UnknownOption = "error",
    json_output: JsonOption = False,
) -> None:
    """The label of each input, with its probability (a classifier: many-to-one)."""
    inputs = _read_inputs(texts, file)
    model = api.load_from(checkpoint or [], run_dir or []).able("classify", "classifying")
    results = model.classify(inputs, top_k, unknown)
    if json_output:
        records = [
            {"input": text, "labels": [{"label": label, "p": p} for label, p in top]}
            for text, top in zip(inputs, results, strict=True)
        ]
        print_json(records)
        return
    table = Table(caption=model.name)
    table.add_column("input")
    table.add_column("label")
    table.add_column("probability", justify="right")
    if top_k > 1:
        table.add_column("then")
    for text, top in zip(inputs, results, strict=True):
        (label, p), rest = top[0], top[1:]
        row = [printable(text), label, f"{100 * p:.1f} %"]
        table.add_row(*row, *([", ".join(f"{lab} {100 * q:.1f} %" for lab, q in rest)] if top_k > 1 else []))
    print_table(table)


@app.command()
def tag(
    texts: InputsArgument = None,
    file: FileOption = None,
    checkpoint: CheckpointsOption = None,
    run_dir: RunDirsOption = None,
    unknown: UnknownOption = "error",
    json_output: JsonOption = False,
) -> None:
    """The output of each input, one character per input character, one line each on stdout (a tagger)."""
    inputs = _read_inputs(texts, file)
    outputs = api.load_from(checkpoint or [], run_dir or []).able("tag", "tagging").tag(inputs, unknown)
    if json_output:
        records = [{"input": text, "output": out} for text, out in zip(inputs, outputs, strict=True)]
        print_json(records)
        return
    for out in outputs:
        print(out)


@app.command("eval")
def evaluate(
    file: Annotated[Path, typer.Argument(help="Labelled examples (input<TAB>target lines); for an lm, any text.")],
    checkpoint: CheckpointsOption = None,
    run_dir: RunDirsOption = None,
    unknown: UnknownOption = "error",
    beam: BeamOption = 1,
    length_penalty: LengthPenaltyOption = 1.0,
    json_output: JsonOption = False,
) -> None:
    """How well the model does on FILE: accuracy and F1 (classify), character accuracy and exact match (tag),
    exact match, word and token error rates (seq2seq), the loss per character (lm, as `score`)."""
    model = api.load_from(checkpoint or [], run_dir or [])
    result = model.evaluate(file, unknown, beam, length_penalty)
    if json_output:
        print_json(result)
        return
    if "nats_per_char" in result:  # a language model's evaluation is its score
        Console().print(
            f"{file}: {result['nats_per_char']:.4f} nats/char ({result['bits_per_char']:.4f} bits/char), "
            f"perplexity {result['perplexity']:.3f}, {result['chars']:,} characters"
        )
        return
    summary = Table(title="charrnn eval", caption=f"{file}, {model.name}", show_header=False)
    summary.add_column("measure", style="bold")
    summary.add_column("value", justify="right")
    summary.add_row("examples", f"{result['examples']:,}")
    if "sources" in result:
        summary.add_row("distinct sources", f"{result['sources']:,}")
    summary.add_row(f"loss (nats/{registry.get(model.task).loss_unit})", f"{result['loss']:.4f}")
    percent = ("accuracy", "char_accuracy", "exact_match", "change_precision", "change_recall", "wer", "ter")
    for key in (
        "accuracy",
        "macro_f1",
        "char_accuracy",
        "exact_match",
        "change_precision",
        "change_recall",
        "change_f1",
        "wer",
        "ter",
    ):
        if key in result:
            value = f"{100 * result[key]:.2f} %" if key in percent else f"{result[key]:.4f}"
            summary.add_row(key.replace("_", " "), value)
    print_table(summary)
    if "per_label" in result:
        _print_labels(result)


@app.command()
def translate(
    texts: InputsArgument = None,
    file: FileOption = None,
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    beam: BeamOption = 1,
    n_best: Annotated[int, typer.Option(min=1, help="The N best outputs of each input, with log-probabilities.")] = 1,
    length_penalty: LengthPenaltyOption = 1.0,
    show_attention: Annotated[
        bool, typer.Option("--show-attention", help="Draw how the decoder attended to the (first) input.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="With --show-attention: a PNG heat map (needs charrnn[plot]).")
    ] = None,
    unknown: UnknownOption = "error",
    json_output: JsonOption = False,
) -> None:
    """The output sequence of each input, one line each on stdout (a seq2seq model: many-to-many, Tx != Ty)."""
    inputs = _read_inputs(texts, file)
    verb, action = ("attention", "showing attention") if show_attention else ("translate", "translating")
    model = _load(checkpoint, run_dir).able(verb, action)
    if out is not None and not show_attention:
        raise CharRNNError("--out draws the attention; add --show-attention.")
    if show_attention:
        tokens, chars, weights = model.attention(inputs[0], beam, unknown)
        _print_attention(tokens, chars, weights)
        if out is not None:
            err.print(f"charrnn: wrote {plot_attention(tokens, chars, weights, out)}")
        return
    results = model.translate(inputs, beam, n_best, length_penalty, unknown)
    if json_output:
        if n_best == 1:
            records = [{"input": text, "output": r} for text, r in zip(inputs, results, strict=True)]
        else:
            records = [
                {"input": text, "outputs": [{"output": o, "log_prob": lp, "score": sc} for o, lp, sc in r]}
                for text, r in zip(inputs, results, strict=True)
            ]
        print_json(records)
        return
    if n_best == 1:
        for output in results:
            print(output)
        return
    table = Table(caption=str(model.path))
    for column in ("input", "#", "output", "log-probability", "score"):
        table.add_column(column, justify="left" if column in ("input", "output") else "right")
    for text, found in zip(inputs, results, strict=True):
        for rank, (output, log_prob, score) in enumerate(found, 1):
            table.add_row(printable(text) if rank == 1 else "", str(rank), output, f"{log_prob:.4f}", f"{score:.4f}")
    print_table(table)


def _print_attention(tokens: list[str], chars: list[str], weights) -> None:
    """The attention weights as a table: a row per output token, a column per source character, shaded."""
    table = Table(title="attention (rows: output, columns: input)", show_lines=False, pad_edge=False)
    table.add_column("", no_wrap=True)
    for c in chars:
        table.add_column(char_name(c) if c == " " else c, justify="center", min_width=3)
    for token, row in zip(tokens, weights, strict=True):
        cells = [f"[on grey{int(93 - 90 * w)}]{round(100 * w):3d}[/]" if w >= 0.05 else "  ." for w in row]
        table.add_row(token, *cells)
    print_table(table)


def _print_labels(result: dict) -> None:
    """Per-label precision, recall and F1, then the confusion matrix (rows: the truth; columns: predicted)."""
    labels = result["labels"]
    per_label = Table(title="per label")
    for column in ("label", "precision", "recall", "F1", "examples"):
        per_label.add_column(column, justify="left" if column == "label" else "right")
    for label in labels:
        r = result["per_label"][label]
        per_label.add_row(label, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", f"{r['support']:,}")
    print_table(per_label)
    longest = max(map(len, labels))  # columns show the shortest prefixes (3 letters or more) that tell labels apart
    size = next((n for n in range(3, longest) if len({lab[:n] for lab in labels}) == len(labels)), longest)
    short = [label[:size] for label in labels]
    confusion = Table(title="confusion (rows: true label, columns: predicted)")
    confusion.add_column("", no_wrap=True)
    for name in short:
        confusion.add_column(name, justify="right")
    for label, row in zip(labels, result["confusion"], strict=True):
        total = max(1, sum(row))
        cells = [
            f"[bold]{n}[/]" if i == labels.index(label) else (str(n) if n / total < 0.02 else f"[red]{n}[/]")
            for i, n in enumerate(row)
        ]
        confusion.add_row(label, *cells)
    print_table(confusion)


@app.command()
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


data_app = typer.Typer(
    help="The named data sets of the examples and configs: list them, get (download or build) one, find its files.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=f"Folder of the data sets [default: ${datasets.ENV}, else ~/.local/share/charrnn].",
        show_default=False,
    ),
]


@data_app.command("list")
def data_list(data_dir: DataDirOption = None) -> None:
    """Each data set: what it is for, where it comes from, its licence and size, and whether it is here."""
    registry = datasets.Registry(datasets.data_dir(data_dir))
    table = Table(title=f"charrnn data sets in {registry.root}")
    for column in ("name", "for", "source", "licence", "size", "here"):
        table.add_column(column, overflow="fold")
    for ds in registry.sets.values():
        record = registry.manifest(ds.name)
        here = "no" if record is None else "yes" if record["pinned"] else "yes, checksum not pinned"
        source = ds.source + (f" (its checksum depends on {ds.varies})" if ds.varies else "")
        table.add_row(ds.name, ds.purpose, source, ds.licence, ds.size, here)
    print_table(table)


@data_app.command("get")
def data_get(
    names: Annotated[list[str], typer.Argument(help="Data sets to download or build.", show_default=False)],
    source_file: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Install this copy of a downloaded set's file (its checksum is checked).", show_default=False
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch or build it again even if it is here.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Download or build data sets into the data folder, checking every file's sha256."""
    if source_file is not None and len(names) > 1:
        raise CharRNNError("--from installs the file of one data set; name just that set.")
    registry = datasets.Registry(datasets.data_dir(data_dir))
    for name in names:
        registry.get_set(name)
    for name in names:
        if registry.present(name) and not force and source_file is None:
            err.print(f"charrnn: {name} is already in {registry.folder(name)} (--force gets it again)")
            continue
        with _DataProgress(name) as bar:
            folder = registry.get(name, source_file, bar.report)
        record = registry.manifest(name)
        checked = (
            "checksums match"
            if record["pinned"]
            else f"no checksum is pinned for {record['inputs']}, so its sha256 is recorded in {datasets.MANIFEST}"
        )
        summary = f"; {record['summary']}" if record["summary"] else ""
        err.print(f"charrnn: {name} is in {folder} ({checked}){summary}")


class _DataProgress:
    """A transient bar on stderr for one data set's download or build (bytes, or the build's own units)."""

    def __init__(self, name: str) -> None:
        self.name = name
        columns = (TextColumn("{task.description}"), BarColumn(bar_width=30), TextColumn("{task.fields[amount]}"))
        self.bar = Progress(*columns, TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal)
        self.task = self.bar.add_task(name, total=None, amount="")

    def __enter__(self) -> "_DataProgress":
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def report(self, what: str, done: int, total: int | None) -> None:
        if what == "bytes":
            amount = filesize.decimal(done) + (f" of {filesize.decimal(total)}" if total else "")
        else:
            amount = f"{done:,}" + (f" of {total:,}" if total else "") + f" {what}"
        self.bar.update(self.task, description=self.name, completed=done, total=total, amount=amount)


@data_app.command("path")
def data_path(
    name: Annotated[str, typer.Argument(help="A data set.", show_default=False)],
    file: Annotated[str, typer.Argument(help="One of its files (default: its only file, or its folder).")] = "",
    data_dir: DataDirOption = None,
) -> None:
    """Print where a data set (or one of its files) is, for use in other commands: $(charrnn data path NAME)."""
    print(datasets.Registry(datasets.data_dir(data_dir)).path(name, file))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


@app.command()
def viz(
    text: Annotated[str | None, typer.Argument(help="Text to run the model over.", show_default=False)] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the text from this file.")] = None,
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML page to write.")] = Path("viz.html"),
    length: Annotated[
        int, typer.Option("--len", min=1, max=MAX_LEN, help="Characters to show (a longer text is an error).")
    ] = 2000,
    terminal: Annotated[bool, typer.Option("--terminal", help="Colour the text in the terminal instead.")] = False,
    cell_index: Annotated[
        str | None,
        typer.Option(help="--terminal: the cell, LAYER:UNIT (e.g. 1:37, or l0r:5) [default: the best detector's]"),
    ] = None,
    unknown: UnknownOption = "error",
) -> None:
    """What each cell tracks: the text coloured by any cell's activation, the model's predictions, the cells that
    follow quotes, brackets, line position and more, and the gates' saturation (an HTML page, or --terminal)."""
    model = _load(checkpoint, run_dir)
    if not terminal and out.exists() and "charrnn viz" not in out.read_text(encoding="utf-8", errors="replace")[:2000]:
        raise CharRNNError(f"{out} exists and is not a charrnn viz page; choose another --out or remove it.")
    trace, ranking = model.trace(text, file, length, unknown)
    if not ranking:
        err.print("charrnn: no detector changes over this text (no quotes, brackets, line breaks...)", style="yellow")
    if terminal:
        _print_cell(trace, ranking, cell_index, model.config.cell)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(api.viz_page(model, trace, ranking), encoding="utf-8")
    size = f"{out.stat().st_size / 1e6:.1f} MB, {len(trace.text):,} characters"
    err.print(f"charrnn: wrote {out} ({size}); open it in a browser")


def _print_cell(trace, ranking: dict, cell_index: str | None, cell: str) -> None:
    """The text coloured by one cell's state, then the detector ranking table."""
    if cell_index is None:
        best = max((c for cells in ranking.values() for c in cells), key=lambda c: abs(c["r"]), default=None)
        layer, unit = (best["layer"], best["unit"]) if best else ("l0", 0)
    else:
        name, _, number = cell_index.partition(":")
        layer = name if name.startswith("l") else f"l{name}"
        if layer not in trace.activations or not number.isdigit():
            layers = ", ".join(trace.activations)
            raise CharRNNError(f"--cell-index {cell_index!r} must be LAYER:UNIT with a layer of {layers}, e.g. 0:12.")
        unit = int(number)
    kind = "c" if "c" in trace.activations[layer] else "h"
    values = trace.activations[layer][kind]
    if unit >= values.shape[1]:
        raise CharRNNError(f"--cell-index: layer {layer} has {values.shape[1]} units (0 to {values.shape[1] - 1}).")
    shown = np.tanh(values[:, unit]) if kind == "c" else values[:, unit]
    coloured = Text()
    for ch, value in zip(trace.text, shown, strict=True):
        coloured.append("⏎\n" if ch == "\n" else ch, style=f"black on {cell_color(float(value), kind)}")
    console = Console()
    console.print(f"[bold]{layer} unit {unit}, {'tanh(c)' if kind == 'c' else 'h'}[/] (blue -1 … white 0 … red +1):")
    console.print(coloured)
    table = Table(title="cells that track something (Pearson r over this text)")
    table.add_column("detector")
    table.add_column("best cells", no_wrap=False)
    for name, cells in ranking.items():
        table.add_row(name, ",  ".join(f"{describe_cell(c)} r={c['r']:+.2f}" for c in cells[:3]))
    print_table(table)


@app.command("export")
def export_model(
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")] = Path("model.onnx"),
    opset: Annotated[int, typer.Option(help="ONNX operator set to write.")] = DEFAULT_OPSET,
    check: Annotated[
        bool,
        typer.Option("--check", help="Run the file in ONNX Runtime against charrnn; exit 1 if they differ by > 1e-4."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a file that charrnn export did not write.")] = False,
) -> None:
    """Write the model as an ONNX file that ONNX Runtime runs from C, C++, C#, Java, JavaScript or Python (needs
    charrnn[export]); the inputs, outputs and metadata are in docs/export.md."""
    model = _load(checkpoint, run_dir)
    written = api.export(model, out, opset, force)
    sizes = ", ".join(f"{path} ({filesize.decimal(path.stat().st_size)})" for path in written)
    err.print(f"charrnn: wrote {sizes}: {model.kind}, opset {opset}")
    if check:
        difference = api.check_export(model, written[0])
        agrees = difference <= CHECK_TOLERANCE
        verdict = "agrees" if agrees else f"differs by more than {CHECK_TOLERANCE:g}"
        print(f"largest difference between ONNX Runtime and charrnn: {difference:.3g} ({verdict})")
        if not agrees:
            raise typer.Exit(1)


CHECK_TOLERANCE = 1e-4


@app.command()
def plot(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders (with metrics.jsonl) to draw on one chart.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("loss.png"),
    x_axis: Annotated[str, typer.Option("--x", help="step or epoch.")] = "step",
) -> None:
    """Draw the training and validation loss curves of one or more runs to a PNG (needs charrnn[plot])."""
    if x_axis not in ("step", "epoch"):
        raise CharRNNError(f"--x must be step or epoch (got {x_axis!r}).")
    err.print(f"charrnn: wrote {plot_runs(run_dirs, out, x_axis)}")


@app.command()
def bench(
    corpus: Annotated[
        Path | None,
        typer.Argument(
            help="Text to train on, or a file of examples for a task (default: random).", show_default=False
        ),
    ] = None,
    task: Annotated[str, typer.Option(help=f"One of {', '.join(registry.names())}.")] = Config.task,
    cell: Annotated[str, typer.Option(help="rnn, lstm or gru.")] = "lstm",
    layers: Annotated[int, typer.Option(min=1)] = 2,
    hidden: Annotated[int, typer.Option(min=1)] = 256,
    embed: Annotated[int, typer.Option(min=0, help="Character embedding width (0: one-hot).")] = 0,
    batch_size: Annotated[int | None, typer.Option(min=1, help="[default: 32 for lm, 128 for a task]")] = None,
    seq_len: Annotated[int, typer.Option(min=1, help="lm: steps per chunk.")] = 64,
    bidirectional: Annotated[bool, typer.Option("--bidirectional", help="classify, tag: read both ways.")] = False,
    pool: Annotated[str, typer.Option(help="classify: last, mean or max.")] = "last",
    attention: Annotated[str, typer.Option(help="seq2seq: none, dot, general or additive.")] = "general",
    input_feeding: Annotated[bool, typer.Option("--input-feeding", help="seq2seq: feed attention back.")] = False,
    target_units: Annotated[str, typer.Option(help="seq2seq, with a file: chars or words.")] = "chars",
    dtype: Annotated[str, typer.Option(help="float32 or float64.")] = "float32",
    vocab_size: Annotated[int, typer.Option(min=2, help="Vocabulary of the random ids.")] = 65,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed steps first.")] = 5,
    steps: Annotated[int, typer.Option(min=1, help="Timed training steps.")] = 50,
    threads: Annotated[
        int | None, typer.Option(min=1, help="BLAS threads (default: OPENBLAS_NUM_THREADS, else every core).")
    ] = None,
    torch: Annotated[
        bool, typer.Option("--torch", help="Then the PyTorch reference on the same model and data; print ratios.")
    ] = False,
    torch_python: Annotated[
        str | None, typer.Option(help="With --torch: a Python that has PyTorch [default: this one].")
    ] = None,
    pairs: Annotated[int, typer.Option(min=1, help="With --torch: charrnn/PyTorch runs, alternately.")] = 1,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Time full training steps of a task (its own step, as training takes it) and the use of the trained model
    (sampling one stream, reading or decoding examples); report speed and peak memory. With --torch, race the
    PyTorch reference of benchmarks/torch_reference.py on the same model, batch, data and steps."""
    keys = {
        "task": task,
        "cell": cell,
        "layers": layers,
        "hidden": hidden,
        "embed": embed,
        "seq_len": seq_len,
        "bidirectional": bidirectional,
        "pool": pool,
        "attention": attention,
        "input_feeding": input_feeding,
        "target_units": target_units,
        "dtype": dtype,
    }
    sizes = {"vocab_size": vocab_size, "warmup": warmup, "steps": steps, "batch_size": batch_size}
    if torch:
        raced = api.bench_with_torch(corpus, python=torch_python, pairs=pairs, threads=threads or 2, **sizes, **keys)
        if json_output:
            print_json(raced)
            return
        result = raced["charrnn"][-1]
    else:
        result = api.bench(corpus, threads=threads, **sizes, **keys)
    if json_output:
        print_json(result)
        return
    direction = "bidirectional " if bidirectional else ""
    title = f"charrnn bench: {task} {direction}{cell} {layers}×{hidden}, batch {result['batch']}, {dtype}"
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    if "train_examples_per_sec" in result:
        table.add_row("training examples/s", f"{result['train_examples_per_sec']:,.0f}")
    table.add_row("training chars/s", f"{result['train_chars_per_sec']:,.0f}")
    if "mean_length" in result:
        table.add_row("mean example length", f"{result['mean_length']:.1f}")
    table.add_row("ms per step", f"{result['ms_per_step']:.1f}")
    split = (result["forward_frac"], result["backward_frac"], result["update_frac"])
    table.add_row("forward / backward / update", " / ".join(f"{100 * f:.0f} %" for f in split))
    if "gflops" in result:
        table.add_row("GFLOP/s (one-hot model FLOPs)", f"{result['gflops']:.1f}")
    if "sample_chars_per_sec" in result:
        table.add_row("sampling chars/s (one stream)", f"{result['sample_chars_per_sec']:,.0f}")
    if "encoder_frac" in result:
        parts = (result["encoder_frac"], result["decoder_frac"], result["attention_frac"])
        table.add_row("of which forward: encoder / decoder / attention", " / ".join(f"{100 * f:.0f} %" for f in parts))
    for beam in (1, 5):
        if f"decode_beam{beam}_examples_per_sec" in result:
            what = "greedy" if beam == 1 else f"beam {beam}"
            table.add_row(f"decoding examples/s, {what}", f"{result[f'decode_beam{beam}_examples_per_sec']:,.0f}")
    if "read_examples_per_sec" in result:
        table.add_row("reading examples/s (inference)", f"{result['read_examples_per_sec']:,.0f}")
    table.add_row("peak resident memory", f"{result['peak_rss_mb']:,.0f} MB")
    table.add_row("parameters", f"{result['params']:,}")
    print_table(table)
    if torch:
        versus = Table(title=f"charrnn / PyTorch, {threads or 2} threads, {pairs} pair{'s' if pairs > 1 else ''}")
        for column in ("measure", "charrnn", "PyTorch", "ratio", "pairs"):
            versus.add_column(column, justify="left" if column == "measure" else "right")
        for row in raced["ratios"]:
            pair_ratios = " ".join(f"{r:.2f}" for r in row["pairs"])
            versus.add_row(
                row["measure"], f"{row['charrnn']:,.0f}", f"{row['torch']:,.0f}", f"{row['ratio']:.2f}", pair_ratios
            )
        print_table(versus)


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
            parts += [
                f"{k} {100 * v:.2f} %" if k != "macro_f1" and "f1" not in k else f"{k} {v:.4f}"
                for k, v in event.metrics.items()
            ]
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
