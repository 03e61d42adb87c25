"""The stacked character model: recurrent layers, then y_t = h_t @ W_y + b_y and softmax cross-entropy.

All parameters live in one flat array (and all gradients in another), and `params`/`grads` are named views
into them, so clipping and the optimizer touch a handful of big arrays instead of dozens of small ones.
"""

import numpy as np

from charrnn.nn.cells import CELLS, Layer, Scratch, State


class Network(Scratch):
    """Parameters in one flat array and gradients in another, with `params`/`grads` as named views into them."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], dtype: str | np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.shapes = shapes
        total = sum(int(np.prod(s)) for s in shapes.values())
        self.flat_params = np.zeros(total, self.dtype)
        self.flat_grads = np.zeros(total, self.dtype)
        self.params = self.views(self.flat_params)
        self.grads = self.views(self.flat_grads)

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Named views into a flat array laid out as the parameters (they, their gradients, or --ema's average)."""
        views, start = {}, 0
        for name, shape in self.shapes.items():
            size = int(np.prod(shape))
            views[name] = flat[start : start + size].reshape(shape)
            start += size
        return views

    def bind(self, layer: Layer, prefix: str) -> None:
        """Give `layer` the views of the parameters named `prefix` + its own names."""
        layer.bind(
            {k[len(prefix) :]: v for k, v in self.params.items() if k.startswith(prefix)},
            {k[len(prefix) :]: v for k, v in self.grads.items() if k.startswith(prefix)},
        )

    @property
    def num_params(self) -> int:
        return self.flat_params.size


class CharModel(Network):
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 256,
        num_layers: int = 2,
        cell: str = "lstm",
        dtype: str = "float32",
        seed: int = 0,
        forget_bias: float = 0.0,
        output_dropout: bool = False,
        embed: int = 0,
    ) -> None:
        self.vocab_size, self.hidden_size, self.cell = vocab_size, hidden_size, cell
        self.output_dropout = output_dropout
        layer_cls = CELLS[cell]
        self.layers: list[Layer] = [
            layer_cls(vocab_size if i == 0 else hidden_size, hidden_size, i == 0, dtype, forget_bias, embed)
            for i in range(num_layers)
        ]
        shapes = {f"l{i}.{k}": s for i, layer in enumerate(self.layers) for k, s in layer.shapes().items()}
        super().__init__(shapes | {"W_y": (hidden_size, vocab_size), "b_y": (vocab_size,)}, dtype)
        for i, layer in enumerate(self.layers):
            self.bind(layer, f"l{i}.")
        self.init(np.random.default_rng(seed))

    def init(self, rng: np.random.Generator) -> None:
        for layer in self.layers:
            layer.init(rng)
        bound = 1.0 / np.sqrt(self.hidden_size)  # as PyTorch's nn.Linear
        self.params["W_y"][...] = rng.uniform(-bound, bound, self.params["W_y"].shape)
        self.params["b_y"][...] = rng.uniform(-bound, bound, self.params["b_y"].shape)

    def initial_state(self, batch_size: int) -> list[State]:
        return [layer.zero_state(batch_size) for layer in self.layers]

    def prepare(self) -> None:
        """Make each layer's working copy of its weights; `forward` does it unless told they are current."""
        for layer in self.layers:
            layer.prepare()

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
                mask = np.multiply(rng.random(out.shape, self.dtype) >= dropout, 1.0 / (1.0 - dropout),
                                   out=self.buf(f"mask{i}", *out.shape), dtype=self.dtype)  # fmt: skip
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
        characters a second through `forward`). Call `prepare()` first.
        """
        out = ids[None]
        for layer, layer_state in zip(self.layers, state, strict=True):
            a = layer.project(out, layer.buf("a_step", 1, len(ids), layer.gates * self.hidden_size))
            layer.advance(a[0], layer_state)
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


def cross_entropy_rows(logits: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """-log softmax(logits)[target] of every row (float64), by log-sum-exp.

    Overwrites `logits` with exp(logits - row max) and also returns their row sums, from which
    `softmax_cross_entropy` makes the softmax without a second pass.
    """
    logits -= logits.max(axis=1, keepdims=True)
    target_logit = logits[np.arange(len(logits)), targets].astype(np.float64)
    exp = np.exp(logits, out=logits)
    norm = exp.sum(axis=1, keepdims=True)
    return np.log(norm[:, 0], dtype=np.float64) - target_logit, norm


def softmax_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    grad: bool,
    counted: np.ndarray | None = None,
    smoothing: float = 0.0,
) -> tuple[float, np.ndarray | None]:
    """Sum over rows (those where `counted`, if given) of -log softmax(logits)[target]; overwrites `logits`.

    With grad=True also returns dL/dlogits of the *mean* loss over the counted rows: (softmax - onehot) / N, zero
    in the rows not counted, in the logits buffer. Label smoothing eps aims at (1 - eps) onehot + eps / K instead
    of the onehot, so the loss of a row becomes (1 - eps) (-log p_y) + eps mean_k(-log p_k), which is
    -log p_y + eps (z_y - mean_k z_k) for the logits z.
    """
    rows = np.arange(len(logits))
    if smoothing:
        gap = logits[rows, targets].astype(np.float64) - logits.mean(axis=1, dtype=np.float64)
    losses, norm = cross_entropy_rows(logits, targets)
    if smoothing:
        losses += smoothing * gap
    total = float(losses.sum() if counted is None else losses[counted].sum())
    if not grad:
        return total, None
    probs = logits
    probs /= norm
    if smoothing:
        probs -= smoothing / probs.shape[1]
    probs[rows, targets] -= 1.0 - smoothing
    if counted is not None:
        probs[~counted] = 0.0
    probs *= 1.0 / (len(probs) if counted is None else max(1, int(counted.sum())))
    return total, probs
