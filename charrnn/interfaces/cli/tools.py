"""The tools around a model: `viz` (what each cell tracks), `export` (ONNX), `plot` (loss curves), `bench`."""

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import filesize
from rich.console import Console
from rich.table import Table
from rich.text import Text

from charrnn.apps.export import DEFAULT_OPSET
from charrnn.apps.plot import plot_runs
from charrnn.apps.viz import cell_color, describe_cell
from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.interfaces.cli.common import (
    CheckpointOption,
    EncodingOption,
    RunDirOption,
    UnknownOption,
    err,
    file_to_write,
    load_model,
    most_recent_checkpoint,
    note_skipped,
    print_json,
    print_table,
    renamed,
)
from charrnn.tasks.trace import MAX_LEN
from charrnn.training.config import Config, describe, metavar


def viz(
    text: Annotated[str | None, typer.Argument(help="Text to run the model over.", show_default=False)] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the text from this file.")] = None,
    encoding: EncodingOption = None,
    checkpoint: CheckpointOption = None,
    run_dir: RunDirOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML page to write.")] = Path("viz.html"),
    max_len: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_LEN,
            help="The most characters to show: the run's validation text is cut to it, a longer TEXT or file is an "
            "error.",
        ),
    ] = 2000,
    length: Annotated[
        str | None, renamed("--len", "--max-len", "a limit, not a length to draw as sample's --len")
    ] = None,
    terminal: Annotated[bool, typer.Option("--terminal", help="Colour the text in the terminal instead.")] = False,
    cell_index: Annotated[
        str | None,
        typer.Option(help="--terminal: the cell, LAYER:UNIT (e.g. 1:37, or l0r:5) [default: the best detector's]"),
    ] = None,
    unknown: UnknownOption = "error",
) -> None:
    """What each cell tracks: the text coloured by any cell's activation, the model's predictions, the cells that
    follow quotes, brackets, line position and more, and the gates' saturation (an HTML page, or --terminal)."""
    if not terminal:
        file_to_write(out)
    model = load_model(checkpoint, run_dir)
    if not terminal and out.exists() and "charrnn viz" not in out.read_text(encoding="utf-8", errors="replace")[:2000]:
        raise CharRNNError(f"{out} exists and is not a charrnn viz page; choose another --out or remove it.")
    source = model.text_to_trace(text, file, max_len, encoding)
    if unknown == "skip":
        note_skipped(model.unseen([source], unknown, "the text"), "the text")
    trace, ranking = model.trace(source, None, max_len, unknown, encoding)
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
    model = load_model(checkpoint, run_dir)
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


def plot(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(help="Run folders, as --run-dir (a sweep's folder: all its trials).", show_default=False),
    ] = None,
    run_dir: Annotated[
        list[Path] | None,
        typer.Option(help="Run folder to draw; give several to draw them on one chart.", show_default=False),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("loss.png"),
    x_axis: Annotated[str, typer.Option("--x", metavar="step|epoch", help="What the x axis counts.")] = "step",
) -> None:
    """Draw the training and validation loss curves of one or more runs on one chart, a PNG (needs charrnn[plot]);
    with no run given, the most recent run's."""
    if x_axis not in ("step", "epoch"):
        raise CharRNNError(f"--x must be step or epoch (got {x_axis!r}).")
    file_to_write(out)
    run_dirs = [*(folders or []), *(run_dir or [])]
    if not run_dirs:
        run_dirs = [most_recent_checkpoint().parent]
    err.print(f"charrnn: wrote {plot_runs(run_dirs, out, x_axis)}", markup=False)


def _key_option(key: str, *names: str, **limits: Any) -> Any:
    """The option of config key `key` in `charrnn bench`: its help and default are the config's."""
    return typer.Option(
        *names, help=describe(key, with_choices=False), metavar=metavar(key), show_default=False, **limits
    )


def bench(
    corpus: Annotated[
        Path | None,
        typer.Argument(
            help="Text to train on, or a file of examples for a task (default: random).", show_default=False
        ),
    ] = None,
    task: Annotated[str, _key_option("task")] = Config.task,
    cell: Annotated[str, _key_option("cell")] = Config.cell,
    layers: Annotated[int, _key_option("layers", min=1)] = Config.layers,
    hidden: Annotated[int, _key_option("hidden", min=1)] = Config.hidden,
    embed: Annotated[int, _key_option("embed", min=0)] = Config.embed,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="examples (or streams) per step [default: 32 for lm, 128 for a task]")
    ] = None,
    seq_len: Annotated[int, _key_option("seq_len", min=1)] = Config.seq_len,
    bidirectional: Annotated[bool, _key_option("bidirectional", "--bidirectional")] = Config.bidirectional,
    pool: Annotated[str, _key_option("pool")] = Config.pool,
    attention: Annotated[str, _key_option("attention")] = Config.attention,
    input_feeding: Annotated[bool, _key_option("input_feeding", "--input-feeding")] = Config.input_feeding,
    target_units: Annotated[str, _key_option("target_units")] = Config.target_units,
    dtype: Annotated[str, _key_option("dtype")] = Config.dtype,
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
    table.add_row("BLAS", result["blas"])
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
