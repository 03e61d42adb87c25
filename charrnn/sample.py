"""One-to-many generation: read a prime, then draw one character at a time and feed it back in."""

from collections.abc import Iterator

import numpy as np

from charrnn.data import Vocab
from charrnn.errors import CharRNNError
from charrnn.model import CharModel


def draw(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """An id from softmax(logits / temperature); temperature 0 means the most likely id."""
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))


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
    rng = np.random.default_rng(seed)
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
        x[0, 0] = draw(last, temperature, rng)
        yield vocab.chars[x[0, 0]]
        logits, state = model.forward(x, state, prepare=False)
        last = logits[0]
