"""What differs between the tasks behind the one training loop: the network, how a step's
batch is made and its loss, what state a step carries, how validation scores the model, and what a checkpoint
keeps of it. The `Trainer` (optimizer, schedules, clipping, guard, checkpoints, resume, metrics) calls these and
nothing task-specific.

- `LanguageModelTask` (lm): stateful truncated BPTT over streams of the corpus; validation is the loss per
  character of the held-out tail.
- `ExampleTask` (classify, tag): independent examples, shuffled each epoch and batched by length, full BPTT over
  each; validation adds accuracy and macro-F1 (classify) or character accuracy, exact match and the F1 of the
  characters it changes (tag).
- `Seq2SeqTask` (seq2seq): the same batches, an encoder-decoder trained with teacher forcing; validation adds the
  word and token error rates of greedy decoding.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.data.examples import Encoded, ExampleBatches, ExampleData, load_examples
from charrnn.data.text import Batches, Corpus, Vocab, load_corpus
from charrnn.errors import CharRNNError
from charrnn.nn.example_network import ExampleNetwork, log_probabilities
from charrnn.nn.functional import blank, pad, softmax_cross_entropy
from charrnn.nn.language_model import CharModel
from charrnn.nn.metrics import classification_metrics, sequence_metrics, tagging_metrics
from charrnn.nn.seq2seq import Seq2SeqNetwork, decode, teacher_forcing
from charrnn.tasks.sampling import generate
from charrnn.training.config import Config


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


def build_network(config: Config, vocab_size: int, num_outputs: int = 0) -> CharModel | ExampleNetwork | Seq2SeqNetwork:
    """The network of `config`'s task, initialised from its seed."""
    c = config
    if c.task == "lm":
        return CharModel(
            vocab_size, c.hidden, c.layers, c.cell, c.dtype, c.seed, c.forget_bias, c.output_dropout, c.embed
        )
    if c.task == "seq2seq":
        return Seq2SeqNetwork(vocab_size, num_outputs, c.hidden, c.layers, c.cell, c.bidirectional, c.attention,
                              c.input_feeding, c.dtype, c.seed, c.forget_bias, c.output_dropout, c.embed)  # fmt: skip
    return ExampleNetwork(c.task, vocab_size, num_outputs, c.hidden, c.layers, c.cell, c.bidirectional, c.pool,
                          c.dtype, c.seed, c.forget_bias, c.output_dropout, c.embed)  # fmt: skip


def load_data(
    config: Config, cache_dir: Path | None = None, vocab: Vocab | None = None, outputs: list[str] | None = None
) -> Corpus | ExampleData:
    """The training and validation data of `config`'s task; with `vocab` (and `outputs`), in those vocabularies."""
    c = config
    if c.task == "lm":
        return load_corpus(c.corpus, c.encoding, c.val_frac, cache_dir, vocab, c.newline, c.max_vocab)
    return load_examples(c.corpus[0], c.task, c.encoding, c.val_file, c.val_frac, c.seed, c.max_len, vocab, outputs,
                         c.target_units)  # fmt: skip


class LanguageModelTask:
    """Next-character prediction over B streams of the corpus, each carrying its hidden state between chunks."""

    def __init__(self, config: Config, corpus: Corpus) -> None:
        self.config, self.corpus = config, corpus
        self.batches = Batches(corpus.train, config.batch_size, config.seq_len)
        self.steps_per_epoch = self.batches.chunks_per_epoch
        self.model = build_network(config, len(corpus.vocab))
        self.state = self.model.initial_state(config.batch_size)
        self.batch_chars, self.batch_examples = config.batch_size * config.seq_len, 0

    def describe(self) -> str:
        c, data = self.config, self.corpus
        return (
            f"{c.cell} {c.layers}×{c.hidden} ({self.model.num_params:,} parameters) on {data.name}: "
            f"{len(data.train):,} training and {len(data.val):,} validation characters, vocabulary {len(data.vocab)}"
        )

    def loss_and_grads(self, step: int, rng: np.random.Generator) -> float:
        """The mean loss of chunk `step` of every stream; fills the gradients. The new state waits for `accept`."""
        cfg = self.config
        chunk = step % self.steps_per_epoch
        if chunk == 0:  # the streams start again from the beginning of their text
            self.state = self.model.initial_state(cfg.batch_size)
        elif cfg.reset_every:
            # Without this, the zero state is only ever seen by an untrained model, and a trained one can fall
            # into a saturated state when it reads e.g. "\n\n" from zero (validation loss 5.5 instead of 2.1).
            fresh = (step + np.arange(cfg.batch_size)) % cfg.reset_every == 0
            for layer in self.state:
                for s in layer:
                    s[fresh] = 0.0
        x, y = self.batches.chunk(chunk)
        if cfg.input_dropout:
            x = blank(x, cfg.input_dropout, rng, len(self.corpus.vocab))
        loss, self._next_state = self.model.loss_and_grads(x, y, self.state, cfg.dropout, rng)
        return loss

    def accept(self) -> None:
        """The step was taken: carry its final state to the next chunk."""
        self.state = self._next_state

    def reject(self) -> None:
        """The step was skipped (not finite): start the streams again from zero."""
        self.state = self.model.initial_state(self.config.batch_size)

    def evaluate(self) -> dict[str, float] | None:
        if len(self.corpus.val) < 2:
            return None
        return {"val_loss": evaluate(self.model, self.corpus.val)}

    def sample(self, seed: int) -> str:
        return "".join(generate(self.model, self.corpus.vocab, 200, temperature=0.8, seed=seed))

    def meta(self) -> dict[str, Any]:
        data = self.corpus
        return {
            "vocab": data.vocab.chars,
            "corpus": {"name": data.name, "train_chars": len(data.train), "val_chars": len(data.val)},
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"state/{i}.{k}": s for i, layer in enumerate(self.state) for k, s in enumerate(layer)}

    def load_arrays(self, arrays: dict[str, np.ndarray], source: str) -> None:
        for i, layer in enumerate(self.state):
            for k, s in enumerate(layer):
                saved = arrays.get(f"state/{i}.{k}")
                if saved is None or saved.shape != s.shape:
                    raise CharRNNError(f"{source} has no usable hidden state 'state/{i}.{k}'; it cannot be resumed.")
                s[...] = saved


def example_metrics(nets: Sequence[ExampleNetwork], encoded: Encoded, outputs: list[str]) -> dict[str, Any]:
    """The loss (per example or per character) and the task's figures on labelled examples of one network, or of
    several voting together (their mean probability)."""
    log_probs = log_probabilities(nets, encoded.inputs)
    if nets[0].task == "classify":
        labels = np.asarray(encoded.targets)
        loss = -float(log_probs[np.arange(len(labels)), labels].mean())
        return {"val_loss": loss, **classification_metrics(labels, log_probs.argmax(axis=1), outputs)}
    total = sum(-float(lp[np.arange(len(t)), t].sum()) for lp, t in zip(log_probs, encoded.targets, strict=True))
    predicted = ["".join(outputs[i] for i in lp.argmax(axis=1)) for lp in log_probs]
    chars = sum(len(t) for t in encoded.targets)
    # Scored on what the model read: --max-len cuts an input and its target alike.
    kept = [len(t) for t in encoded.targets]
    inputs = [text[:n] for text, n in zip(encoded.examples.inputs, kept, strict=True)]
    truth = [text[:n] for text, n in zip(encoded.examples.targets, kept, strict=True)]
    return {"val_loss": total / chars, **tagging_metrics(inputs, truth, predicted)}


def detokenize(ids: Sequence[int], outputs: list[str], units: str) -> str:
    """A seq2seq output as text: its tokens joined (with spaces when the tokens are words)."""
    return (" " if units == "words" else "").join(outputs[i] for i in ids)


def seq2seq_metrics(
    net: Seq2SeqNetwork, encoded: Encoded, beam: int = 1, length_penalty: float = 1.0, batch_size: int = 64
) -> dict[str, Any]:
    """The loss per target token (teacher-forced), then exact match, WER and token error rate of the decoded
    outputs: each distinct source is decoded once and scored against every target it has in `encoded`."""
    order = np.argsort([len(s) for s in encoded.inputs], kind="stable")
    total = tokens = 0.0
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        x, lengths = pad([encoded.inputs[i] for i in index], encoded.inputs[0].dtype)
        decoder_in, decoder_out, counted = teacher_forcing([encoded.targets[i] for i in index])
        logits = net.forward(x, lengths, decoder_in)
        total += softmax_cross_entropy(logits, decoder_out.reshape(-1), False, counted.reshape(-1))[0]
        tokens += int(counted.sum())
    references: dict[str, list[list[int]]] = {}
    first: dict[str, np.ndarray] = {}
    for text, ids, target in zip(encoded.examples.inputs, encoded.inputs, encoded.targets, strict=True):
        references.setdefault(text, []).append(list(target))
        first.setdefault(text, ids)
    found = decode(net, list(first.values()), beam, 1, length_penalty)
    metrics = sequence_metrics([h[0].tokens for h in found], list(references.values()))
    return {"val_loss": total / tokens, **metrics, "sources": len(first)}


# The figures an evaluation reports while training (the others go to `charrnn eval`).
HEADLINE = {
    "classify": ("accuracy", "macro_f1"),
    "tag": ("char_accuracy", "exact_match", "change_f1"),
    "seq2seq": ("wer", "ter"),
}


class ExampleTask:
    """classify, tag or seq2seq: batches of whole examples, from the zero state, nothing carried between them."""

    def __init__(self, config: Config, data: ExampleData) -> None:
        self.config, self.data = config, data
        self.batches = ExampleBatches([len(s) for s in data.train.inputs], config.batch_size, config.seed)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.model = build_network(config, len(data.vocab), len(data.outputs))
        self.batch_chars = self.batch_examples = 0

    def describe(self) -> str:
        c, data = self.config, self.data
        what = {"classify": "labels", "tag": "output characters", "seq2seq": "output tokens and EOS"}[c.task]
        direction = "bidirectional " if c.bidirectional else ""
        return (
            f"{c.task} with a {direction}{c.cell} {c.layers}×{c.hidden} ({self.model.num_params:,} parameters) on "
            f"{data.name}: {len(data.train):,} training and {len(data.val):,} validation examples, "
            f"{len(data.vocab)} input characters, {len(data.outputs)} {what}"
        )

    def loss_and_grads(self, step: int, rng: np.random.Generator) -> float:
        index = self.batches.indices(step)
        train = self.data.train
        x, lengths = pad([train.inputs[i] for i in index], self.data.vocab.dtype)
        if self.config.task == "classify":
            y = np.asarray(train.targets)[index]
        elif self.config.task == "tag":
            y = pad([train.targets[i] for i in index], np.int64)[0]
        else:
            y = [train.targets[i] for i in index]
        self.batch_chars, self.batch_examples = int(lengths.sum()), len(index)
        if self.config.input_dropout:
            x = blank(x, self.config.input_dropout, rng, len(self.data.vocab))
        return self.model.loss_and_grads(x, lengths, y, self.config.dropout, rng, self.config.label_smoothing)

    def accept(self) -> None:
        pass

    def reject(self) -> None:
        pass

    def evaluate(self) -> dict[str, float] | None:
        if not len(self.data.val):
            return None
        if self.config.task == "seq2seq":
            metrics = seq2seq_metrics(self.model, self.data.val)
        else:
            metrics = example_metrics([self.model], self.data.val, self.data.outputs)
        return {k: metrics[k] for k in ("val_loss", *HEADLINE[self.config.task])}

    def sample(self, seed: int) -> str:
        return ""

    def meta(self) -> dict[str, Any]:
        data = self.data
        return {
            "vocab": data.vocab.chars,
            "outputs": data.outputs,
            "corpus": {"name": data.name, "train_examples": len(data.train), "val_examples": len(data.val)},
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load_arrays(self, arrays: dict[str, np.ndarray], source: str) -> None:
        pass


def make_task(config: Config, data: Corpus | ExampleData) -> LanguageModelTask | ExampleTask:
    return LanguageModelTask(config, data) if config.task == "lm" else ExampleTask(config, data)
