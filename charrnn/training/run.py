"""A run folder: the files one training run keeps, and the policy that keeps a user's run safe.

    runs/NAME/
        last.npz         the latest checkpoint (what `--resume` and every command read)
        best.npz         the checkpoint of the best validation loss
        step-NNNNNNN.npz numbered copies of last.npz, with --keep
        config.yaml      the effective config (defaults <- file <- flags)
        metrics.jsonl    a line of figures every --log-every steps and at every validation pass
        .lock            held by the one `charrnn train` writing here
        .replaced/       the run an --overwrite run replaces, until that run has its first checkpoint

Every write is whole or not at all: checkpoints through `checkpoint.save` (atomic), their second names by a link
or copy renamed into place. A run that fails before its first checkpoint leaves the folder as it found it.
"""

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.data.datasets import reference_name
from charrnn.errors import CharRNNError
from charrnn.tasks import registry
from charrnn.training import checkpoint
from charrnn.training.checkpoint import checkpoint_of, find_checkpoint
from charrnn.training.config import (
    NETWORK_KEYS,
    RESUMABLE,
    Config,
    build_config,
    flag,
    parse_duration,
    read_yaml,
)
from charrnn.training.limits import DEFAULT_EPOCHS, RunLength
from charrnn.training.sizing import MODEL_KEYS, pick_size
from charrnn.training.trainer import Trainer

LAST = checkpoint.LAST
BEST = "best.npz"
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
LOCK = ".lock"
REPLACED = checkpoint.REPLACED


class RunFolder:
    """The folder of one run: its file names, its lock, checkpoints and metrics written into it, and what
    --overwrite sets aside and puts back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def of(cls, config: Config) -> "RunFolder":
        """--run-dir, else runs/<the first corpus file's name>."""
        return cls(Path(config.run_dir) if config.run_dir else Path("runs") / reference_name(config.corpus[0]))

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def replaced(self) -> Path:
        return self.path / REPLACED

    @contextlib.contextmanager
    def lock(self) -> Iterator["RunFolder"]:
        """Only one `charrnn train` at a time here. The lock is an flock on .lock, so the system drops it when its
        process dies. A folder (or lock file) this creates is removed again if the run fails before its first
        checkpoint (a bad corpus, or a file that is not a checkpoint given to --resume), so a mistake leaves nothing
        behind; a run that --overwrite set aside comes back if the new
        run fails (or was killed) before its first checkpoint."""
        if self.path.exists() and not self.path.is_dir():
            raise CharRNNError(f"--run-dir {self.path} is a file, not a folder; choose another --run-dir.")
        created = [d for d in (self.path, *self.path.parents) if not d.exists()]  # innermost first
        new_lock = not (self.path / LOCK).exists()
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / LOCK).open("a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another process"
                raise CharRNNError(
                    f"{self.path} is in use by another charrnn train ({holder}); wait for it to finish, stop it, "
                    "or pass another --run-dir."
                ) from None
            lock.seek(0)
            lock.truncate()
            lock.write(f"pid {os.getpid()}")
            lock.flush()
            self.put_back()  # an --overwrite run killed before its first checkpoint replaced nothing
            try:
                yield self
            except BaseException:
                self.put_back()
                if not any(self.path.glob("*.npz")):  # failed before its first checkpoint: no trace
                    if created:
                        shutil.rmtree(created[-1])
                    elif new_lock:
                        (self.path / LOCK).unlink()
                raise

    def refuse_to_replace(self, overwrite: bool) -> None:
        """Refuse to replace a run the user already has, unless asked. Writes nothing."""
        if self.last.exists() and not overwrite:
            raise CharRNNError(
                f"{self.path} already holds a trained run ({LAST}); pass --resume to continue it, "
                "--overwrite to replace it, or --run-dir to train somewhere else."
            )

    def set_aside(self) -> None:
        """--overwrite: move the previous run's files into .replaced, so nothing of it mixes with the new run.
        They are deleted once the new run has saved its first checkpoint, and put back if it fails before that."""
        self.replaced.mkdir(exist_ok=True)
        for path in [self.last, self.best, self.metrics, self.config, *sorted(self.path.glob("step-*.npz"))]:
            if path.exists():
                os.replace(path, self.replaced / path.name)

    def put_back(self) -> None:
        """Return the files of a run set aside by --overwrite, unless the run that replaces it has a checkpoint."""
        if not self.replaced.is_dir() or self.last.exists():
            return
        for path in self.replaced.iterdir():
            os.replace(path, self.path / path.name)
        self.replaced.rmdir()

    def write_config(self, config: Config) -> None:
        """The effective config next to the checkpoints (`--config` reads it back)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config.to_yaml(), encoding="utf-8")

    def save(
        self, meta: dict[str, Any], arrays: dict[str, np.ndarray], step: int, last: bool, best: bool, keep: int
    ) -> Path:
        """Write last.npz (with a numbered copy, the newest `keep` of them kept) and/or best.npz."""
        path = self.last if last else self.best
        try:
            checkpoint.save(path, meta, arrays)
        except OSError as e:
            raise CharRNNError(
                f"could not write the checkpoint {path} ({e.strerror or e}); the previous one is intact. Free some "
                f"space or fix the folder's permissions, then continue with: charrnn train --resume {self.path}"
            ) from None
        if last:  # the run an --overwrite replaces goes once the new one has a checkpoint
            shutil.rmtree(self.replaced, ignore_errors=True)
        if last and best:
            _copy_atomically(path, self.best)
        if last and keep:
            _copy_atomically(path, self.path / f"step-{step:07d}.npz")
            for old in sorted(self.path.glob("step-*.npz"))[:-keep]:
                old.unlink()
        return path

    def log(self, record: dict[str, Any]) -> None:
        """One line of metrics.jsonl (strict JSON: a figure that is not finite is null)."""
        with self.metrics.open("a", encoding="utf-8") as f:
            f.write(json.dumps(json_safe(record), allow_nan=False) + "\n")

    def drop_metrics_after(self, step: int) -> None:
        """On resume, drop the lines a stopped run wrote after the checkpoint it resumes from."""
        if not self.metrics.is_file():
            return
        lines = self.metrics.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        if len(kept) != len(lines):
            self.metrics.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def json_safe(value: Any) -> Any:
    """`value` with every float that is not finite (a loss of skipped steps, say) as None: JSON has no NaN or
    infinity, and a reader of strict JSON would fail on Python's spelling of them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _copy_atomically(src: Path, dst: Path) -> None:
    """A second name for a checkpoint: a hard link where the file system has them, else a copy; never half."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


@contextlib.contextmanager
def start(
    corpus: list[Path],
    config: Path | Config | None,
    init_from: Path | None,
    overwrite: bool,
    overrides: dict[str, Any],
    notice: Callable[[str], None],
) -> Iterator[Trainer]:
    """A new run, locked for as long as the block lasts: the config (defaults <- `config` <- `overrides`, and
    from `init_from`'s checkpoint the network's shape, vocabularies and weights), its data, and its folder, checked
    and, with `overwrite`, its previous run set aside. `notice` hears what --size auto chose."""
    started = time.perf_counter()  # --max-time is the command's budget: loading the data and sizing count
    flags = {**overrides, "corpus": [str(p) for p in corpus] if corpus else overrides.get("corpus")}
    vocab, outputs, init_params = None, None, None
    if init_from is not None:  # the network's shape and vocabularies come from the checkpoint
        path = init_from / LAST if init_from.is_dir() else init_from
        if not path.is_file():
            raise CharRNNError(
                f"--init-from {init_from} is neither a checkpoint file nor a run folder with a {LAST}; give one of "
                "those."
            )
        network, vocab, source, meta, _ = checkpoint.load_model(path)
        outputs = meta.get("outputs")
        for key in NETWORK_KEYS:
            if flags.get(key) is not None and flags[key] != getattr(source, key):
                raise CharRNNError(
                    f"{flag(key)} {flags[key]} contradicts --init-from {init_from}, whose model has "
                    f"{key} {getattr(source, key)}; leave {flag(key)} out."
                )
            flags[key] = getattr(source, key)
        init_params = network.flat_params
    if isinstance(config, Config):
        cfg = config.replace(**{k: v for k, v in flags.items() if v is not None})
    else:
        cfg = build_config(config, flags)
    if not cfg.corpus:
        raise CharRNNError(
            "no corpus given; pass a text file (`charrnn train data/pond.txt`) or a --config with `corpus:`."
        )
    folder = RunFolder.of(cfg)
    with folder.lock():  # first: it puts back a run that a killed --overwrite set aside
        folder.refuse_to_replace(overwrite)
        data = registry.get(cfg.task).load_data(cfg, folder.path, vocab, outputs)
        if cfg.size == "auto":
            given = _user_keys(config, flags)
            sized = [k for k in MODEL_KEYS if k in given]
            if sized or init_from is not None:
                what = "--init-from" if init_from is not None else given[sized[0]]
                raise CharRNNError(f"--size auto chooses the model itself; leave out {what} or --size auto.")
            left = cfg.max_time - (time.perf_counter() - started)
            sizes = len(data.vocab), len(data.train), left, cfg.batch_size, cfg.seq_len
            val_chars = len(data.val) if cfg.val_frac else 0
            settings, why = pick_size(*sizes, given, cfg.max_steps, val_chars, cfg.eval_every)
            cfg = dataclasses.replace(cfg, **settings)
            notice(why)
        trainer = Trainer(cfg, data, folder, init_params)
        trainer.started = started
        if overwrite:
            folder.set_aside()
        folder.write_config(cfg)
        yield trainer


def _user_keys(config: Path | Config | None, flags: dict[str, Any]) -> dict[str, str]:
    """The config keys the user set (a flag, a key of the config file, or, in a Config, a value other than the
    default), which --size auto must neither override nor be contradicted by, each with how the user set it, in
    their own words: its flag, or its key in their file or Config."""
    if isinstance(config, Config):
        fields = dataclasses.fields(Config)
        named = {f.name: f"{f.name}= of the Config" for f in fields if getattr(config, f.name) != f.default}
    else:
        named = {key: f"the key `{key}` of {config}" for key in (read_yaml(config) if config is not None else {})}
    return named | {key: flag(key) for key, value in flags.items() if value is not None}


LIMIT_KEYS = ("max_steps", "epochs", "max_time")


@contextlib.contextmanager
def resume(
    target: Path | None, overrides: dict[str, Any], more: str | None = None, restart_schedule: bool = False
) -> Iterator[Trainer]:
    """The run in `target` (its folder or a checkpoint; None: the most recent), locked for as long as the block
    lasts, exactly where its checkpoint left it; `overrides` may change only the keys marked resume=True.

    `more` extends it by a number of steps ("2000") or a duration ("10m") from where it is. A run whose limits grow
    (by `more` or a raised limit) goes on at the learning rate it had reached, with the schedule's decay over what
    was added (`Trainer.extend`); `restart_schedule` runs the config's schedule anew over it instead."""
    started = time.perf_counter()
    # A folder is looked into once it is locked; a missing path is said to be missing as what it looks like.
    path = find_checkpoint() if target is None else None if target.is_dir() else checkpoint_of(target)
    folder = RunFolder(target if path is None else path.parent)
    with folder.lock():  # before the checkpoint is looked for: it puts back a run a killed --overwrite set aside
        path = path or find_checkpoint(run_dir=folder.path)
        vocab, saved, meta, arrays = checkpoint.read(path)
        if meta.get("optimizer_steps") is None:
            raise CharRNNError(f"checkpoint {path} holds no training position; it cannot be resumed.")
        changes = {key: value for key, value in overrides.items() if value is not None}
        fixed = sorted(set(changes) - set(RESUMABLE))
        if fixed:
            raise CharRNNError(
                f"{flag(fixed[0])} cannot change when resuming (the run goes on with its own settings); only "
                f"{', '.join(flag(k) for k in RESUMABLE)} can. To train anew from these weights, use --init-from."
            )
        if more is not None:
            changes |= _more(more, changes, meta)
        if "stop_reason" not in meta and saved.epochs == DEFAULT_EPOCHS and changes.keys() & set(LIMIT_KEYS):
            changes.setdefault("epochs", 0.0)  # the old default cap, never given: a limit given now is not cut by it
        cfg = saved.replace(run_dir=str(folder.path), **changes)
        data = registry.get(cfg.task).load_data(cfg, folder.path, vocab, meta.get("outputs"))
        trainer = Trainer(cfg, data, folder)
        trainer.started = started
        source = f"checkpoint {path}"
        checkpoint.fill(trainer.network, arrays, saved, source)
        trainer.load(meta, arrays, source)
        before = RunLength.of(saved, trainer.task.steps_per_epoch)  # the limits the run had
        if meta.get("lr") is None:  # a checkpoint older than that key: the rate its last update had
            trainer.last_lr = trainer.lr_under(before, trainer.step - 1)
        if restart_schedule or (before.steps, before.seconds) != (trainer.length.steps, trainer.length.seconds):
            trainer.extend(restart_schedule)
        elif trainer.stopped == "patience" and (not cfg.patience or cfg.patience > saved.patience):
            trainer.stopped = ""  # more patience: it goes on until the new count runs out
        trainer.check_can_train()
        folder.write_config(cfg)
        yield trainer


def _more(more: str, changes: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The limits that --more sets: N steps or a duration more than the run has had, and no other limit."""
    given = [key for key in LIMIT_KEYS if key in changes]
    if given:
        raise CharRNNError(f"--more sets how much longer the run goes on; leave out {flag(given[0])}.")
    if re.fullmatch(r"\s*\d+\s*", more):
        steps = int(more)
        if steps < 1:
            raise CharRNNError(
                "--more 0 adds nothing; give a number of steps (--more 1000) or a duration (--more 10m)."
            )
        return {"max_steps": int(meta.get("step", 0)) + steps, "epochs": 0.0, "max_time": 0.0}
    try:
        seconds = parse_duration(more)
    except ValueError:
        raise CharRNNError(
            f"--more takes a number of steps (--more 1000) or a duration (--more 10m), not {more!r}."
        ) from None
    spent = float(meta.get("train_seconds", 0.0))
    if seconds <= 0:
        raise CharRNNError(f"--more {more} adds no time; give a duration such as --more 10m.")
    return {"max_steps": 0, "epochs": 0.0, "max_time": round(spent + seconds, 3)}
