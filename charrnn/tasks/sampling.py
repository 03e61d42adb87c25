"""One-to-many generation: read a prime, then draw one character at a time and feed it back in.

Several samples are drawn side by side, as one batch: a step costs about the same for 32 streams as for one.
"""

import math
from collections.abc import Iterator

import numpy as np

from charrnn.data.examples import unseen_characters
from charrnn.data.text import Vocab
from charrnn.errors import CharRNNError
from charrnn.nn.language_model import LanguageModelNetwork


class Sampler:
    """Draws one id per row of logits (B, V) from softmax(logits / temperature), restricted to the `top_k` most
    likely ids and to the smallest set whose probability reaches `top_p` (nucleus sampling); temperature 0
    takes the most likely id.

    A draw is argmax(z + g) over the allowed ids, with g standard Gumbel noise (the Gumbel-max trick), drawn from
    `rng` a block of steps at a time: a few small NumPy calls instead of a softmax, a cumulative sum and a search.
    """

    def __init__(
        self,
        vocab_size: int,
        temperature: float = 1.0,
        rng: np.random.Generator | None = None,
        top_k: int = 0,
        top_p: float = 1.0,
        block: int = 1024,
    ) -> None:
        if not isinstance(temperature, int | float) or not math.isfinite(temperature) or temperature < 0:
            raise CharRNNError(f"--temperature must be a finite number >= 0 (got {temperature}).")
        if top_k < 0:
            raise CharRNNError(f"--top-k must be >= 0 (got {top_k}).")
        if not isinstance(top_p, int | float) or not 0 < top_p <= 1:  # NaN fails the comparison too
            raise CharRNNError(f"--top-p must be in (0, 1] (got {top_p}).")
        self.vocab_size, self.temperature, self.top_k, self.top_p = vocab_size, temperature, top_k, top_p
        self.rng = rng if rng is not None else np.random.default_rng()
        self.block = block
        self.noise = np.empty((0, 0, vocab_size))
        self.row = 0

    def allowed(self, z: np.ndarray) -> np.ndarray:
        """Which ids each row (of logits / temperature) may draw: top-k, then top-p."""
        keep = np.ones(z.shape, bool)
        if 0 < self.top_k < self.vocab_size:
            kth = np.partition(z, self.vocab_size - self.top_k, axis=1)[:, self.vocab_size - self.top_k, None]
            keep &= z >= kth
        if self.top_p < 1:
            order = np.argsort(np.where(keep, -z, np.inf), axis=1, kind="stable")
            p = np.exp(np.take_along_axis(z, order, axis=1) - z.max(axis=1, keepdims=True))
            p *= np.take_along_axis(keep, order, axis=1)
            p /= p.sum(axis=1, keepdims=True)
            mass_before = np.cumsum(p, axis=1) - p
            np.put_along_axis(keep, order, np.take_along_axis(keep, order, axis=1) & (mass_before < self.top_p), 1)
        return keep

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        if self.temperature == 0:
            return np.argmax(logits, axis=1)
        z = logits.astype(np.float64) / self.temperature
        if self.top_k or self.top_p < 1:
            z[~self.allowed(z)] = -np.inf
        if self.row == len(self.noise) or self.noise.shape[1] != len(z):
            self.noise = self.rng.gumbel(size=(self.block, len(z), self.vocab_size))
            self.row = 0
        z += self.noise[self.row]
        self.row += 1
        return np.argmax(z, axis=1)


def check_prime(vocab: Vocab, prime: str, unknown: str = "error", what: str = "the prime") -> str:
    """The prime (or other text, `what`) the model can read: characters it never saw are an error that lists them,
    or are skipped."""
    if not isinstance(prime, str):
        raise CharRNNError(f"{what} must be a string (got {type(prime).__name__}).")
    if not unseen_characters(vocab, [prime], unknown, what):
        return prime
    return "".join(c for c in prime if c in vocab.index)


def sample_ids(
    network: LanguageModelNetwork,
    vocab: Vocab,
    length: int,
    num_samples: int = 1,
    temperature: float = 1.0,
    prime: str = "",
    seed: int | None = None,
    top_k: int = 0,
    top_p: float = 1.0,
) -> Iterator[np.ndarray]:
    """Yield `length` arrays of `num_samples` ids: the samples that follow `prime`, one step at a time.

    With no prime the network starts as after a line break (if its vocabulary has one), else uniformly.
    The same seed gives the same samples; the samples differ from each other.
    """
    draw = Sampler(len(vocab), temperature, np.random.default_rng(seed), top_k, top_p)
    prime = check_prime(vocab, prime)
    network.prepare()
    state = network.initial_state(num_samples)
    context = prime or ("\n" if "\n" in vocab.index else "")
    if context:
        ids = np.repeat(vocab.encode(context)[:, None], num_samples, axis=1)
        logits, state = network.forward(ids, state, prepare=False)
        last = logits[-num_samples:]
    else:
        last = np.zeros((num_samples, len(vocab)), network.dtype)
    for _ in range(length):
        ids = draw(last).astype(vocab.dtype)
        yield ids
        last = network.step(ids, state)


def generate(
    network: LanguageModelNetwork,
    vocab: Vocab,
    length: int,
    temperature: float = 1.0,
    prime: str = "",
    seed: int | None = None,
    top_k: int = 0,
    top_p: float = 1.0,
) -> Iterator[str]:
    """Yield the `length` characters of one sample that follow `prime` (not repeated)."""
    for ids in sample_ids(network, vocab, length, 1, temperature, prime, seed, top_k, top_p):
        yield vocab.chars[ids[0]]


def sample_texts(
    network: LanguageModelNetwork,
    vocab: Vocab,
    length: int,
    num_samples: int,
    stop: str = "",
    **options: object,
) -> list[str]:
    """`num_samples` samples of up to `length` characters, drawn as one batch; each ends after `stop` if it
    writes it (the stop string included)."""
    texts: list[list[str]] = [[] for _ in range(num_samples)]
    done = np.zeros(num_samples, bool)
    for ids in sample_ids(network, vocab, length, num_samples, **options):
        for b in np.flatnonzero(~done):
            texts[b].append(vocab.chars[ids[b]])
            if stop and "".join(texts[b][-len(stop) :]) == stop:
                done[b] = True
        if done.all():
            break
    return ["".join(t) for t in texts]
