"""The base of every network: parameters in one flat array and gradients in another, with named views into them,
so clipping and the optimizer touch a handful of big arrays instead of dozens of small ones."""

import numpy as np

from charrnn.nn.cells import Layer, Scratch


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
