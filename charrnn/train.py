"""The training loop: stateful truncated BPTT, clipping, the optimizer step, evaluation and checkpoints.

It never prints: it reports through `TrainEvent`s, which the CLI draws (or a script collects).
"""

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charrnn import checkpoint
from charrnn.config import TrainConfig, dump_yaml
from charrnn.data import Batches, Corpus
from charrnn.errors import CharRNNError
from charrnn.model import CharModel
from charrnn.optim import OPTIMIZERS, clip_gradients

LOG2E = 1.0 / math.log(2.0)  # nats -> bits


@dataclass
class TrainEvent:
    """What happened: kind is "step" (after every update), "eval" (validation and/or save) or "end"."""

    kind: str
    step: int
    total_steps: int
    epoch: float
    train_loss: float  # smoothed, nats/char
    val_loss: float | None  # last validation loss, nats/char
    chars_per_sec: float
    elapsed: float  # seconds of training, evaluation excluded
    saved: Path | None = None


def evaluate(model: CharModel, ids: np.ndarray, streams: int = 32, warmup: int = 256, chunk_len: int = 128) -> float:
    """Mean cross-entropy (nats/char) of ids[1:] given ids[:-1]: the whole text, as if read as one stream.

    Reading one stream is a batch of 1, which wastes the GEMMs. So the text is cut into `streams` contiguous
    segments read side by side (a batch of `streams`): the first starts from the zero state at the text's
    beginning, exactly as one stream would; each other one first reads the `warmup` characters before its
    segment, uncounted, so that its state has the context it would have had. With streams=1 it is exact.
    """
    n = len(ids) - 1
    position, counted = eval_layout(n, streams, warmup)
    x, y = ids[position], ids[position + 1]
    state = model.initial_state(position.shape[1])
    total = 0.0
    for start in range(0, len(position), chunk_len):
        part = slice(start, start + chunk_len)
        loss, state = model.loss(x[part], y[part], state, counted[part])
        total += loss
    return total / n


def eval_layout(n: int, streams: int, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Which input position each (row, stream) reads, and whether its prediction counts, for `evaluate`.

    Every prediction 0..n-1 is counted exactly once; stream s reads from position s * seg on.
    """
    k = max(1, min(streams, (n - warmup) // max(1, 2 * warmup)))
    seg = -(-(n - warmup) // k) if k > 1 else n
    rows = seg + warmup if k > 1 else n
    position = np.arange(rows)[:, None] + seg * np.arange(k)[None, :]
    counted = (position < n) & ((np.arange(rows) >= warmup)[:, None] | (np.arange(k) == 0)[None, :])
    return np.minimum(position, n - 1), counted


def default_run_dir(config: TrainConfig) -> Path:
    return Path(config.run_dir) if config.run_dir else Path("runs") / Path(config.corpus[0]).stem


class Trainer:
    def __init__(self, config: TrainConfig, corpus: Corpus) -> None:
        self.config, self.corpus = config, corpus
        self.batches = Batches(corpus.train, config.batch_size, config.seq_len)
        self.model = CharModel(
            len(corpus.vocab), config.hidden, config.layers, config.cell, config.dtype, seed=config.seed
        )
        self.optimizer = OPTIMIZERS[config.optimizer](self.model.flat_params, config.lr)
        self.state = self.model.initial_state(config.batch_size)
        self.step = 0
        self.run_dir = default_run_dir(config)
        per_epoch = self.batches.chunks_per_epoch
        self.total_steps = math.ceil(config.epochs * per_epoch)
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.val_loss: float | None = None

    @property
    def epoch(self) -> float:
        return self.step / self.batches.chunks_per_epoch

    def train_step(self) -> float:
        """One update on the next chunk of every stream; returns its mean loss (nats/char)."""
        chunk = self.step % self.batches.chunks_per_epoch
        if chunk == 0:  # the streams start again from the beginning of their text
            self.state = self.model.initial_state(self.config.batch_size)
        elif self.config.reset_every:
            # Without this, the zero state is only ever seen by an untrained model, and a trained one can fall
            # into a saturated state when it reads e.g. "\n\n" from zero (validation loss 5.5 instead of 2.1).
            fresh = (self.step + np.arange(self.config.batch_size)) % self.config.reset_every == 0
            for layer in self.state:
                for s in layer:
                    s[fresh] = 0.0
        x, y = self.batches.chunk(chunk)
        loss, self.state = self.model.loss_and_grads(x, y, self.state)
        clip_gradients(self.model.flat_grads, self.config.clip, self.config.clip_value)
        self.optimizer.step(self.model.flat_grads)
        self.step += 1
        return loss

    def evaluate(self) -> float | None:
        if len(self.corpus.val) < 2:
            return None
        self.val_loss = evaluate(self.model, self.corpus.val)
        return self.val_loss

    def save(self, name: str = checkpoint.LAST) -> Path:
        """Everything needed to sample from, inspect or continue this run."""
        arrays = {f"param/{k}": v for k, v in self.model.params.items()}
        arrays |= {f"optim/{k}": v for k, v in self.optimizer.state.items()}
        arrays |= {f"state/{i}.{k}": s for i, layer in enumerate(self.state) for k, s in enumerate(layer)}
        meta = {
            "vocab": self.corpus.vocab.chars,
            "config": self.config.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "optimizer_steps": self.optimizer.steps,
            "val_loss": self.val_loss,
            "corpus": {
                "name": self.corpus.name,
                "train_chars": len(self.corpus.train),
                "val_chars": len(self.corpus.val),
            },
        }
        path = self.run_dir / name
        checkpoint.save(path, meta, arrays)
        return path

    def run(self, on_event: Callable[[TrainEvent], None] | None = None) -> TrainEvent:
        """Train to `total_steps`, evaluating every `eval_every` and saving every `save_every` steps and at the end."""
        emit = on_event or (lambda event: None)
        cfg = self.config
        chars_per_step = cfg.batch_size * cfg.seq_len
        smooth, train_time = None, 0.0
        event = None
        while self.step < self.total_steps:
            started = time.perf_counter()
            loss = self.train_step()
            train_time += time.perf_counter() - started
            if not math.isfinite(loss):
                raise CharRNNError(
                    f"the training loss became {loss} at step {self.step}; lower --lr or set --clip (now {cfg.clip})."
                )
            smooth = loss if smooth is None else 0.95 * smooth + 0.05 * loss
            speed = self.step * chars_per_step / max(train_time, 1e-9)
            event = TrainEvent(
                "step", self.step, self.total_steps, self.epoch, smooth, self.val_loss, speed, train_time
            )
            emit(event)
            last = self.step == self.total_steps
            do_eval = last or (cfg.eval_every and self.step % cfg.eval_every == 0)
            do_save = last or (cfg.save_every and self.step % cfg.save_every == 0)
            if do_eval:
                self.evaluate()
            if do_eval or do_save:
                event = dataclasses.replace(event, kind="eval", val_loss=self.val_loss)
                event.saved = self.save() if do_save else None
                emit(event)
        if event is None:
            raise CharRNNError("nothing to train: the run is already at its last step.")
        event = dataclasses.replace(event, kind="end")
        emit(event)
        return event


def check_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse to replace a run the user already has, unless asked. Writes nothing."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CharRNNError(f"--run-dir {run_dir} is a file, not a folder; choose another --run-dir.")
    if (run_dir / checkpoint.LAST).exists() and not overwrite:
        raise CharRNNError(
            f"{run_dir} already holds a trained run ({checkpoint.LAST}); pass --overwrite to replace it "
            "or --run-dir to train somewhere else."
        )


def write_config(run_dir: Path, config: TrainConfig) -> None:
    """The effective config (defaults <- file <- flags) next to the checkpoints."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_yaml(config), encoding="utf-8")
