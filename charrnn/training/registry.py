"""The task registry: the one seam between what differs from task to task and everything that does not.

A task is a `Task` subclass registered here under its name (`charrnn/tasks/` holds one module per task). It owns
the config keys it accepts, reading and batching its data, building its network, the training step, validation and
its headline figures (and which way is better), the units it reports in, and, through its `model` class, its
inference verbs. The config, trainer, checkpoints, API, CLI, sweep, bench and viz look a task up here and ask it;
none of them compares task names. Adding a task is one new module that defines a `Task` and registers it.
"""

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from charrnn.errors import CharRNNError


class Task:
    """The training side of a task: an instance holds the network, the data and the batches of one run, and makes
    each step's loss and gradients for the `Trainer`. The class attributes and class methods describe the task
    before there is a run (to check a config, read data, build a network, load a checkpoint, print a result)."""

    name: ClassVar[str]  # what --task says
    summary: ClassVar[str]  # what it learns, for --task's help: "next character"
    kind: ClassVar[str]  # a model of it, in a sentence: "a classifier"
    command: ClassVar[str]  # the command that uses a trained model: "classify"
    keys: ClassVar[tuple[str, ...]] = ()  # the config keys marked task_specific that it accepts
    headline: ClassVar[tuple[str, ...]] = ()  # validation figures reported while training, besides the loss
    maximised: ClassVar[tuple[str, ...]] = ()  # figures (of its evaluation) where higher is better
    loss_unit: ClassVar[str] = "char"  # what the loss is the mean over
    counts: ClassVar[str] = "characters"  # what training speed is counted in: "characters" or "examples"
    bench_batch: ClassVar[int] = 128  # `charrnn bench`'s batch size unless given
    sizable: ClassVar[bool] = False  # whether --size auto can choose its model
    model: ClassVar[type]  # the class of a trained model in the Python API (charrnn.load returns one)

    steps_per_epoch: int
    batch_chars: int  # input characters the last step read (0: the same every step, batch_size x seq_len)
    batch_examples: int  # examples the last step read (0: not counted in examples)

    def __init__(self, config: Any, data: Any) -> None:
        raise NotImplementedError

    @classmethod
    def check(cls, config: Any) -> None:
        """Refuse values this task cannot use together (each key's own values are checked by the config)."""

    @classmethod
    def load_data(cls, config: Any, cache_dir: Path | None = None, vocab: Any = None, outputs: Any = None) -> Any:
        """The training and validation data of `config`; with `vocab` (and `outputs`), in those vocabularies."""
        raise NotImplementedError

    @classmethod
    def build_network(cls, config: Any, vocab_size: int, num_outputs: int = 0) -> Any:
        """The network of `config`, initialised from its seed."""
        raise NotImplementedError

    @classmethod
    def synthetic_data(cls, config: Any, vocab_size: int, steps: int) -> Any:
        """Random data of this task's form, enough for `steps` steps (`charrnn bench` without a file)."""
        raise NotImplementedError

    @classmethod
    def describe_model(cls, config: Any) -> str:
        """What a model of this task does, as `charrnn info` says it."""
        return f"{cls.name}: {cls.summary}"

    @classmethod
    def batch(cls, config: Any) -> str:
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
