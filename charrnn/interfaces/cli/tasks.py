"""The commands of the other tasks: `classify`, `tag`, `translate`, and `eval` of any model on labelled examples."""

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from charrnn.apps.plot import plot_attention
from charrnn.data.text import char_name, printable
from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.interfaces.cli.common import (
    BeamOption,
    CheckpointOption,
    CheckpointsOption,
    EncodingOption,
    FileOption,
    InputsArgument,
    JsonOption,
    LengthPenaltyOption,
    RunDirOption,
    RunDirsOption,
    UnknownOption,
    check_inputs,
    err,
    file_to_write,
    load_model,
    load_models,
    note_skipped,
    print_json,
    print_table,
    read_inputs,
)
from charrnn.tasks import registry


def classify(
    texts: InputsArgument = None,
    file: FileOption = None,
    encoding: EncodingOption = None,
    checkpoint: CheckpointsOption = None,
    run_dir: RunDirsOption = None,
    top_k: Annotated[int, typer.Option(min=1, help="How many of the likeliest labels to show.")] = 1,
    unknown: UnknownOption = "error",
    json_output: JsonOption = False,
) -> None:
    """The label of each input, with its probability (a classifier: many-to-one)."""
    check_inputs(texts, file)
    model = load_models(checkpoint, run_dir).able("classify", "classifying")
    inputs = read_inputs(texts, file, encoding or model.config.encoding)
    note_skipped(model.unseen(inputs, unknown), "the input")
    if json_output:
        print_json(api.classify_records(model, inputs, top_k, unknown))
        return
    results = model.classify(inputs, top_k, unknown)
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


def tag(
    texts: InputsArgument = None,
    file: FileOption = None,
    encoding: EncodingOption = None,
    checkpoint: CheckpointsOption = None,
    run_dir: RunDirsOption = None,
    unknown: UnknownOption = "error",
    json_output: JsonOption = False,
) -> None:
    """The output of each input, one character per input character, one line each on stdout (a tagger)."""
    check_inputs(texts, file)
    model = load_models(checkpoint, run_dir).able("tag", "tagging")
    inputs = read_inputs(texts, file, encoding or model.config.encoding)
    note_skipped(model.unseen(inputs, unknown), "the input")
    if json_output:
        print_json(api.tag_records(model, inputs, unknown))
        return
    outputs = model.tag(inputs, unknown)
    for out in outputs:
        print(out)


def evaluate(
    file: Annotated[Path, typer.Argument(help="Labelled examples (input<TAB>target lines); for an lm, any text.")],
    checkpoint: CheckpointsOption = None,
    run_dir: RunDirsOption = None,
    encoding: EncodingOption = None,
    unknown: UnknownOption = "error",
    beam: BeamOption = 1,
    length_penalty: LengthPenaltyOption = 1.0,
    json_output: JsonOption = False,
) -> None:
    """How well the model does on FILE: accuracy and F1 (classify), character accuracy and exact match (tag),
    exact match, word and token error rates (seq2seq), the loss per character (lm, as `score`)."""
    model = load_models(checkpoint, run_dir)
    result = model.evaluate(file, unknown, beam, length_penalty, encoding)
    note_skipped(Counter(result.get("unknown", {})), str(file))  # a task of one's own may count none
    if json_output:
        print_json(result)
        return
    if "nats_per_char" in result:  # a language model's evaluation is its score
        print(  # one line, whatever the width: a script reads it
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
    task = registry.get(model.task)
    summary.add_row(f"loss (nats/{task.loss_unit})", f"{result['loss']:.4f}")
    for metric in task.figures:
        if metric.name in result:
            summary.add_row(metric.name.replace("_", " "), metric.format(result[metric.name]))
    print_table(summary)
    if "per_label" in result:
        _print_labels(result)


def translate(
    texts: InputsArgument = None,
    file: FileOption = None,
    encoding: EncodingOption = None,
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
    check_inputs(texts, file)
    if out is not None and not show_attention:
        raise CharRNNError("--out draws the attention; add --show-attention.")
    if out is not None:
        file_to_write(out)
    verb, action = ("attention", "showing attention") if show_attention else ("translate", "translating")
    model = load_model(checkpoint, run_dir).able(verb, action)
    inputs = read_inputs(texts, file, encoding or model.config.encoding)
    note_skipped(model.unseen(inputs[:1] if show_attention else inputs, unknown), "the input")
    if show_attention:
        tokens, chars, weights = model.attention(inputs[0], beam, unknown)
        _print_attention(tokens, chars, weights)
        if out is not None:
            err.print(f"charrnn: wrote {plot_attention(tokens, chars, weights, out)}")
        return
    if json_output:
        print_json(api.translate_records(model, inputs, beam, n_best, length_penalty, unknown))
        return
    results = model.translate(inputs, beam, n_best, length_penalty, unknown)
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
