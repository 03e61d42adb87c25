"""A task defined here, outside the package, and registered: it trains, evaluates and is used through the command
line and the Python API with no change to charrnn. It writes each line of a plain text file backwards, with the
package's encoder-decoder; the task reads its own data (the file holds no targets) and scores exact matches."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import charrnn
from charrnn.data.examples import EOS, Encoded, ExampleData, Examples
from charrnn.data.text import Vocab, read_text, text_lines
from charrnn.nn.seq2seq import Seq2SeqNetwork, decode
from charrnn.tasks import registry
from charrnn.tasks.examples import ExampleTask
from charrnn.tasks.model import Model, texts_of
from charrnn.tasks.registry import Metric
from charrnn.tasks.seq2seq import seq2seq_metrics


def lines_of(path: Path, encoding: str = "utf-8") -> list[str]:
    return [line for line in text_lines(read_text(path, encoding)) if line]


def encoded(lines: list[str], vocab: Vocab) -> Encoded:
    """Inputs as ids, targets as output ids: the reversed line's characters (output 0 is EOS, so each is id + 1)."""
    ids = [vocab.encode(line) for line in lines]
    return Encoded(ids, [i[::-1].astype(np.int64) + 1 for i in ids], Examples(lines, [w[::-1] for w in lines], []))


class Reverser(Model):
    """A trained reverser; its verb is `translate`, so `charrnn translate` uses it."""

    def translate(
        self, texts: Any, beam: int = 1, n_best: int = 1, length_penalty: float = 1.0, unknown: str = "error"
    ):
        ids, _ = self.encode_inputs(texts_of(texts), unknown)
        return ["".join(self.outputs[t] for t in h[0].tokens) for h in decode(self.network, ids, beam)]

    def evaluate(
        self, path: Any, unknown: str = "error", beam: int = 1, length_penalty: float = 1.0, encoding: Any = None
    ) -> dict:
        lines = lines_of(Path(path), encoding or self.config.encoding)
        metrics = ReverseTask.metrics([self.network], encoded(lines, self.vocab), self.outputs)
        return {"file": str(path), "examples": len(lines), "loss": metrics.pop("val_loss"), **metrics}


class ReverseTask(ExampleTask):
    """Each line of a text file, written backwards."""

    name = "reverse"
    summary = "each line backwards"
    kind = "a reverser"
    command = "translate"
    figures = (Metric("exact_match"),)
    outputs_name = "characters and EOS"
    model = Reverser

    @classmethod
    def load_data(cls, config: Any, cache_dir: Any = None, vocab: Any = None, outputs: Any = None) -> ExampleData:
        lines = lines_of(Path(config.corpus[0]))
        vocab = vocab or Vocab.from_text("".join(lines))
        held = max(1, int(len(lines) * config.val_frac))
        train, val = encoded(lines[:-held], vocab), encoded(lines[-held:], vocab)
        return ExampleData(vocab, [EOS, *vocab.chars], train, val, "words", 0)

    @classmethod
    def build_network(cls, config: Any, vocab_size: int, num_outputs: int = 0) -> Seq2SeqNetwork:
        return Seq2SeqNetwork(vocab_size, num_outputs, registry.recurrent_spec(config), "additive", seed=config.seed)

    def batch_targets(self, index: np.ndarray) -> list[np.ndarray]:
        return [self.data.train.targets[i] for i in index]

    @classmethod
    def metrics(cls, nets: Any, encoded: Encoded, outputs: list[str]) -> dict[str, Any]:
        return seq2seq_metrics(nets[0], encoded)  # the loss per token, exact match, WER and TER


@pytest.fixture
def reverse(monkeypatch, tmp_path) -> Path:
    """The task registered for this test only, and a file of short words of four letters."""
    monkeypatch.setitem(registry.TASKS, ReverseTask.name, ReverseTask)
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefg"), rng.integers(2, 9))) for _ in range(2000)]
    path = tmp_path / "words.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return path


SETTINGS = [
    "--bidirectional",
    "--hidden",
    "32",
    "--layers",
    "1",
    "--batch-size",
    "32",
    "--lr",
    "8e-3",
    "--dropout",
    "0",
]


def test_a_new_task_trains_evaluates_and_is_used_from_the_command_line(run_cli, reverse, tmp_path):
    code, out, err = run_cli("train", reverse, "--task", "reverse", *SETTINGS, "--max-steps", "450")
    assert code == 0, err
    assert "training reverse with a bidirectional lstm" in err and "charrnn translate --run-dir" in err
    assert "exact_match" in out  # the task's headline figure, on every validation line
    code, out, err = run_cli("eval", reverse, "--json")
    assert code == 0, err
    assert json.loads(out)["exact_match"] > 0.8
    code, out, err = run_cli("translate", "abcdefg", "gfedcba", "aab")
    assert code == 0, err
    assert out.split() == ["gfedcba", "abcdefg", "baa"]
    code, out, _ = run_cli("info", "--json")
    assert json.loads(out)["task"] == "reverse"
    code, _, err = run_cli("sample")
    assert code == 2 and "sampling needs a language model, but" in err and "holds a reverser (task reverse)" in err
    assert "use charrnn translate with it" in err


def test_a_new_task_through_the_python_api(reverse, tmp_path):
    settings = {"bidirectional": True, "hidden": 32, "layers": 1, "batch_size": 32, "lr": 8e-3, "dropout": 0.0}
    run = charrnn.train(reverse, task="reverse", max_steps=450, eval_every=150, run_dir=str(tmp_path / "r"), **settings)
    assert run.val_loss is not None
    model = charrnn.load(run.run_dir)
    assert isinstance(model, Reverser) and model.task == "reverse"
    assert model.translate(["abcdefg", "dcba"]) == ["gfedcba", "abcd"]
    assert model.evaluate(reverse)["exact_match"] > 0.8
    with pytest.raises(charrnn.CharRNNError, match=r"--seq-len is for --task lm \(this run's task is reverse\)"):
        charrnn.train(reverse, task="reverse", seq_len=16, run_dir=str(tmp_path / "s"))


def test_a_task_not_registered_is_not_a_choice(run_cli, small_corpus):
    code, _, err = run_cli("train", small_corpus, "--task", "reverse")
    assert code == 2 and "--task must be one of lm, classify, tag, seq2seq (got 'reverse')" in err
