"""lm: next-character prediction. Training reads B streams of the corpus by truncated backpropagation through
time, each carrying its hidden state from one chunk to the next; validation is the loss per character of the
held-out tail. A trained `LanguageModel` samples, scores and predicts."""

import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from charrnn.data.text import Batches, Corpus, Vocab, id_dtype, load_corpus, text_lines
from charrnn.errors import CharRNNError
from charrnn.nn.functional import blank
from charrnn.nn.language_model import LanguageModelNetwork, evaluate
from charrnn.tasks import registry
from charrnn.tasks.model import Model, PathLike, seed_of, texts_of, whole
from charrnn.tasks.registry import Compared, TaskConfig
from charrnn.tasks.sampling import check_prime, check_sampling, generate, sample_ids, sample_texts
from charrnn.tasks.scoring import Score, next_char_probs, score_lines, score_text
from charrnn.tasks.trace import Trace, check_length, rank_cells, trace_language_model


class LanguageModel(Model[Corpus]):
    """A trained language model: it samples text, scores texts and predicts the next character.

    >>> model = charrnn.load("runs/shakespeare")
    >>> model.sample(100, prime="ROMEO:", seed=1), model.score("To be, or not to be")
    """

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
        length, seed = whole(length, "--len", 0), seed_of(seed)
        prime = check_prime(self.vocab, prime, unknown)
        check_sampling(temperature, top_k, top_p)  # now, not when drawing
        draws = sample_ids(self.network, self.vocab, length, 1, temperature, prime, seed, top_k, top_p)
        return self._characters(draws, stop)

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
        length, seed, num_samples = whole(length, "--len", 0), seed_of(seed), whole(num_samples, "--num-samples")
        prime = check_prime(self.vocab, prime, unknown)
        options = {"temperature": temperature, "prime": prime, "seed": seed, "top_k": top_k, "top_p": top_p}
        texts = [prime + text for text in sample_texts(self.network, self.vocab, length, num_samples, stop, **options)]
        return texts[0] if num_samples == 1 else texts

    def scores(
        self,
        texts: str | Sequence[str],
        per_line: bool = False,
        unknown: str = "error",
        names: Sequence[str] | None = None,
    ) -> list[Score]:
        """A `Score` (nats and characters counted, characters left out as unknown) of each text, or of each line
        of them with per_line=True; `charrnn score` prints these. Characters the model never saw are an error that
        names the text (by `names`, e.g. its file), or with unknown="skip" left out and counted in `unknown`."""
        texts = texts_of(texts)
        if names is None:
            names = ["the text"] if len(texts) == 1 else [f"text {number}" for number in range(1, len(texts) + 1)]
        for name, text in zip(names, texts, strict=True):
            self.unseen([text], unknown, name)
        if per_line:
            return score_lines(self.network, self.vocab, [line for text in texts for line in text_lines(text)])
        return [score_text(self.network, self.vocab, text) for text in texts]

    def score(self, text: str, unknown: str = "error") -> float:
        """Cross-entropy of `text` under the model, in nats per character (many-to-one): each character predicted
        from those before it, as the validation loss is. Characters the model never saw are an error, or with
        unknown="skip" left out.

            >>> model.score("To be, or not to be")
            1.93
        """
        if not isinstance(text, str):
            raise CharRNNError(f"the text to score must be a string (got {type(text).__name__}).")
        return self.scores([text], unknown=unknown)[0].nats

    def score_lines(self, lines: str | Sequence[str], unknown: str = "error") -> list[float]:
        """Nats per character of each line on its own, as the model would write it after a line break (characters
        it never saw: as in `score`).

        >>> model.score_lines(["ROMEO:", "xqzv kpt"])
        [0.9, 4.1]
        """
        lines = texts_of(lines, "lines")
        for number, line in enumerate(lines, 1):
            self.unseen([line], unknown, f"line {number}")
        return [s.nats for s in score_lines(self.network, self.vocab, lines)]

    def predict(self, text: str, top_k: int = 10, unknown: str = "error") -> list[tuple[str, float]]:
        """The `top_k` likeliest next characters after `text`, with their probabilities, likeliest first.

        >>> model.predict("ROMEO", top_k=2)
        [(':', 0.97), ('\\n', 0.01)]
        """
        top_k = whole(top_k, "--top-k")
        probs = next_char_probs(self.network, self.vocab, check_prime(self.vocab, text, unknown, "the text"))
        top = np.argsort(-probs, kind="stable")[:top_k]
        return [(self.vocab.chars[i], float(probs[i])) for i in top]

    def evaluate(
        self,
        path: PathLike,
        unknown: str = "error",
        beam: int = 1,
        length_penalty: float = 1.0,
        encoding: str | None = None,
    ) -> dict[str, Any]:
        """The model's score of a text file, as `score` gives it (name, chars, nats_per_char, bits_per_char,
        perplexity, total_nats, unknown), read in `encoding` (default: the training text's)."""
        self.no_decoding(beam, length_penalty)
        [s] = self.scores([self.read(path, encoding)], unknown=unknown, names=[str(path)])
        return dataclasses.replace(s, name=str(path)).record()

    def readable(self, text: str, unknown: str = "error") -> str:
        """`text` as the model can read it: characters it never saw are an error naming them, or (unknown="skip")
        left out."""
        return check_prime(self.vocab, text, unknown)

    def trace(
        self,
        text: str | None = None,
        file: PathLike | None = None,
        max_len: int = 2000,
        unknown: str = "error",
        encoding: str | None = None,
    ) -> tuple[Trace, dict[str, list[dict]]]:
        """Run the model over `text` (or a file's, read in `encoding`, or by default the start of the run's
        validation text) of at most `max_len` characters, keeping every cell's activations, and rank the cells
        against simple detectors of the text: what `charrnn viz` shows.

            >>> trace, ranking = model.trace(max_len=3000)
            >>> ranking["inside double quotes"][0]
            {'layer': 'l1', 'kind': 'c', 'unit': 121, 'r': 0.87}
        """
        text = self.text_to_trace(text, file, max_len, encoding)
        text = check_prime(self.vocab, check_length(text, max_len), unknown, "the text")
        trace = trace_language_model(self.network, self.vocab, text)
        return trace, rank_cells(trace)

    def validation_text(self, data: Corpus, length: int) -> str:
        return self.vocab.decode(data.val[:length])


@registry.register
class LanguageModelTask(registry.Task[Corpus, LanguageModelNetwork]):
    """Next-character prediction over B streams of the corpus, each carrying its hidden state between chunks."""

    name = "lm"
    summary = "next-character language model"
    kind = "a language model"
    command = "sample"
    keys = ("seq_len", "reset_every", "newline", "max_vocab", "size")
    refusals: ClassVar[dict[str, str]] = {
        "bidirectional": "--bidirectional reads the input from both ends, but a language model cannot see the "
        "characters it predicts; use it with --task classify or tag.",
        "label_smoothing": "--label-smoothing is for classify, tag and seq2seq; a language model's loss is what it "
        "reports, so leave it out.",
        "val_file": "--val-file is for the other tasks; a language model holds out --val-frac.",
    }
    counts = "characters"
    bench_batch = 32
    torch_measures = (
        Compared("training chars/s", "train_chars_per_sec", "RESULT", "chars/s"),
        Compared("sampling chars/s", "sample_chars_per_sec", "SAMPLE", "chars/s"),
    )
    model = LanguageModel

    def __init__(self, config: TaskConfig, corpus: Corpus) -> None:
        self.config, self.corpus = config, corpus
        self.batches = Batches(corpus.train, config.batch_size, config.seq_len)
        self.steps_per_epoch = self.batches.chunks_per_epoch
        self.network = self.build_network(config, len(corpus.vocab))
        self.state = self.network.initial_state(config.batch_size)
        self.batch_chars, self.batch_examples = config.batch_size * config.seq_len, 0

    @classmethod
    def load_data(
        cls,
        config: TaskConfig,
        cache_dir: Path | None = None,
        vocab: Vocab | None = None,
        outputs: list[str] | None = None,
    ) -> Corpus:
        c = config
        return load_corpus(c.corpus, c.encoding, c.val_frac, cache_dir, vocab, c.newline, c.max_vocab)

    @classmethod
    def build_network(cls, config: TaskConfig, vocab_size: int, num_outputs: int = 0) -> LanguageModelNetwork:
        return LanguageModelNetwork(vocab_size, registry.recurrent_spec(config), config.seed)

    @classmethod
    def synthetic_data(cls, config: TaskConfig, vocab_size: int, steps: int) -> Corpus:
        size = (steps + 1) * config.batch_size * config.seq_len + 1
        ids = np.random.default_rng(0).integers(0, vocab_size, size).astype(id_dtype(vocab_size))
        vocab = Vocab([chr(32 + i) for i in range(vocab_size)])
        return Corpus(vocab, ids, ids[:0], "random")

    @classmethod
    def torch_flags(cls, config: TaskConfig, vocab_size: int) -> list[str]:
        return ["--seq", str(config.seq_len), "--sample-bench", "2000"]

    @classmethod
    def batch(cls, config: TaskConfig) -> str:
        return f"{config.batch_size}×{config.seq_len}"

    @classmethod
    def usage(cls, run: str) -> str:
        return f"Sample from it with: charrnn sample {run} --len 500"

    def describe(self) -> str:
        c, data = self.config, self.corpus
        return (
            f"{c.cell} {c.layers}×{c.hidden} ({self.network.num_params:,} parameters) on {data.name}: "
            f"{len(data.train):,} training and {len(data.val):,} validation characters, vocabulary {len(data.vocab)}"
        )

    def loss_and_grads(self, step: int, rng: np.random.Generator) -> float:
        """The mean loss of chunk `step` of every stream; fills the gradients. The new state waits for `accept`."""
        cfg = self.config
        chunk = step % self.steps_per_epoch
        if chunk == 0:  # the streams start again from the beginning of their text
            self.state = self.network.initial_state(cfg.batch_size)
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
        loss, self._next_state = self.network.loss_and_grads(x, y, self.state, cfg.dropout, rng)
        return loss

    def accept(self) -> None:
        """The step was taken: carry its final state to the next chunk."""
        self.state = self._next_state

    def reject(self) -> None:
        """The step was skipped (not finite): start the streams again from zero."""
        self.state = self.network.initial_state(self.config.batch_size)

    def evaluate(self) -> dict[str, float] | None:
        if len(self.corpus.val) < 2:
            return None
        return {"val_loss": evaluate(self.network, self.corpus.val)}

    def validation_size(self) -> int:
        return len(self.corpus.val)

    def sample(self, seed: int) -> str:
        return "".join(generate(self.network, self.corpus.vocab, 200, temperature=0.8, seed=seed))

    def time_inference(self, chars: int = 2000) -> dict[str, float]:
        """Characters a second sampled on one stream (after 50 untimed ones)."""
        sampler = generate(self.network, self.corpus.vocab, chars + 50, seed=0)
        for _ in range(50):
            next(sampler)
        start = time.perf_counter()
        for _ in sampler:
            pass
        return {"sample_chars_per_sec": chars / (time.perf_counter() - start)}

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
