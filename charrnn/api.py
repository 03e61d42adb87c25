"""The Python API: load a trained model and use it, or train one, exactly as the `charrnn` command does.

The command line is a thin shell over these functions: `charrnn sample` calls `Model.generate`, `charrnn train`
calls `train`, and so on, so a script and the terminal always get the same results for the same options.
"""

import contextlib
import dataclasses
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.apps.viz import Trace, check_length, rank_cells, trace_examples, trace_language_model
from charrnn.data.examples import EOS, check_known, encode, read_examples, unknown_report
from charrnn.data.text import read_text, text_lines
from charrnn.errors import CharRNNError
from charrnn.nn.example_network import log_probabilities
from charrnn.nn.network import Network
from charrnn.nn.seq2seq import decode, forced_log_prob
from charrnn.tasks._old import detokenize, example_metrics, load_data, seq2seq_metrics
from charrnn.tasks.sampling import Sampler, check_prime, sample_ids, sample_texts
from charrnn.tasks.scoring import Score, next_char_probs, score_lines, score_text
from charrnn.training.checkpoint import LAST, find_checkpoint, load_model
from charrnn.training.config import NETWORK_KEYS, Config, build_config, flag, read_yaml
from charrnn.training.sizing import MODEL_KEYS, pick_size
from charrnn.training.trainer import (
    RESUMABLE,
    Trainer,
    TrainEvent,
    check_run_dir,
    default_run_dir,
    run_lock,
    set_aside,
    write_config,
)

PathLike = str | Path
KIND = {"lm": "a language model", "classify": "a classifier", "tag": "a tagger", "seq2seq": "a seq2seq model"}


def _texts(texts: str | Sequence[str], what: str = "texts") -> list[str]:
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


def _whole(value: object, flag: str, minimum: int = 1) -> int:
    """A count option (--top-k, --beam, --n-best, --len): a whole number >= `minimum`, else a CharRNNError naming
    it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise CharRNNError(f"{flag} must be a whole number (got {value!r}).")
    if value < minimum:
        raise CharRNNError(f"{flag} must be >= {minimum} (got {value}).")
    return int(value)


def _seed(value: object) -> int | None:
    """--seed: a whole number >= 0, or None for a fresh draw."""
    return None if value is None else _whole(value, "--seed", 0)


def _finite(value: object, flag: str) -> float:
    """A real-valued option: a finite number, else a CharRNNError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value):
        raise CharRNNError(f"{flag} must be a finite number (got {value!r}).")
    return float(value)


def _decoding(beam: object, length_penalty: object) -> tuple[int, float]:
    """--beam and --length-penalty checked: a whole beam >= 1 and a finite penalty, which ranks the hypotheses of a
    beam search (greedy decoding, beam 1, has none to rank)."""
    beam, length_penalty = _whole(beam, "--beam"), _finite(length_penalty, "--length-penalty")
    if beam == 1 and length_penalty != 1.0:
        raise CharRNNError(
            "--length-penalty ranks the outputs of a beam search, which --beam 1 does not do; give --beam 2 or more, "
            "or leave --length-penalty out."
        )
    return beam, length_penalty


class Model:
    """A trained model read from a checkpoint, with everything its task can do. Get one with `charrnn.load`.

    A language model (task "lm") samples, scores and predicts; a classifier classifies, a tagger tags, a seq2seq
    model translates; every one evaluates a labelled file.

    >>> model = charrnn.load("runs/shakespeare")
    >>> model.sample(100, prime="ROMEO:", seed=1), model.score("To be, or not to be")
    >>> charrnn.load("runs/wordlang").classify(["lebensmittel", "bonjour"])
    """

    def __init__(self, path: Path, *more: Path) -> None:
        network, self.vocab, self.config, self.meta, _ = load_model(path)
        self.paths = [path]
        self.networks = [network]
        for other in more:
            self._add_voter(other)

    @property
    def path(self) -> Path:
        """The checkpoint (an ensemble's first)."""
        return self.paths[0]

    @property
    def network(self) -> Network:
        """The network (an ensemble's first): what every method but classify, tag and evaluate runs."""
        return self.networks[0]

    def __repr__(self) -> str:
        c = self.config
        more = f" and {len(self.paths) - 1} more" if len(self.paths) > 1 else ""
        return f"<charrnn.Model {c.task} {c.cell} {c.layers}×{c.hidden} from {self.path}{more}>"

    @property
    def name(self) -> str:
        """The checkpoint, or the checkpoints of an ensemble joined by " + "."""
        return " + ".join(str(p) for p in self.paths)

    def _add_voter(self, path: Path) -> None:
        """Let the model in `path` vote with this one (classify, tag, evaluate average their probabilities)."""
        if self.task not in ("classify", "tag"):
            raise CharRNNError(f"only classifiers and taggers vote together; {self.path} holds {KIND[self.task]}, "
                               "so give it alone.")  # fmt: skip
        network, vocab, config, meta, _ = load_model(path)
        outputs = "labels" if self.task == "classify" else "output characters"
        for what, theirs, ours in (
            ("tasks", config.task, self.task),
            ("input characters", vocab.chars, self.vocab.chars),
            (outputs, meta.get("outputs"), self.outputs),
        ):
            if theirs != ours:
                raise CharRNNError(f"{path} cannot vote with {self.path}: their {what} differ; combine models "
                                   "trained on the same file.")  # fmt: skip
        self.paths.append(path)
        self.networks.append(network)

    @property
    def task(self) -> str:
        """What the model does: "lm", "classify", "tag" or "seq2seq"."""
        return self.config.task

    @property
    def outputs(self) -> list[str]:
        """A classifier's labels, a tagger's output characters or a seq2seq model's output tokens (EOS first)."""
        return list(self.meta.get("outputs") or [])

    def _need(self, task: str, action: str) -> None:
        if self.task != task:
            command = {"lm": "sample", "seq2seq": "translate"}.get(self.task, self.task)
            raise CharRNNError(
                f"{action} needs {KIND[task]}, but {self.path} holds {KIND[self.task]} (task {self.task}); "
                f"use charrnn {command} with it, or another checkpoint."
            )

    def generate(
        self,
        length: int = 500,
        prime: str = "",
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: str = "",
        unknown: str = "error",
    ) -> Iterator[str]:
        """Yield up to `length` characters that follow `prime`, one at a time as they are drawn (the prime is not
        repeated); stop after writing `stop` if it appears.

            >>> for ch in model.generate(200, prime="ROMEO:", seed=1):
            ...     print(ch, end="", flush=True)
        """
        self._need("lm", "sampling")
        length, seed = _whole(length, "--len", 0), _seed(seed)
        prime = check_prime(self.vocab, prime, unknown)
        Sampler(len(self.vocab), temperature, top_k=top_k, top_p=top_p)  # checks the options now, not when drawing
        return self._characters(sample_ids(self.network, self.vocab, length, 1, temperature, prime, seed, top_k, top_p),
                                stop)  # fmt: skip

    def _characters(self, draws: Iterator[np.ndarray], stop: str) -> Iterator[str]:
        tail = ""
        for ids in draws:
            ch = self.vocab.chars[ids[0]]
            yield ch
            if stop:
                tail = (tail + ch)[-len(stop) :]
                if tail == stop:
                    return

    def sample(
        self,
        length: int = 500,
        prime: str = "",
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        num_samples: int = 1,
        stop: str = "",
        unknown: str = "error",
    ) -> str | list[str]:
        """The prime followed by `length` drawn characters, as `charrnn sample` prints it; with num_samples > 1, a
        list of that many samples drawn side by side. The same seed gives the same text.

            >>> model.sample(100, prime="ROMEO:", temperature=0.8, seed=1)
            'ROMEO:\\nWhat is the matter...'
        """
        self._need("lm", "sampling")
        length, seed, num_samples = _whole(length, "--len", 0), _seed(seed), _whole(num_samples, "--num-samples")
        prime = check_prime(self.vocab, prime, unknown)
        options = {"temperature": temperature, "prime": prime, "seed": seed, "top_k": top_k, "top_p": top_p}
        texts = [prime + text for text in sample_texts(self.network, self.vocab, length, num_samples, stop, **options)]
        return texts[0] if num_samples == 1 else texts

    def scores(self, texts: str | Sequence[str], per_line: bool = False) -> list[Score]:
        """A `Score` (nats and characters counted, characters left out as unknown) of each text, or of each line
        of them with per_line=True; `charrnn score` prints these."""
        self._need("lm", "scoring text")
        texts = _texts(texts)
        if per_line:
            return score_lines(self.network, self.vocab, [line for text in texts for line in text_lines(text)])
        return [score_text(self.network, self.vocab, text) for text in texts]

    def score(self, text: str) -> float:
        """Cross-entropy of `text` under the model, in nats per character (many-to-one): each character predicted
        from those before it, as the validation loss is. Characters the model never saw are left out.

            >>> model.score("To be, or not to be")
            1.93
        """
        if not isinstance(text, str):
            raise CharRNNError(f"the text to score must be a string (got {type(text).__name__}).")
        return self.scores([text])[0].nats

    def score_lines(self, lines: str | Sequence[str]) -> list[float]:
        """Nats per character of each line on its own, as the model would write it after a line break.

        >>> model.score_lines(["ROMEO:", "xqzv kpt"])
        [0.9, 4.1]
        """
        self._need("lm", "scoring text")
        return [s.nats for s in score_lines(self.network, self.vocab, _texts(lines, "lines"))]

    def predict(self, text: str, top_k: int = 10, unknown: str = "error") -> list[tuple[str, float]]:
        """The `top_k` likeliest next characters after `text`, with their probabilities, likeliest first.

        >>> model.predict("ROMEO", top_k=2)
        [(':', 0.97), ('\\n', 0.01)]
        """
        self._need("lm", "predicting the next character")
        top_k = _whole(top_k, "--top-k")
        probs = next_char_probs(self.network, self.vocab, check_prime(self.vocab, text, unknown, "the text"))
        top = np.argsort(-probs, kind="stable")[:top_k]
        return [(self.vocab.chars[i], float(probs[i])) for i in top]

    def _encode_inputs(self, texts: list[str], unknown: str) -> tuple[list[np.ndarray], list[list[int]]]:
        """The ids of each text, and where each had characters the model never saw (left out with "skip")."""
        if unknown not in ("error", "skip"):
            raise CharRNNError(f"--unknown must be error or skip (got {unknown!r}).")
        unseen = Counter(c for text in texts for c in text if c not in self.vocab.index)
        if unseen and unknown == "error":
            raise CharRNNError(
                unknown_report(unseen, "characters", "the input") + "; remove them or pass --unknown skip."
            )
        ids, skipped = [], []
        for number, text in enumerate(texts, 1):
            known = "".join(c for c in text if c in self.vocab.index)
            if not known:
                raise CharRNNError(f"input {number} ({text!r}) has no character the model knows; give it some text.")
            ids.append(self.vocab.encode(known))
            skipped.append([i for i, c in enumerate(text) if c not in self.vocab.index])
        return ids, skipped

    def classify(
        self, texts: str | Sequence[str], top_k: int = 1, unknown: str = "error"
    ) -> list[list[tuple[str, float]]]:
        """The `top_k` likeliest labels of each text with their probabilities, likeliest first (many-to-one).

        >>> model.classify(["lebensmittel", "bonjour"], top_k=2)
        [[('german', 0.99), ('dutch', 0.01)], [('french', 0.97), ('english', 0.02)]]
        """
        self._need("classify", "classifying")
        top_k = _whole(top_k, "--top-k")
        ids, _ = self._encode_inputs(_texts(texts), unknown)
        probs = np.exp(log_probabilities(self.networks, ids))
        labels = self.outputs
        return [[(labels[i], float(p[i])) for i in np.argsort(-p, kind="stable")[:top_k]] for p in probs]

    def tag(self, texts: str | Sequence[str], unknown: str = "error") -> list[str]:
        """The likeliest output string of each text, one output character per input character (many-to-many).
        With unknown="skip", characters the model never saw are read past and copied to the output as they are.

            >>> model.tag(["to be or not to be"])
            ['To be or not to be']
        """
        self._need("tag", "tagging")
        texts = _texts(texts)
        ids, skipped = self._encode_inputs(texts, unknown)
        results = []
        for text, log_probs, gaps in zip(texts, log_probabilities(self.networks, ids), skipped, strict=True):
            out = [self.outputs[i] for i in log_probs.argmax(axis=1)]
            for i in gaps:
                out.insert(i, text[i])
            results.append("".join(out))
        return results

    def translate(
        self,
        texts: str | Sequence[str],
        beam: int = 1,
        n_best: int = 1,
        length_penalty: float = 1.0,
        unknown: str = "error",
    ) -> list[str] | list[list[tuple[str, float, float]]]:
        """The output of each text (greedy with beam=1, else beam search); with n_best > 1, the `n_best` best of
        each as (output, log-probability, score), best first by score: the log-probability divided by
        (tokens + 1) ** length_penalty, which is what the beam ranks by.

            >>> model.translate(["phoneme"], beam=5)
            ['F OW N IY M']
        """
        self._need("seq2seq", "translating")
        found = self._decode(_texts(texts), beam, n_best, length_penalty, unknown)
        if n_best == 1:
            return [self._text(h[0].tokens) for h in found]
        return [[(self._text(h.tokens), h.log_prob, h.score) for h in hyps] for hyps in found]

    def attention(self, text: str, beam: int = 1, unknown: str = "error") -> tuple[list[str], list[str], np.ndarray]:
        """How the decoder attended to `text` while writing its output: the output tokens (EOS last), the source
        characters, and the weights (output step x source character, each row summing to 1).

            >>> tokens, chars, weights = model.attention("phoneme")
        """
        self._need("seq2seq", "showing attention")
        if self.config.attention == "none":
            raise CharRNNError(f"{self.path} was trained with --attention none; it has no attention to show.")
        best = self._decode([text], beam, 1, 1.0, unknown)[0][0]
        ids, _ = self._encode_inputs([text], unknown)
        _, weights = forced_log_prob(self.network, ids[0], best.tokens, best.complete)
        tokens = [self.outputs[i] for i in best.tokens] + ([EOS] if best.complete else [])
        return tokens, [self.vocab.chars[i] for i in ids[0]], weights

    def _decode(self, texts: list[str], beam: int, n_best: int, length_penalty: float, unknown: str) -> list:
        (beam, length_penalty), n_best = _decoding(beam, length_penalty), _whole(n_best, "--n-best")
        if n_best > beam:
            raise CharRNNError(f"--n-best {n_best} asks for more outputs than --beam {beam} keeps; raise --beam.")
        ids, _ = self._encode_inputs(texts, unknown)
        return decode(self.network, ids, beam, n_best, length_penalty)

    def _text(self, ids: Sequence[int]) -> str:
        return detokenize(ids, self.outputs, self.config.target_units)

    def evaluate(
        self, path: PathLike, unknown: str = "error", beam: int = 1, length_penalty: float = 1.0
    ) -> dict[str, Any]:
        """How well the model does on a labelled file (input<TAB>target lines; for a language model, any text):
        classify: accuracy, macro_f1, per-label precision/recall/F1 and the confusion matrix; tag: char_accuracy,
        exact_match and the precision/recall/F1 of changed characters; seq2seq: exact_match, wer and ter (decoded
        with `beam`; several lines may give references of one source); lm: what `score` gives.

            >>> model.evaluate("dev.tsv")["accuracy"]
            0.93
        """
        path = Path(path)
        if self.task == "lm":
            if unknown != "error":
                raise CharRNNError(
                    "--unknown is for classify, tag and seq2seq models; a language model's score leaves out the "
                    "characters it never saw and counts them (`unknown`), so leave --unknown out."
                )
            [s] = self.scores([read_text(path)])
            return {"name": str(path), "chars": s.chars, "nats_per_char": s.nats, "bits_per_char": s.bits,
                    "perplexity": s.perplexity, "total_nats": s.total_nats, "unknown": dict(s.unknown)}  # fmt: skip
        if unknown not in ("error", "skip"):
            raise CharRNNError(f"--unknown must be error or skip (got {unknown!r}).")
        units = self.config.target_units
        examples = read_examples(path, self.task)
        examples = check_known(examples, self.vocab, self.outputs, self.task, str(path), unknown, units)
        if self.task == "seq2seq":
            beam, length_penalty = _decoding(beam, length_penalty)
            encoded, _ = encode(examples, self.vocab, self.outputs, self.task, 0, units, str(path))
            metrics = seq2seq_metrics(self.network, encoded, beam, length_penalty)
            return {"file": str(path), "examples": len(examples), "loss": metrics.pop("val_loss"), **metrics}
        encoded, _ = encode(examples, self.vocab, self.outputs, self.task, self.config.max_len)
        metrics = example_metrics(self.networks, encoded, self.outputs)
        return {"file": str(path), "examples": len(examples), "loss": metrics.pop("val_loss"), **metrics}

    def trace(
        self, text: str | None = None, file: PathLike | None = None, length: int = 2000, unknown: str = "error"
    ) -> tuple[Trace, dict[str, list[dict]]]:
        """Run the model over `text` (or a file's, or by default the start of the run's validation text, `length`
        characters) keeping every cell's activations, and rank the cells against simple detectors of the text:
        what `charrnn viz` shows. A classifier's or tagger's input is read line by line.

            >>> trace, ranking = model.trace(length=3000)
            >>> ranking["inside double quotes"][0]
            {'layer': 'l1', 'kind': 'c', 'unit': 121, 'r': 0.87}
        """
        if len(self.networks) > 1:
            raise CharRNNError("charrnn viz shows one model at a time; give one checkpoint.")
        if self.task == "seq2seq":
            raise CharRNNError("charrnn viz shows language models, classifiers and taggers; use "
                               "charrnn translate --show-attention for a seq2seq model.")  # fmt: skip
        if text is not None and file is not None:
            raise CharRNNError("give the text as TEXT or with --file, not both.")
        if file is not None:
            text = read_text(Path(file))
        if text is None:
            text = self._validation_text(length)
        if self.task == "lm":
            text = check_prime(self.vocab, check_length(text, length), unknown, "the text")
            trace = trace_language_model(self.network, self.vocab, text)
        else:
            lines = [line for line in text_lines(check_length(text, length)) if line.strip()]
            ids, _ = self._encode_inputs(lines, unknown)
            lines = [self.vocab.decode(i) for i in ids]
            trace = trace_examples(self.network, self.vocab, lines, self.outputs, self.task)
        return trace, rank_cells(trace)

    def _validation_text(self, length: int) -> str:
        """The start of the run's own validation text (its inputs, a line each, for a classifier or tagger)."""
        c = self.config
        try:
            data = load_data(c, None, self.vocab, self.outputs or None)
        except CharRNNError as e:
            raise CharRNNError(f"the run's validation text could not be read ({e}); give TEXT or --file.") from None
        if c.task == "lm":
            return self.vocab.decode(data.val[:length])
        lines, size = [], 0
        for line in data.val.examples.inputs:
            if size + len(line) + 1 > length:
                break
            lines.append(line)
            size += len(line) + 1
        return "\n".join(lines)

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


def load(path: PathLike | None = None, *more: PathLike) -> Model:
    """The model in a run directory (its last.npz) or a checkpoint file; with no path, the most recent run under
    runs/. Classifiers or taggers trained on the same file can be given together (`more`): they then vote, each
    input's probabilities being the mean of theirs (an ensemble).

        >>> model = charrnn.load("runs/shakespeare")
        >>> print(model.sample(200, seed=1))
        >>> charrnn.load("runs/wordlang-1", "runs/wordlang-2").evaluate("dev.tsv")["accuracy"]
    """
    if path is None:
        return Model(find_checkpoint())
    for p in (path, *more):
        if not isinstance(p, str | os.PathLike):
            raise CharRNNError(f"a model to load is a run folder or a checkpoint file, given as a path (got {p!r}).")
    return Model(*(_checkpoint(Path(p)) for p in (path, *more)))


def _checkpoint(path: Path) -> Path:
    return find_checkpoint(run_dir=path) if path.is_dir() else find_checkpoint(checkpoint=path)


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
    callback: Callable[[TrainEvent], None] | None = None,
    stop: threading.Event | None = None,
    **overrides: Any,
) -> Run:
    """Train a model as `charrnn train` does, with the same config keys, run directory and checkpoints.

    `corpus_or_config` is a text file (or a list of them), a YAML config file (.yaml or .yml) or a `Config`; with
    resume=True, the run to continue (its folder or a checkpoint; default: the most recent). `overrides` are config
    keys, as command-line flags are (`max_steps=200`, `dropout=0.1`). `callback` receives every `TrainEvent` the
    command line draws. Ctrl-C (or a notebook's interrupt), or setting `stop` from another thread, lets the current
    step finish, saves, and returns a run whose `interrupted` is True; continue it with
    `train(run.run_dir, resume=True)`.

        >>> run = charrnn.train("data/pond.txt", max_steps=200, dropout=0.1, run_dir="runs/d0.1")
        >>> run.val_loss
        2.05
    """
    emit = callback or (lambda event: None)
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
    with contextlib.ExitStack() as stack:
        if resume:
            if config is not None or init_from is not None or overwrite:
                raise CharRNNError(
                    "--resume continues a run with its own settings; leave out --config, --init-from and --overwrite."
                )
            trainer = _resumed_trainer(targets, overrides, stack)
        else:
            trainer = _new_trainer(targets, config, init_from, overwrite, overrides, stack, emit)
        cfg = trainer.config
        batch = f"{cfg.batch_size}×{cfg.seq_len}" if cfg.task == "lm" else f"{cfg.batch_size} examples"
        emit(TrainEvent("start", cfg.task, trainer.step, trainer.total_steps, text=(
            f"{'resuming' if resume else 'training'} {trainer.task.describe()}; steps {trainer.step:,} to "
            f"{trainer.total_steps:,} of {batch}, run directory {trainer.run_dir}"
        )))  # fmt: skip
        cut = getattr(trainer.data, "cut", 0)
        if cut:
            emit(TrainEvent("notice", text=f"{cut:,} inputs longer than --max-len {cfg.max_len} were cut to it"))
        trainer.stop_event = stop
        with _stop_on_signals(trainer, emit):
            end = trainer.run(emit)
    return Run(trainer.run_dir, trainer.config.task, trainer.step, trainer.val_loss, trainer.best_val,
               trainer.train_seconds, end.text)  # fmt: skip


def _new_trainer(
    corpus: list[Path],
    config: PathLike | Config | None,
    init_from: PathLike | None,
    overwrite: bool,
    overrides: dict[str, Any],
    stack: contextlib.ExitStack,
    emit: Callable[[TrainEvent], None],
) -> Trainer:
    flags = {**overrides, "corpus": [str(p) for p in corpus] if corpus else overrides.get("corpus")}
    vocab, outputs, init_params = None, None, None
    if init_from is not None:  # the model's shape and vocabularies come from the checkpoint
        init_from = Path(init_from)
        path = init_from / LAST if init_from.is_dir() else init_from
        if not path.is_file():
            raise CharRNNError(
                f"--init-from {init_from} is neither a checkpoint file nor a run folder with a {LAST}; give one of "
                "those."
            )
        model, vocab, source, meta, _ = load_model(path)
        outputs = meta.get("outputs")
        for key in NETWORK_KEYS:
            if flags.get(key) is not None and flags[key] != getattr(source, key):
                raise CharRNNError(
                    f"{flag(key)} {flags[key]} contradicts --init-from {init_from}, whose model has "
                    f"{key} {getattr(source, key)}; leave {flag(key)} out."
                )
            flags[key] = getattr(source, key)
        init_params = model.flat_params
    if isinstance(config, Config):
        cfg = config.replace(**{k: v for k, v in flags.items() if v is not None})
    else:
        cfg = build_config(Path(config) if config is not None else None, flags)
    if not cfg.corpus:
        raise CharRNNError(
            "no corpus given; pass a text file (`charrnn train data/pond.txt`) or a --config with `corpus:`."
        )
    run_dir = default_run_dir(cfg)
    stack.enter_context(run_lock(run_dir))  # first: it puts back a run that a killed --overwrite set aside
    check_run_dir(run_dir, overwrite)
    data = load_data(cfg, run_dir, vocab, outputs)
    if cfg.size == "auto":
        given = _user_keys(config, flags)
        sized = [k for k in MODEL_KEYS if k in given]
        if sized or init_from is not None:
            what = "--init-from" if init_from is not None else given[sized[0]]
            raise CharRNNError(f"--size auto chooses the model itself; leave out {what} or --size auto.")
        settings, why = pick_size(
            len(data.vocab), len(data.train), cfg.max_time, cfg.batch_size, cfg.seq_len, given, cfg.max_steps
        )
        cfg = dataclasses.replace(cfg, **settings)
        emit(TrainEvent("notice", text=why))
    trainer = Trainer(cfg, data, init_params)
    if overwrite:
        set_aside(run_dir)
    write_config(trainer.run_dir, cfg)
    return trainer


def _user_keys(config: PathLike | Config | None, flags: dict[str, Any]) -> dict[str, str]:
    """The config keys the user set (a flag, a key of the config file, or, in a Config, a value other than the
    default), which --size auto must neither override nor be contradicted by, each with how the user set it, in
    their own words: its flag, or its key in their file or Config."""
    if isinstance(config, Config):
        fields = dataclasses.fields(Config)
        named = {f.name: f"{f.name}= of the Config" for f in fields if getattr(config, f.name) != f.default}
    else:
        named = {key: f"the key `{key}` of {config}" for key in (read_yaml(Path(config)) if config is not None else {})}
    return named | {key: flag(key) for key, value in flags.items() if value is not None}


def _resumed_trainer(targets: list[Path], overrides: dict[str, Any], stack: contextlib.ExitStack) -> Trainer:
    if len(targets) > 1:
        raise CharRNNError("--resume takes one run: its folder or a checkpoint file.")
    target = targets[0] if targets else None
    if target is not None and target.is_dir():
        stack.enter_context(run_lock(target))  # first: it puts back a run that a killed --overwrite set aside
        path = find_checkpoint(run_dir=target)
    else:
        path = find_checkpoint(checkpoint=target)
        stack.enter_context(run_lock(path.parent))
    _, vocab, saved, meta, arrays = load_model(path)
    if meta.get("optimizer_steps") is None:
        raise CharRNNError(f"checkpoint {path} holds no training position; it cannot be resumed.")
    changes = {key: value for key, value in overrides.items() if value is not None}
    fixed = sorted(set(changes) - set(RESUMABLE))
    if fixed:
        raise CharRNNError(
            f"{flag(fixed[0])} cannot change when resuming (the run goes on with its own settings); only "
            f"{', '.join(flag(k) for k in RESUMABLE)} can. To train anew from these weights, use --init-from."
        )
    cfg = saved.replace(run_dir=str(path.parent), **changes)
    data = load_data(cfg, path.parent, vocab, meta.get("outputs"))
    trainer = Trainer(cfg, data)
    trainer.load(meta, arrays, f"checkpoint {path}")
    write_config(trainer.run_dir, cfg)
    return trainer


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
