"""The recurrent layers: vanilla RNN, LSTM and GRU, each with forward and backward over a whole chunk.

Shapes are time-major: inputs (T, B) ids or (T, B, D) vectors, hidden states (T, B, H). We use the row
convention `h @ W` (batch rows), so our `W_h` is the textbook W_hh transposed and our `W_x` is W_hx transposed:

    textbook:  h_t = tanh(W_hh h_{t-1} + W_hx x_t + b_h)
    here:      h_t = tanh(h_{t-1} @ W_h + x_t @ W_x + b)

How the work is arranged: the gates of a cell are fused into one (H, G*H) matrix, so each time
step is a single GEMM; the input projection of all T steps is one GEMM (or, for the first layer, one row
lookup in the (V, G*H) table: x_t is one-hot, so x_t @ W_x is row x_t of W_x) written straight into the buffer
the step then turns into gate activations; the weight gradients are one GEMM over the stacked chunk after the
reverse loop. Buffers are allocated once per (T, B) and reused; the loops only call NumPy with `out=`.

Measured, not assumed: for LSTM and GRU the reverse loop computes each step's local derivatives itself, on
that step's (B, ...) slices while they are in cache. Computing them for all T before the loop (the obvious
alternative) streams the whole chunk through memory a dozen times in strided passes and was 15 % slower for
LSTM 2x256. The gradients of the pre-activations then overwrite the activations they came from.
"""

from collections.abc import Iterator

import numpy as np

State = list[np.ndarray]


class Scratch:
    """Named scratch arrays kept between calls: no allocation in the hot path after the first chunk.

    Each name owns one block of memory, as large as the largest shape asked of it, and every shape is a view into
    it: batches of many lengths (examples padded to their batch's longest) cost the memory of the longest one.
    A name's views share that memory, so a caller uses one shape of a name at a time.
    """

    dtype: np.dtype

    def buf(self, name: str, *shape: int) -> np.ndarray:
        views = self.__dict__.setdefault("_views", {})
        view = views.get((name, shape))
        if view is None:
            blocks = self.__dict__.setdefault("_blocks", {})
            size = int(np.prod(shape))
            if name not in blocks or blocks[name].size < size:
                blocks[name] = np.empty(size, self.dtype)
                for key in [k for k in views if k[0] == name]:
                    del views[key]
            view = views[(name, shape)] = blocks[name][:size].reshape(shape)
        return view

    def buf_like(self, name: str, like: np.ndarray, *shape: int) -> np.ndarray:
        """A scratch array of `shape` (default: like's) in like's memory order: batch-major as usual, or
        feature-major (the transpose of a C array) when `like` is, as a served batch's state is."""
        shape = shape or like.shape
        if like.ndim != 2 or like.flags.c_contiguous:
            return self.buf(name, *shape)
        return self.buf(name + ".T", *shape[::-1]).T

    def sum_rows(self, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """rows.sum(axis=0) of a (N, K) array, as ones(N) @ rows: a GEMV, about twice as fast as the sum."""
        ones = self.buf("ones", rows.shape[0])
        ones[...] = 1.0
        return np.matmul(ones, rows, out=out)


class Layer(Scratch):
    """Shared plumbing: parameter binding, the hoisted input projection and weight gradients."""

    gates = 1
    sigmoid_gates = 0

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        lookup: bool,
        dtype: np.dtype,
        forget_bias: float = 0.0,
        embed: int = 0,
    ) -> None:
        self.forget_bias = forget_bias  # LSTM only
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.lookup = lookup  # first layer: input is ids, W_x is a lookup table
        self.embed = embed if lookup else 0  # > 0: the table is E @ W_x, an embedding E (V, embed) then W_x
        self.dtype = np.dtype(dtype)
        self.p: dict[str, np.ndarray] = {}
        self.g: dict[str, np.ndarray] = {}
        self.feature_major_weights: dict[str, np.ndarray] = {}  # see feature_major()
        # sigmoid(x) = 0.5 tanh(x/2) + 0.5: the leading `sigmoid_gates` gate blocks get their pre-activations
        # halved (`scale`, folded into the weights once per chunk), so a step takes one tanh of the whole
        # block and then `* scale + shift` turns the sigmoid columns' tanh into the sigmoid.
        gh, sig = self.gates * hidden_size, self.sigmoid_gates * hidden_size
        self.scale = np.ones(gh, self.dtype)
        self.scale[:sig] = 0.5
        self.shift = np.zeros(gh, self.dtype)
        self.shift[:sig] = 0.5
        self.is_sigmoid = 2.0 * self.shift
        self.is_tanh = 1.0 - self.is_sigmoid

    def shapes(self) -> dict[str, tuple[int, ...]]:
        gh = self.gates * self.hidden_size
        V, E = self.input_size, self.embed
        inputs = {"E": (V, E), "W_x": (E, gh)} if E else {"W_x": (V, gh)}
        return {**inputs, "W_h": (self.hidden_size, gh), "b": (gh,)}

    def bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Use these arrays (views into the model's flat buffers) as parameters and gradients."""
        self.p, self.g = params, grads

    def init(self, rng: np.random.Generator) -> None:
        """PyTorch's initialisation of its recurrent layers: every weight and bias uniform in (-1/sqrt(H), 1/sqrt(H)).

        Our `b` stands for PyTorch's b_ih + b_hh, so it is the sum of two such draws. Zero biases learned measurably
        less per step (GRU 2x384, 1,500 steps: 1.527 against 1.513 nats/char; docs/quality.md). An embedding
        E is N(0, 1), as PyTorch's nn.Embedding.
        """
        bound = 1.0 / np.sqrt(self.hidden_size)
        for name, w in self.p.items():
            if name == "E":
                w[...] = rng.standard_normal(w.shape)
                continue
            w[...] = rng.uniform(-bound, bound, w.shape)
            if name == "b":
                w += rng.uniform(-bound, bound, w.shape)

    def zero_state(self, batch_size: int) -> State:
        return [np.zeros((batch_size, self.hidden_size), self.dtype)]

    def prepare(self) -> None:
        """The weights in the form `forward` uses, made once per chunk (or once for a whole sample).

        The sigmoid columns are halved (see `scale`); for the first layer, the bias is folded into a copy of the
        (V, G*H) table, so its whole input projection is one row lookup. That copy has one more row, the bias
        alone: what id V, a character blanked by input dropout (`blank`), reads. With an embedding the table is
        E @ W_x, one small GEMM per chunk, so an embedded input costs a step no more than a one-hot one.
        """
        W_x, b = self.p["W_x"], self.p["b"]
        if self.lookup:
            V = self.input_size
            self.w_in = self.buf("w_in", V + 1, W_x.shape[1])
            table = np.matmul(self.p["E"], W_x, out=self.buf("table", V, W_x.shape[1])) if self.embed else W_x
            np.add(table, b, out=self.w_in[:V])
            self.w_in[V] = b
            self.w_in *= self.scale
        else:
            self.w_in = self.scaled(W_x, "w_in")
            self.b_in = np.multiply(b, self.scale, out=self.buf("b_in", *b.shape))
        self.w_rec = self.scaled(self.p["W_h"], "w_rec")
        self.w_rec_t = None  # its transpose, made when a step first needs it (see recurrent_product)

    def project(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """(x_t @ W_x + b) * scale for all T steps at once, into `out` (T, B, G*H)."""
        if self.lookup:
            return np.take(self.w_in, x, axis=0, out=out, mode="clip")  # ids are in range; "clip" skips a copy
        T, B = x.shape[:2]
        rows = x.reshape(T * B, -1)
        np.matmul(rows, self.weight("w_in", rows), out=out.reshape(T * B, -1))
        out += self.b_in
        return out

    def feature_major(self) -> None:
        """Keep feature-major copies of the prepared weights, for a feature-major state (a served batch): with both
        in that order, h @ W runs as W^T @ h^T on C arrays, which OpenBLAS does faster for a few dozen streams
        (LSTM 2x256, 32 streams, Zen 4: 118 against 151 us a product on two threads, 201 against 260 on one).
        For serving: the copies are not remade when the parameters change."""
        self.feature_major_weights = {"w_rec": np.asfortranarray(self.w_rec)}
        if not self.lookup:
            self.feature_major_weights["w_in"] = np.asfortranarray(self.w_in)

    def weight(self, name: str, x: np.ndarray) -> np.ndarray:
        """The prepared weight `name` ("w_in", "w_rec") to multiply x by: its feature-major copy for a
        feature-major x, if `feature_major()` made one."""
        if x.ndim == 2 and not x.flags.c_contiguous:
            return self.feature_major_weights.get(name, getattr(self, name))
        return getattr(self, name)

    def recurrent_product(self, h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """h_{t-1} @ W_h (prepared), into `out` if given, else a scratch array or a transposed view of one.

        For 4 to 64 rows of 256 units, computed feature-major, (W_h^T @ h^T)^T: OpenBLAS's SkylakeX kernels do
        that orientation faster even with the transposed read that follows (Zen 4, one thread, the product and the
        add into the gates, 32 x 256 -> 1024: 212-246 against 267-275 us; LSTM 2x256 training 5 % faster). Other
        widths gain nothing in a training step (512 units gain alone, 50 rows: 1,272 against 1,476 us, but not in
        LSTM 2x512's step), and 128 rows or more lose."""
        (B, n), width = h.shape, self.w_rec.shape[1]
        if not (4 <= B <= 64 and n == 256 and h.flags.c_contiguous):
            out = self.buf_like("hw", h, B, width) if out is None else out
            return np.matmul(h, self.weight("w_rec", h), out=out)
        if self.w_rec_t is None:
            self.w_rec_t = self.buf("w_rec_t", width, n)
            self.w_rec_t[...] = self.w_rec.T
        product = np.matmul(self.w_rec_t, h.T, out=self.buf("hw_t", width, B)).T
        if out is None:
            return product
        np.copyto(out, product)
        return out

    def scaled(self, W: np.ndarray, name: str) -> np.ndarray:
        """W with its sigmoid-gate columns halved (a copy, once per chunk)."""
        return np.multiply(W, self.scale, out=self.buf(name, *W.shape))

    def gate_derivative(self, a: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Each gate's derivative from its activation: s(1 - s) for sigmoid gates, 1 - t² for tanh ones."""
        np.subtract(self.is_sigmoid, a, out=out)
        out *= a
        out += self.is_tanh
        return out

    def recurrent_grad(self, dz: np.ndarray) -> np.ndarray:
        """dz_t @ W_h.T, the gradient a step hands back to h_{t-1}, as a (B, H) view of W_h @ dz_t.T.

        Computed on its side because OpenBLAS runs that orientation faster (LSTM 2x256: 96 against 108 us a step).
        """
        W_h = self.p["W_h"]
        out = self.buf("dh_prev", W_h.shape[0], dz.shape[0])
        return np.matmul(W_h, dz.T, out=out).T

    def forward(self, x: np.ndarray, state: State, active: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Outputs h_t (T, B, H) for inputs x ((T, B) ids or (T, B, D) vectors), and the state after the last step.

        `active` (T,), for rows padded at the end and sorted longest first: how many rows still read at each step.
        The others are not computed; their outputs, state and gates are zero from their end on, so a backward pass
        gives them zero gradients as it would have (an encoder's batch: 5-18 % of a batch of 256 is padding)."""
        for _ in self.forward_steps(x, state, active=active):
            pass
        return self.outputs[0], [s[-1].copy() for s in self.outputs]

    @staticmethod
    def reading(t: int, active: np.ndarray | None, rows: int, *buffers: np.ndarray) -> int:
        """How many of `rows` step t computes (`active`, see `forward`); the other rows of each (T, B, ...) buffer are
        zeroed at step t, so that nothing after an example's end depends on what the buffer held before."""
        k = rows if active is None else int(active[t])
        if k < rows:
            for buffer in buffers:
                buffer[t, k:] = 0.0
        return k

    def backward(
        self, dH: np.ndarray, d_cell: np.ndarray | None = None, initial_grad: bool = False
    ) -> np.ndarray | None:
        """Gradients from dH = dL/dh_t for all t (overwritten); returns dL/dx (None for ids).

        d_cell (LSTM): dL/dc_t from outside the layer, e.g. where an encoder's final cell state was read. With
        initial_grad, `self.initial_grad` holds dL/d(initial state) afterwards (an encoder's state feeds a decoder).
        """
        for _ in self.backward_steps(dH, d_cell, initial_grad):
            pass
        return self.finish_backward()

    # forward_steps and backward_steps are generators that pause at every time step, so that a caller can interleave
    # several layers step by step (a decoder that feeds its attention back into its input must): forward_steps pauses
    # before step t, when `self.pre[t]` holds x_t @ W_x + b (or, with project=False, waits for the caller to put it
    # there); backward_steps pauses after step t with dL/dz_t, the input side's pre-activation gradient.

    def activations(self) -> dict[str, np.ndarray]:
        """What the last forward pass computed, by name, each (T, B, H): the hidden state h, and the cell state and
        gates of the gated cells (read before a backward pass, which overwrites the gates)."""
        return {"h": self.outputs[0]}

    def finish_backward(self, input_grad: bool = True) -> np.ndarray | None:
        """The weight gradients once backward_steps has run; dL/dx too unless input_grad is False."""
        return self.weight_grads(*self._grads_from, input_grad)

    def weight_grads(
        self, x: np.ndarray, h0: np.ndarray, H: np.ndarray, dz_in: np.ndarray, dz_rec: np.ndarray, input_grad: bool
    ) -> np.ndarray | None:
        """dW_h, dW_x, db as single GEMMs over the chunk; returns dL/dx for the layer below (None for ids).

        dW_h = sum_t h_{t-1}.T @ dz_rec_t = h0.T @ dz_rec_0 + H[:-1].T @ dz_rec[1:] (no stacked copy of h_{t-1}).
        """
        T, B = x.shape[:2]
        n, gh = self.hidden_size, dz_in.shape[-1]
        dz_in2 = dz_in.reshape(T * B, gh)
        dW_h = self.g["W_h"]
        np.matmul(H[:-1].reshape(-1, n).T, dz_rec[1:].reshape(-1, gh), out=dW_h)
        dW_h += h0.T @ dz_rec[0]
        self.sum_rows(dz_in2, out=self.g["b"])
        if self.lookup:
            d_table = self.buf("d_table", self.input_size, gh) if self.embed else self.g["W_x"]
            _rows_sum_by_id(x.reshape(-1), dz_in2, out=d_table)
            if self.embed:  # through table = E @ W_x
                np.matmul(d_table, self.p["W_x"].T, out=self.g["E"])
                np.matmul(self.p["E"].T, d_table, out=self.g["W_x"])
            return None
        np.matmul(x.reshape(T * B, -1).T, dz_in2, out=self.g["W_x"])
        if not input_grad:
            return None
        dx = self.buf("dx", T, B, self.input_size)
        np.matmul(dz_in2, self.p["W_x"].T, out=dx.reshape(T * B, -1))
        return dx


class RNN(Layer):
    """The vanilla (Elman) cell: h_t = tanh(h_{t-1} @ W_h + x_t @ W_x + b)."""

    gates = 1

    def forward_steps(
        self, x: np.ndarray, state: State, project: bool = True, active: np.ndarray | None = None
    ) -> Iterator[int]:
        T, B = x.shape[:2]
        (h0,) = state
        H = self.buf("H", T, B, self.hidden_size)  # x_t @ W_x + b, then h_t in place
        if project:
            self.project(x, H)
        self.pre, self.outputs = H, [H]
        self.cache = (x, h0.copy(), H)
        h = h0
        for t in range(T):
            yield t
            k = self.reading(t, active, B, H)
            h = self.step(H[t, :k], h[:k], H[t, :k])

    def step(self, a: np.ndarray, h: np.ndarray, h_out: np.ndarray) -> np.ndarray:
        """h_t = tanh(h_{t-1} @ W_h + a) into h_out, given a = x_t @ W_x + b (overwritten)."""
        a += self.recurrent_product(h)
        return np.tanh(a, out=h_out)

    def advance(self, a: np.ndarray, state: State) -> None:
        self.step(a, state[0], state[0])

    def backward_steps(
        self, dH: np.ndarray, d_cell: np.ndarray | None = None, initial_grad: bool = False
    ) -> Iterator[np.ndarray]:
        """dH: dL/dh_t from above for all t; it is turned into dL/dz_t in place."""
        x, h0, H = self.cache
        T, B, n = H.shape
        tanh_grad = self.buf("tanh_grad", T, B, n)  # 1 - h_t², for all t before the loop
        np.square(H, out=tanh_grad)
        np.subtract(1.0, tanh_grad, out=tanh_grad)
        dh_next = self.buf("dh_next", B, n)
        dh_next[...] = 0.0
        for t in reversed(range(T)):
            dz = dH[t]
            dz += dh_next
            dz *= tanh_grad[t]
            yield dz
            if t or initial_grad:
                dh_next = self.recurrent_grad(dz)
        if initial_grad:
            self.initial_grad = [dh_next.copy()]
        self._grads_from = (x, h0, H, dH, dH)


class LSTM(Layer):
    """LSTM with gates fused in the order [o, i, f, g]:

    o, i, f = sigmoid(.), g = tanh(.) of h_{t-1} @ W_h + x_t @ W_x + b
    c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

    The three sigmoid gates come first: one tanh covers the whole block (sigmoid(x) = 0.5 tanh(x/2) + 0.5), and
    the scale and shift that turn it into the sigmoids are constant per column.
    """

    gates = 4
    sigmoid_gates = 3

    def init(self, rng: np.random.Generator) -> None:
        super().init(rng)
        n = self.hidden_size
        self.p["b"][2 * n : 3 * n] += self.forget_bias  # 0 by default: measured better than 1 (benchmarks/sweep.md)

    def zero_state(self, batch_size: int) -> State:
        return [np.zeros((batch_size, self.hidden_size), self.dtype) for _ in range(2)]

    def activations(self) -> dict[str, np.ndarray]:
        n, A = self.hidden_size, self.pre
        gates = {"o": A[..., :n], "i": A[..., n : 2 * n], "f": A[..., 2 * n : 3 * n], "g": A[..., 3 * n :]}
        return {"h": self.outputs[0], "c": self.outputs[1], **gates}

    def forward_steps(
        self, x: np.ndarray, state: State, project: bool = True, active: np.ndarray | None = None
    ) -> Iterator[int]:
        T, B = x.shape[:2]
        n = self.hidden_size
        h0, c0 = state
        A = self.buf("A", T, B, 4 * n)  # input projections, then gate activations o, i, f, g
        if project:
            self.project(x, A)
        C = self.buf("C", T, B, n)
        tanh_C = self.buf("tanh_C", T, B, n)
        H = self.buf("H", T, B, n)
        self.pre, self.outputs = A, [H, C]
        self.cache = (x, h0.copy(), c0.copy(), A, C, tanh_C, H)
        h, c = h0, c0
        for t in range(T):
            yield t
            k = self.reading(t, active, B, A, C, tanh_C, H)
            h, c = self.step(A[t, :k], h[:k], c[:k], H[t, :k], C[t, :k], tanh_C[t, :k])

    def step(
        self, a: np.ndarray, h: np.ndarray, c: np.ndarray, h_out: np.ndarray, c_out: np.ndarray, tanh_c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One step from a = x_t @ W_x + b (overwritten by the gate activations): h_t, c_t into h_out, c_out."""
        n = self.hidden_size
        a += self.recurrent_product(h)
        np.tanh(a, out=a)
        a *= self.scale
        a += self.shift
        o, i, f, g = a[:, :n], a[:, n : 2 * n], a[:, 2 * n : 3 * n], a[:, 3 * n :]
        ig = np.multiply(i, g, out=self.buf_like("ig", h))
        c = np.multiply(f, c, out=c_out)
        c += ig
        np.tanh(c, out=tanh_c)
        return np.multiply(o, tanh_c, out=h_out), c

    def advance(self, a: np.ndarray, state: State) -> None:
        h, c = state
        self.step(a, h, c, h, c, self.buf_like("tanh_c", h))

    def backward_steps(
        self, dH: np.ndarray, d_cell: np.ndarray | None = None, initial_grad: bool = False
    ) -> Iterator[np.ndarray]:
        x, h0, c0, A, C, tanh_C, H = self.cache
        T, B, n = H.shape
        d_act = self.buf("d_act", B, 4 * n)
        d_out = self.buf("d_out", B, 4 * n)
        dc = self.buf("dc", B, n)
        dc_next = self.buf("dc_next", B, n)
        dh_next = self.buf("dh_next", B, n)
        dc_next[...] = 0.0
        dh_next[...] = 0.0
        # Step by step, so that every array touched is one step's (B, ...) slice, still in cache.
        for t in reversed(range(T)):
            a, dz, tanh_c = A[t], d_out, tanh_C[t]
            o, i, f, g = a[:, :n], a[:, n : 2 * n], a[:, 2 * n : 3 * n], a[:, 3 * n :]
            dh = dH[t]
            dh += dh_next
            # dc = dh * o * (1 - tanh(c)²) + dc_{t+1}
            np.square(tanh_c, out=dc)
            np.subtract(1.0, dc, out=dc)
            dc *= o
            dc *= dh
            dc += dc_next
            if d_cell is not None:
                dc += d_cell[t]
            # dL/d[o, i, f, g] = [dh * tanh(c), dc * g, dc * c_{t-1}, dc * i], times each gate's derivative
            np.multiply(dh, tanh_c, out=dz[:, :n])
            np.multiply(dc, g, out=dz[:, n : 2 * n])
            np.multiply(dc, C[t - 1] if t else c0, out=dz[:, 2 * n : 3 * n])
            np.multiply(dc, i, out=dz[:, 3 * n :])
            if t or initial_grad:
                np.multiply(dc, f, out=dc_next)
            dz = np.multiply(dz, self.gate_derivative(a, out=d_act), out=a)  # A[t] is not needed any more
            yield dz
            if t or initial_grad:
                dh_next = self.recurrent_grad(dz)
        if initial_grad:
            self.initial_grad = [dh_next.copy(), dc_next.copy()]
        self._grads_from = (x, h0, H, A, A)  # A now holds dL/d(pre-activations)


class GRU(Layer):
    """GRU with gates [r, z, n], the reset gate applied after the recurrent product (as cuDNN and PyTorch):

    r, z = sigmoid(x_t @ W_x + b + h_{t-1} @ W_h)            (their columns)
    n = tanh(x_t @ W_xn + b_n + r * (h_{t-1} @ W_hn + b_hn))
    h_t = (1 - z) * n + z * h_{t-1}

    so all three recurrent products are still one (H, 3H) GEMM per step.
    """

    gates = 3
    sigmoid_gates = 2

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().shapes(), "b_hn": (self.hidden_size,)}

    def activations(self) -> dict[str, np.ndarray]:
        n, A = self.hidden_size, self.pre
        return {"h": self.outputs[0], "r": A[..., :n], "z": A[..., n : 2 * n], "n": A[..., 2 * n :]}

    def forward_steps(
        self, x: np.ndarray, state: State, project: bool = True, active: np.ndarray | None = None
    ) -> Iterator[int]:
        T, B = x.shape[:2]
        n = self.hidden_size
        (h0,) = state
        A = self.buf("A", T, B, 3 * n)  # input projections, then activations r, z, n
        if project:
            self.project(x, A)
        Gh = self.buf("Gh", T, B, 3 * n)  # h_{t-1} @ W_h (+ b_hn on the n block)
        H = self.buf("H", T, B, n)
        self.pre, self.outputs = A, [H]
        self.cache = (x, h0.copy(), Gh, A, H)
        h = h0
        for t in range(T):
            yield t
            k = self.reading(t, active, B, A, Gh, H)
            h = self.step(A[t, :k], h[:k], H[t, :k], Gh[t, :k])

    def step(self, a: np.ndarray, h: np.ndarray, h_out: np.ndarray, gh: np.ndarray) -> np.ndarray:
        """One step from a = x_t @ W_x + b (overwritten by r, z, n): h_t into h_out, h_{t-1} @ W_h + b_hn into gh."""
        n = self.hidden_size
        self.recurrent_product(h, out=gh)  # r, z columns halved (see Layer.scale)
        gh_n = gh[:, 2 * n :]
        gh_n += self.p["b_hn"]
        rz = a[:, : 2 * n]
        rz += gh[:, : 2 * n]
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z, cand = a[:, :n], a[:, n : 2 * n], a[:, 2 * n :]
        cand += np.multiply(r, gh_n, out=self.buf_like("r_gh", h))
        np.tanh(cand, out=cand)
        np.subtract(h, cand, out=h_out)  # h_t = n + z * (h_{t-1} - n)
        h_out *= z
        return np.add(h_out, cand, out=h_out)

    def advance(self, a: np.ndarray, state: State) -> None:
        self.step(a, state[0], state[0], self.buf_like("gh", state[0], *a.shape))

    def backward_steps(
        self, dH: np.ndarray, d_cell: np.ndarray | None = None, initial_grad: bool = False
    ) -> Iterator[np.ndarray]:
        x, h0, Gh, A, H = self.cache
        T, B, n = H.shape
        d_act = self.buf("d_act", B, 3 * n)
        d = self.buf("d", B, 3 * n)  # dL/d(input-side pre-activations) of one step
        dh_direct = self.buf("dh_direct", B, n)
        dh_next = self.buf("dh_next", B, n)
        dh_next[...] = 0.0
        for t in reversed(range(T)):
            a, gh = A[t], Gh[t]
            r, z, cand = a[:, :n], a[:, n : 2 * n], a[:, 2 * n :]
            dh = dH[t]
            dh += dh_next
            self.gate_derivative(a, out=d_act)  # r', z', tanh'(n)
            # h_t = n + z * (h_{t-1} - n):  dL/dz = dh * (h_{t-1} - n),  dL/dn = dh * (1 - z)
            np.subtract(H[t - 1] if t else h0, cand, out=d[:, n : 2 * n])
            d[:, n : 2 * n] *= dh
            np.multiply(dh, z, out=dh_direct)
            np.subtract(dh, dh_direct, out=d[:, 2 * n :])
            d[:, n:] *= d_act[:, n:]
            # n = tanh(... + r * (h_{t-1} @ W_hn + b_hn)):  dL/dr = dz_n * (h_{t-1} @ W_hn + b_hn)
            np.multiply(d[:, 2 * n :], gh[:, 2 * n :], out=d[:, :n])
            d[:, :n] *= d_act[:, :n]
            # recurrent side [dz_r, dz_z, dz_n * r] into Gh[t]; input side d into A[t] (both no longer needed)
            np.multiply(d[:, 2 * n :], r, out=gh[:, 2 * n :])
            gh[:, : 2 * n] = d[:, : 2 * n]
            a[...] = d
            yield a
            if t or initial_grad:
                np.add(self.recurrent_grad(gh), dh_direct, out=dh_next)
        if initial_grad:
            self.initial_grad = [dh_next.copy()]
        self._grads_from = (x, h0, H, A, Gh)

    def finish_backward(self, input_grad: bool = True) -> np.ndarray | None:
        n, Gh = self.hidden_size, self._grads_from[-1]
        self.sum_rows(Gh.reshape(-1, 3 * n)[:, 2 * n :], out=self.g["b_hn"])
        return super().finish_backward(input_grad)


def _rows_sum_by_id(ids: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """out[v] = sum of rows[k] where ids[k] == v: the gradient of a row lookup (onehot(ids).T @ rows).

    Sorting the positions by id makes each id's rows one contiguous slice; that is several times faster
    than `np.add.at` and, unlike a one-hot product, costs nothing extra for a large vocabulary.
    """
    order = np.argsort(ids, kind="stable")
    sorted_ids, sorted_rows = ids[order], rows[order]
    bounds = np.flatnonzero(np.diff(sorted_ids)) + 1
    out[...] = 0.0
    for start, end in zip([0, *bounds.tolist()], [*bounds.tolist(), len(ids)], strict=True):
        if sorted_ids[start] < len(out):  # the blank id has no row
            sorted_rows[start:end].sum(axis=0, out=out[sorted_ids[start]])


CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
