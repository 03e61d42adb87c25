"""Gradient clipping, the update rules (in place on the model's flat arrays) and the learning-rate schedules."""

import math

import numpy as np


def clip_gradients(grads: np.ndarray, max_norm: float = 0.0, max_value: float = 0.0) -> float:
    """Clip by element value (if max_value > 0), then scale to global norm <= max_norm (if > 0).

    Returns the global norm before norm clipping (after value clipping), for logging.
    """
    if max_value > 0:
        np.clip(grads, -max_value, max_value, out=grads)
    norm = float(np.sqrt(np.dot(grads, grads)))
    if max_norm > 0 and norm > max_norm:
        grads *= max_norm / norm
    return norm


class Optimizer:
    """An update rule over one flat parameter array; `state` holds its named moment arrays for checkpoints.

    The update runs block by block: each rule makes about ten passes over its arrays, and a block of every array
    fits in the L2 cache together, so they cost about one trip to memory instead of ten (Adam on LSTM 2x256's 0.87 M
    parameters: 4.8 -> 3.4 ms a step). `update` sees one block: `s` selects it in the flat arrays.
    """

    block = 1 << 15

    def __init__(self, params: np.ndarray, lr: float) -> None:
        self.params, self.lr, self.steps = params, lr, 0
        self.state: dict[str, np.ndarray] = {}
        self._scratch = np.empty(min(self.block, params.size), params.dtype)

    def moment(self, name: str) -> np.ndarray:
        self.state[name] = np.zeros_like(self.params)
        return self.state[name]

    def step(self, grads: np.ndarray) -> None:
        self.steps += 1
        for start in range(0, grads.size, self.block):
            s = slice(start, start + self.block)
            g = grads[s]
            self.update(g, s, self._scratch[: len(g)])

    def update(self, g: np.ndarray, s: slice, tmp: np.ndarray) -> None:
        raise NotImplementedError

    def step_by_rms(self, g: np.ndarray, s: slice, tmp: np.ndarray, cache: np.ndarray, eps: float) -> None:
        """theta -= lr * g / (sqrt(cache) + eps): the step of Adagrad and RMSprop."""
        np.sqrt(cache, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        self.params[s] -= tmp


class SGD(Optimizer):
    """With momentum mu: velocity = mu * velocity + g;  theta -= lr * velocity  (mu = 0: plain SGD)."""

    def __init__(self, params: np.ndarray, lr: float, momentum: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = momentum
        self.velocity = self.moment("velocity")

    def update(self, g: np.ndarray, s: slice, tmp: np.ndarray) -> None:
        velocity = self.velocity[s]
        velocity *= self.momentum
        velocity += g
        np.multiply(velocity, self.lr, out=tmp)
        self.params[s] -= tmp


class RMSprop(Optimizer):
    """cache = rho cache + (1 - rho) g²;  theta -= lr * g / (sqrt(cache) + eps)   (char-rnn's default)"""

    def __init__(self, params: np.ndarray, lr: float, rho: float = 0.95, eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.rho, self.eps = rho, eps
        self.cache = self.moment("cache")

    def update(self, g: np.ndarray, s: slice, tmp: np.ndarray) -> None:
        cache = self.cache[s]
        cache *= self.rho
        np.square(g, out=tmp)
        tmp *= 1.0 - self.rho
        cache += tmp
        self.step_by_rms(g, s, tmp, cache, self.eps)


class Adagrad(Optimizer):
    """cache += g²;  theta -= lr * g / (sqrt(cache) + eps)   (min-char-rnn's rule)"""

    def __init__(self, params: np.ndarray, lr: float, eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.eps = eps
        self.cache = self.moment("cache")

    def update(self, g: np.ndarray, s: slice, tmp: np.ndarray) -> None:
        cache = self.cache[s]
        np.square(g, out=tmp)
        cache += tmp
        self.step_by_rms(g, s, tmp, cache, self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction:

    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;  theta -= lr * m̂ / (sqrt(v̂) + eps)
    """

    def __init__(
        self, params: np.ndarray, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = self.moment("m")
        self.v = self.moment("v")

    def update(self, g: np.ndarray, s: slice, tmp: np.ndarray) -> None:
        b1, b2, m, v = self.beta1, self.beta2, self.m[s], self.v[s]
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.square(g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        # lr * m̂ / (sqrt(v̂) + eps), with m̂ = m / (1 - b1^t) and v̂ = v / (1 - b2^t) folded into two scalars
        root_bias2 = np.sqrt(1.0 - b2**self.steps)
        np.sqrt(v, out=tmp)
        tmp += self.eps * root_bias2
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * root_bias2 / (1.0 - b1**self.steps)
        self.params[s] -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): theta -= lr * wd * theta, then the Adam step."""

    def __init__(self, params: np.ndarray, lr: float, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr)
        self.weight_decay = weight_decay

    def update(self, g: np.ndarray, s: slice, tmp: np.ndarray) -> None:
        self.params[s] *= 1.0 - self.lr * self.weight_decay
        super().update(g, s, tmp)


OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad}


def make_optimizer(name: str, params: np.ndarray, lr: float, momentum: float, weight_decay: float) -> Optimizer:
    extra = {"sgd": {"momentum": momentum}, "adamw": {"weight_decay": weight_decay}}.get(name, {})
    return OPTIMIZERS[name](params, lr, **extra)


def learning_rate(
    step: int,
    lr: float,
    schedule: str = "constant",
    steps_per_epoch: int = 1,
    total_steps: int | None = 1,
    warmup_steps: int = 0,
    decay: float = 0.5,
    decay_every: float = 1.0,
    min_lr: float = 0.0,
    time_progress: float | None = None,
    decay_frac: float = 0.2,
) -> float:
    """The learning rate of update number `step` (from 0): linear warm-up, then constant, step, cosine or wsd.

    cosine decays from the end of the warm-up; wsd (warm-up, stable, decay) stays at `lr` and decays linearly over
    the last `decay_frac` of the run, so it learns as fast as a constant rate in a short run and ends annealed like
    a cosine in a long one. Both run over the steps after the warm-up (total_steps None: no step limit) or, given
    `time_progress` (the fraction of a time budget spent), over the budget, whichever ends first: a run ends at its
    lowest learning rate however it is bounded.
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "step":
        return lr * decay ** math.floor(step / steps_per_epoch / decay_every)
    if schedule not in ("cosine", "wsd"):
        return lr
    progress = 0.0 if total_steps is None else (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if time_progress is not None:
        progress = max(progress, time_progress)
    progress = min(1.0, progress)
    if schedule == "cosine":
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    return lr - (lr - min_lr) * max(0.0, progress - (1.0 - decay_frac)) / decay_frac
