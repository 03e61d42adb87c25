"""What the tasks that learn from files of examples (input<TAB>target lines) share: batches of whole examples,
shuffled each epoch and grouped by length, full backpropagation over each from the zero state, nothing carried
between steps; and, for their trained models, reading inputs, voting, evaluating a labelled file and tracing the
encoder (`ExampleModel`)."""

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from charrnn.data.examples import (
    Encoded,
    ExampleBatches,
    ExampleData,
    check_known,
    encode,
    load_examples,
    read_examples,
)
from charrnn.data.text import Vocab, id_dtype, text_lines
from charrnn.errors import CharRNNError
from charrnn.nn.example_network import ExampleNetwork, log_probabilities
from charrnn.nn.functional import blank, pad
from charrnn.tasks import registry
from charrnn.tasks.model import Model, PathLike
from charrnn.tasks.registry import Compared, NetworkT, TaskConfig
from charrnn.tasks.trace import Trace, check_length, rank_cells, trace_examples


class ExampleTask(registry.Task[ExampleData, NetworkT]):
    """A task trained on whole examples: subclasses name their targets (`targets`, a kind of data.examples), the
    head of their network (or build a network of another kind), how a batch's targets are laid out, and how
    validation scores the model."""

    keys: ClassVar[tuple[str, ...]] = ("val_file", "max_len", "bidirectional", "label_smoothing")
    refusals: ClassVar[dict[str, str]] = {
        "size": "--size auto sizes language models; choose the model of --task {task} yourself.",
    }
    counts = "examples"
    torch_measures = (
        Compared("training examples/s", "train_examples_per_sec", "RESULT", "examples/s"),
        Compared("reading examples/s", "read_examples_per_sec", "INFER", "examples/s"),
    )
    targets: ClassVar[str]  # LABEL, OUTPUT or TARGET (charrnn.data.examples)
    head: ClassVar[str]  # what its network predicts: EXAMPLE or POSITION (charrnn.nn.example_network)

    def __init__(self, config: TaskConfig, data: ExampleData) -> None:
        self.config, self.data = config, data
        self.batches = ExampleBatches([len(s) for s in data.train.inputs], config.batch_size, config.seed)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.network = self.build_network(config, len(data.vocab), len(data.outputs))
        self.batch_chars = self.batch_examples = 0

    @classmethod
    def check(cls, config: TaskConfig) -> None:
        if len(config.corpus) > 1:
            raise CharRNNError(f"--task {config.task} trains on one file of examples (got {len(config.corpus)} files).")

    @classmethod
    def load_data(
        cls,
        config: TaskConfig,
        cache_dir: Path | None = None,
        vocab: Vocab | None = None,
        outputs: list[str] | None = None,
    ) -> ExampleData:
        c = config
        return load_examples(
            c.corpus[0],
            cls.targets,
            c.encoding,
            c.val_file,
            c.val_frac,
            c.seed,
            c.max_len,
            vocab,
            outputs,
            c.target_units,
        )

    @classmethod
    def build_network(cls, config: TaskConfig, vocab_size: int, num_outputs: int = 0) -> ExampleNetwork:
        """An encoder with the task's `head` (a task whose network is of another kind builds its own)."""
        spec = registry.recurrent_spec(config)
        return ExampleNetwork(cls.head, vocab_size, num_outputs, spec, config.pool, config.seed)

    @classmethod
    def synthetic_data(cls, config: TaskConfig, vocab_size: int, steps: int) -> ExampleData:
        """Random words of 3 to 20 characters (of `vocab_size`) with random targets (`random_targets`): 4,000 of
        them, or more if `steps` batches need more."""
        rng = np.random.default_rng(0)
        size = max(4000, steps * config.batch_size)
        inputs = [rng.integers(0, vocab_size, rng.integers(3, 21)).astype(id_dtype(vocab_size)) for _ in range(size)]
        targets, outputs = cls.random_targets(rng, inputs)
        vocab = Vocab([chr(0x100 + i) for i in range(vocab_size)])
        train = Encoded(inputs, targets, None)
        return ExampleData(vocab, outputs, train, Encoded([], [], None), "random", 0)

    @classmethod
    def torch_flags(cls, config: TaskConfig, vocab_size: int) -> list[str]:
        return ["--vocab-size", str(vocab_size), *(["--bidirectional"] if config.bidirectional else [])]

    @classmethod
    def random_targets(
        cls, rng: np.random.Generator, inputs: list[np.ndarray]
    ) -> tuple[np.ndarray | list[np.ndarray], list[str]]:
        """Targets for random inputs, and their output vocabulary."""
        raise NotImplementedError

    def describe(self) -> str:
        c, data = self.config, self.data
        direction = "bidirectional " if c.bidirectional else ""
        return (
            f"{c.task} with a {direction}{c.cell} {c.layers}×{c.hidden} ({self.network.num_params:,} parameters) on "
            f"{data.name}: {len(data.train):,} training and {len(data.val):,} validation examples, "
            f"{len(data.vocab)} input characters, {len(data.outputs)} {self.outputs_name}"
        )

    def batch_targets(self, index: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """The targets of the training examples `index`, as the network's loss takes them."""
        raise NotImplementedError

    def loss_and_grads(self, step: int, rng: np.random.Generator) -> float:
        index = self.batches.indices(step)
        train = self.data.train
        x, lengths = pad([train.inputs[i] for i in index], self.data.vocab.dtype)
        y = self.batch_targets(index)
        self.batch_chars, self.batch_examples = int(lengths.sum()), len(index)
        if self.config.input_dropout:
            x = blank(x, self.config.input_dropout, rng, len(self.data.vocab))
        return self.network.loss_and_grads(x, lengths, y, self.config.dropout, rng, self.config.label_smoothing)

    def evaluate(self) -> dict[str, float] | None:
        if not len(self.data.val):
            return None
        metrics = self.metrics([self.network], self.data.val, self.data.outputs)
        return {k: metrics[k] for k in ("val_loss", *self.headline())}

    def validation_size(self) -> int:
        return len(self.data.val)

    @classmethod
    def metrics(cls, nets: Sequence[NetworkT], encoded: Encoded, outputs: list[str]) -> dict[str, Any]:
        """The loss and the task's figures on labelled examples, of one network or several voting together."""
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        data = self.data
        return {
            "vocab": data.vocab.chars,
            "outputs": data.outputs,
            "corpus": {"name": data.name, "train_examples": len(data.train), "val_examples": len(data.val)},
        }

    def time_inference(self, limit: int = 2048) -> dict[str, float]:
        """Examples a second read by the trained network (a steady rate from `limit` of them, not a whole corpus,
        after one untimed batch has sized the buffers)."""
        sample = self.data.train.inputs[:limit]
        log_probabilities([self.network], sample[:256])
        start = time.perf_counter()
        log_probabilities([self.network], sample)
        return {"read_examples_per_sec": len(sample) / (time.perf_counter() - start)}


class ExampleModel(Model[ExampleData]):
    """A trained model that reads each input whole and whose networks can vote (a classifier, a tagger)."""

    votes = True

    @property
    def task_class(self) -> type[ExampleTask]:
        return registry.get(self.task)

    def evaluate(
        self,
        path: PathLike,
        unknown: str = "error",
        beam: int = 1,
        length_penalty: float = 1.0,
        encoding: str | None = None,
    ) -> dict[str, Any]:
        """How well the model does on a labelled file (input<TAB>target lines, read in `encoding`, by default the
        training file's): the loss, the task's figures, and the input characters left out as unknown."""
        self.no_decoding(beam, length_penalty)
        path = Path(path)
        kind = self.task_class.targets
        read = read_examples(path, kind, encoding or self.config.encoding)
        examples = check_known(read, self.vocab, self.outputs, kind, str(path), unknown, self.config.target_units)
        unseen = self.unseen(read.inputs, unknown)  # what --unknown skip left out (check_known refuses them else)
        encoded, _ = encode(examples, self.vocab, self.outputs, kind, self.config.max_len)
        metrics = self.task_class.metrics(self.networks, encoded, self.outputs)
        loss = metrics.pop("val_loss")
        return {"file": str(path), "examples": len(examples), "loss": loss, **metrics, "unknown": dict(unseen)}

    def trace(
        self,
        text: str | None = None,
        file: PathLike | None = None,
        max_len: int = 2000,
        unknown: str = "error",
        encoding: str | None = None,
    ) -> tuple[Trace, dict[str, list[dict]]]:
        """Run the encoder over each line of `text` (or a file's, read in `encoding`, or by default the run's
        validation inputs), at most `max_len` characters, keeping every cell's activations, and rank the cells
        against simple detectors of the text: what `charrnn viz` shows."""
        if len(self.networks) > 1:
            raise CharRNNError("charrnn viz shows one model at a time; give one checkpoint.")
        text = self.text_to_trace(text, file, max_len, encoding)
        lines = [line for line in text_lines(check_length(text, max_len)) if line.strip()]
        ids, _ = self.encode_inputs(lines, unknown)
        lines = [self.vocab.decode(i) for i in ids]
        trace = trace_examples(self.network, self.vocab, lines, self.outputs, self.traced)
        return trace, rank_cells(trace)

    traced: ClassVar[str] = "output"  # what the viz page calls the predictions it shows

    def validation_text(self, data: ExampleData, length: int) -> str:
        """The validation inputs, a line each, as many whole ones as fit in `length` characters."""
        lines, size = [], 0
        for line in data.val.examples.inputs:
            if size + len(line) + 1 > length:
                break
            lines.append(line)
            size += len(line) + 1
        return "\n".join(lines)
