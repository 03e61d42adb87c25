"""The runs a user has: every run folder under a root, summed up from the first bytes of its checkpoints.

`charrnn runs` and `charrnn.runs()` read this. It must stay quick with many runs, so it never builds a network and
never reads weights: only the `meta` entry of an .npz archive is read (the zip keeps each entry apart).
"""

import dataclasses
import fcntl
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.errors import CharRNNError
from charrnn.tasks import registry
from charrnn.training.checkpoint import parse_meta
from charrnn.training.config import Config, read_yaml
from charrnn.training.run import BEST, CONFIG, LAST, LOCK, METRICS, REPLACED
from charrnn.training.trainer import DONE  # the stop reasons of a run that reached what it was asked to do

DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)}


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One run folder, as `charrnn runs` lists it."""

    name: str  # its path relative to the folder searched
    path: Path
    state: str  # "training" (a live process holds its lock), "finished", "stopped" or "unreadable"
    changed: datetime  # the last write to its checkpoint, metrics or config
    task: str | None = None
    model: str | None = None  # "lstm 2×256"
    step: int | None = None  # of its newest checkpoint (None before the first)
    epoch: float | None = None
    best_val_loss: float | None = None
    best_metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # the task's figures at that loss
    stop_reason: str | None = None  # "max_steps", "epochs", "max_time", "patience", "interrupted"; None: unknown
    problem: str = ""  # why an unreadable run could not be read

    @property
    def figure(self) -> str:
        """The task's first figure at the best validation loss, as training shows it ("accuracy 84.86 %"); "" if
        none (a language model's only figure is its loss)."""
        if self.task not in registry.TASKS:
            return ""
        return next(iter(registry.get(self.task).format_figures(self.best_metrics)), "")


def list_runs(root: Path) -> list[RunSummary]:
    """Every run folder under `root` (itself included), the most recently changed last, as `ls -tr` lists files:
    a folder with a checkpoint, or whose lock a live `charrnn train` holds."""
    if not root.is_dir():
        raise CharRNNError(f"{root} is not a folder; give the folder that holds your runs, e.g. runs/.")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))  # .replaced/ is part of its run
        if LAST in files or BEST in files or LOCK in files:
            summary = summarise(Path(folder), root)
            if summary is not None:
                found.append(summary)
    return sorted(found, key=lambda run: run.changed)


def summarise(folder: Path, root: Path) -> RunSummary | None:
    """What `folder` holds, or None if it holds no run."""
    training = is_training(folder)
    saved = [p for p in (folder / LAST, folder / BEST) if p.is_file()]
    if not saved and not training:  # an --overwrite run killed before its first checkpoint: the run it was to
        # replace is set aside, and comes back with the next `charrnn train` here
        saved = [p for p in (folder / REPLACED / LAST, folder / REPLACED / BEST) if p.is_file()]
    if not saved and not training:
        return None
    name = str(folder) if folder == root else folder.relative_to(root).as_posix()
    written = [p.stat().st_mtime for p in (*saved, folder / METRICS, folder / CONFIG) if p.is_file()]
    changed = datetime.fromtimestamp(max(written, default=folder.stat().st_mtime)).astimezone()
    if not saved:  # training, before its first checkpoint: what it trains is in its config
        try:
            config = DEFAULTS | read_yaml(folder / CONFIG)
        except CharRNNError:  # not written yet, or being written this instant
            return RunSummary(name, folder, "training", changed)
        return RunSummary(name, folder, "training", changed, config["task"], model_name(config))
    try:
        metas = {path.name: read_meta(path) for path in saved}
    except CharRNNError as e:
        return RunSummary(name, folder, "training" if training else "unreadable", changed, problem=str(e))
    # the newest: while training, best.npz is written at each new best, last.npz only every --save-every
    meta = metas[max(saved, key=lambda path: path.stat().st_mtime).name]
    best = metas.get(BEST)  # the figures of the best validation loss; without best.npz, only a last.npz that is best
    if best is None:
        best = meta if meta.get("val_loss") == meta.get("best_val_loss") else {"val_loss": meta.get("best_val_loss")}
    config = DEFAULTS | (meta.get("config") or {})
    reason = None if training else meta["stop_reason"] if "stop_reason" in meta else limit_reached(meta, config)
    state = "training" if training else "finished" if reason in DONE else "stopped"
    return RunSummary(
        name,
        folder,
        state,
        changed,
        config["task"],
        model_name(config),
        meta.get("step"),
        meta.get("epoch"),
        best.get("val_loss"),
        best.get("metrics") or {},
        reason,
    )


def is_training(folder: Path) -> bool:
    """Whether a live process holds the run's lock, the flock of `charrnn train` (the system drops it when its holder
    dies, so a killed run is not training). Asking takes a shared lock for an instant: a `charrnn train` starting in
    that very instant would find the folder in use."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock
    return False


def read_meta(path: Path) -> dict[str, Any]:
    """A checkpoint's metadata alone: the archive's other entries, the weights, are never read."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            blob = npz["meta"] if "meta" in npz.files else None
    except Exception as e:  # a damaged archive fails in many ways inside zipfile, zlib or numpy
        raise CharRNNError(f"checkpoint {path} is damaged or not a checkpoint ({e}).") from None
    return parse_meta(blob, path)


def limit_reached(meta: dict[str, Any], config: dict[str, Any]) -> str | None:
    """Which of its limits a checkpoint written before checkpoints said why they stopped had reached, if any, by the
    rules of the trainer that wrote it."""
    step, epoch = meta.get("step") or 0, meta.get("epoch") or 0.0
    if config["max_steps"] and step >= config["max_steps"]:
        return "max_steps"
    if config["epochs"] and epoch >= config["epochs"] - 1e-9:  # as step >= ceil(epochs * steps per epoch)
        return "epochs"
    if config["max_time"] and (meta.get("train_seconds") or 0.0) >= config["max_time"]:
        return "max_time"
    if config["patience"] and (meta.get("evals_since_best") or 0) >= config["patience"]:
        return "patience"
    return None


def model_name(config: dict[str, Any]) -> str:
    """ "lstm 2×256", "bi-gru 1×128": the cell, layers and width of a run's network."""
    return f"{'bi-' if config['bidirectional'] else ''}{config['cell']} {config['layers']}×{config['hidden']}"
