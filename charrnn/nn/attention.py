"""How a decoder state scores the encoder's outputs (Luong, Pham & Manning 2015), one small class per variant:

    dot:      score(s_t, o_j) = s_t . o_j
    general:  score(s_t, o_j) = s_t W_a o_j
    additive: score(s_t, o_j) = v . tanh(W_q s_t + W_k o_j + b)    (Bahdanau, Cho & Bengio 2015; Luong's "concat")

What follows the scores (the softmax over real positions, the context and the attentional state) is the same for
all of them and lives in `Seq2SeqNetwork.attend`. Queries are (B, Tq, H), the encoder's outputs (memory) (B, Ts, D).
"""

import math

import numpy as np

from charrnn.nn.functional import batched_outer, linear_init

Params = dict[str, np.ndarray]


class Attention:
    """A score function: its parameters (named att.*), the keys it computes once per source, the scores of the
    projected queries, and the gradient of the scores into the projected queries (returned), the memory
    (`d_outputs`), the keys and its parameters.

    A query is projected by `query_weight` (if the score has one) before it is scored; `Seq2SeqNetwork.attend`
    does that product, in one GEMM with the query's share of the attentional layer."""

    projects_keys = False  # whether `keys` computes something once per source (else it is the memory itself)
    query_weight: str | None = None  # the (H, Q) parameter that projects a query, if any (else Q = H, unprojected)

    def __init__(self, hidden: int, memory: int) -> None:
        self.hidden, self.memory = hidden, memory

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def init(self, rng: np.random.Generator, p: Params) -> None:
        """Initialise its parameters (each matrix as PyTorch's nn.Linear)."""

    def keys(self, outputs: np.ndarray, p: Params) -> np.ndarray | None:
        """What the scores read of the memory, computed once per batch of sources (None: the memory itself)."""
        return None

    def scores(self, q: np.ndarray, memory: np.ndarray, keys: np.ndarray | None, p: Params, cache: dict):
        """Scores (B, Tq, Ts) of the projected queries q (B, Tq, Q)."""
        raise NotImplementedError

    def backward(
        self,
        d_scores: np.ndarray,
        cache: dict,
        memory: np.ndarray,
        p: Params,
        g: Params,
        d_outputs: np.ndarray,
        d_keys: np.ndarray | None,
    ) -> np.ndarray:
        """dL/dq from dL/dscores; adds into d_outputs, d_keys and the gradients of its other parameters."""
        raise NotImplementedError


class Dot(Attention):
    def scores(self, q, memory, keys, p, cache):
        return q @ memory.transpose(0, 2, 1)

    def backward(self, d_scores, cache, memory, p, g, d_outputs, d_keys):
        d_outputs += batched_outer(d_scores.transpose(0, 2, 1), cache["q"])
        return d_scores @ memory


class General(Dot):
    """The dot product of the projected query q = s_t W_a with the memory."""

    query_weight = "att.W_a"

    def shapes(self):
        return {"att.W_a": (self.hidden, self.memory)}

    def init(self, rng, p):
        linear_init(rng, p["att.W_a"])


class Additive(Attention):
    projects_keys = True
    query_weight = "att.W_q"

    def shapes(self):
        H = self.hidden
        return {"att.W_q": (H, H), "att.W_k": (self.memory, H), "att.b": (H,), "att.v": (H,)}

    def init(self, rng, p):
        linear_init(rng, p["att.W_q"])
        linear_init(rng, p["att.W_k"], p["att.b"])
        p["att.v"][...] = rng.uniform(-1.0, 1.0, self.hidden) / math.sqrt(self.hidden)

    def keys(self, outputs, p):
        return outputs @ p["att.W_k"] + p["att.b"]

    def scores(self, q, memory, keys, p, cache):
        energy = np.tanh(q[:, :, None, :] + keys[:, None, :, :])  # (B, Tq, Ts, A)
        cache["energy"] = energy
        return energy @ p["att.v"]

    def backward(self, d_scores, cache, memory, p, g, d_outputs, d_keys):
        energy = cache["energy"]
        g["att.v"] += np.einsum("bqs,bqsa->a", d_scores, energy)
        d_energy = d_scores[..., None] * p["att.v"] * (1.0 - energy**2)
        d_keys += d_energy.sum(axis=1)
        return d_energy.sum(axis=2)


SCORES = {"dot": Dot, "general": General, "additive": Additive}  # and "none": no attention at all
