"""Pictures drawn with matplotlib (an optional extra): the loss curves of runs, from their metrics.jsonl, and the
attention of a seq2seq model over one input."""

import json
from pathlib import Path

import numpy as np

from charrnn.errors import CharRNNError
from charrnn.training.run import METRICS


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / METRICS
    if not path.is_file():
        raise CharRNNError(f"{run_dir} has no {METRICS}; pass the folder of a run trained with this charrnn.")
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise CharRNNError(f"{path} is damaged at line {e.lineno}; it is not JSON lines.") from None


def _pyplot(what: str):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CharRNNError(f"{what} needs matplotlib; install it with: pip install 'charrnn[plot]'") from None
    return plt


def plot_attention(tokens: list[str], chars: list[str], weights: np.ndarray, out: Path) -> Path:
    """A heat map of attention weights: a row per output token, a column per input character."""
    plt = _pyplot("--out FILE.png")
    figure, axes = plt.subplots(figsize=(1 + 0.35 * len(chars), 1 + 0.3 * len(tokens)), dpi=100)
    axes.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(chars)), [repr(c)[1:-1] if not c.isprintable() or c == " " else c for c in chars])
    axes.set_yticks(range(len(tokens)), tokens)
    axes.set_xlabel("input")
    axes.set_ylabel("output")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out


def _runs_in(folder: Path) -> list[Path]:
    """A run's folder, or the trials of a sweep's folder (its subfolders that have metrics)."""
    if not folder.is_dir():
        what = f"{folder} is a file, not a run folder" if folder.exists() else f"run folder {folder} does not exist"
        raise CharRNNError(f"{what}; give the folder of a run (it holds {METRICS}).")
    if (folder / METRICS).is_file():
        return [folder]
    return sorted(p.parent for p in folder.glob(f"*/{METRICS}")) or [folder]


def plot_runs(run_dirs: list[Path], out: Path, x_axis: str = "step") -> Path:
    """Training loss (thin) and validation loss (dots, joined) against steps or epochs, one colour per run; a sweep's
    folder stands for all its trials."""
    plt = _pyplot("charrnn plot")
    run_dirs = [trial for d in run_dirs for trial in _runs_in(d)]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    for i, run_dir in enumerate(run_dirs):
        records = read_metrics(run_dir)
        colour = f"C{i}"
        train = [(r[x_axis], r["train_loss"]) for r in records if r.get("train_loss") is not None]
        val = [(r[x_axis], r["val_loss"]) for r in records if r.get("val_loss") is not None]
        if train:
            axes.plot(*zip(*train, strict=True), color=colour, alpha=0.5, linewidth=1, label=f"{run_dir.name} train")
        if val:
            axes.plot(*zip(*val, strict=True), "o-", color=colour, markersize=3, label=f"{run_dir.name} validation")
    axes.set_xlabel(x_axis)
    axes.set_ylabel("cross-entropy, in nats\nper character, example or token")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, bbox_inches="tight")  # every label whole, whatever its length
    plt.close(figure)
    return out
