"""The language model's network: stacked recurrent layers, then y_t = h_t @ W_y + b_y and softmax cross-entropy."""

import numpy as np

from charrnn.nn.cells import Layer, State
from charrnn.nn.functional import dropout_mask, linear_init, softmax_cross_entropy
from charrnn.nn.network import Network
from charrnn.nn.stack import RecurrentSpec, Stack


class LanguageModelNetwork(Network):
    """The network of a language model: a one-way `Stack` over the characters, then an output layer over the
    vocabulary. Parameters: the stack's l{i}.*, then W_y and b_y."""

    def __init__(self, vocab_size: int, spec: RecurrentSpec, seed: int = 0) -> None:
        self.vocab_size, self.hidden_size, self.cell = vocab_size, spec.hidden, spec.cell
        self.output_dropout = spec.output_dropout
        self.stack = Stack(spec, vocab_size)
        self.layers: list[Layer] = self.stack.left_to_right
        super().__init__(self.stack.shapes() | {"W_y": (spec.hidden, vocab_size), "b_y": (vocab_size,)}, spec.dtype)
        self.stack.bind(self)
        self.init(np.random.default_rng(seed))

    def init(self, rng: np.random.Generator) -> None:
        self.stack.init(rng)
        linear_init(rng, self.params["W_y"], self.params["b_y"])

    def initial_state(self, batch_size: int) -> list[State]:
        return [layer.zero_state(batch_size) for layer in self.layers]

    def prepare(self, feature_major: bool = False) -> None:
        """Make each layer's working copy of its weights; `forward` does it unless told they are current. With
        feature_major, also the copies a feature-major state is multiplied by (see `Layer.feature_major`)."""
        self.stack.prepare()
        if feature_major:
            for layer in self.layers:
                layer.feature_major()

    def forward(
        self,
        x: np.ndarray,
        state: list[State],
        prepare: bool = True,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, list[State]]:
        """Logits (T*B, V) for ids x (T, B), and the state after the last step (carry it to the next chunk).

        With dropout p > 0 (training), each layer's output, as the next layer sees it, keeps each unit with
        probability 1 - p (scaled by 1 / (1 - p)), as PyTorch's `dropout=`; with `output_dropout`, also the top
        layer's, as the output layer sees it (as char-rnn). The masks come from `rng`; the recurrent connections
        inside a layer are never dropped. prepare=False reuses the weights of the last `prepare()`: right only while
        the parameters are unchanged, as in sampling, where it saves redoing it per character.
        """
        T, B = x.shape
        out, new_state = x, []
        if prepare:
            self.prepare()
        self._masks = []
        for i, (layer, s) in enumerate(zip(self.layers, state, strict=True)):
            out, s = layer.forward(out, s)
            new_state.append(s)
            mask = None
            if dropout > 0 and (i < len(self.layers) - 1 or self.output_dropout):
                mask = dropout_mask(out.shape, dropout, rng, self.dtype, out=self.buf(f"mask{i}", *out.shape))
                out = np.multiply(out, mask, out=self.buf(f"dropped{i}", *out.shape))
            self._masks.append(mask)
        self._top = out
        logits = self.buf("logits", T * B, self.vocab_size)
        np.matmul(out.reshape(T * B, -1), self.params["W_y"], out=logits)
        logits += self.params["b_y"]
        return logits, new_state

    def step(self, ids: np.ndarray, state: list[State]) -> np.ndarray:
        """Logits (B, V) after one more character per stream, `ids` (B,); advances `state` in place.

        For sampling: it keeps nothing for a backward pass and copies no state (LSTM 2×256: 5,588 against 5,233
        characters a second through `forward`). Call `prepare()` first. The state may be feature-major (each array
        the transpose of a C array, as `Batcher` keeps a batch's): the step's scratch arrays follow its order.
        """
        out = ids[None]
        for layer, layer_state in zip(self.layers, state, strict=True):
            shape = (len(ids), layer.gates * self.hidden_size)
            # a row lookup writes batch-major fastest; a product is written in the state's order
            a = layer.buf("a_step", *shape) if layer.lookup else layer.buf_like("a_step", layer_state[0], *shape)
            layer.project(out, a[None])
            layer.advance(a, layer_state)
            out = layer_state[0][None]
        logits = np.matmul(out[0], self.params["W_y"], out=self.buf("step_logits", len(ids), self.vocab_size))
        logits += self.params["b_y"]
        return logits

    def backward(self, dlogits: np.ndarray) -> None:
        """Fill `self.grads` from dL/dlogits of the last `forward` (gradients stop at the chunk's first step)."""
        T, B = self._top.shape[:2]
        top = self._top.reshape(T * B, -1)
        np.matmul(top.T, dlogits, out=self.grads["W_y"])
        self.sum_rows(dlogits, out=self.grads["b_y"])
        dtop = self.buf("dtop", T, B, self.hidden_size)
        np.matmul(dlogits, self.params["W_y"].T, out=dtop.reshape(T * B, -1))
        for i in reversed(range(len(self.layers))):
            if self._masks[i] is not None:
                dtop *= self._masks[i]
            dtop = self.layers[i].backward(dtop)

    def loss(
        self,
        x: np.ndarray,
        y: np.ndarray,
        state: list[State],
        counted: np.ndarray | None = None,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> tuple[float, list[State]]:
        """Summed cross-entropy (nats) of targets y (T, B) given inputs x, over the positions where `counted`
        (a (T, B) bool array; default all); no gradients."""
        logits, state = self.forward(x, state, dropout=dropout, rng=rng)
        mask = None if counted is None else counted.reshape(-1)
        total, _ = softmax_cross_entropy(logits, y.reshape(-1), grad=False, counted=mask)
        return total, state

    def loss_and_grads(
        self,
        x: np.ndarray,
        y: np.ndarray,
        state: list[State],
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> tuple[float, list[State]]:
        """Mean cross-entropy over all T*B positions; fills `self.grads`."""
        logits, state = self.forward(x, state, dropout=dropout, rng=rng)
        total, dlogits = softmax_cross_entropy(logits, y.reshape(-1), grad=True)
        self.backward(dlogits)
        return total / x.size, state


def evaluate(
    network: LanguageModelNetwork, ids: np.ndarray, streams: int = 32, warmup: int = 256, chunk_len: int = 128
) -> float:
    """Mean cross-entropy (nats/char) of ids[1:] given ids[:-1]: the whole text, as if read as one stream.

    Reading one stream is a batch of 1, which wastes the GEMMs. So the text is cut into `streams` contiguous
    segments read side by side (a batch of `streams`): the first starts from the zero state at the text's
    beginning, exactly as one stream would; each other one first reads the `warmup` characters before its
    segment, uncounted, so that its state has the context it would have had. With streams=1 it is exact.
    """
    n = len(ids) - 1
    position, counted = eval_layout(n, streams, warmup)
    x, y = ids[position], ids[position + 1]
    state = network.initial_state(position.shape[1])
    total = 0.0
    for start in range(0, len(position), chunk_len):
        part = slice(start, start + chunk_len)
        loss, state = network.loss(x[part], y[part], state, counted[part])
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
