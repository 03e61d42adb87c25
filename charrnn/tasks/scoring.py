"""Many-to-one and one-to-one uses of a model: the cross-entropy of whole texts or lines (`charrnn score`) and
the distribution of the next character after a text (`charrnn predict`)."""

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from charrnn.data.text import Vocab
from charrnn.nn.functional import cross_entropy_rows
from charrnn.nn.language_model import LanguageModelNetwork, evaluate
from charrnn.nn.metrics import LOG2E


@dataclass
class Score:
    """The cross-entropy of `chars` predicted characters, and the characters left out as unknown.

    >>> [s] = model.scores(["To be, or not to be"])
    >>> s.nats, s.bits, s.perplexity, s.chars
    (1.93, 2.78, 6.9, 18)
    """

    name: str
    total_nats: float
    chars: int
    unknown: Counter

    @property
    def nats(self) -> float:
        return self.total_nats / self.chars if self.chars else math.nan

    @property
    def bits(self) -> float:
        return self.nats * LOG2E

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats)

    def record(self) -> dict:
        """The score as `charrnn score --json` and `charrnn eval --json` print it."""
        return {
            "name": self.name,
            "chars": self.chars,
            "nats_per_char": self.nats,
            "bits_per_char": self.bits,
            "perplexity": self.perplexity,
            "total_nats": self.total_nats,
            "unknown": dict(self.unknown),
        }


def known_ids(vocab: Vocab, text: str) -> tuple[np.ndarray, Counter]:
    """The ids of the characters the model knows, and a count of the others (left out, never silently)."""
    unknown = Counter(c for c in text if c not in vocab.index)
    if unknown:
        text = "".join(c for c in text if c in vocab.index)
    return vocab.encode(text), unknown


def score_text(network: LanguageModelNetwork, vocab: Vocab, text: str, name: str = "") -> Score:
    """Cross-entropy of text[1:] given what precedes it, read from the zero state with the state carried:
    the same computation as the validation loss in training."""
    ids, unknown = known_ids(vocab, text)
    if len(ids) < 2:
        return Score(name, 0.0, 0, unknown)
    n = len(ids) - 1
    return Score(name, evaluate(network, ids) * n, n, unknown)


def score_lines(network: LanguageModelNetwork, vocab: Vocab, lines: list[str], batch: int = 256) -> list[Score]:
    """Each line on its own, as the network would write it after a line break: every character of the line and
    the line break that ends it are predicted, from the zero state after reading one line break."""
    newline = "\n" if "\n" in vocab.index else ""
    scores = []
    for start in range(0, len(lines), batch):
        group = lines[start : start + batch]
        encoded = [known_ids(vocab, newline + line + newline) for line in group]
        length = max(len(ids) for ids, _ in encoded)
        x = np.zeros((max(length - 1, 1), len(group)), vocab.dtype)
        y = np.zeros_like(x)
        counted = np.zeros(x.shape, bool)
        for b, (ids, _) in enumerate(encoded):
            x[: len(ids) - 1, b], y[: len(ids) - 1, b] = ids[:-1], ids[1:]
            counted[: len(ids) - 1, b] = True
        logits, _ = network.forward(x, network.initial_state(len(group)))
        per_position = cross_entropy_rows(logits, y.reshape(-1))[0].reshape(x.shape)
        for b, (line, (ids, unknown)) in enumerate(zip(group, encoded, strict=True)):
            scores.append(Score(line, float(per_position[counted[:, b], b].sum()), len(ids) - 1, unknown))
    return scores


def next_char_probs(network: LanguageModelNetwork, vocab: Vocab, text: str) -> np.ndarray:
    """P(next character | text), read from the zero state (an empty text: as after a line break)."""
    context = text or ("\n" if "\n" in vocab.index else "")
    if not context:
        return np.full(len(vocab), 1.0 / len(vocab))
    logits, _ = network.forward(vocab.encode(context).reshape(-1, 1), network.initial_state(1))
    z = logits[-1].astype(np.float64)
    p = np.exp(z - z.max())
    return p / p.sum()
