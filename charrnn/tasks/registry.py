"""The task registry: the one seam between what differs from task to task and everything that does not.

A task is a `Task` subclass registered here under its name (the other modules of `charrnn/tasks/` are one task
each). It declares the config keys only it takes, its figures (`Metric`: name, format, which way is better), what
its outputs are called, what its speed counts and how the PyTorch reference runs it; it reads and batches its data,
builds its network, makes the training step and validates; its `model` class holds its inference verbs. The config,
trainer, checkpoints, API, CLI, sweeps, bench and viz look a task up here and ask it; none of them compares task
names. Adding a task is one new module that defines a `Task` and registers it.

The tasks sit below `charrnn.training`, whose config asks them which keys are theirs; they know a config only as
what they read of it (`TaskConfig`).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from charrnn.data.text import Vocab
from charrnn.errors import CharRNNError
from charrnn.nn.network import Network
from charrnn.nn.stack import RecurrentSpec


class TaskConfig(Protocol):
    """What the tasks read of a run's config (`charrnn.training.config.Config` is one, made above the tasks)."""

    task: str
    corpus: list[str]  # the data
    encoding: str
    newline: str
    max_vocab: int
    val_frac: float
    val_file: str
    max_len: int
    target_units: str
    cell: str  # the network
    layers: int
    hidden: int
    dtype: str
    forget_bias: float
    embed: int
    bidirectional: bool
    output_dropout: bool
    pool: str
    attention: str
    input_feeding: bool
    seed: int  # the training
    batch_size: int
    seq_len: int
    reset_every: int
    dropout: float
    input_dropout: float
    label_smoothing: float

    def to_dict(self) -> dict[str, Any]:
        """Every key and its value."""


DataT = TypeVar("DataT")  # what a task trains on, as its `load_data` reads it: a Corpus, an ExampleData, ...
NetworkT = TypeVar("NetworkT", bound=Network)  # the network it trains


@dataclass(frozen=True)
class Metric:
    """A figure a task reports besides its loss: the key it has in results and metrics.jsonl, whether it is a
    fraction shown as a percentage (92.36 %) or a score shown as such (0.9236), which way is better, and whether
    training reports it at every validation pass (else only `charrnn eval` does)."""

    name: str
    percent: bool = True
    higher_is_better: bool = True
    headline: bool = True

    def format(self, value: float) -> str:
        return f"{100 * value:.2f} %" if self.percent else f"{value:.4f}"


class Compared(NamedTuple):
    """A speed that `charrnn bench --torch` compares: its name, its key in bench's results, and the line and field
    of the PyTorch reference's output (benchmarks/torch_reference.py) that match it."""

    measure: str
    key: str
    line: str
    field: str


class Task(Generic[DataT, NetworkT]):
    """The training side of a task: an instance holds the network, the data and the batches of one run, and makes
    each step's loss and gradients for the `Trainer`. The class attributes and class methods describe the task
    before there is a run (to check a config, read data, build a network, load a checkpoint, print a result)."""

    name: ClassVar[str]  # what --task says
    summary: ClassVar[str]  # what it learns, for --task's help: "next character"
    kind: ClassVar[str]  # a model of it, in a sentence: "a classifier"
    command: ClassVar[str]  # the command that uses a trained model: "classify"
    keys: ClassVar[tuple[str, ...]] = ()  # the config keys that only the tasks listing them take
    refusals: ClassVar[dict[str, str]] = {}  # why it takes no such key of another task, where a reason helps
    figures: ClassVar[tuple[Metric, ...]] = ()  # what it reports besides the loss, in the order shown
    outputs_name: ClassVar[str] = "outputs"  # what its output vocabulary holds, in words: "labels"
    loss_unit: ClassVar[str] = "char"  # what the loss is the mean over
    counts: ClassVar[str] = "characters"  # what training speed is counted in: "characters" or "examples"
    bench_batch: ClassVar[int] = 128  # `charrnn bench`'s batch size unless given
    torch_measures: ClassVar[tuple[Compared, ...]] = ()  # what `charrnn bench --torch` compares, in that order
    model: ClassVar[type]  # the class of a trained model in the Python API (charrnn.load returns one)

    network: NetworkT  # the network being trained (what `build_network` made)
    steps_per_epoch: int
    batch_chars: int  # input characters the last step read (0: the same every step, batch_size x seq_len)
    batch_examples: int  # examples the last step read (0: not counted in examples)

    def __init__(self, config: TaskConfig, data: DataT) -> None:
        raise NotImplementedError

    @classmethod
    def headline(cls) -> tuple[str, ...]:
        """The figures reported at every validation pass while training."""
        return tuple(m.name for m in cls.figures if m.headline)

    @classmethod
    def maximised(cls, name: str) -> bool:
        """Whether a higher `name` is better (never for the loss)."""
        return any(m.name == name and m.higher_is_better for m in cls.figures)

    @classmethod
    def format_figures(cls, figures: dict[str, float]) -> list[str]:
        """ "accuracy 92.36 %", ... for the figures it reports, in its own order and format."""
        return [f"{m.name} {m.format(figures[m.name])}" for m in cls.figures if m.name in figures]

    @classmethod
    def check(cls, config: TaskConfig) -> None:
        """Refuse values this task cannot use together (each key's own values are checked by the config)."""

    @classmethod
    def load_data(
        cls,
        config: TaskConfig,
        cache_dir: Path | None = None,
        vocab: Vocab | None = None,
        outputs: list[str] | None = None,
    ) -> DataT:
        """The training and validation data of `config`; with `vocab` (and `outputs`), in those vocabularies."""
        raise NotImplementedError

    @classmethod
    def build_network(cls, config: TaskConfig, vocab_size: int, num_outputs: int = 0) -> NetworkT:
        """The network of `config`, initialised from its seed."""
        raise NotImplementedError

    @classmethod
    def synthetic_data(cls, config: TaskConfig, vocab_size: int, steps: int) -> DataT:
        """Random data of this task's form, enough for `steps` steps (`charrnn bench` without a file)."""
        raise NotImplementedError

    @classmethod
    def torch_flags(cls, config: TaskConfig, vocab_size: int) -> list[str]:
        """The PyTorch reference's flags for what this task's model and data have of their own (`charrnn bench
        --torch` gives the rest: the cell, sizes, batch, steps and corpus)."""
        return []

    @classmethod
    def describe_model(cls, config: TaskConfig) -> str:
        """What a model of this task does, as `charrnn info` says it."""
        return f"{cls.name}: {cls.summary}"

    @classmethod
    def batch(cls, config: TaskConfig) -> str:
        """What one step reads, in words."""
        return f"{config.batch_size} examples"

    @classmethod
    def usage(cls, run: str) -> str:
        """How to go on with a trained run, printed when training ends."""
        return f"Use it with: charrnn {cls.command} {run} TEXT..., or measure it with: charrnn eval FILE {run}"

    def describe(self) -> str:
        """The run in a sentence: the model and the data."""
        raise NotImplementedError

    def loss_and_grads(self, step: int, rng: np.random.Generator) -> float:
        """The mean loss of update number `step`'s batch; fills the network's gradients."""
        raise NotImplementedError

    def accept(self) -> None:
        """The step was taken (the task may carry state to the next one)."""

    def reject(self) -> None:
        """The step was skipped (its loss or gradient was not finite)."""

    def evaluate(self) -> dict[str, float] | None:
        """The validation loss ("val_loss") and the headline figures; None without validation data."""
        raise NotImplementedError

    def validation_size(self) -> int:
        """What a validation pass reads, in the units training speed is counted in (`counts`): the trainer keeps
        time for the last pass within --max-time from it before it has timed one."""
        raise NotImplementedError

    def sample(self, seed: int) -> str | None:
        """A short sample shown while training (--sample-every); None if the task has none."""
        return None

    def meta(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data: the vocabularies and the corpus's size."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays a checkpoint keeps to resume exactly (a language model's stream states)."""
        return {}

    def load_arrays(self, arrays: dict[str, np.ndarray], source: str) -> None:
        """Take back what `arrays` kept, from a checkpoint (`source` names it in errors)."""

    def time_inference(self) -> dict[str, float]:
        """`charrnn bench`: the speed of the trained model's use (sampling, reading or decoding)."""
        return {}


def recurrent_spec(config: TaskConfig) -> RecurrentSpec:
    """What defines the recurrent part of `config`'s network."""
    c = config
    return RecurrentSpec(c.cell, c.hidden, c.layers, c.dtype, c.forget_bias, c.embed, c.bidirectional, c.output_dropout)


TASKS: dict[str, type[Task]] = {}


def register(task: type[Task]) -> type[Task]:
    """Make `task` known by its name (as a class decorator): --task, checkpoints and charrnn.load find it."""
    TASKS[task.name] = task
    return task


def get(name: str) -> type[Task]:
    """The task registered as `name`."""
    if name not in TASKS:
        raise CharRNNError(f"no task is named {name!r}; the tasks are {', '.join(TASKS)}.")
    return TASKS[name]


def names() -> tuple[str, ...]:
    return tuple(TASKS)
