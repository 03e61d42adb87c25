"""classify: a label for each input (many-to-one). The encoder's outputs are pooled (--pool) into one vector per
example and a softmax over the labels reads it; validation adds accuracy and macro-F1. A trained `Classifier`
gives each input its likeliest labels."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from charrnn.data.examples import LABEL, Encoded
from charrnn.nn.example_network import EXAMPLE, ExampleNetwork, log_probabilities
from charrnn.nn.metrics import classification_metrics
from charrnn.tasks import registry
from charrnn.tasks.examples import ExampleModel, ExampleTask
from charrnn.tasks.model import texts_of, whole
from charrnn.tasks.registry import Metric, TaskConfig


class Classifier(ExampleModel):
    """A trained classifier: the likeliest labels of each input, with their probabilities.

    >>> charrnn.load("runs/wordlang").classify(["lebensmittel", "bonjour"])
    """

    traced = "label of the line"

    def outputs_text(self) -> str:
        return ", ".join(self.outputs)

    def classify(
        self, texts: str | Sequence[str], top_k: int = 1, unknown: str = "error"
    ) -> list[list[tuple[str, float]]]:
        """The `top_k` likeliest labels of each text with their probabilities, likeliest first (many-to-one).

        >>> model.classify(["lebensmittel", "bonjour"], top_k=2)
        [[('german', 0.99), ('dutch', 0.01)], [('french', 0.97), ('english', 0.02)]]
        """
        top_k = whole(top_k, "--top-k")
        ids, _ = self.encode_inputs(texts_of(texts), unknown)
        probs = np.exp(log_probabilities(self.networks, ids))
        labels = self.outputs
        return [[(labels[i], float(p[i])) for i in np.argsort(-p, kind="stable")[:top_k]] for p in probs]


@registry.register
class ClassifyTask(ExampleTask[ExampleNetwork]):
    """A label per example, read from the pooled outputs of the encoder."""

    name = "classify"
    summary = "a label per line: input<TAB>label"
    kind = "a classifier"
    command = "classify"
    keys = (*ExampleTask.keys, "pool")
    figures = (Metric("accuracy"), Metric("macro_f1", percent=False))
    loss_unit = "example"
    targets = LABEL
    outputs_name = "labels"
    model = Classifier
    head = EXAMPLE

    @classmethod
    def describe_model(cls, config: TaskConfig) -> str:
        return f"classify (pool {config.pool})"

    @classmethod
    def torch_flags(cls, config: TaskConfig, vocab_size: int) -> list[str]:
        return [*super().torch_flags(config, vocab_size), "--pool", config.pool]

    @classmethod
    def random_targets(cls, rng: np.random.Generator, inputs: list[np.ndarray]) -> tuple[np.ndarray, list[str]]:
        return rng.integers(0, 10, len(inputs)), [f"label{i}" for i in range(10)]

    def batch_targets(self, index: np.ndarray) -> np.ndarray:
        return np.asarray(self.data.train.targets)[index]

    @classmethod
    def metrics(cls, nets: Sequence[ExampleNetwork], encoded: Encoded, outputs: list[str]) -> dict[str, Any]:
        """The loss per example, accuracy, macro-F1, per-label figures and the confusion matrix."""
        log_probs = log_probabilities(nets, encoded.inputs)
        labels = np.asarray(encoded.targets)
        loss = -float(log_probs[np.arange(len(labels)), labels].mean())
        return {"val_loss": loss, **classification_metrics(labels, log_probs.argmax(axis=1), outputs)}
