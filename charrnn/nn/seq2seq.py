"""Many-to-many with Tx != Ty: an encoder-decoder with attention, greedy and beam decoding.

Encoder: the `Encoder` stack over the source characters (right to left too, with --bidirectional): outputs
    o_j (T_s, B, D) and each layer's final state.
Bridge: decoder layer l starts from encoder layer l's final state: as it is, or, from a bidirectional encoder
    (2H -> H), s = tanh([s_fwd; s_bwd] @ W + b) for each part of the state (h, and c for an LSTM).
Decoder: the same cell, as many layers, reading EOS, y_1, ..., y_n (teacher forcing) into top states s_t.
Attention at every decoder step over the real source positions (Luong, Pham & Manning 2015, "Effective
Approaches to Attention-based Neural Machine Translation"), with a score(s_t, o_j) of `charrnn.nn.attention`
(dot, general or additive):
    a_tj = softmax_j(score),  c_t = sum_j a_tj o_j,  h~_t = tanh([c_t; s_t] @ W_c + b_c)    (none: h~_t = s_t)
Output: y_t = h~_t @ W_y + b_y and a softmax over the target tokens, EOS first; the loss is the mean cross-entropy
    over the real target tokens and each target's EOS.
Input feeding (Luong's section 3.3): the decoder reads [y_{t-1}; h~_{t-1}], so attention runs inside the time loop
    (the layers advance step by step, interleaved); without it, the decoder runs whole, then attention is computed
    for all steps at once with batched GEMMs.
"""

from dataclasses import dataclass

import numpy as np

from charrnn.nn.attention import SCORES
from charrnn.nn.cells import Layer
from charrnn.nn.functional import (
    batched_outer,
    dropout_mask,
    length_batches,
    linear_init,
    log_softmax,
    pad,
    softmax_cross_entropy,
)
from charrnn.nn.network import Network
from charrnn.nn.stack import Encoder, RecurrentSpec, Stack


def _softmax_masked(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """softmax over the last axis of scores (B, Tq, Ts), only over the positions where valid (B, Ts)."""
    scores = np.where(valid[:, None, :], scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


@dataclass
class Source:
    """An encoded batch of sources, as the decoder reads it: outputs batch-major (B, Ts, D), which positions are
    real, the additive attention's key projection, and the decoder's initial state."""

    outputs: np.ndarray
    valid: np.ndarray
    keys: np.ndarray | None
    state: list[list[np.ndarray]]

    def rows(self, index: np.ndarray) -> "Source":
        """The same sources, row i being source index[i] (beam search: K rows per source)."""
        keys = None if self.keys is None else self.keys[index]
        return Source(self.outputs[index], self.valid[index], keys, [[s[index] for s in layer] for layer in self.state])


class Seq2SeqNetwork(Network):
    """An `Encoder` over the source, a one-way `Stack` as the decoder, the bridge between them, attention and an
    output layer over `target_vocab` tokens. Parameters: enc.l{i}.* (and enc.l{i}r.*), dec.l{i}.*, dec.W_feed with
    input feeding, bridge.{layer}.{part}.W/b from a bidirectional encoder, att.*, W_y and b_y."""

    def __init__(
        self,
        source_vocab: int,
        target_vocab: int,
        spec: RecurrentSpec,
        attention: str = "general",
        input_feeding: bool = False,
        seed: int = 0,
    ) -> None:
        H = self.hidden_size = spec.hidden
        self.output_dropout = spec.output_dropout
        self.attention, self.input_feeding, self.target_vocab = attention, input_feeding, target_vocab
        self.encoder = Encoder(spec, source_vocab)
        D = self.encoder.output_size
        self.decoder_stack = Stack(spec, target_vocab)
        self.decoder: list[Layer] = self.decoder_stack.left_to_right
        self.parts = 2 if spec.cell == "lstm" else 1  # h, c
        self.bridged = spec.bidirectional
        # (layer, part) -> the names of its bridge's weight and bias
        self.bridges = {
            (i, k): (f"bridge.{i}.{k}.W", f"bridge.{i}.{k}.b") for i in range(spec.layers) for k in range(self.parts)
        }
        shapes = {"enc." + k: s for k, s in self.encoder.shapes().items()}
        shapes |= {"dec." + k: s for k, s in self.decoder_stack.shapes().items()}
        if input_feeding:
            shapes["dec.W_feed"] = (H, self.decoder[0].gates * H)
        if self.bridged:
            shapes |= {name: shape for W, b in self.bridges.values() for name, shape in ((W, (D, H)), (b, (H,)))}
        self.scorer = SCORES[attention](H, D) if attention in SCORES else None  # None: --attention none
        if self.scorer is not None:
            shapes |= self.scorer.shapes() | {"att.W_c": (D + H, H), "att.b_c": (H,)}
        shapes |= {"W_y": (H, target_vocab), "b_y": (target_vocab,)}
        super().__init__(shapes, spec.dtype)
        self.encoder.bind(self, "enc.")
        self.decoder_stack.bind(self, "dec.")
        self.init(np.random.default_rng(seed))

    def init(self, rng: np.random.Generator) -> None:
        """The recurrent layers as PyTorch's; every other matrix as PyTorch's nn.Linear, in the parameters' order."""
        p = self.params
        self.encoder.init(rng)
        self.decoder_stack.init(rng)
        if self.input_feeding:
            linear_init(rng, p["dec.W_feed"])
        if self.bridged:
            for W, b in self.bridges.values():
                linear_init(rng, p[W], p[b])
        if self.scorer is not None:
            self.scorer.init(rng, p)
            linear_init(rng, p["att.W_c"], p["att.b_c"])
        linear_init(rng, p["W_y"], p["b_y"])

    # -- the pieces ------------------------------------------------------------------------------------------

    def encode(
        self, source: np.ndarray, lengths: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None
    ) -> Source:
        """Run the encoder and the bridge; prepare what every decoder step reads."""
        self.encoder.prepare()
        self.decoder_stack.prepare()
        self._w_feed = self.decoder[0].scaled(self.params["dec.W_feed"], "w_feed") if self.input_feeding else None
        if self.scorer is not None:  # [W_query | the query's rows of W_c]: a decoder state's two products as one
            p, D = self.params, self.encoder.output_size
            own = [p[self.scorer.query_weight]] if self.scorer.query_weight else []
            self._query_weights = np.concatenate([*own, p["att.W_c"][D:]], axis=1)
        out = self.encoder.forward(source, lengths, dropout, rng)
        finals = self.encoder.final_states(lengths)
        if self.bridged:
            p = self.params
            state = [[None] * self.parts for _ in self.decoder]
            for (i, k), (W, b) in self.bridges.items():
                state[i][k] = np.tanh(np.concatenate([finals[i][0][k], finals[i][1][k]], axis=1) @ p[W] + p[b])
            self._bridge_inputs = finals
        else:
            state = [[s.copy() for s in finals[i][0]] for i in range(len(self.decoder))]
        outputs = np.ascontiguousarray(out.transpose(1, 0, 2))
        valid = np.arange(out.shape[0])[None, :] < lengths[:, None]
        keys = self.scorer.keys(outputs, self.params) if self.scorer is not None else None
        return Source(outputs, valid, keys, state)

    def attend(self, queries: np.ndarray, src: Source) -> tuple[np.ndarray, dict]:
        """h~ (B, Tq, H) for decoder states `queries` (B, Tq, H), and what its backward needs.

        h~ = tanh(c @ W_c[:D] + s @ W_c[D:] + b_c): the query's product with W_c[D:] and with the score's own
        query weight are one GEMM (`_query_weights`, made by `encode`): g2p's beam-5 decoding 389 -> 413 examples
        a second, its training step 360 -> 356 ms (Zen 4, one thread)."""
        p, memory = self.params, src.outputs
        cache: dict = {"queries": queries}
        if self.scorer is None:
            cache["out"] = queries
            return queries, cache
        D, Q = memory.shape[-1], self._query_weights.shape[1] - self.hidden_size
        projected = queries @ self._query_weights
        cache["q"] = projected[..., :Q] if Q else queries
        scores = self.scorer.scores(cache["q"], memory, src.keys, p, cache)
        alpha = cache["alpha"] = _softmax_masked(scores, src.valid)
        context = cache["context"] = alpha @ memory
        pre = np.matmul(context, p["att.W_c"][:D])
        pre += projected[..., Q:]
        pre += p["att.b_c"]
        out = cache["out"] = np.tanh(pre, out=pre)
        return out, cache

    def attend_backward(
        self, d_out: np.ndarray, cache: dict, src: Source, d_outputs: np.ndarray, d_keys: np.ndarray | None
    ) -> np.ndarray:
        """dL/d(queries) from dL/dh~; adds into the attention's gradients, d_outputs (B, Ts, D) and d_keys."""
        if self.scorer is None:
            return d_out
        p, g, memory, D = self.params, self.grads, src.outputs, src.outputs.shape[-1]
        alpha, context, queries = cache["alpha"], cache["context"], cache["queries"]
        d_pre = d_out * (1.0 - cache["out"] ** 2)
        rows = d_pre.reshape(-1, d_pre.shape[-1])
        g["att.W_c"][:D] += context.reshape(-1, D).T @ rows
        g["att.b_c"] += rows.sum(axis=0)
        d_context = d_pre @ p["att.W_c"][:D].T
        d_alpha = d_context @ memory.transpose(0, 2, 1)
        d_outputs += batched_outer(alpha.transpose(0, 2, 1), d_context)
        d_scores = alpha * (d_alpha - (d_alpha * alpha).sum(axis=-1, keepdims=True))
        d_q = self.scorer.backward(d_scores, cache, memory, p, g, d_outputs, d_keys)
        weight, Q = self.scorer.query_weight, self._query_weights.shape[1] - self.hidden_size
        d_projected = np.concatenate([d_q, d_pre], axis=-1) if weight else d_pre
        g_projected = queries.reshape(-1, queries.shape[-1]).T @ d_projected.reshape(-1, d_projected.shape[-1])
        if weight:
            g[weight] += g_projected[:, :Q]
        g["att.W_c"][D:] += g_projected[:, Q:]
        d_queries = d_projected @ self._query_weights.T
        return d_queries if weight else d_queries + d_q  # without a query weight, q is the query itself

    # -- training ----------------------------------------------------------------------------------------------

    def forward(
        self,
        source: np.ndarray,
        lengths: np.ndarray,
        decoder_in: np.ndarray,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Logits (Td*B, target vocab) of every decoder step, teacher-forced with decoder_in (Td, B)."""
        src = self._src = self.encode(source, lengths, dropout, rng)
        T, B = decoder_in.shape
        self._dropout_masks = []
        if self.input_feeding:
            out = self._forward_fed(decoder_in, src, dropout, rng)
        else:
            top = decoder_in
            for i, layer in enumerate(self.decoder):
                top, _ = layer.forward(top, src.state[i])
                top = self._drop(top, dropout, rng, i < len(self.decoder) - 1)
            out, self._cache = self.attend(np.ascontiguousarray(top.transpose(1, 0, 2)), src)
        out = np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(T * B, -1)
        self._top = out = self._drop(out, dropout, rng, self.output_dropout)
        return out @ self.params["W_y"] + self.params["b_y"]

    def _drop(self, x: np.ndarray, dropout: float, rng: np.random.Generator | None, on: bool = True) -> np.ndarray:
        mask = None
        if dropout > 0 and on:
            mask = dropout_mask(x.shape, dropout, rng, x.dtype)
            x = x * mask
        self._dropout_masks.append(mask)
        return x

    def _forward_fed(self, decoder_in: np.ndarray, src: Source, dropout: float, rng: np.random.Generator | None):
        """The decoder with input feeding: every layer advances one step at a time, then attention for that step."""
        T, B = decoder_in.shape
        H = self.hidden_size
        steps = []
        for i, layer in enumerate(self.decoder):  # each pauses before its first step; buffers are then in place
            x = decoder_in if i == 0 else self.decoder[i - 1].outputs[0]
            steps.append(layer.forward_steps(x, src.state[i], project=i == 0))
            next(steps[-1])
        self._feeds = np.zeros((T, B, H), self.dtype)  # h~_{t-1}, as step t reads it
        self._caches, out = [], np.empty((B, T, H), self.dtype)
        for t in range(T):
            self.decoder[0].pre[t] += self._feeds[t] @ self._w_feed
            next(steps[0], None)
            for i in range(1, len(self.decoder)):
                below = self.decoder[i - 1].outputs[0][t]
                self.decoder[i].project(below[None], self.decoder[i].pre[t][None])
                next(steps[i], None)
            query = self.decoder[-1].outputs[0][t][:, None, :]
            step_out, cache = self.attend(query, src)
            self._caches.append(cache)
            out[:, t] = step_out[:, 0]
            if t + 1 < T:
                self._feeds[t + 1] = step_out[:, 0]
        return out

    def backward(self, d_logits: np.ndarray) -> None:
        """Fill `grads` from dL/dlogits of the last `forward`."""
        g, src = self.grads, self._src
        for name in g:
            if name.startswith(("att.", "bridge.")):
                g[name][...] = 0.0
        np.matmul(self._top.T, d_logits, out=g["W_y"])
        np.sum(d_logits, axis=0, out=g["b_y"])
        d_top = d_logits @ self.params["W_y"].T
        if self._dropout_masks[-1] is not None:
            d_top *= self._dropout_masks[-1]
        B = src.outputs.shape[0]
        T = len(d_top) // B
        d_out = np.ascontiguousarray(d_top.reshape(T, B, -1).transpose(1, 0, 2))  # dL/dh~ (B, T, H)
        d_outputs = np.zeros_like(src.outputs)
        d_keys = np.zeros_like(src.keys) if src.keys is not None else None
        if self.input_feeding:
            self._backward_fed(d_out, src, d_outputs, d_keys)
        else:
            d_queries = self.attend_backward(d_out, self._cache, src, d_outputs, d_keys)
            d_hidden = np.ascontiguousarray(d_queries.transpose(1, 0, 2))
            for i in reversed(range(len(self.decoder))):
                if self._dropout_masks[i] is not None:
                    d_hidden *= self._dropout_masks[i]
                d_hidden = self.decoder[i].backward(d_hidden, initial_grad=True)
        if d_keys is not None:  # keys = outputs @ W_k + b
            g["att.W_k"][...] = src.outputs.reshape(-1, src.outputs.shape[-1]).T @ d_keys.reshape(-1, d_keys.shape[-1])
            g["att.b"][...] = d_keys.sum(axis=(0, 1))
            d_outputs += d_keys @ self.params["att.W_k"].T
        self.encoder.backward(np.ascontiguousarray(d_outputs.transpose(1, 0, 2)), self._final_state_grads())

    def _backward_fed(self, d_out: np.ndarray, src: Source, d_outputs: np.ndarray, d_keys: np.ndarray | None) -> None:
        """Backward through the interleaved decoder: step by step, from the last, all layers and attention."""
        T, H = d_out.shape[1], self.hidden_size
        d_hidden = [np.zeros((T, d_out.shape[0], H), self.dtype) for _ in self.decoder]
        steps = [layer.backward_steps(d_hidden[i], initial_grad=True) for i, layer in enumerate(self.decoder)]
        d_feed = np.zeros((d_out.shape[0], H), self.dtype)  # dL/dh~_t through step t+1's input
        g_feed = self.grads["dec.W_feed"]
        g_feed[...] = 0.0
        for t in reversed(range(T)):
            d_query = self.attend_backward((d_out[:, t] + d_feed)[:, None, :], self._caches[t], src, d_outputs, d_keys)
            d_hidden[-1][t] += d_query[:, 0]
            for i in reversed(range(len(self.decoder))):
                dz = next(steps[i])
                if i:
                    d_hidden[i - 1][t] += dz @ self.decoder[i].p["W_x"].T
                else:
                    g_feed += self._feeds[t].T @ dz
                    d_feed = dz @ self.params["dec.W_feed"].T
        for i, layer in enumerate(self.decoder):
            next(steps[i], None)  # the last resume computes the initial state's gradient
            layer.finish_backward(input_grad=False)

    def _final_state_grads(self) -> list:
        """dL/d(encoder final states), [layer][direction][part], through the bridge."""
        grads = [[layer.initial_grad] for layer in self.decoder]
        if not self.bridged:
            return grads
        p, g, H = self.params, self.grads, self.hidden_size
        out = [[[], []] for _ in self.decoder]  # [layer][direction][part]
        for (i, k), (W, b) in self.bridges.items():
            x = np.concatenate([self._bridge_inputs[i][0][k], self._bridge_inputs[i][1][k]], axis=1)
            s = self._src.state[i][k]
            d_pre = self.decoder[i].initial_grad[k] * (1.0 - s**2)
            g[W] += x.T @ d_pre
            g[b] += d_pre.sum(axis=0)
            d_x = d_pre @ p[W].T
            out[i][0].append(d_x[:, :H])
            out[i][1].append(d_x[:, H:])
        return out

    def loss_and_grads(
        self,
        source: np.ndarray,
        lengths: np.ndarray,
        targets: list[np.ndarray],
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
        smoothing: float = 0.0,
    ) -> float:
        """Mean cross-entropy per target token (EOS included) of the batch, with label `smoothing`; fills
        `grads`."""
        decoder_in, decoder_out, counted = teacher_forcing(targets)
        logits = self.forward(source, lengths, decoder_in, dropout, rng)
        total, d_logits = softmax_cross_entropy(logits, decoder_out.reshape(-1), True, counted.reshape(-1), smoothing)
        self.backward(d_logits)
        return total / int(counted.sum())

    # -- decoding ----------------------------------------------------------------------------------------------

    def step(self, ids: np.ndarray, state: list[list[np.ndarray]], feed: np.ndarray | None, src: Source):
        """One decoder step for rows reading `ids` (N,): log P(next token) (N, V), h~ (N, H) and the attention
        weights (N, Ts); advances `state` in place. Call `encode` first (it prepares the weights)."""
        x = ids[None]
        for i, layer in enumerate(self.decoder):
            a = layer.project(x, layer.buf("a_step", 1, len(ids), layer.gates * self.hidden_size))[0]
            if i == 0 and feed is not None:
                a += feed @ self._w_feed
            layer.advance(a, state[i])
            x = state[i][0][None]
        out, cache = self.attend(state[-1][0][:, None, :], src)
        logits = log_softmax((out[:, 0] @ self.params["W_y"] + self.params["b_y"]).astype(np.float64))
        alpha = cache["alpha"][:, 0] if "alpha" in cache else np.zeros(src.valid.shape)
        return logits, out[:, 0], alpha


def teacher_forcing(targets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoder inputs EOS, y_1..y_n and outputs y_1..y_n, EOS (both (Td, B), EOS = 0), and which positions count."""
    decoder_out, lengths = pad([np.append(t, 0) for t in targets], np.int64)
    decoder_in = np.zeros_like(decoder_out)
    decoder_in[1:] = decoder_out[:-1]
    counted = np.arange(len(decoder_out))[:, None] < lengths[None, :]
    return decoder_in, decoder_out, counted


def max_output_length(source_length: int) -> int:
    """The longest output decoding may write for a source of this many characters (EOS included)."""
    return 2 * source_length + 10


@dataclass
class Hypothesis:
    tokens: list[int]  # without EOS
    log_prob: float  # log P(tokens, EOS | source), or log P(tokens | source) for one cut at the longest output
    score: float  # log_prob / (outputs, EOS included) ** length_penalty, what the beam ranks by
    complete: bool = True  # ended with EOS (not cut at the longest output allowed)


def decode(
    net: Seq2SeqNetwork,
    sources: list[np.ndarray],
    beam: int = 1,
    n_best: int = 1,
    length_penalty: float = 1.0,
    batch_size: int = 64,
) -> list[list[Hypothesis]]:
    """The `n_best` best outputs of each source, best first: greedy with beam=1, else beam search.

    Beam search keeps the `beam` likeliest unfinished outputs of each source at every step, sets aside each one that
    ends (EOS) and stops for a source once it has `beam` of them, or at `max_output_length`. Outputs are ranked by
    log-probability divided by (length + 1) ** length_penalty. The greedy output is always among the candidates,
    so a wider beam never returns a worse-scoring best than greedy.
    """
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for index in length_batches(sources, batch_size):
        x, lengths = pad([sources[i] for i in index], sources[0].dtype)
        src = net.encode(x, lengths)
        limits = np.array([max_output_length(n) for n in lengths])
        greedy = _beam(net, src, limits, 1, 1, length_penalty)
        found = greedy if beam == 1 else _beam(net, src, limits, beam, max(beam, n_best), length_penalty)
        for row, i in enumerate(index):
            candidates = found[row]
            if beam > 1 and all(h.tokens != greedy[row][0].tokens for h in candidates):
                candidates = [*candidates, greedy[row][0]]
            results[i] = sorted(candidates, key=lambda h: -h.score)[:n_best]
    return results


def _beam(
    net: Seq2SeqNetwork, src: Source, limits: np.ndarray, beam: int, wanted: int, length_penalty: float
) -> list[list[Hypothesis]]:
    """Beam search over a batch of encoded sources (greedy with beam=1); up to `wanted` finished outputs each."""
    B, K = len(limits), beam
    rows = np.repeat(np.arange(B), K)
    src = src.rows(rows)
    state = src.state
    feed = np.zeros((B * K, net.hidden_size), net.dtype) if net.input_feeding else None
    scores = np.full((B, K), -np.inf)
    scores[:, 0] = 0.0
    history = np.zeros((B, K, 0), np.int64)
    ids = np.zeros(B * K, np.int64)  # EOS starts the decoder
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = np.zeros(B, bool)
    for t in range(int(limits.max())):
        log_probs, out, _ = net.step(ids, state, feed, src)
        total = scores[:, :, None] + log_probs.reshape(B, K, -1)
        V = total.shape[2]
        flat = total.reshape(B, K * V)
        best = np.argsort(-flat, axis=1, kind="stable")[:, : 2 * K]
        pick_beam, pick_token = np.zeros((B, K), np.int64), np.zeros((B, K), np.int64)
        new_scores = np.full((B, K), -np.inf)
        for b in range(B):
            if done[b]:
                continue
            kept = 0  # of the 2K best continuations, those among the K best that end are set aside; the K best
            for rank, c in enumerate(best[b]):  # that go on make the next beam
                value = flat[b, c]
                if not np.isfinite(value):
                    break
                k, token = divmod(int(c), V)
                if token == 0 or t + 1 >= limits[b]:  # ends here (EOS, or as long as it may be)
                    if rank < K:
                        tokens = history[b, k].tolist() + ([] if token == 0 else [token])
                        score = float(value) / (t + 1) ** length_penalty
                        finished[b].append(Hypothesis(tokens, float(value), score, token == 0))
                elif kept < K:
                    pick_beam[b, kept], pick_token[b, kept], new_scores[b, kept] = k, token, value
                    kept += 1
            if kept == 0 or len(finished[b]) >= wanted:
                done[b] = True
        if done.all():
            break
        source_rows = (np.arange(B)[:, None] * K + pick_beam).reshape(-1)
        for layer in state:
            for s in layer:
                s[...] = s[source_rows]
        if feed is not None:
            feed = out[source_rows]
        history = np.concatenate([history[np.arange(B)[:, None], pick_beam], pick_token[:, :, None]], axis=2)
        scores, ids = new_scores, pick_token.reshape(-1)
    return finished


def forced_log_prob(
    net: Seq2SeqNetwork, source: np.ndarray, target: list[int], complete: bool = True
) -> tuple[float, np.ndarray]:
    """log P(target, EOS | source) under the model (without the EOS if not `complete`), and the attention weights
    of each output step it counts (Td, Ts): one row per target token, and one for the EOS if `complete`."""
    x, lengths = pad([source], source.dtype)
    decoder_in, decoder_out, _ = teacher_forcing([np.array(target, np.int64)])
    log_probs = log_softmax(net.forward(x, lengths, decoder_in).astype(np.float64))
    steps = len(log_probs) if complete else len(target)
    total = float(log_probs[np.arange(steps), decoder_out.reshape(-1)[:steps]].sum())
    caches = net._caches if net.input_feeding else [net._cache]
    alpha = np.concatenate([c["alpha"][0] for c in caches]) if "alpha" in caches[0] else np.zeros((0, len(source)))
    return total, alpha[:steps]  # an output cut at the length limit has no EOS step
