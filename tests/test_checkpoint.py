"""Checkpoints: round trip, atomic write, and a clear refusal of anything that is not ours."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

import charrnn
from charrnn.data.text import load_corpus
from charrnn.errors import CharRNNError
from charrnn.tasks.sampling import generate
from charrnn.training import checkpoint
from charrnn.training.config import Config
from charrnn.training.run import RunFolder
from charrnn.training.trainer import Trainer


@pytest.fixture
def trained(small_corpus, tmp_path):
    cfg = Config(
        corpus=[str(small_corpus)],
        cell="gru",
        layers=2,
        hidden=16,
        batch_size=4,
        seq_len=16,
        max_steps=5,
        eval_every=0,
        save_every=0,
        run_dir=str(tmp_path / "run"),
    )
    trainer = Trainer(cfg, load_corpus(cfg.corpus, val_frac=cfg.val_frac), RunFolder.of(cfg))
    trainer.run()
    return trainer, tmp_path / "run" / "last.npz"


def test_round_trip_gives_the_same_weights_and_the_same_sample(trained):
    trainer, path = trained
    model, vocab, config, meta, arrays = checkpoint.load_model(path)
    assert config == trainer.config
    assert vocab.chars == trainer.data.vocab.chars
    assert meta["step"] == 5 and meta["version"] == checkpoint.VERSION
    np.testing.assert_array_equal(model.flat_params, trainer.network.flat_params)
    np.testing.assert_array_equal(arrays["optim/m"], trainer.optimizer.state["m"])
    before = "".join(generate(trainer.network, vocab, 200, prime="The ", seed=3))
    after = "".join(generate(model, vocab, 200, prime="The ", seed=3))
    assert before == after


def test_save_replaces_atomically_and_leaves_no_temporary_file(trained):
    trainer, path = trained
    trainer.train_step()
    trainer.save()
    assert checkpoint.load(path)[0]["step"] == 6
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_write_keeps_the_old_checkpoint(trained, monkeypatch):
    trainer, path = trained
    old = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(CharRNNError, match=r"No space left on device\); the previous one is intact"):
        trainer.save()
    assert path.read_bytes() == old
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def rewrite(path, change):
    """Rewrite a checkpoint with `change(meta, arrays)` applied."""
    meta, arrays = checkpoint.load(path)
    change(meta, arrays)
    blob = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, meta=blob, **arrays)


def test_newer_format_version_is_refused(trained):
    _, path = trained
    rewrite(path, lambda meta, arrays: meta.update(version=checkpoint.VERSION + 1))
    with pytest.raises(CharRNNError, match="newer than this charrnn"):
        checkpoint.load_model(path)


def test_arrays_that_do_not_match_the_config_are_named(trained):
    _, path = trained
    rewrite(path, lambda meta, arrays: meta["config"].update(hidden=17))
    with pytest.raises(CharRNNError, match=r"'param/l0\.W_x' has shape \(\d+, 48\) but its config implies"):
        checkpoint.load_model(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an .npz archive"),
        (b"\x93NUMPY random bytes" * 10, "not an .npz archive"),
        (None, "no charrnn metadata"),
        ("pickle", "pickled Python object"),
        ("truncated", "damaged or truncated|not an .npz"),
    ],
)
def test_files_that_are_not_our_checkpoints_are_refused(trained, tmp_path, content, message):
    _, good = trained
    path = tmp_path / "bad.npz"
    if content is None:
        np.savez(path, weights=np.zeros(3))
    elif content == "pickle":
        np.savez(path, meta=np.frombuffer(b"{}", np.uint8), evil=np.array([{"a": 1}], dtype=object))
    elif content == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(CharRNNError, match=message):
        checkpoint.load_model(path)


def test_a_zip_that_is_not_ours(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("readme.txt", "hello")
    path = tmp_path / "other.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CharRNNError, match="not a charrnn checkpoint"):
        checkpoint.load(path)


def test_find_checkpoint_picks_the_most_recent_run(tmp_path):
    for name in ("old", "new"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "last.npz").write_bytes(b"x")
    os.utime(tmp_path / "runs" / "old" / "last.npz", (1, 1))
    assert checkpoint.find_checkpoint(root=tmp_path / "runs").parent.name == "new"
    with pytest.raises(CharRNNError, match="no checkpoint found"):
        checkpoint.find_checkpoint(root=tmp_path / "empty")


def test_a_checkpoint_holding_a_key_its_task_does_not_use_still_loads(tmp_path):
    """Keys of other tasks (a classifier trained with --seq-len, before such keys were refused) had no effect: the
    checkpoint loads without them."""
    words = "".join(f"{a}{b}\t{a}\n" for a in "abcd" for b in "abcd") * 2
    (tmp_path / "w.tsv").write_text(words, encoding="utf-8")
    sizes = {"hidden": 8, "layers": 1, "max_steps": 1}
    run = charrnn.train(tmp_path / "w.tsv", task="classify", run_dir=str(tmp_path / "r"), **sizes)
    meta, arrays = checkpoint.load(run.run_dir / "last.npz")
    meta["config"] |= {"seq_len": 10, "newline": "lf", "max_vocab": 9}
    checkpoint.save(tmp_path / "old.npz", meta, arrays)
    _, _, config, _, _ = checkpoint.load_model(tmp_path / "old.npz")
    assert (config.task, config.seq_len, config.newline) == ("classify", 64, "keep")
