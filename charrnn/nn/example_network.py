"""The network of a task that reads whole examples: the recurrent `Encoder` over an example, then a head.

A head of EXAMPLE (many-to-one, a classifier's): the encoder's outputs are pooled into one vector per example, then
    y = pool(O) @ W_y + b_y and a softmax over the labels. `pool` is "last" (the final state: the left-to-right
    output at the example's last character and, bidirectional, the right-to-left output at its first), "mean" or
    "max" (over the example's positions, element by element).
A head of POSITION (many-to-many, Tx = Ty, a tagger's): y_t = O_t @ W_y + b_y at every position, a softmax over the
    output characters.

The loss is the mean cross-entropy per example (EXAMPLE) or per input character (POSITION); padded positions are
never read or scored, so the gradients are those of the examples run one by one.
"""

from collections.abc import Sequence

import numpy as np

from charrnn.nn.functional import dropout_mask, length_batches, linear_init, log_softmax, pad, softmax_cross_entropy
from charrnn.nn.network import Network
from charrnn.nn.stack import Encoder, RecurrentSpec

EXAMPLE, POSITION = "example", "position"  # what the head predicts: one output per example, or per position


class ExampleNetwork(Network):
    """The `Encoder` over whole examples and a `head` (EXAMPLE or POSITION) over `num_outputs` labels or output
    characters. Parameters: the encoder's l{i}.* and l{i}r.*, then W_y and b_y."""

    def __init__(
        self, head: str, vocab_size: int, num_outputs: int, spec: RecurrentSpec, pool: str = "last", seed: int = 0
    ) -> None:
        self.head, self.pool, self.num_outputs, self.output_dropout = head, pool, num_outputs, spec.output_dropout
        self.encoder = Encoder(spec, vocab_size)
        size = self.encoder.output_size
        super().__init__(self.encoder.shapes() | {"W_y": (size, num_outputs), "b_y": (num_outputs,)}, spec.dtype)
        self.encoder.bind(self)
        rng = np.random.default_rng(seed)
        self.encoder.init(rng)
        linear_init(rng, self.params["W_y"], self.params["b_y"])

    def forward(
        self,
        x: np.ndarray,
        lengths: np.ndarray,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Logits: (B, outputs) for EXAMPLE, (T*B, outputs) for POSITION, for ids x (T, B) padded at the end.

        With dropout p > 0 (training), units are dropped between layers, and with `output_dropout` in what the head
        reads."""
        self.encoder.prepare()
        out = self.encoder.forward(x, lengths, dropout, rng)
        self._shape, self._lengths = out.shape, lengths
        features = self._pooled(out) if self.head == EXAMPLE else out.reshape(-1, out.shape[-1])
        self._mask = None
        if dropout > 0 and self.output_dropout:
            self._mask = dropout_mask(features.shape, dropout, rng, features.dtype)
            features = features * self._mask
        self._features = features
        return features @ self.params["W_y"] + self.params["b_y"]

    def _pooled(self, out: np.ndarray) -> np.ndarray:
        T, B, _ = out.shape
        n, rows = self.encoder.hidden_size, np.arange(B)
        if self.pool == "last":
            last = out[self._lengths - 1, rows]
            if self.encoder.directions == 2:  # right to left, an example's final state is at its first position
                last[:, n:] = out[0, :, n:]
            return last
        valid = (np.arange(T)[:, None] < self._lengths[None, :])[:, :, None]
        if self.pool == "mean":
            return (out * valid).sum(axis=0) / self._lengths[:, None].astype(out.dtype)
        self._masked = np.where(valid, out, out.dtype.type(-np.inf))
        self._maxima = self._masked.max(axis=0)
        return self._maxima

    def _unpooled(self, d_features: np.ndarray) -> np.ndarray:
        """dL/d(encoder outputs) (T, B, D) from dL/d(pooled features) (B, D)."""
        T, B, _ = self._shape
        n, rows = self.encoder.hidden_size, np.arange(B)
        d_out = np.zeros(self._shape, d_features.dtype)
        if self.pool == "last":
            if self.encoder.directions == 2:
                d_out[0, :, n:] = d_features[:, n:]
                d_out[self._lengths - 1, rows, :n] = d_features[:, :n]
            else:
                d_out[self._lengths - 1, rows] = d_features
        elif self.pool == "mean":
            valid = (np.arange(T)[:, None] < self._lengths[None, :])[:, :, None]
            d_out += valid * (d_features / self._lengths[:, None].astype(d_features.dtype))[None]
        else:
            np.put_along_axis(d_out, self._max_positions()[None], d_features[None], axis=0)
        return d_out

    def _max_positions(self) -> np.ndarray:
        """Where max pooling found each maximum: the first position that holds it, as argmax(axis=0) finds it, but
        from the maxima (argmax reads the time axis with a stride: 10.5 ms for B 256, T 11, D 1024, against 2.1 ms
        for the maxima and 5 ms for this, which only a backward pass needs)."""
        first = np.zeros(self._maxima.shape, np.intp)
        for t in reversed(range(len(self._masked))):
            np.putmask(first, self._masked[t] == self._maxima, t)
        return first

    def backward(self, d_logits: np.ndarray) -> None:
        """Fill `grads` from dL/dlogits of the last `forward`."""
        np.matmul(self._features.T, d_logits, out=self.grads["W_y"])
        np.sum(d_logits, axis=0, out=self.grads["b_y"])
        d_features = d_logits @ self.params["W_y"].T
        if self._mask is not None:
            d_features *= self._mask
        d_out = self._unpooled(d_features) if self.head == EXAMPLE else d_features.reshape(self._shape)
        self.encoder.backward(d_out)

    def positions(self, lengths: np.ndarray, steps: int) -> np.ndarray | None:
        """Which rows of POSITION logits (T*B) are real characters; None for EXAMPLE (every row counts)."""
        if self.head == EXAMPLE:
            return None
        return (np.arange(steps)[:, None] < lengths[None, :]).reshape(-1)

    def loss_and_grads(
        self,
        x: np.ndarray,
        lengths: np.ndarray,
        y: np.ndarray,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
        smoothing: float = 0.0,
    ) -> float:
        """Mean cross-entropy per example (EXAMPLE) or per real character (POSITION) of targets y: (B,) labels or
        (T, B) output ids, with label `smoothing`; fills `grads`."""
        logits = self.forward(x, lengths, dropout, rng)
        counted = self.positions(lengths, x.shape[0])
        total, d_logits = softmax_cross_entropy(logits, y.reshape(-1), True, counted, smoothing)
        self.backward(d_logits)
        return total / (len(lengths) if counted is None else int(counted.sum()))


def log_probabilities(
    nets: Sequence[ExampleNetwork], inputs: list[np.ndarray], batch_size: int = 256
) -> np.ndarray | list[np.ndarray]:
    """log P(output) of every input, (N, outputs), for an EXAMPLE head; for POSITION, one (length, outputs) array
    per input.
    Several networks (of one head and vocabulary) are an ensemble: the log of their mean probability, each voting
    with its whole distribution, so one that is sure outweighs one that hesitates.

    Float64, no dropout; inputs are read in batches of similar length (sorted), so little is padded.
    """
    results: list[np.ndarray] = [np.empty(0)] * len(inputs)
    classify = nets[0].head == EXAMPLE
    for index in length_batches(inputs, batch_size):
        x, lengths = pad([inputs[i] for i in index], inputs[0].dtype)
        members = log_softmax(np.stack([net.forward(x, lengths).astype(np.float64) for net in nets]))
        logits = np.logaddexp.reduce(members, axis=0) - np.log(len(nets))
        if classify:
            for row, i in enumerate(index):
                results[i] = logits[row]
        else:
            steps = logits.reshape(x.shape[0], len(index), -1)
            for column, i in enumerate(index):
                results[i] = steps[: lengths[column], column]
    return np.array(results) if classify else results
