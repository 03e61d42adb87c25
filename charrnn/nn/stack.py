"""What defines a recurrent network (`RecurrentSpec`), and the one stack of recurrent layers every network is built
on (`Stack`): the language model reads it a chunk at a time carrying its state, an encoder reads padded examples
(`Encoder`), and a decoder advances it step by step.

An encoder reads a batch of (T, B) ids padded at the end, with each example's length. Left to right, padding needs no
care: a position after an example's end cannot change an earlier one, and the heads read and score only real
positions, so the gradients that reach the padding are zero. Right to left, each example is read reversed *within its
own length* (`reverse_index`), so its padding also comes last, and the outputs are put back in reading order. Each
layer's output, as the next layer sees it, is the two directions' outputs side by side, (T, B, 2H), as in PyTorch's
`bidirectional=True`. Full backpropagation through each example: no state is carried between batches.
"""

from dataclasses import dataclass

import numpy as np

from charrnn.nn.cells import CELLS, Layer
from charrnn.nn.functional import dropout_mask
from charrnn.nn.network import Network


@dataclass(frozen=True)
class RecurrentSpec:
    """What defines the recurrent part of a network, whatever reads it: the cell, its width and depth, the float
    type, the forget gate's initial bias, a learned character embedding (0: one-hot input), whether an encoder also
    reads right to left, and whether the top layer's output is dropped too (`dropout` applies, as char-rnn)."""

    cell: str = "lstm"
    hidden: int = 256
    layers: int = 2
    dtype: str = "float32"
    forget_bias: float = 0.0
    embed: int = 0
    bidirectional: bool = False
    output_dropout: bool = False


class Stack:
    """`spec.layers` layers of `spec.cell`, the first reading `input_size` ids, each with a right-to-left twin when
    `bidirectional`. A layer's parameters are named for its place: l{i}.* left to right, l{i}r.* right to left
    (after the network's own prefix)."""

    def __init__(self, spec: RecurrentSpec, input_size: int, bidirectional: bool = False) -> None:
        self.spec = spec
        self.hidden_size = spec.hidden
        self.directions = 2 if bidirectional else 1
        self.output_size = spec.hidden * self.directions
        cell = CELLS[spec.cell]
        self.layers: list[list[Layer]] = [
            [
                cell(
                    input_size if i == 0 else self.output_size,
                    spec.hidden,
                    i == 0,
                    spec.dtype,
                    spec.forget_bias,
                    spec.embed,
                )
                for _ in range(self.directions)
            ]
            for i in range(spec.layers)
        ]

    def named_layers(self) -> dict[str, Layer]:
        return {f"l{i}{'r' if d else ''}.": layer for i, pair in enumerate(self.layers) for d, layer in enumerate(pair)}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {prefix + k: s for prefix, layer in self.named_layers().items() for k, s in layer.shapes().items()}

    def bind(self, network: Network, prefix: str = "") -> None:
        """Give every layer its views of `network`'s parameters (named `prefix` + its own name)."""
        for name, layer in self.named_layers().items():
            network.bind(layer, prefix + name)

    def init(self, rng: np.random.Generator) -> None:
        for layer in self.named_layers().values():
            layer.init(rng)

    def prepare(self) -> None:
        for layer in self.named_layers().values():
            layer.prepare()

    @property
    def left_to_right(self) -> list[Layer]:
        """The layers that read left to right, bottom to top (all of them in a one-way stack)."""
        return [pair[0] for pair in self.layers]


def reverse_index(lengths: np.ndarray, steps: int) -> np.ndarray:
    """(T, B) time indices that reverse each example within its length and leave its padding where it is."""
    t = np.arange(steps)[:, None]
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def reading_rows(lengths: np.ndarray, steps: int) -> np.ndarray | None:
    """How many rows still read at each step, if the batch is sorted longest first (as `length_batches` and
    `ExampleBatches` give it): those rows are a prefix, and a layer computes only them. None otherwise."""
    if np.any(lengths[1:] > lengths[:-1]):
        return None
    return (lengths[None, :] > np.arange(steps)[:, None]).sum(axis=1)


def take_steps(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """x[index[t, b], b] for (T, B) or (T, B, D) arrays: a reordering of each example's time steps."""
    return x[index, np.arange(x.shape[1])[None, :]]


class Encoder(Stack):
    """A stack that reads padded examples whole, both ways when its spec is bidirectional: the reader of a
    classifier, a tagger and an encoder-decoder's source."""

    def __init__(self, spec: RecurrentSpec, vocab_size: int) -> None:
        super().__init__(spec, vocab_size, spec.bidirectional)

    def forward(
        self, x: np.ndarray, lengths: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """The top layer's outputs (T, B, directions * H) for ids x (T, B); dropout p > 0 drops units of each
        layer's output before the next layer reads it (not the top layer's: the head decides)."""
        T, B = x.shape
        self._lengths = lengths
        self._reverse = reverse_index(lengths, T) if self.directions == 2 else None
        self._masks: list[np.ndarray | None] = []
        active = reading_rows(lengths, T)
        out = x
        for i, pair in enumerate(self.layers):
            zero = pair[0].zero_state(B)
            forward, _ = pair[0].forward(out, zero, active)
            if self.directions == 1:
                out = forward
            else:
                backward, _ = pair[1].forward(take_steps(out, self._reverse), zero, active)
                out = np.concatenate([forward, take_steps(backward, self._reverse)], axis=-1)
            mask = None
            if dropout > 0 and i < len(self.layers) - 1:
                mask = dropout_mask(out.shape, dropout, rng, out.dtype)
                out = out * mask
            self._masks.append(mask)
        return out

    def final_states(self, lengths: np.ndarray) -> list[list[list[np.ndarray]]]:
        """[layer][direction] -> the state ([h] or [h, c], each (B, H)) after each example's last character.

        A right-to-left layer reads each example reversed within its length, so its final state is also at the
        example's length - 1 in its own time order (which is the first character of the text)."""
        rows, last = np.arange(len(lengths)), lengths - 1
        return [[[s[last, rows] for s in layer.outputs] for layer in pair] for pair in self.layers]

    def backward(self, d_out: np.ndarray, d_final: list | None = None) -> None:
        """Fill the layers' gradients from dL/d(top outputs) (T, B, directions * H), zero at padded positions, and
        from d_final, dL/d(final states) shaped as `final_states` returns them (when a decoder started from them)."""
        n = self.hidden_size
        for i in reversed(range(len(self.layers))):
            pair = self.layers[i]
            if self._masks[i] is not None:
                d_out = d_out * self._masks[i]
            d_hidden = [np.ascontiguousarray(d_out[..., :n])]
            if self.directions == 2:
                d_hidden.append(take_steps(d_out[..., n:], self._reverse))
            d_inputs = []
            for d, (layer, d_h) in enumerate(zip(pair, d_hidden, strict=True)):
                d_cell = None
                if d_final is not None:
                    rows, last = np.arange(d_h.shape[1]), self._lengths - 1
                    d_h[last, rows] += d_final[i][d][0]
                    if len(d_final[i][d]) == 2:  # LSTM: the final cell state too
                        d_cell = np.zeros_like(d_h)
                        d_cell[last, rows] = d_final[i][d][1]
                d_inputs.append(layer.backward(d_h, d_cell))
            if i:
                d_out = d_inputs[0] if self.directions == 1 else d_inputs[0] + take_steps(d_inputs[1], self._reverse)
