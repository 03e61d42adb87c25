"""Gradient clipping and the update rules, working in place on the model's flat parameter/gradient arrays."""

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
    """An update rule over one flat parameter array; `state` holds its named moment arrays for checkpoints."""

    def __init__(self, params: np.ndarray, lr: float) -> None:
        self.params, self.lr, self.steps = params, lr, 0
        self.state: dict[str, np.ndarray] = {}
        self._scratch = np.empty_like(params)

    def moment(self, name: str) -> np.ndarray:
        self.state[name] = np.zeros_like(self.params)
        return self.state[name]

    def step(self, grads: np.ndarray) -> None:
        self.steps += 1
        self.update(grads)

    def update(self, grads: np.ndarray) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """theta -= lr * g"""

    def update(self, grads: np.ndarray) -> None:
        np.multiply(grads, self.lr, out=self._scratch)
        self.params -= self._scratch


class Adagrad(Optimizer):
    """cache += g²;  theta -= lr * g / (sqrt(cache) + eps)   (min-char-rnn's rule)"""

    def __init__(self, params: np.ndarray, lr: float, eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.eps = eps
        self.cache = self.moment("cache")

    def update(self, grads: np.ndarray) -> None:
        tmp = self._scratch
        np.square(grads, out=tmp)
        self.cache += tmp
        np.sqrt(self.cache, out=tmp)
        tmp += self.eps
        np.divide(grads, tmp, out=tmp)
        tmp *= self.lr
        self.params -= tmp


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

    def update(self, grads: np.ndarray) -> None:
        b1, b2, tmp = self.beta1, self.beta2, self._scratch
        self.m *= b1
        np.multiply(grads, 1.0 - b1, out=tmp)
        self.m += tmp
        self.v *= b2
        np.square(grads, out=tmp)
        tmp *= 1.0 - b2
        self.v += tmp
        # lr * m̂ / (sqrt(v̂) + eps), with m̂ = m / (1 - b1^t) and v̂ = v / (1 - b2^t) folded into two scalars
        root_bias2 = np.sqrt(1.0 - b2**self.steps)
        np.sqrt(self.v, out=tmp)
        tmp += self.eps * root_bias2
        np.divide(self.m, tmp, out=tmp)
        tmp *= self.lr * root_bias2 / (1.0 - b1**self.steps)
        self.params -= tmp


OPTIMIZERS = {"adam": Adam, "sgd": SGD, "adagrad": Adagrad}
