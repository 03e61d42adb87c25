"""tag: an output character for each input character (many-to-many, Tx = Ty), e.g. restoring capitals. A softmax
over the output characters reads the encoder at every position; validation adds character accuracy, exact match
and the F1 of the characters it changes. A trained `Tagger` writes each input's likeliest output."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from charrnn.data.examples import OUTPUT, Encoded
from charrnn.data.text import printable
from charrnn.nn.example_network import POSITION, ExampleNetwork, log_probabilities
from charrnn.nn.functional import pad
from charrnn.nn.metrics import tagging_metrics
from charrnn.tasks import registry
from charrnn.tasks.examples import ExampleModel, ExampleTask
from charrnn.tasks.model import texts_of
from charrnn.tasks.registry import Metric


class Tagger(ExampleModel):
    """A trained tagger: one output character per input character.

    >>> charrnn.load("runs/truecase").tag(["to be or not to be"])
    """

    def outputs_text(self) -> str:
        return printable("".join(self.outputs))

    def tag(self, texts: str | Sequence[str], unknown: str = "error") -> list[str]:
        """The likeliest output string of each text, one output character per input character (many-to-many).
        With unknown="skip", characters the model never saw are read past and copied to the output as they are.

            >>> model.tag(["to be or not to be"])
            ['To be or not to be']
        """
        texts = texts_of(texts)
        ids, skipped = self.encode_inputs(texts, unknown)
        results = []
        for text, log_probs, gaps in zip(texts, log_probabilities(self.networks, ids), skipped, strict=True):
            out = [self.outputs[i] for i in log_probs.argmax(axis=1)]
            for i in gaps:
                out.insert(i, text[i])
            results.append("".join(out))
        return results


@registry.register
class TagTask(ExampleTask[ExampleNetwork]):
    """An output character at every input position."""

    name = "tag"
    summary = "an output character per input character"
    kind = "a tagger"
    command = "tag"
    figures = (
        Metric("char_accuracy"),
        Metric("exact_match"),
        Metric("change_precision", headline=False),
        Metric("change_recall", headline=False),
        Metric("change_f1", percent=False),
    )
    targets = OUTPUT
    outputs_name = "output characters"
    model = Tagger
    head = POSITION

    @classmethod
    def random_targets(cls, rng: np.random.Generator, inputs: list[np.ndarray]) -> tuple[list, list[str]]:
        return [rng.integers(0, 10, len(s)) for s in inputs], [str(i) for i in range(10)]

    def batch_targets(self, index: np.ndarray) -> np.ndarray:
        return pad([self.data.train.targets[i] for i in index], np.int64)[0]

    @classmethod
    def metrics(cls, nets: Sequence[ExampleNetwork], encoded: Encoded, outputs: list[str]) -> dict[str, Any]:
        """The loss per character, character accuracy, exact match and the F1 of the characters it changes."""
        log_probs = log_probabilities(nets, encoded.inputs)
        total = sum(-float(lp[np.arange(len(t)), t].sum()) for lp, t in zip(log_probs, encoded.targets, strict=True))
        predicted = ["".join(outputs[i] for i in lp.argmax(axis=1)) for lp in log_probs]
        chars = sum(len(t) for t in encoded.targets)
        # Scored on what the model read: --max-len cuts an input and its target alike.
        kept = [len(t) for t in encoded.targets]
        inputs = [text[:n] for text, n in zip(encoded.examples.inputs, kept, strict=True)]
        truth = [text[:n] for text, n in zip(encoded.examples.targets, kept, strict=True)]
        return {"val_loss": total / chars, **tagging_metrics(inputs, truth, predicted)}
