"""The Python API: load a trained model and use it, or train one, exactly as the `charrnn` command does.

The command line is a thin shell over these functions: `charrnn sample` calls `LanguageModel.generate`, `charrnn
train` calls `train`, `charrnn bench` calls `bench`, and so on, so a script and the terminal always get the same
results for the same options. The model classes live with their tasks (`charrnn.tasks`).
"""

import contextlib
import dataclasses
import importlib.util
import os
import signal
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.apps.bench import ratios, run_bench, set_blas_threads, torch_arguments, torch_bench
from charrnn.apps.export import DEFAULT_OPSET, build, check, paths, write
from charrnn.apps.viz import write_page
from charrnn.data.datasets import resolve
from charrnn.errors import CharRNNError
from charrnn.interfaces.progress import TrainDisplay
from charrnn.tasks import registry
from charrnn.tasks.model import Model, PathLike
from charrnn.tasks.scoring import Score
from charrnn.tasks.trace import Trace
from charrnn.training import run
from charrnn.training.checkpoint import checkpoint_of, find_checkpoint, open_model
from charrnn.training.config import Config, build_config
from charrnn.training.runs import RunSummary, list_runs
from charrnn.training.trainer import Trainer, TrainEvent


def load(path: PathLike | None = None, *more: PathLike) -> Model:
    """The model in a run directory (its last.npz) or a checkpoint file; with no path, the most recent run under
    runs/, without a word (a library prints nothing; `model.path` says which, where the command line names it on
    stderr). Classifiers or taggers trained on the same file can be given together (`more`): they then vote, each
    input's probabilities being the mean of theirs (an ensemble).

        >>> model = charrnn.load("runs/shakespeare")
        >>> print(model.sample(200, seed=1))
        >>> charrnn.load("runs/wordlang-1", "runs/wordlang-2").evaluate("dev.tsv")["accuracy"]
    """
    if path is None:
        return open_model(find_checkpoint())
    for p in (path, *more):
        if not isinstance(p, str | os.PathLike):
            raise CharRNNError(f"a model to load is a run folder or a checkpoint file, given as a path (got {p!r}).")
    return open_model(*(checkpoint_of(Path(p)) for p in (path, *more)))


def runs(root: PathLike | None = None) -> list[RunSummary]:
    """The run folders under `root` (default runs/, where none is no runs), the most recently changed last, as
    `charrnn runs` lists them: task, model, step, best validation loss and figure, last change, and whether each is
    training, finished (it reached its limit) or stopped. Only checkpoints' metadata is read, never their weights.

        >>> [(r.name, r.state, r.best_val_loss) for r in charrnn.runs()]
        [('shakespeare', 'finished', 1.4415), ('wordlang', 'training', 0.4275)]
    """
    if root is None:
        return list_runs(Path("runs")) if Path("runs").exists() else []
    if not Path(root).exists():
        raise CharRNNError(f"{root} does not exist; give the folder that holds your runs (default runs/).")
    return list_runs(Path(root))


def load_from(checkpoints: Sequence[PathLike] = (), run_dirs: Sequence[PathLike] = ()) -> Model:
    """The model that --checkpoint files and --run-dir folders name (several vote together), else the most recent
    run's under runs/: what every command that uses a model loads."""
    paths = [find_checkpoint(checkpoint=Path(c)) for c in checkpoints]
    paths += [find_checkpoint(run_dir=Path(r)) for r in run_dirs]
    return open_model(*paths) if paths else open_model(find_checkpoint())


def classify_records(model: Model, inputs: list[str], top_k: int = 1, unknown: str = "error") -> list[dict]:
    """What `charrnn classify --json` prints (and `POST /v1/classify` returns): each input's likeliest labels."""
    results = model.classify(inputs, top_k, unknown)
    return [
        {"input": text, "labels": [{"label": label, "p": p} for label, p in top]}
        for text, top in zip(inputs, results, strict=True)
    ]


def tag_records(model: Model, inputs: list[str], unknown: str = "error") -> list[dict]:
    """What `charrnn tag --json` prints (and `POST /v1/tag` returns): each input's output."""
    outputs = model.tag(inputs, unknown)
    return [{"input": text, "output": out} for text, out in zip(inputs, outputs, strict=True)]


def translate_records(
    model: Model,
    inputs: list[str],
    beam: int = 1,
    n_best: int = 1,
    length_penalty: float = 1.0,
    unknown: str = "error",
) -> list[dict]:
    """What `charrnn translate --json` prints (and `POST /v1/translate` returns): each input's output, or with
    n_best > 1 its best outputs with their log-probabilities and scores."""
    results = model.translate(inputs, beam, n_best, length_penalty, unknown)
    if n_best == 1:
        return [{"input": text, "output": r} for text, r in zip(inputs, results, strict=True)]
    return [
        {"input": text, "outputs": [{"output": o, "log_prob": lp, "score": sc} for o, lp, sc in r]}
        for text, r in zip(inputs, results, strict=True)
    ]


def score_records(
    model: Model, texts: dict[str, str], per_line: bool = False, order: str = "none", unknown: str = "error"
) -> list[dict]:
    """What `charrnn score --json` prints (and `POST /v1/score` returns): the score of each text (named by its key)
    or, per_line, of each line (sorted by `order`: none, asc or desc), and their total when there are several.
    Characters the model never saw are an error that names the text, or with unknown="skip" left out and counted."""
    if order not in ("none", "asc", "desc"):
        raise CharRNNError(f"--sort must be none, asc or desc (got {order!r}).")
    scores = model.scores(list(texts.values()), per_line, unknown, list(texts))
    if per_line:
        if order != "none":
            scores.sort(key=lambda s: s.nats, reverse=order == "desc")
    else:
        scores = [dataclasses.replace(s, name=name) for s, name in zip(scores, texts, strict=True)]
    total = Score(
        "total",
        sum(s.total_nats for s in scores),
        sum(s.chars for s in scores),
        sum((s.unknown for s in scores), Counter()),
    )
    return [s.record() for s in ([*scores, total] if len(scores) > 1 else scores)]


def viz_page(model: Model, trace: Trace, ranking: dict[str, list[dict]]) -> str:
    """The self-contained HTML page of `charrnn viz` for a model's `trace` (what `model.trace` returns)."""
    return write_page(trace, ranking, model.config.cell, f"{model.path} ({model.config.cell})")


def bench(
    corpus: PathLike | None = None,
    *,
    vocab_size: int = 65,
    warmup: int = 5,
    steps: int = 50,
    batch_size: int | None = None,
    threads: int | None = None,
    **keys: Any,
) -> dict[str, Any]:
    """Time a task's training steps and the trained network's use, as `charrnn bench` does: on `corpus` (a text,
    or a file of examples), else on random data of the task's form with `vocab_size` symbols. `keys` are config
    keys (task, cell, layers, hidden, ...); the model is timed without dropout, as the PyTorch reference is.
    `threads` sets BLAS's thread count for the rest of the process.

        >>> charrnn.interfaces.api.bench(task="classify", hidden=128)["train_examples_per_sec"]
    """
    config, data = _bench_config(corpus, vocab_size, warmup, steps, batch_size, keys)
    if threads is not None:
        set_blas_threads(threads)
    return run_bench(config, data, warmup, steps)


def bench_with_torch(
    corpus: PathLike | None = None,
    *,
    python: str | None = None,
    pairs: int = 1,
    threads: int = 2,
    vocab_size: int = 65,
    warmup: int = 5,
    steps: int = 50,
    batch_size: int | None = None,
    **keys: Any,
) -> dict[str, Any]:
    """`bench`, then the PyTorch reference (benchmarks/torch_reference.py) on the same model, batch, data and
    steps, alternately `pairs` times, both on `threads` threads: charrnn's results, PyTorch's, and per measure the
    medians and the median ratio charrnn/PyTorch (`charrnn bench --torch`). `python` is a Python with torch
    (default: this one, if it can import torch).

        >>> charrnn.interfaces.api.bench_with_torch(task="tag", python=".venv-torch/bin/python")["ratios"]
    """
    if python is None:
        if importlib.util.find_spec("torch") is None:
            raise CharRNNError(
                "--torch needs PyTorch, which this Python cannot import; install it here, or give --torch-python, "
                "a Python that has it (python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy)."
            )
        python = sys.executable
    config, data = _bench_config(corpus, vocab_size, warmup, steps, batch_size, keys)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(corpus) if corpus is not None else None
        if path is not None:
            path = resolve(str(path))
        elif config.task == "lm":  # the reference reads a text: random text of the same symbols
            path = Path(folder) / "random.txt"
            symbols = np.array([chr(0x100 + i) for i in range(vocab_size)])
            path.write_text("".join(np.random.default_rng(0).choice(symbols, 400_000)), encoding="utf-8")
        arguments = torch_arguments(config, path, vocab_size, warmup, steps)
        for _ in range(pairs):
            set_blas_threads(threads)
            ours.append(run_bench(config, data, warmup, steps))
            theirs.append(torch_bench(python, arguments, threads))
    return {"charrnn": ours, "torch": theirs, "ratios": ratios(config.task, ours, theirs)}


def _bench_config(
    corpus: PathLike | None, vocab_size: int, warmup: int, steps: int, batch_size: int | None, keys: dict
) -> tuple[Config, Any]:
    task = registry.get(keys.get("task", Config.task))
    flags = {**keys, "batch_size": batch_size or task.bench_batch, "dropout": 0.0, "val_frac": 0.0}
    if corpus is not None:
        flags["corpus"] = [str(corpus)]
    config = build_config(None, flags)
    data = task.load_data(config) if corpus is not None else task.synthetic_data(config, vocab_size, warmup + steps)
    return config, data


def export(model: Model, out: PathLike, opset: int = DEFAULT_OPSET, force: bool = False) -> list[Path]:
    """Write `model` as ONNX, as `charrnn export` does (the contract is docs/export.md; needs `charrnn[export]`):
    `out`, and for an encoder-decoder also its decoder step beside it (NAME.decoder.onnx); returns the files. An
    existing file that charrnn did not write is replaced only with force=True.

        >>> charrnn.export(charrnn.load("runs/wordlang"), "wordlang.onnx")
        [PosixPath('wordlang.onnx')]
    """
    exported = build(model, opset)
    write(exported, Path(out), force)
    return list(paths(Path(out), exported).values())


def check_export(model: Model, path: PathLike) -> float:
    """The largest difference between ONNX Runtime's outputs for the exported `path` and `model`'s own, on random
    inputs of several lengths and batches (`charrnn export --check`; it fails above 1e-4).

        >>> charrnn.check_export(model, "wordlang.onnx")
        1.58e-06
    """
    return check(model, Path(path))


@dataclass
class Run:
    """What a training run reached; `reason` says why it stopped ("interrupted" after Ctrl-C).

    >>> run = charrnn.train("data/pond.txt", max_steps=200)
    >>> run.run_dir, run.steps, run.best_val_loss
    (PosixPath('runs/pond'), 200, 2.05)
    """

    run_dir: Path
    task: str
    steps: int
    val_loss: float | None
    best_val_loss: float | None
    train_seconds: float
    reason: str

    @property
    def interrupted(self) -> bool:
        return self.reason == "interrupted"

    def load(self) -> Model:
        """The model as last saved (last.npz)."""
        return load(self.run_dir)


def train(
    corpus_or_config: PathLike | Sequence[PathLike] | Config | None = None,
    *,
    config: PathLike | Config | None = None,
    resume: bool = False,
    init_from: PathLike | None = None,
    overwrite: bool = False,
    more: int | str | None = None,
    restart_schedule: bool = False,
    progress: bool = True,
    callback: Callable[[TrainEvent], None] | None = None,
    stop: threading.Event | None = None,
    **overrides: Any,
) -> Run:
    """Train a model as `charrnn train` does, with the same config keys, run directory and checkpoints.

    `corpus_or_config` is a text file (or a list of them), a YAML config file (.yaml or .yml) or a `Config`; with
    resume=True, the run to continue (its folder or a checkpoint; default: the most recent). `overrides` are config
    keys, as command-line flags are (`max_steps=200`, `dropout=0.1`). With resume=True, `more` extends the run by a
    number of steps (2000) or a duration ("10m"), its learning rate going on from where it was (`restart_schedule`:
    the whole schedule anew). It shows its progress as `charrnn train` does (a bar on stderr, in a terminal or a
    notebook, and a line per validation pass) unless progress=False; `callback` receives every `TrainEvent`.
    Ctrl-C (or a notebook's interrupt), or setting `stop` from another thread, lets the current step finish, saves,
    and returns a run whose `interrupted` is True; continue it with `train(run.run_dir, resume=True)`.

        >>> run = charrnn.train("data/pond.txt", max_steps=200, dropout=0.1, run_dir="runs/d0.1")
        >>> run.val_loss
        2.05
    """
    if not resume and (more is not None or restart_schedule):
        given = "--more" if more is not None else "--restart-schedule"
        raise CharRNNError(f"{given} extends a run you already have; add --resume (and the run's folder).")
    display = TrainDisplay() if progress else None
    hooks = [h for h in (display and display.on_event, callback) if h]

    def emit(event: TrainEvent) -> None:
        for hook in hooks:
            hook(event)

    with display or contextlib.nullcontext():
        return _train(
            corpus_or_config, config, resume, init_from, overwrite, more, restart_schedule, emit, stop, overrides
        )


def _train(
    corpus_or_config: Any,
    config: PathLike | Config | None,
    resume: bool,
    init_from: PathLike | None,
    overwrite: bool,
    more: int | str | None,
    restart_schedule: bool,
    emit: Callable[[TrainEvent], None],
    stop: threading.Event | None,
    overrides: dict[str, Any],
) -> Run:
    names_config = isinstance(corpus_or_config, Config) or (
        isinstance(corpus_or_config, str | Path) and Path(corpus_or_config).suffix in (".yaml", ".yml")
    )
    if names_config and config is None and not resume:
        corpus_or_config, config = None, corpus_or_config
    if isinstance(corpus_or_config, str | os.PathLike):
        corpus_or_config = [corpus_or_config]
    if not (corpus_or_config is None or isinstance(corpus_or_config, Sequence)) or not all(
        isinstance(p, str | os.PathLike) for p in corpus_or_config or []
    ):
        raise CharRNNError(
            "train's first argument is a text file, a list of them, a YAML config file or a Config "
            f"(got {corpus_or_config!r})."
        )
    targets = [Path(p) for p in corpus_or_config or []]
    if resume:
        if config is not None or init_from is not None or overwrite:
            raise CharRNNError(
                "--resume continues a run with its own settings; leave out --config, --init-from and --overwrite."
            )
        if len(targets) > 1:
            raise CharRNNError("--resume takes one run: its folder or a checkpoint file.")
        opened = run.resume(
            targets[0] if targets else None, overrides, None if more is None else str(more), restart_schedule
        )
    else:
        config = config if config is None or isinstance(config, Config) else Path(config)
        init_from = None if init_from is None else Path(init_from)
        opened = run.start(
            targets, config, init_from, overwrite, overrides, lambda text: emit(TrainEvent("notice", text=text))
        )
    with opened as trainer:
        cfg = trainer.config
        length = trainer.length.describe(trainer.step, trainer.task.batch(cfg), trainer.train_seconds)
        verb = "resuming" if resume else "training"
        if resume and not targets:  # the most recent run: say which before anything else
            verb = f"resuming the most recent run, {trainer.run_dir} (name one to choose):"
        text = f"{verb} {trainer.task.describe()}; {length}; run directory {trainer.run_dir}"
        emit(TrainEvent("start", cfg.task, trainer.step, trainer.total_steps, text=text))
        cut = getattr(trainer.data, "cut", 0)
        if cut:
            emit(TrainEvent("notice", text=f"{cut:,} inputs longer than --max-len {cfg.max_len} were cut to it"))
        trainer.stop_event = stop
        with _stop_on_signals(trainer, emit):
            end = trainer.run(emit)
    t = trainer
    return Run(t.run_dir, t.config.task, t.step, t.val_loss, t.best_val, t.train_seconds, end.text)


@contextlib.contextmanager
def _stop_on_signals(trainer: Trainer, emit: Callable[[TrainEvent], None]) -> Iterator[None]:
    """The first Ctrl-C (SIGINT) or SIGTERM lets the current step finish, then the run saves and stops; a second
    one stops at once. Signal handlers can only be set in the main thread; elsewhere the run has none."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: object) -> None:
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        text = "stopping after this step, then saving (press Ctrl-C again to quit at once)"
        emit(TrainEvent("notice", trainer.config.task, trainer.step, text=text))

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
