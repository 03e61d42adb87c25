"""seq2seq: an output sequence of its own length for each input (many-to-many, Tx != Ty), e.g. spelling to
pronunciation. An encoder-decoder with attention, trained with teacher forcing; validation adds the word and token
error rates of greedy decoding. A trained `Translator` decodes greedily or by beam search."""

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.data.examples import EOS, TARGET, Encoded, ExampleData, check_known, encode, read_examples
from charrnn.errors import CharRNNError
from charrnn.nn.functional import length_batches, pad, softmax_cross_entropy
from charrnn.nn.metrics import sequence_metrics
from charrnn.nn.seq2seq import Seq2SeqNetwork, decode, forced_log_prob, teacher_forcing
from charrnn.tasks import registry
from charrnn.tasks.examples import ExampleTask
from charrnn.tasks.model import Model, PathLike, finite, texts_of, whole
from charrnn.tasks.registry import Compared, Metric, TaskConfig


def decoding(beam: object, length_penalty: object) -> tuple[int, float]:
    """--beam and --length-penalty checked: a whole beam >= 1 and a finite penalty, which ranks the hypotheses of a
    beam search (greedy decoding, beam 1, has none to rank)."""
    beam, length_penalty = whole(beam, "--beam"), finite(length_penalty, "--length-penalty")
    if beam == 1 and length_penalty != 1.0:
        raise CharRNNError(
            "--length-penalty ranks the outputs of a beam search, which --beam 1 does not do; give --beam 2 or more, "
            "or leave --length-penalty out."
        )
    return beam, length_penalty


def detokenize(ids: Sequence[int], outputs: list[str], units: str) -> str:
    """An output as text: its tokens joined (with spaces when the tokens are words)."""
    return (" " if units == "words" else "").join(outputs[i] for i in ids)


class Translator(Model[ExampleData]):
    """A trained encoder-decoder: the output sequence of each input, greedy or by beam search.

    >>> charrnn.load("runs/g2p").translate(["phoneme"], beam=5)
    """

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
        found = self._decode(texts_of(texts), beam, n_best, length_penalty, unknown)
        if n_best == 1:
            return [self._text(h[0].tokens) for h in found]
        return [[(self._text(h.tokens), h.log_prob, h.score) for h in hyps] for hyps in found]

    def attention(self, text: str, beam: int = 1, unknown: str = "error") -> tuple[list[str], list[str], np.ndarray]:
        """How the decoder attended to `text` while writing its output: the output tokens (EOS last), the source
        characters, and the weights (output step x source character, each row summing to 1).

            >>> tokens, chars, weights = model.attention("phoneme")
        """
        if self.config.attention == "none":
            raise CharRNNError(f"{self.path} was trained with --attention none; it has no attention to show.")
        best = self._decode([text], beam, 1, 1.0, unknown)[0][0]
        ids, _ = self.encode_inputs([text], unknown)
        _, weights = forced_log_prob(self.network, ids[0], best.tokens, best.complete)
        tokens = [self.outputs[i] for i in best.tokens] + ([EOS] if best.complete else [])
        return tokens, [self.vocab.chars[i] for i in ids[0]], weights

    def trace(self, *args: object, **kwargs: object) -> None:
        """An encoder-decoder's cells are not shown; its attention is (`attention`)."""
        raise CharRNNError(
            "charrnn viz shows language models, classifiers and taggers; use charrnn translate --show-attention for "
            "a seq2seq model."
        )

    def _decode(self, texts: list[str], beam: int, n_best: int, length_penalty: float, unknown: str) -> list:
        (beam, length_penalty), n_best = decoding(beam, length_penalty), whole(n_best, "--n-best")
        if n_best > beam:
            raise CharRNNError(f"--n-best {n_best} asks for more outputs than --beam {beam} keeps; raise --beam.")
        ids, _ = self.encode_inputs(texts, unknown)
        return decode(self.network, ids, beam, n_best, length_penalty)

    def _text(self, ids: Sequence[int]) -> str:
        return detokenize(ids, self.outputs, self.config.target_units)

    def evaluate(
        self,
        path: PathLike,
        unknown: str = "error",
        beam: int = 1,
        length_penalty: float = 1.0,
        encoding: str | None = None,
    ) -> dict[str, Any]:
        """How well the model does on a labelled file (read in `encoding`, by default the training file's): the loss
        per token, exact match, WER and TER of the outputs decoded with `beam` (several lines may give references of
        one source), and the input characters left out as unknown."""
        path, units = Path(path), self.config.target_units
        read = read_examples(path, TARGET, encoding or self.config.encoding)
        examples = check_known(read, self.vocab, self.outputs, TARGET, str(path), unknown, units)
        unseen = self.unseen(read.inputs, unknown)  # what --unknown skip left out (check_known refuses them else)
        beam, length_penalty = decoding(beam, length_penalty)
        encoded, _ = encode(examples, self.vocab, self.outputs, TARGET, 0, units, str(path))
        metrics = seq2seq_metrics(self.network, encoded, beam, length_penalty)
        loss = metrics.pop("val_loss")
        return {"file": str(path), "examples": len(examples), "loss": loss, **metrics, "unknown": dict(unseen)}


def seq2seq_metrics(
    net: Seq2SeqNetwork, encoded: Encoded, beam: int = 1, length_penalty: float = 1.0, batch_size: int = 64
) -> dict[str, Any]:
    """The loss per target token (teacher-forced), then exact match, WER and token error rate of the decoded
    outputs: each distinct source is decoded once and scored against every target it has in `encoded`."""
    total = tokens = 0.0
    for index in length_batches(encoded.inputs, batch_size):
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


@registry.register
class Seq2SeqTask(ExampleTask[Seq2SeqNetwork]):
    """An encoder-decoder trained with teacher forcing on batches of whole examples."""

    name = "seq2seq"
    summary = "an output sequence of its own length"
    kind = "a seq2seq model"
    command = "translate"
    keys = (*ExampleTask.keys, "attention", "input_feeding", "target_units")
    figures = (Metric("wer", higher_is_better=False), Metric("ter", higher_is_better=False))
    loss_unit = "token"
    targets = TARGET
    outputs_name = "output tokens"
    torch_measures = (
        Compared("training examples/s", "train_examples_per_sec", "RESULT", "examples/s"),
        Compared("greedy decoding examples/s", "decode_beam1_examples_per_sec", "INFER", "examples/s"),
    )
    model = Translator

    @classmethod
    def check(cls, config: TaskConfig) -> None:
        super().check(config)
        if config.attention == "dot" and config.bidirectional:
            raise CharRNNError(
                "--attention dot needs the encoder's outputs and the decoder's state to be the same size, but a "
                "--bidirectional encoder's are twice as long; use --attention general or additive."
            )
        if config.attention == "none" and config.input_feeding:
            raise CharRNNError("--input-feeding feeds the attention into the decoder; it needs an --attention.")

    @classmethod
    def build_network(cls, config: TaskConfig, vocab_size: int, num_outputs: int = 0) -> Seq2SeqNetwork:
        spec = registry.recurrent_spec(config)
        return Seq2SeqNetwork(vocab_size, num_outputs, spec, config.attention, config.input_feeding, config.seed)

    @classmethod
    def torch_flags(cls, config: TaskConfig, vocab_size: int) -> list[str]:
        flags = [*super().torch_flags(config, vocab_size), "--attention", config.attention]
        flags += ["--target-units", config.target_units]
        return flags + (["--input-feeding"] if config.input_feeding else [])

    @classmethod
    def describe_model(cls, config: TaskConfig) -> str:
        feeding = ", input feeding" if config.input_feeding else ""
        return f"seq2seq: {config.attention} attention{feeding}, targets of {config.target_units}"

    @classmethod
    def random_targets(cls, rng: np.random.Generator, inputs: list[np.ndarray]) -> tuple[list, list[str]]:
        """About as many tokens as the input has letters, of 10 (EOS is output 0)."""
        targets = [rng.integers(1, 11, max(1, len(s) + rng.integers(-2, 3))) for s in inputs]
        return targets, [EOS, *(str(i) for i in range(10))]

    def batch_targets(self, index: np.ndarray) -> list[np.ndarray]:
        return [self.data.train.targets[i] for i in index]

    @classmethod
    def metrics(cls, nets: Sequence[Seq2SeqNetwork], encoded: Encoded, outputs: list[str]) -> dict[str, Any]:
        """Greedy decoding's figures (`seq2seq_metrics`) of one network (a translator does not vote)."""
        return seq2seq_metrics(nets[0], encoded)

    def time_inference(self, limit: int = 2048) -> dict[str, float]:
        """Examples a second decoded greedily and with a beam of 5 (after one untimed batch)."""
        sample = self.data.train.inputs[:limit]
        decode(self.network, sample[:64])
        result = {}
        for beam in (1, 5):
            start = time.perf_counter()
            decode(self.network, sample, beam=beam)
            result[f"decode_beam{beam}_examples_per_sec"] = len(sample) / (time.perf_counter() - start)
        return result
