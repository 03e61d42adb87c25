"""Promises of the docs that no other test pinned: clipping reaches the updates, a checkpoint save that fails half
way keeps the old file, a build whose checksum is not the pinned one is refused, and the beam ranks by the length
penalty."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from conftest import make_trainer, stand_in

from charrnn.data import datasets
from charrnn.errors import CharRNNError
from charrnn.nn.seq2seq import max_output_length
from charrnn.training import checkpoint
from charrnn.training.trainer import Trainer

# -- --clip and --clip-value ----------------------------------------------------------------------------------------


def sgd_step(small_corpus, tmp_path, clip: float, clip_value: float) -> tuple[Trainer, np.ndarray]:
    """One plain-SGD update (no momentum, constant rate) of a tiny model; returns the trainer and the update."""
    trainer = make_trainer(
        small_corpus,
        tmp_path / f"run-{clip}-{clip_value}",
        hidden=16,
        seq_len=16,
        dtype="float64",
        optimizer="sgd",
        momentum=0.0,
        lr=0.5,
        lr_schedule="constant",
        clip=clip,
        clip_value=clip_value,
    )
    before = trainer.network.flat_params.copy()
    assert trainer.train_step() is not None
    return trainer, before - trainer.network.flat_params  # = lr * the gradient applied


def test_clip_bounds_the_global_norm_of_the_gradient_each_update_applies(small_corpus, tmp_path):
    """--clip C: the gradient an update applies has global norm min(C, its norm); 0 leaves it as it is."""
    free, update = sgd_step(small_corpus, tmp_path, clip=0.0, clip_value=0.0)
    assert free.last_lr == 0.5
    assert np.linalg.norm(update) == pytest.approx(0.5 * free.grad_norm, rel=1e-9)
    clip = free.grad_norm / 20  # well below the gradient's norm, so clipping must act
    clipped, update_clipped = sgd_step(small_corpus, tmp_path, clip=clip, clip_value=0.0)
    assert clipped.grad_norm == pytest.approx(free.grad_norm, rel=1e-6)  # the norm before clipping, for the log
    assert np.linalg.norm(update_clipped) == pytest.approx(0.5 * clip, rel=1e-9)
    np.testing.assert_allclose(update_clipped, update / 20, rtol=1e-6, atol=1e-15)  # scaled, same direction


def test_clip_value_bounds_each_element_of_the_gradient_each_update_applies(small_corpus, tmp_path):
    """--clip-value v: each element of the gradient an update applies lies in [-v, v]; the others are untouched."""
    _, update = sgd_step(small_corpus, tmp_path, clip=0.0, clip_value=0.0)
    gradient = update / 0.5
    value = float(np.quantile(np.abs(gradient), 0.9))  # a tenth of the elements are above it
    _, update_clipped = sgd_step(small_corpus, tmp_path, clip=0.0, clip_value=value)
    expected = np.clip(gradient, -value, value)
    assert np.abs(update_clipped).max() == pytest.approx(0.5 * value, rel=1e-9)
    np.testing.assert_allclose(update_clipped / 0.5, expected, rtol=1e-6, atol=1e-15)


# -- a checkpoint save that fails after writing part of the file ----------------------------------------------------


def test_a_save_that_fails_half_way_through_keeps_the_old_checkpoint(small_corpus, tmp_path, monkeypatch):
    """Saves are atomic: a write that fails after some bytes reached the disk leaves the previous checkpoint whole
    (it loads, with its weights), says so in one sentence, and leaves no temporary file."""
    settings = dict(hidden=16, seq_len=16, max_steps=3, lr_schedule="constant", eval_every=0, save_every=0)
    trainer = make_trainer(small_corpus, tmp_path / "run", **settings)
    trainer.run()
    path = tmp_path / "run" / checkpoint.LAST
    old_bytes, old_params = path.read_bytes(), trainer.network.flat_params.copy()
    trainer.train_step()
    assert not np.array_equal(trainer.network.flat_params, old_params)

    real_write_array, written = np.lib.format.write_array, []

    def disk_full_after_the_first_array(fp, array, *args, **kwargs):
        if written:  # the first array (the metadata) went to the file; the disk fills up on the second
            raise OSError(28, "No space left on device")
        real_write_array(fp, array, *args, **kwargs)
        written.append(array.nbytes)

    monkeypatch.setattr(np.lib.format, "write_array", disk_full_after_the_first_array)
    with pytest.raises(CharRNNError, match=r"No space left on device\); the previous one is intact"):
        trainer.save()
    monkeypatch.undo()
    assert written and written[0] > 0  # the write did fail half way, not before it began
    assert path.read_bytes() == old_bytes
    model, _, _, meta, _ = checkpoint.load_model(path)
    assert meta["step"] == 3
    np.testing.assert_array_equal(model.flat_params, old_params)
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".") or p.suffix == ".tmp") == []


# -- a build whose output is not the pinned one ---------------------------------------------------------------------


def test_a_build_whose_checksum_differs_from_the_pinned_one_is_refused(run_cli, data_folder, tmp_path, monkeypatch):
    """`charrnn data get` of a built set: files that differ from the checksums pinned for their inputs are refused
    in one sentence naming the file and both checksums; nothing is written, and a set already there stays as it was."""
    lines = [f"First Citizen {i}:" if i % 2 else f"Before we proceed, hear me {i}." for i in range(60)]
    source = "\n".join(lines) + "\n"
    # what the set's files are, built from this input where no checksum is pinned
    probe = datasets.Registry(root=tmp_path / "probe")
    stand_in(probe.root, "tinyshakespeare", {"input.txt": source})
    probe.get("truecase")
    key = probe.manifest("truecase")["inputs"]
    right = probe.manifest("truecase")["sha256"]
    assert set(right) == {"train.tsv", "val.tsv"} and key.startswith("tinyshakespeare with sha256")
    wrong = hashlib.sha256(b"what the build made when the checksum was pinned").hexdigest()
    pinned = dataclasses.replace(datasets.SETS["truecase"], pinned={key: {**right, "val.tsv": wrong}})
    monkeypatch.setitem(datasets.SETS, "truecase", pinned)

    stand_in(data_folder, "tinyshakespeare", {"input.txt": source})
    code, _, err = run_cli("data", "get", "truecase")
    message = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert message == (
        f"charrnn: error: building 'truecase' from {key} gave val.tsv with sha256 {right['val.tsv']}, not the pinned "
        f"{wrong}; nothing was written (please report this)."
    )
    assert sorted(p.name for p in data_folder.iterdir()) == ["tinyshakespeare"]  # no set, no half-written folder

    old = stand_in(data_folder, "truecase", {"train.tsv": "a\tA\n", "val.tsv": "b\tB\n"})
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    code, _, err = run_cli("data", "get", "truecase", "--force")
    assert code == 2 and "not the pinned" in err
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert sorted(p.name for p in data_folder.iterdir()) == ["tinyshakespeare", "truecase"]


# -- beam search's length penalty -----------------------------------------------------------------------------------


def test_the_beam_ranks_by_log_probability_over_length_to_the_penalty(run_cli, tmp_path):
    """translate --beam N --n-best N --length-penalty P: each output's score is its log-probability / (tokens + 1)
    ** P (tokens alone for one cut at the longest output), the list is ranked by it, and P changes the ranking: 0
    favours short outputs, a large P long ones."""
    rng = np.random.default_rng(0)
    for name, n in (("train.tsv", 200), ("val.tsv", 30)):
        words = ["".join(rng.choice(list("abcdefg"), rng.integers(2, 9))) for _ in range(n)]
        (tmp_path / name).write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    code, _, err = run_cli(
        "train",
        "train.tsv",
        "--val-file",
        "val.tsv",
        "--task",
        "seq2seq",
        "--layers",
        "1",
        "--hidden",
        "16",
        "--attention",
        "additive",
        "--max-steps",
        "6",
    )
    assert code == 0, err
    inputs = ["abcdef", "gfe", "ab"]
    best = {}
    for penalty in (0.0, 3.0):
        code, out, err = run_cli(
            "translate", *inputs, "--beam", "4", "--n-best", "4", "--length-penalty", penalty, "--json"
        )
        assert code == 0, err
        records = json.loads(out)
        assert [r["input"] for r in records] == inputs
        for record in records:
            outputs = record["outputs"]
            assert len(outputs) == 4
            limit = max_output_length(len(record["input"]))
            for o in outputs:
                length = min(len(o["output"]) + 1, limit)  # a character a token; EOS counts, if it was written
                assert o["score"] == pytest.approx(o["log_prob"] / length**penalty, rel=1e-9), (penalty, o)
            scores = [o["score"] for o in outputs]
            assert scores == sorted(scores, reverse=True)
        best[penalty] = [len(r["outputs"][0]["output"]) for r in records]
    assert all(long > short for short, long in zip(best[0.0], best[3.0], strict=True)), best
