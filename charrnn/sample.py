"""One-to-many generation: read a prime, then draw one character at a time and feed it back in."""

from collections.abc import Iterator

import numpy as np

from charrnn.data import Vocab
from charrnn.errors import CharRNNError
from charrnn.model import CharModel


class Sampler:
    """Draws ids from softmax(logits / temperature) by the Gumbel-max trick: argmax(logits / T + g).

    g is standard Gumbel noise, drawn from `rng` a block of rows at a time, so one draw is three small NumPy
    calls instead of a softmax, a cumulative sum and a search. Temperature 0 means the most likely id.
    """

    def __init__(self, vocab_size: int, temperature: float, rng: np.random.Generator, block: int = 1024) -> None:
        self.temperature, self.rng, self.block = temperature, rng, block
        self.noise = np.empty((0, vocab_size))
        self.row = 0
        self.z = np.empty(vocab_size)

    def __call__(self, logits: np.ndarray) -> int:
        if self.temperature == 0:
            return int(np.argmax(logits))
        if self.row == len(self.noise):
            self.noise = self.rng.gumbel(size=(self.block, len(self.z)))
            self.row = 0
        np.multiply(logits, 1.0 / self.temperature, out=self.z)
        self.z += self.noise[self.row]
        self.row += 1
        return int(np.argmax(self.z))


def generate(
    model: CharModel,
    vocab: Vocab,
    length: int,
    temperature: float = 1.0,
    prime: str = "",
    seed: int | None = None,
) -> Iterator[str]:
    """Yield `length` characters that follow `prime` (not repeated). The same seed gives the same text.

    With no prime the model starts as after a line break (if its vocabulary has one), else uniformly.
    """
    if temperature < 0:
        raise CharRNNError(f"--temperature must be >= 0 (got {temperature}).")
    unknown = vocab.unknown(prime)
    if unknown:
        listed = ", ".join(repr(c) for c in unknown)
        raise CharRNNError(f"--prime has characters the model never saw in training: {listed}; remove them.")
    draw = Sampler(len(vocab), temperature, np.random.default_rng(seed))
    model.prepare()
    state = model.initial_state(1)
    context = prime or ("\n" if "\n" in vocab.index else "")
    if context:
        logits, state = model.forward(vocab.encode(context).reshape(-1, 1), state, prepare=False)
        last = logits[-1]
    else:
        last = np.zeros(len(vocab), model.dtype)
    x = np.zeros((1, 1), dtype=vocab.dtype)
    for _ in range(length):
        x[0, 0] = draw(last)
        yield vocab.chars[x[0, 0]]
        logits, state = model.forward(x, state, prepare=False)
        last = logits[0]
