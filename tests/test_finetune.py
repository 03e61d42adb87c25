"""--init-from: fine-tuning starts from a checkpoint's (or a run folder's) weights, for every task and every option
that changes the network's shapes, and takes the keys that define the network from the checkpoint."""

import itertools

import numpy as np
import pytest

import charrnn
from charrnn.training.checkpoint import load_model
from charrnn.training.config import NETWORK_KEYS

WORDS = ["".join(w) for w in itertools.product("abcd", repeat=3)]
FILES = {
    "lm": "".join(f"{w} {w[::-1]}\n" for w in WORDS) * 4,
    "classify": "".join(f"{w}\t{w[0]}\n" for w in WORDS),
    "tag": "".join(f"{w}\t{w.upper()}\n" for w in WORDS),
    "seq2seq": "".join(f"{w}\t{' '.join(w[::-1])}\n" for w in WORDS),
}
SHAPES = [
    ("lm", {"embed": 8}),
    ("lm", {"cell": "gru", "layers": 2}),
    ("classify", {"embed": 8, "bidirectional": True, "pool": "max"}),
    ("classify", {"cell": "rnn", "pool": "mean"}),
    ("tag", {"embed": 8, "bidirectional": True, "layers": 2}),
    ("seq2seq", {"embed": 8, "bidirectional": True, "attention": "additive", "input_feeding": True}),
    ("seq2seq", {"attention": "dot", "target_units": "words", "cell": "gru"}),
    ("seq2seq", {"attention": "none", "layers": 2}),
    ("seq2seq", {"attention": "general", "bidirectional": True, "target_units": "words", "embed": 4}),
]
SMALL = {"hidden": 8, "batch_size": 4, "seq_len": 8, "eval_every": 0}


def small(task: str) -> dict:
    return {k: v for k, v in SMALL.items() if task == "lm" or k != "seq_len"}


@pytest.mark.parametrize(("task", "shape"), SHAPES, ids=[f"{t}-{'-'.join(map(str, s.values()))}" for t, s in SHAPES])
def test_fine_tuning_starts_from_the_checkpoint_or_run_folder(tmp_path, task, shape):
    corpus = tmp_path / f"{task}.txt"
    corpus.write_text(FILES[task], encoding="utf-8")
    base = charrnn.train(corpus, task=task, max_steps=3, run_dir=str(tmp_path / "base"), **small(task), **shape)
    start, _, source, _, _ = load_model(base.run_dir / "last.npz")
    for n, init_from in enumerate([base.run_dir / "last.npz", base.run_dir]):
        # A learning rate this small moves no weight measurably: the run starts from the checkpoint's weights.
        options = {"init_from": init_from, "max_steps": 1, "lr": 1e-12, **small(task)}
        run = charrnn.train(corpus, run_dir=str(tmp_path / f"ft{n}"), **options)
        tuned, _, config, _, _ = load_model(run.run_dir / "last.npz")
        np.testing.assert_allclose(tuned.flat_params, start.flat_params, atol=1e-6)
        assert all(getattr(config, key) == getattr(source, key) for key in NETWORK_KEYS)


def test_a_network_key_that_contradicts_the_checkpoint_is_refused(run_cli, tmp_path):
    corpus = tmp_path / "words.tsv"
    corpus.write_text(FILES["classify"], encoding="utf-8")
    options = {"task": "classify", "max_steps": 2, "embed": 8, **small("classify")}
    base = charrnn.train(corpus, run_dir=str(tmp_path / "base"), **options)
    code, _, err = run_cli("train", corpus, "--init-from", base.run_dir, "--embed", "16", "--max-steps", "1")
    assert code == 2 and f"--embed 16 contradicts --init-from {base.run_dir}, whose model has embed 8" in err
    code, _, err = run_cli("train", corpus, "--init-from", tmp_path / "nowhere", "--max-steps", "1")
    assert code == 2 and "is neither a checkpoint file nor a run folder" in err


def test_the_network_keys_are_the_ones_that_shape_the_parameters():
    """The keys marked model=True in config.py: what the network computes and the shapes of its parameters."""
    shaping = {"task", "cell", "layers", "hidden", "dtype", "embed", "bidirectional", "pool", "attention"}
    assert set(NETWORK_KEYS) == shaping | {"input_feeding", "target_units"}
