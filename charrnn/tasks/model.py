"""What every trained model has in the Python API, whatever its task: its network, vocabulary and outputs, `info`,
voting with others of its kind, and the checks of the options every verb takes. Each task's module subclasses
`Model` with its own verbs (`LanguageModel.sample`, `Classifier.classify`, ...); `charrnn.load` reads checkpoints
(`charrnn.training.checkpoint.open_model`) and returns the subclass of their task."""

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic

import numpy as np

from charrnn.data.examples import unseen_characters
from charrnn.data.text import Vocab, read_text
from charrnn.errors import CharRNNError
from charrnn.nn.network import Network
from charrnn.tasks import registry
from charrnn.tasks.registry import DataT, TaskConfig

PathLike = str | os.PathLike
# A checkpoint as read: its file, network, vocabulary, config and metadata.
Loaded = tuple[Path, Network, Vocab, TaskConfig, dict[str, Any]]


def texts_of(texts: str | Sequence[str], what: str = "texts") -> list[str]:
    """The inputs as a list: one string is one input (not a list of its characters); anything else but strings is
    a CharRNNError."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, bytes | bytearray) or not isinstance(texts, Sequence):
        raise CharRNNError(f"{what} must be a string or a list of strings (got {type(texts).__name__}).")
    for text in texts:
        if not isinstance(text, str):
            got = f"a list holding {type(text).__name__}"
            raise CharRNNError(f"{what} must be a string or a list of strings (got {got}).")
    return list(texts)


def whole(value: object, flag: str, minimum: int = 1) -> int:
    """A count option (--top-k, --beam, --n-best, --len): a whole number >= `minimum`, else a CharRNNError naming
    it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise CharRNNError(f"{flag} must be a whole number (got {value!r}).")
    if value < minimum:
        raise CharRNNError(f"{flag} must be >= {minimum} (got {value}).")
    return int(value)


def seed_of(value: object) -> int | None:
    """--seed: a whole number >= 0, or None for a fresh draw."""
    return None if value is None else whole(value, "--seed", 0)


def finite(value: object, flag: str) -> float:
    """A real-valued option: a finite number, else a CharRNNError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value):
        raise CharRNNError(f"{flag} must be a finite number (got {value!r}).")
    return float(value)


class Model(Generic[DataT]):
    """A trained model read from a checkpoint. Get one with `charrnn.load`, which returns the class of its task:
    `LanguageModel` (sample, score, predict), `Classifier` (classify), `Tagger` (tag) or `Translator` (translate);
    every one evaluates a labelled file and describes itself (`info`).

    >>> model = charrnn.load("runs/shakespeare")
    >>> model.sample(100, prime="ROMEO:", seed=1), model.score("To be, or not to be")
    >>> charrnn.load("runs/wordlang").classify(["lebensmittel", "bonjour"])
    """

    votes: ClassVar[bool] = False  # whether models of this class can vote together (an ensemble)

    def __init__(self, loaded: Sequence[Loaded]) -> None:
        """The model of the first checkpoint read (see `Loaded`), with the others voting with it."""
        (path, network, self.vocab, self.config, self.meta), *voters = loaded
        self.paths = [path]
        self.networks = [network]
        for voter in voters:
            self._add_voter(voter)

    @property
    def path(self) -> Path:
        """The checkpoint (an ensemble's first)."""
        return self.paths[0]

    @property
    def network(self) -> Network:
        """The network (an ensemble's first): what every verb but those of voting models runs."""
        return self.networks[0]

    @property
    def task(self) -> str:
        """What the model does: the name of its task ("lm", "classify", "tag", "seq2seq", ...)."""
        return self.config.task

    @property
    def kind(self) -> str:
        """The model in words: "a classifier"."""
        return registry.get(self.task).kind

    @property
    def outputs(self) -> list[str]:
        """A classifier's labels, a tagger's output characters or a translator's output tokens (EOS first)."""
        return list(self.meta.get("outputs") or [])

    def outputs_text(self) -> str:
        """The outputs as `charrnn info` lists them."""
        return " ".join(self.outputs)

    @property
    def name(self) -> str:
        """The checkpoint, or the checkpoints of an ensemble joined by " + "."""
        return " + ".join(str(p) for p in self.paths)

    def __repr__(self) -> str:
        c = self.config
        more = f" and {len(self.paths) - 1} more" if len(self.paths) > 1 else ""
        return f"<charrnn.{type(self).__name__} {c.task} {c.cell} {c.layers}×{c.hidden} from {self.path}{more}>"

    def able(self, verb: str, action: str) -> "Model[DataT]":
        """This model, if its class has the method `verb`; else the CharRNNError that says which kind of model
        does and what this one is for (the command line calls this before a verb)."""
        if hasattr(self, verb):
            return self
        needed = next((t.kind for t in registry.TASKS.values() if hasattr(t.model, verb)), "another model")
        command = registry.get(self.task).command
        raise CharRNNError(
            f"{action} needs {needed}, but {self.path} holds {self.kind} (task {self.task}); use charrnn {command} "
            "with it, or another checkpoint."
        )

    def _add_voter(self, loaded: Loaded) -> None:
        """Let the model read from another checkpoint vote with this one (its verbs average their probabilities)."""
        if not self.votes:
            voters = " and ".join(f"{cls.__name__.lower()}s" for cls in _voting_classes())
            raise CharRNNError(f"only {voters} vote together; {self.path} holds {self.kind}, so give it alone.")
        path, network, vocab, config, meta = loaded
        for what, theirs, ours in (
            ("tasks", config.task, self.task),
            ("input characters", vocab.chars, self.vocab.chars),
            (self.outputs_name, meta.get("outputs"), self.outputs),
        ):
            if theirs != ours:
                raise CharRNNError(
                    f"{path} cannot vote with {self.path}: their {what} differ; combine models trained on the same "
                    "file."
                )
        self.paths.append(path)
        self.networks.append(network)

    @property
    def outputs_name(self) -> str:
        """What `outputs` are, in words: "labels" (its task's)."""
        return registry.get(self.task).outputs_name

    def unseen(self, texts: Sequence[str], unknown: str = "error", where: str = "the input") -> Counter:
        """The characters of `texts` (`where`, in a message) the model never saw in training, counted; an error
        unless unknown="skip" (`unseen_characters`: the policy of every verb)."""
        return unseen_characters(self.vocab, texts, unknown, where)

    def encode_inputs(self, texts: list[str], unknown: str) -> tuple[list[np.ndarray], list[list[int]]]:
        """The ids of each text, and where each had characters the model never saw (left out with "skip")."""
        self.unseen(texts, unknown)
        ids, skipped = [], []
        for number, text in enumerate(texts, 1):
            known = "".join(c for c in text if c in self.vocab.index)
            if not known:
                raise CharRNNError(f"input {number} ({text!r}) has no character the model knows; give it some text.")
            ids.append(self.vocab.encode(known))
            skipped.append([i for i, c in enumerate(text) if c not in self.vocab.index])
        return ids, skipped

    def evaluate(
        self,
        path: PathLike,
        unknown: str = "error",
        beam: int = 1,
        length_penalty: float = 1.0,
        encoding: str | None = None,
    ) -> dict[str, Any]:
        """How well the model does on a file (see each task's model), read in `encoding` (default: the model's
        training text's)."""
        raise NotImplementedError

    def read(self, path: PathLike, encoding: str | None = None) -> str:
        """A user's text file, read in `encoding`, by default the one the model's training text was read in (a model
        trained on a latin-1 file reads its own kind of file without being told)."""
        return read_text(Path(path), encoding or self.config.encoding, what="file")

    def text_to_trace(self, text: str | None, file: PathLike | None, max_len: int, encoding: str | None = None) -> str:
        """What `trace` reads: TEXT, the text of a file, or by default the start of the run's own validation data,
        about `max_len` characters of it (`validation_text`)."""
        if text is not None and file is not None:
            raise CharRNNError("give the text as TEXT or with --file, not both.")
        if file is not None:
            return self.read(file, encoding)
        if text is not None:
            return text
        try:
            data = registry.get(self.task).load_data(self.config, None, self.vocab, self.outputs or None)
        except CharRNNError as e:
            raise CharRNNError(f"the run's validation text could not be read ({e}); give TEXT or --file.") from None
        return self.validation_text(data, max_len)

    def validation_text(self, data: DataT, length: int) -> str:
        """The start of the run's validation data (its task's `load_data`), as text to trace."""
        raise NotImplementedError

    def no_decoding(self, beam: object, length_penalty: object) -> None:
        """--beam and --length-penalty, refused by models that do not decode."""
        if beam != 1 or length_penalty != 1.0:
            raise CharRNNError(
                f"--beam and --length-penalty are for seq2seq models; {self.path} is a {self.task} model."
            )

    @property
    def info(self) -> dict[str, Any]:
        """What the checkpoint holds, as `charrnn info --json` prints it.

        >>> model.info["val_loss"]
        1.47
        """
        c, meta = self.config, self.meta
        return {
            "checkpoint": str(self.path),
            "task": c.task,
            "cell": c.cell,
            "layers": c.layers,
            "hidden": c.hidden,
            "vocab_size": len(self.vocab),
            "parameters": self.network.num_params,
            "dtype": c.dtype,
            "vocab": "".join(self.vocab.chars),
            "step": meta.get("step"),
            "epoch": meta.get("epoch"),
            "outputs": self.outputs,
            "val_loss": meta.get("val_loss"),
            "metrics": meta.get("metrics") or {},
            "best_val_loss": meta.get("best_val_loss"),
            "corpus": meta.get("corpus", {}) | {"files": c.corpus},
            "train_seconds": meta.get("train_seconds"),
            "format_version": meta.get("version"),
            "charrnn_version": meta.get("charrnn_version"),
            "config": c.to_dict(),
        }


def _voting_classes() -> list[type[Model]]:
    return [task.model for task in registry.TASKS.values() if task.model.votes]
