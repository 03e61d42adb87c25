"""One-to-many generation: read a prime, then draw one character at a time and feed it back in.

Several samples are drawn side by side, as one batch: for an LSTM 2x256 on one core (Zen 4), a step of 32 streams
costs ~11x a step of one, so 32 streams draw ~3x the characters a second of one (tasks/batching.py serves them).
"""

import math
from collections.abc import Iterator

import numpy as np

from charrnn.data.examples import unseen_characters
from charrnn.data.text import Vocab
from charrnn.errors import CharRNNError
from charrnn.nn.language_model import LanguageModelNetwork


def allowed(z: np.ndarray, top_k: np.ndarray, top_p: np.ndarray) -> np.ndarray:
    """Which ids each row b of z (logits / temperature, (B, V)) may draw: its `top_k[b]` most likely (0: all),
    then the smallest set of those whose probability reaches `top_p[b]` (1: all)."""
    V = z.shape[1]
    keep = np.ones(z.shape, bool)
    cut = (top_k > 0) & (top_k < V)
    if cut.any():
        rows = z[cut]
        kth = np.sort(rows, axis=1)[np.arange(len(rows)), V - top_k[cut]]  # the k-th largest of each row
        keep[cut] = rows >= kth[:, None]
    nucleus = top_p < 1
    if nucleus.any():
        rows, kept = z[nucleus], keep[nucleus]
        order = np.argsort(np.where(kept, -rows, np.inf), axis=1, kind="stable")
        p = np.exp(np.take_along_axis(rows, order, axis=1) - rows.max(axis=1, keepdims=True))
        p *= np.take_along_axis(kept, order, axis=1)
        p /= p.sum(axis=1, keepdims=True)
        mass_before = np.cumsum(p, axis=1) - p
        inside = np.take_along_axis(kept, order, axis=1) & (mass_before < top_p[nucleus, None])
        np.put_along_axis(kept, order, inside, 1)
        keep[nucleus] = kept
    return keep


class Settings:
    """How each row of a batch draws: its temperature, top-k and top-p (arrays of B), with what `draw` needs of them
    worked out once, not at every step."""

    def __init__(self, temperature: np.ndarray, top_k: np.ndarray, top_p: np.ndarray) -> None:
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.greedy = temperature == 0
        self.some_greedy, self.all_greedy = bool(self.greedy.any()), bool(self.greedy.all())
        self.divisor = np.where(self.greedy, 1.0, temperature)[:, None]
        self.cut = bool(((top_k > 0) | (top_p < 1)).any())

    @classmethod
    def same(cls, rows: int, temperature: float, top_k: int, top_p: float) -> "Settings":
        return cls(np.full(rows, float(temperature)), np.full(rows, top_k), np.full(rows, float(top_p)))


def draw(logits: np.ndarray, settings: Settings, noise: np.ndarray) -> np.ndarray:
    """One id per row of logits (B, V), each row by its settings: the argmax of logits / temperature + noise over
    the allowed ids, noise being standard Gumbel (the Gumbel-max trick: a draw from the softmax in a few array
    calls, no cumulative sum or search); temperature 0 takes the most likely id."""
    if settings.all_greedy:
        return np.argmax(logits, axis=1)
    z = logits.astype(np.float64)
    z /= settings.divisor
    if settings.cut:
        z[~allowed(z, settings.top_k, settings.top_p)] = -np.inf
    z += noise
    ids = np.argmax(z, axis=1)
    if settings.some_greedy:
        ids[settings.greedy] = np.argmax(logits[settings.greedy], axis=1)
    return ids


def check_sampling(temperature: object, top_k: object, top_p: object) -> None:
    """The sentence for a temperature, top-k or top-p out of range."""
    if not isinstance(temperature, int | float) or not math.isfinite(temperature) or temperature < 0:
        raise CharRNNError(f"--temperature must be a finite number >= 0 (got {temperature}).")
    if not isinstance(top_k, int) or top_k < 0:
        raise CharRNNError(f"--top-k must be >= 0 (got {top_k}).")
    if not isinstance(top_p, int | float) or not 0 < top_p <= 1:  # NaN fails the comparison too
        raise CharRNNError(f"--top-p must be in (0, 1] (got {top_p}).")


class GumbelNoise:
    """Standard Gumbel noise from one generator, drawn a block of steps at a time (a few calls instead of one a
    step). The numbers come in the generator's order whatever the block, so a seeded stream draws the same noise
    alone in `Sampler` as a row of the server's batch (`batching.Sample`)."""

    def __init__(self, rng: np.random.Generator, block: int) -> None:
        self.rng, self.block = rng, block
        self.noise, self.row = np.empty((0, 0)), 0

    def next(self, *shape: int) -> np.ndarray:
        """The noise of one step, of `shape`; a new shape starts a new block."""
        if self.row == len(self.noise) or self.noise.shape[1:] != shape:
            self.noise, self.row = self.rng.gumbel(size=(self.block, *shape)), 0
        self.row += 1
        return self.noise[self.row - 1]


class Sampler:
    """Draws one id per row of logits (B, V) with `draw`, every row with the same temperature, top-k and top-p,
    the noise of all rows from one `rng`."""

    def __init__(
        self,
        vocab_size: int,
        temperature: float = 1.0,
        rng: np.random.Generator | None = None,
        top_k: int = 0,
        top_p: float = 1.0,
        block: int = 1024,
    ) -> None:
        check_sampling(temperature, top_k, top_p)
        self.vocab_size, self.temperature, self.top_k, self.top_p = vocab_size, temperature, top_k, top_p
        self.noise = GumbelNoise(rng if rng is not None else np.random.default_rng(), block)
        self.settings = Settings.same(0, temperature, top_k, top_p)

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        B = len(logits)
        if self.temperature == 0:
            return np.argmax(logits, axis=1)
        if len(self.settings.temperature) != B:
            self.settings = Settings.same(B, self.temperature, self.top_k, self.top_p)
        return draw(logits, self.settings, self.noise.next(B, self.vocab_size))


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
    logits, state = read_prime(network, vocab, prime, num_samples)
    last = logits[-num_samples:]
    for _ in range(length):
        ids = draw(last).astype(vocab.dtype)
        yield ids
        last = network.step(ids, state)


def read_prime(network: LanguageModelNetwork, vocab: Vocab, prime: str, streams: int) -> tuple[np.ndarray, list]:
    """The logits after each character of the prime ((T * streams, V), the last `streams` rows predicting the
    first drawn character) and the state after it, for `streams` streams; call `network.prepare()` first.

    With no prime the network reads a line break (if its vocabulary has one), else it starts from zero logits:
    a uniform first draw."""
    state = network.initial_state(streams)
    context = prime or ("\n" if "\n" in vocab.index else "")
    if not context:
        return np.zeros((streams, len(vocab)), network.dtype), state
    ids = np.repeat(vocab.encode(context)[:, None], streams, axis=1)
    return network.forward(ids, state, prepare=False)


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
