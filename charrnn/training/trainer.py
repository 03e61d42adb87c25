"""The training loop, the same for every task (the task, found in `charrnn.tasks.registry`, makes the batches and
the loss): clipping, the optimizer step, weight averaging, evaluation and checkpoints, and what makes a long run safe
to leave alone: exact resume, best/last checkpoints, early stopping, time limits, a clean stop on a signal and a
guard against divergence. What the run's folder holds, and how runs start and resume in one, is `run.py`.

It never prints: it reports through `TrainEvent`s, which the CLI draws (or a script collects).
"""

import contextlib
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from charrnn.data.examples import ExampleData
from charrnn.data.text import Corpus
from charrnn.errors import CharRNNError
from charrnn.nn.metrics import LOG2E
from charrnn.nn.optim import clip_gradients, learning_rate, make_optimizer
from charrnn.tasks import registry
from charrnn.training.config import Config, format_duration
from charrnn.training.limits import RunLength

DONE = {
    "max_steps": "reached its --max-steps",
    "epochs": "reached its --epochs",
    "max_time": "used its --max-time",
    "patience": "stopped early (--patience)",
}
"""How `check_can_train` says why a run has nothing left to do, by stop_reason."""
# Seconds of a validation pass per unit, in training steps' seconds per unit, before a pass is timed. Measured (one
# thread, AMD EPYC Zen 4): the real pass took 0.95 (lm 2x256 on data/pond.txt), 0.52 (classify, wordlang) and 0.98
# (seq2seq with attention, g2p: greedy decoding included) of the estimate this gives.
EVAL_MARGIN = 0.6
SAVE_SECONDS, SAVE_BYTES_SECONDS = 0.05, 1e-8  # a save, before one is timed: 50 ms and 10 ms per MB written


class Folder(Protocol):
    """What a trainer writes into: a run's folder. run.py makes trainers in folders (its `RunFolder` is one); a
    trainer only writes into the one it is given."""

    path: Path

    def save(
        self, meta: dict[str, Any], arrays: dict[str, np.ndarray], step: int, last: bool, best: bool, keep: int
    ) -> Path:
        """Write last.npz (with a numbered copy, the newest `keep` of them kept) and/or best.npz."""

    def log(self, record: dict[str, Any]) -> None:
        """One line of metrics.jsonl."""

    def drop_metrics_after(self, step: int) -> None:
        """On resume, drop the lines a stopped run wrote after the checkpoint it resumes from."""


@dataclass
class TrainEvent:
    """What happened. kind: "start" (`text` describes the run), "step" (after every update), "eval" (a validation
    pass and/or a save), "sample" (`text` is a short sample), "notice" (`text` says what happened: the divergence
    guard, a stop requested, the model --size auto chose) or "end" (`text` says why it stopped).

        >>> def show(event):
        ...     if event.evaluated:
        ...         print(event.step, event.val_loss)
        >>> charrnn.train("data/pond.txt", max_steps=400, callback=show)
    """

    kind: str
    task: str = Config.task
    step: int = 0
    total_steps: int | None = None  # the step the run stops at (None: only --max-time bounds it)
    epoch: float = 0.0
    train_loss: float = math.nan  # smoothed, nats/char
    val_loss: float | None = None  # last validation loss, nats/char
    chars_per_sec: float = 0.0  # input characters read per second of training
    examples_per_sec: float = 0.0  # classify, tag: examples per second of training
    elapsed: float = 0.0  # seconds of the whole run (resumes included), validation and saves included
    progress: float = 0.0  # the share of the binding limit (steps or time) done, 0 to 1
    remaining: float | None = None  # seconds to the run's end, as far as the speed so far tells
    time_bound: bool = False  # the time budget, not a step limit, is expected to end the run
    time_budget: float | None = None  # the seconds this command may take, if the run has a --max-time
    stopping: str = ""  # on the last eval and the end event: what stopped the run (see Trainer.stop_reason)
    lr: float = 0.0
    saved: Path | None = None
    evaluated: bool = False  # a validation pass ran at this step (val_loss is new)
    best: bool = False  # this validation loss is the best so far
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # the task's other validation figures
    text: str = ""


class Trainer:
    """Trains the network of a task (`charrnn.tasks.registry`): optimizer, schedule, clipping, the divergence guard,
    evaluation, checkpoints, exact resume and metrics are the same for every task."""

    def __init__(
        self,
        config: Config,
        data: Corpus | ExampleData,
        folder: Folder | None = None,
        init_params: np.ndarray | None = None,
    ) -> None:
        """`folder` is where `run` and `save` write (`charrnn.training.run` starts and resumes runs in one); without
        one, the trainer only steps (as `charrnn bench` uses it)."""
        self.config, self.data, self.folder = config, data, folder
        self.task = registry.get(config.task)(config, data)
        self.network = self.task.network
        if init_params is not None:  # fine-tuning: trained weights, everything else new
            self.network.flat_params[...] = init_params
        self.optimizer = make_optimizer(
            config.optimizer, self.network.flat_params, config.lr, config.momentum, config.weight_decay
        )
        self.rng = np.random.default_rng([config.seed, 1])  # dropout masks
        self.ema = self.network.flat_params.copy() if config.ema else None  # the averaged weights (--ema)
        self.step = 0
        self.length = RunLength.of(config, self.task.steps_per_epoch)
        self.clock: Callable[[], float] = time.perf_counter  # a test may drive the run by a clock of its own
        self.started: float | None = None  # when the command began (run.py sets it): the budget counts from there
        self.train_seconds = 0.0  # of the whole run, validation, saves and start-up included
        self.step_seconds = 0.0  # of this session's steps alone (its speed)
        self.eval_seconds: float | None = None  # the longest validation pass and save so far, measured
        self.schedule_start: dict[str, Any] | None = None  # where an extended run's learning rate goes on from
        self.session_steps = self.session_chars = self.session_examples = 0
        self.session_from = (0, 0.0)  # the step and the run's seconds where this command's training began
        self.session_start = 0.0  # and its clock then
        self.stopped = ""  # what stopped the run (stop_reason's code), once it has
        self.val_loss: float | None = None
        self.metrics: dict[str, float] = {}  # of the last evaluation, besides the loss
        self.best_val: float | None = None
        self.evals_since_best = 0
        self.grad_norm = 0.0
        self.last_lr = 0.0  # of the last update
        self.lr_scale = 1.0  # cut by the divergence guard
        self.rollbacks = 0
        self.bad_steps = 0
        self.notice = ""
        self.stop_requested = False  # set from a signal handler: stop after this step, save
        self.stop_event: threading.Event | None = None  # the same, set from another thread
        self.snapshot = self._snapshot()

    @property
    def run_dir(self) -> Path:
        return self.writes_to().path

    def writes_to(self) -> Folder:
        if self.folder is None:
            raise CharRNNError("this trainer was made without a run folder, so it cannot save; give it one.")
        return self.folder

    @property
    def total_steps(self) -> int | None:
        """The step the run stops at (None: only its time budget bounds it)."""
        return self.length.steps

    @property
    def epoch(self) -> float:
        return self.step / self.task.steps_per_epoch

    @property
    def lr(self) -> float:
        """The scheduled rate of the next update. With --max-time the schedule follows the time spent as well as the
        steps, and ends where the run stops stepping. An extended run (`extend`) runs the schedule again over what
        was added, from the rate it had reached instead of the peak (with no new warm-up), unless it restarts it."""
        return self.lr_under(self.length)

    def lr_under(self, length: RunLength, step: int | None = None) -> float:
        """The rate of update `step` (default: the next) were the run's limits `length` (the rate an older run had
        reached is worked out under its own limits)."""
        cfg = self.config
        step = self.step if step is None else step
        start = self.schedule_start or {"step": 0, "seconds": 0.0, "lr": cfg.lr, "restart": True}
        budget = None if not length.seconds else max(1e-9, length.seconds - self.reserve())
        spent = self.train_seconds - start["seconds"]
        time_progress = spent / max(1e-9, budget - start["seconds"]) if budget else None
        scheduled = learning_rate(
            step - start["step"],
            start["lr"],
            cfg.lr_schedule,
            self.task.steps_per_epoch,
            None if length.steps is None else length.steps - start["step"],
            cfg.warmup_steps if start["restart"] else 0,
            cfg.lr_decay,
            cfg.lr_decay_every,
            min(cfg.min_lr, start["lr"]),
            time_progress,
            cfg.decay_frac,
        )
        return scheduled * self.lr_scale

    def extend(self, restart_schedule: bool = False) -> None:
        """The run's limits were raised on resume: its learning rate goes on from where it was (or, with
        `restart_schedule`, runs the config's whole schedule, warm-up included) over the steps or time added."""
        self.stopped, self.evals_since_best = "", 0  # its limit, or its patience, starts again
        added = None if self.length.steps is None else self.length.steps - self.step
        if restart_schedule and added is not None and added <= self.config.warmup_steps:
            raise CharRNNError(
                f"--restart-schedule would spend the {added:,} steps added warming up (--warmup-steps "
                f"{self.config.warmup_steps}); add more steps, or leave --restart-schedule out."
            )
        if not restart_schedule and self.step < self.config.warmup_steps:
            return  # still warming up: the warm-up goes on, then the schedule over the new length
        rate = self.config.lr if restart_schedule else self.last_lr / self.lr_scale
        self.schedule_start = {
            "step": self.step,
            "seconds": self.train_seconds,
            "lr": rate,
            "restart": restart_schedule,
        }

    def train_step(self) -> float | None:
        """One update on the task's next batch; returns its mean loss, or None if the loss or the gradient was not
        finite and the update was skipped (see `_guard`)."""
        cfg = self.config
        loss = self.task.loss_and_grads(self.step, self.rng)
        self.grad_norm = clip_gradients(self.network.flat_grads, cfg.clip, cfg.clip_value)
        if not (math.isfinite(loss) and math.isfinite(self.grad_norm)):
            self.task.reject()
            self._guard(loss)
            self.step += 1
            return None
        self.bad_steps = 0
        self.task.accept()
        self.optimizer.lr = self.last_lr = self.lr
        self.optimizer.step(self.network.flat_grads)
        self.step += 1
        if self.ema is not None:
            self._average()
        return loss

    def _average(self) -> None:
        """ema += (1 - beta) (theta - ema), with beta = min(--ema, (1 + t) / (10 + t)) after t updates, so that the
        average does not lean on the untrained weights of the first steps."""
        beta = min(self.config.ema, (1 + self.optimizer.steps) / (10 + self.optimizer.steps))
        step = np.subtract(self.network.flat_params, self.ema)
        step *= 1.0 - beta
        self.ema += step

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Within: the model holds the averaged weights (with --ema; otherwise nothing changes)."""
        if self.ema is None:
            yield
            return
        trained = self.network.flat_params.copy()
        self.network.flat_params[...] = self.ema
        try:
            yield
        finally:
            self.network.flat_params[...] = trained

    def _guard(self, loss: float) -> None:
        """A non-finite loss or gradient never reaches the weights. After `guard_skips` such steps in a row, go
        back to the last good state kept in memory and cut the learning rate; after `guard_rollbacks`, give up."""
        cfg = self.config
        self.bad_steps += 1
        self.notice = f"step {self.step + 1}: loss {loss}, gradient norm {self.grad_norm}; update skipped"
        if self.bad_steps < cfg.guard_skips:
            return
        if self.rollbacks >= cfg.guard_rollbacks:
            raise CharRNNError(
                f"training diverged: {self.bad_steps} non-finite steps in a row at step {self.step + 1}, after "
                f"{self.rollbacks} rollbacks that cut the learning rate to {self.lr:.3g}; the last checkpoint "
                "holds the last good weights; lower --lr or --clip, or raise --guard-rollbacks."
            )
        self._restore(self.snapshot)
        self.rollbacks += 1
        self.bad_steps = 0
        self.lr_scale *= cfg.guard_lr_factor
        self.notice = (
            f"step {self.step + 1}: {cfg.guard_skips} non-finite steps in a row; rolled back to the weights of "
            f"step {self.snapshot['step']} and cut the learning rate to {self.lr:.3g}"
        )

    def _snapshot(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "params": self.network.flat_params.copy(),
            "ema": None if self.ema is None else self.ema.copy(),
            "optim": {k: v.copy() for k, v in self.optimizer.state.items()},
            "optimizer_steps": self.optimizer.steps,
        }

    def _restore(self, snapshot: dict[str, Any]) -> None:
        self.network.flat_params[...] = snapshot["params"]
        if self.ema is not None:
            self.ema[...] = snapshot["ema"]
        for k, v in snapshot["optim"].items():
            self.optimizer.state[k][...] = v
        self.optimizer.steps = snapshot["optimizer_steps"]

    def evaluate(self) -> float | None:
        """A validation pass: the loss (returned and kept) and the task's other figures (kept in `metrics`)."""
        with self.averaged():
            metrics = self.task.evaluate()
        if metrics is None:
            return None
        self.val_loss = metrics.pop("val_loss")
        self.metrics = metrics
        return self.val_loss

    def checkpoint_contents(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Everything needed to use, inspect or continue this run exactly."""
        kept = [self.network.flat_params, *self.optimizer.state.values(), *([] if self.ema is None else [self.ema])]
        if not all(np.all(np.isfinite(v)) for v in kept):
            raise CharRNNError(f"step {self.step}: the weights are not finite, so no checkpoint was written.")
        used = self.network.params if self.ema is None else self.network.views(self.ema)
        arrays = {f"param/{k}": v for k, v in used.items()}
        if self.ema is not None:  # param/ is what every command uses, the average; training goes on from trained/
            arrays |= {f"trained/{k}": v for k, v in self.network.params.items()}
        arrays |= {f"optim/{k}": v for k, v in self.optimizer.state.items()}
        arrays |= self.task.arrays()
        meta = {
            **self.task.meta(),
            "config": self.config.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "optimizer_steps": self.optimizer.steps,
            "val_loss": self.val_loss,
            "metrics": self.metrics,
            "best_val_loss": self.best_val,
            "evals_since_best": self.evals_since_best,
            "train_seconds": self.train_seconds,
            "lr": self.last_lr,
            "eval_seconds": self.eval_seconds,
            "schedule_start": self.schedule_start,
            "stop_reason": self.stopped or None,
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "rng": self.rng.bit_generator.state,
        }
        return meta, arrays

    def save(self, last: bool = True, best: bool = False) -> Path:
        """Write last.npz (with a numbered copy when --keep asks) and/or best.npz; remember this state as good."""
        meta, arrays = self.checkpoint_contents()
        path = self.writes_to().save(meta, arrays, self.step, last, best, self.config.keep)
        self.snapshot = self._snapshot()
        return path

    def load(self, meta: dict[str, Any], arrays: dict[str, np.ndarray], source: str) -> None:
        """Continue from a checkpoint of this run (parameters already checked by checkpoint.load_model)."""
        if self.ema is not None:
            for name, average in self.network.views(self.ema).items():
                average[...] = arrays[f"param/{name}"]
        trained = "param" if self.ema is None else "trained"
        for name, param in self.network.params.items():
            saved = arrays.get(f"{trained}/{name}")
            if saved is None or saved.shape != param.shape:
                raise CharRNNError(f"{source} has no usable weights '{trained}/{name}'; it cannot be resumed.")
            param[...] = saved
        for name, moment in self.optimizer.state.items():
            saved = arrays.get(f"optim/{name}")
            if saved is None or saved.shape != moment.shape:
                raise CharRNNError(f"{source} has no usable optimizer state 'optim/{name}'; it cannot be resumed.")
            moment[...] = saved
        self.task.load_arrays(arrays, source)
        try:
            self.optimizer.steps = int(meta["optimizer_steps"])
            self.step = int(meta["step"])
            self.train_seconds = float(meta.get("train_seconds", 0.0))
            self.last_lr = float(meta.get("lr") or 0.0)  # None in a checkpoint older than this key: see run.resume
            self.stopped = meta.get("stop_reason") or ""
            self.eval_seconds = meta.get("eval_seconds")
            self.schedule_start = meta.get("schedule_start")
            self.val_loss, self.best_val = meta.get("val_loss"), meta.get("best_val_loss")
            self.metrics = dict(meta.get("metrics") or {})
            self.evals_since_best = int(meta.get("evals_since_best", 0))
            self.lr_scale = float(meta.get("lr_scale", 1.0))
            self.rollbacks = int(meta.get("rollbacks", 0))
            self.rng.bit_generator.state = meta["rng"]
        except (KeyError, TypeError, ValueError) as e:
            raise CharRNNError(f"{source} lacks the training position ({e}); it cannot be resumed.") from None
        self.snapshot = self._snapshot()

    def stop_reason(self, passes: int = 1) -> tuple[str, str]:
        """Why the run stops now, if it does: a code ("interrupted", "max_steps", "epochs", "max_time", or "" to go
        on) and the words the end line says. `passes`: the validation passes and saves to keep time for within
        --max-time (1: the last; 2: a periodic one is due before it; 0: is the budget spent?)."""
        length = self.length
        if self.stop_requested or (self.stop_event is not None and self.stop_event.is_set()):
            return "interrupted", "interrupted"
        if length.steps is not None and self.step >= length.steps:
            code = "max_steps" if length.steps_by.startswith("--max-steps") else "epochs"
            return code, f"reached step {self.step:,}: {length.steps_by}"
        if length.seconds and self.train_seconds + (passes * self.reserve() if passes else 0.0) >= length.seconds:
            return "max_time", f"reached --max-time {format_duration(length.seconds)}"
        return "", ""

    def reserve(self) -> float:
        """Seconds to keep within --max-time for the step under way, the last validation pass and the save: the
        longest measured so far or, before the first, an estimate from the speed of the steps (a validation pass
        reads each unit forward only, about a third of a training step's work; EVAL_MARGIN covers the rest)."""
        per_step = self.step_seconds / max(1, self.session_steps)
        if self.eval_seconds is not None:
            return per_step + self.eval_seconds
        units = self.session_chars if self.task.counts == "characters" else self.session_examples
        per_unit = self.step_seconds / max(1, units)
        saving = SAVE_SECONDS + SAVE_BYTES_SECONDS * 4 * self.network.flat_params.nbytes  # weights, moments, average
        return per_step + EVAL_MARGIN * self.task.validation_size() * per_unit + saving

    def progress(self) -> tuple[float, float | None, bool]:
        """The share of this command's part of the binding limit done (0 to 1), the seconds left, and whether the
        time budget binds."""
        length, per_step = self.length, self.step_seconds / max(1, self.session_steps)
        first_step, first_seconds = self.session_from
        by_steps = None
        if length.steps is not None:
            by_steps = (length.steps - self.step) * per_step + self.reserve() if self.session_steps else None
        if length.seconds and (by_steps is None or self.train_seconds + by_steps > length.seconds):
            left = max(0.0, length.seconds - self.train_seconds)
            spent = self.train_seconds - first_seconds
            return min(1.0, spent / max(1e-9, length.seconds - first_seconds)), left, True
        done = (self.step - first_step) / max(1, length.steps - first_step) if length.steps else 0.0
        return done, by_steps, False

    def check_can_train(self) -> None:
        """Refuse to go on with a run that has nothing left to do: at a limit, or stopped early by --patience."""
        done = self.stop_reason(passes=0)[0] or (self.stopped if self.stopped != "interrupted" else "")
        if done:
            raise CharRNNError(
                f"nothing to train: the run is at step {self.step:,} and {DONE[done]}; add to it with --more "
                "(e.g. --more 1000 or --more 10m)."
            )

    def run(self, on_event: Callable[[TrainEvent], None] | None = None) -> TrainEvent:
        """Train until a limit (RunLength: --max-steps, --epochs, --max-time over the whole run, resumes included),
        early stopping or `stop_requested`; evaluate and save on their cadences and when it stops."""
        emit = on_event or (lambda event: None)
        cfg = self.config
        self.check_can_train()
        folder = self.writes_to()
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.drop_metrics_after(self.step)
        self.session_from = (self.step, self.train_seconds)
        self.session_start = self.started if self.started is not None else self.clock()
        smooth = None
        since_log: list[float] = []  # losses of the steps since the last metrics line
        while True:
            started = self.clock()
            loss = self.train_step()
            self.step_seconds += self.clock() - started
            self._tick()
            self.session_steps += 1
            self.session_chars += self.task.batch_chars
            self.session_examples += self.task.batch_examples
            if loss is not None:
                smooth = loss if smooth is None else 0.95 * smooth + 0.05 * loss
                since_log.append(loss)
            event = self._event("step", math.nan if smooth is None else smooth)
            emit(event)
            if self.notice:
                emit(dataclasses.replace(event, kind="notice", text=self.notice))
                self.notice = ""
            periodic = bool(cfg.eval_every and self.step % cfg.eval_every == 0)
            code, reason = self.stop_reason(passes=2 if periodic else 1)  # no time for two: this pass is the last
            improved = False
            checked = self.clock()
            if code or periodic:
                val = self.evaluate()
                improved = val is not None and (self.best_val is None or val < self.best_val)
                if improved:
                    self.best_val, self.evals_since_best = val, 0
                elif val is not None:
                    self.evals_since_best += 1
                    if cfg.patience and self.evals_since_best >= cfg.patience:
                        passes = f"{cfg.patience} pass{'es' if cfg.patience > 1 else ''}"
                        code, reason = "patience", f"no better validation loss in {passes} (--patience)"
                event = dataclasses.replace(
                    event, kind="eval", val_loss=self.val_loss, evaluated=True, best=improved, metrics=self.metrics
                )
            self.stopped = code
            last = bool(code) or bool(cfg.save_every and self.step % cfg.save_every == 0)
            if last or improved:
                self._tick()
                saved = self.save(last, improved)
                event = dataclasses.replace(event, kind="eval", saved=saved)
            if event.evaluated:  # what the last pass and save will take
                self.eval_seconds = max(self.eval_seconds or 0.0, self.clock() - checked)
            self._tick()
            if code and code != "interrupted":
                event = dataclasses.replace(self._timed(event), stopping=code)
            if self.step % cfg.log_every == 0 or event.kind == "eval" or code:
                self._log(event, float(np.mean(since_log)) if since_log else None)
                since_log = []
            if event.kind == "eval":  # after the save and the metrics line: a callback may end the process
                emit(event)
            if cfg.sample_every and self.step % cfg.sample_every == 0:
                with self.averaged():
                    text = self.task.sample(seed=self.step)
                if text is not None:
                    emit(dataclasses.replace(event, kind="sample", text=text))
            if code:
                if code == "max_time":
                    spent = format_duration(self.train_seconds - self.session_from[1])
                    reason += f" ({spent} for this command, the last validation and save included)"
                end = dataclasses.replace(self._timed(event), kind="end", text=reason, stopping=code, evaluated=False)
                if code != "interrupted":  # the run is over: nothing is left of it
                    end = dataclasses.replace(end, progress=1.0 if code != "patience" else end.progress, remaining=0.0)
                emit(end)
                return end

    def _tick(self) -> None:
        """The run's seconds in all, now: those it had before this command and this command's so far."""
        self.train_seconds = self.session_from[1] + self.clock() - self.session_start

    def _timed(self, event: TrainEvent) -> TrainEvent:
        """`event` with the run's time and progress as they are now (after its validation pass and save)."""
        progress, remaining, time_bound = self.progress()
        return dataclasses.replace(
            event, elapsed=self.train_seconds, progress=progress, remaining=remaining, time_bound=time_bound
        )

    def _event(self, kind: str, train_loss: float) -> TrainEvent:
        """A TrainEvent of the run as it stands."""
        per_second = 1.0 / max(self.step_seconds, 1e-9)
        progress, remaining, time_bound = self.progress()
        return TrainEvent(
            kind,
            self.config.task,
            self.step,
            self.total_steps,
            self.epoch,
            train_loss,
            self.val_loss,
            self.session_chars * per_second,
            self.session_examples * per_second,
            self.train_seconds,
            progress,
            remaining,
            time_bound,
            None if not self.length.seconds else self.length.seconds - self.session_from[1],
            lr=self.last_lr,
            metrics=self.metrics,
        )

    def _log(self, event: TrainEvent, train_loss: float | None) -> None:
        """One line of metrics.jsonl; train_loss is the mean over the steps since the line before."""
        record = {
            "step": event.step,
            "epoch": round(event.epoch, 6),
            "train_loss": train_loss,
            "val_loss": event.val_loss if event.evaluated else None,
            "val_bits": event.val_loss * LOG2E if event.evaluated and event.val_loss is not None else None,
            "lr": event.lr,
            "grad_norm": round(self.grad_norm, 6) if math.isfinite(self.grad_norm) else None,
            "chars_per_sec": round(event.chars_per_sec, 1),
            "elapsed": round(event.elapsed, 3),
        }
        if self.task.counts == "examples":
            record["examples_per_sec"] = round(event.examples_per_sec, 1)
        if event.evaluated:
            record |= {k: round(v, 6) for k, v in event.metrics.items()}
        self.writes_to().log(record)
