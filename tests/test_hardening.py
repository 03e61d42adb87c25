"""Every bad input gets one clear sentence and exit code 2, no fault loses a user's work, no file can run code."""

import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import yaml
from conftest import REPO, kill_while_saving
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charrnn.data.text import encode_files, load_corpus
from charrnn.errors import CharRNNError
from charrnn.training import checkpoint
from charrnn.training.config import build_config
from charrnn.training.run import RunFolder
from charrnn.training.trainer import Trainer

SMALL = ["--layers", "1", "--hidden", "16", "--batch-size", "4", "--seq-len", "16"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\xef\xbb\xbf", "is empty"),
        (b"PK\x03\x04\x00\x00binary\x00\x00" * 50, "looks like binary data"),
        (bytes(range(1, 32)) * 100 + b"text", "looks like binary data"),
        (b"caf\xe9 au lait" * 100, "is not valid utf-8 (byte 0xe9 at offset 3)"),
        (b"abcdefghij" * 6, "too few for --batch-size 4"),
        (
            "".join(chr(0x4E00 + i) for i in range(1200)).encode() * 3,
            "1,200 distinct characters, more than --max-vocab",
        ),
    ],
)
def test_bad_corpus_is_one_sentence_and_writes_nothing(run_cli, tmp_path, content, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    code, out, err = run_cli("train", corpus, *SMALL, "--max-steps", "2")
    assert code == 2, err
    assert message in err and "Traceback" not in err and out == ""
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("path", "message"), [("nope.txt", "does not exist"), (".", "is a directory; pass the text file(s) inside it")]
)
def test_missing_corpus_and_directory(run_cli, tmp_path, path, message):
    code, _, err = run_cli("train", path, *SMALL)
    assert code == 2 and message in err
    assert not (tmp_path / "runs").exists()


def test_too_small_validation_split(run_cli, small_corpus):
    code, _, err = run_cli("train", small_corpus, *SMALL, "--val-frac", "0.0001")
    assert code == 2 and "too few to validate on" in err


def test_a_large_real_vocabulary_trains_and_samples(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    chars = [chr(0x4E00 + i) for i in range(1500)]
    lines = ["".join(rng.choice(chars[: 200 + i % 1300], 12).tolist()) + "。\n" for i in range(1500)]
    text = "".join(lines)
    corpus = tmp_path / "zh.txt"
    corpus.write_text(text, encoding="utf-8")
    code, _, err = run_cli("train", corpus, *SMALL, "--max-steps", "3", "--max-vocab", "2000")
    assert code == 0, err
    vocab = checkpoint.load_model(tmp_path / "runs" / "zh" / "last.npz")[1]
    assert len(vocab) > 1000 and vocab.dtype == np.uint16
    code, out, _ = run_cli("sample", "--len", "50", "--seed", "1")
    drawn = out[:50]  # then a line break, unless the sample ended with one
    assert code == 0 and out in (drawn, drawn + "\n") and out.endswith("\n") and set(drawn) <= set(vocab.chars)


@pytest.mark.parametrize(("newline", "expected"), [("keep", "a\r\nb\rc\r\n"), ("lf", "a\nb\nc\n")])
def test_line_endings_are_kept_unless_asked(tmp_path, newline, expected):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"a\r\nb\rc\r\n" * 40)
    for piece_bytes in (2, 3, 1 << 20):  # a CRLF split between two pieces is still one line break
        vocab, ids = encode_files([path], piece_bytes=piece_bytes, newline=newline)
        assert vocab.decode(ids) == expected * 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr-schedule", "cosine", "--min-lr", "0.1", "--lr", "0.01"], "--min-lr 0.1 is above --lr 0.01"),
        (["--patience", "3", "--val-frac", "0"], "--patience needs validation passes"),
        (["--warmup-steps", "10", "--max-steps", "5"], "--warmup-steps 10 leaves no steps"),
        (["--dropout", "1"], "--dropout must be < 1.0"),
        (["--dropout", "-0.1"], "--dropout must be >= 0.0"),
        (["--hidden", "-3"], "--hidden must be >= 1"),
        (["--cell", "transformer"], "--cell must be one of rnn, lstm, gru"),
        (["--forget-bias", "nan"], "--forget-bias must be a finite number (got nan)"),
        (["--lr", "inf"], "--lr must be a finite number (got inf)"),
        (["--clip", "nan"], "--clip must be a finite number (got nan)"),
        (["--max-len", "5"], "--max-len is for --task classify or tag or seq2seq (this run's task is lm)"),
    ],
)
def test_bad_and_contradictory_flags(run_cli, small_corpus, tmp_path, args, message):
    code, _, err = run_cli("train", small_corpus, *SMALL, *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_sample_rejects_a_negative_temperature(run_cli, small_corpus):
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "2")[0] == 0
    code, _, err = run_cli("sample", "--temperature", "-1")
    assert code == 2 and "Traceback" not in err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["hidden", "lr", "cell", "corpus", "max_time", "dropout", "hiden", "x"])
                | st.text(max_size=8),
                children,
                max_size=4,
            )
        ),
        max_leaves=10,
    )
)
def test_any_yaml_document_gives_a_config_or_our_error(tmp_path, document):
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(document))
    with contextlib.suppress(CharRNNError):  # anything else (a traceback) fails the test
        build_config(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_text_as_yaml_gives_a_config_or_our_error(tmp_path, text):
    path = tmp_path / "random.yaml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(CharRNNError):  # anything else (a traceback) fails the test
        build_config(path)


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("ckpt")
    corpus = folder / "c.txt"
    corpus.write_text((REPO / "data" / "pond.txt").read_text()[:3000])
    from charrnn.training.config import Config

    cfg = Config(corpus=[str(corpus)], layers=1, hidden=4, batch_size=2, seq_len=8, run_dir=str(folder))
    trainer = Trainer(cfg, load_corpus(cfg.corpus), RunFolder.of(cfg))
    trainer.train_step()
    return trainer.save().read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_and_mutated_checkpoints_give_only_our_errors(tmp_path, good_checkpoint, data):
    kind = data.draw(st.sampled_from(["random", "flip", "truncate", "splice"]))
    blob = bytearray(good_checkpoint)
    if kind == "random":
        blob = bytearray(data.draw(st.binary(max_size=2000)))
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 20))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(max_size=100))
    path = tmp_path / "fuzzed.npz"
    path.write_bytes(bytes(blob))
    with contextlib.suppress(CharRNNError):
        checkpoint.load_model(path)


def test_a_pickled_object_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.npz"
    np.savez(
        path,
        meta=np.frombuffer(json.dumps({"format": checkpoint.FORMAT, "version": 1}).encode(), np.uint8),
        evil=np.array([Evil()], dtype=object),
    )
    with pytest.raises(CharRNNError, match="pickled Python object"):
        checkpoint.load_model(path)
    assert not marker.exists()
    buffer = io.BytesIO()  # the same object as the metadata itself
    with zipfile.ZipFile(buffer, "w") as z:
        array = io.BytesIO()
        np.save(array, np.array([Evil()], dtype=object), allow_pickle=True)
        z.writestr("meta.npy", array.getvalue())
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CharRNNError):
        checkpoint.load_model(path)
    assert not marker.exists()


SAVE_LOOP = """
import sys
from charrnn.training.config import Config
from charrnn.data.text import encode_files, load_corpus
from charrnn.training.run import RunFolder
from charrnn.training.trainer import Trainer
cfg = Config(corpus=[sys.argv[1]], layers=2, hidden=64, batch_size=4, seq_len=16, run_dir=sys.argv[2])
trainer = Trainer(cfg, load_corpus(cfg.corpus), RunFolder.of(cfg))
trainer.save()
print("ready", flush=True)
while True:
    trainer.train_step()
    trainer.save()
"""


def test_sigkill_while_saving_leaves_a_loadable_checkpoint(small_corpus, tmp_path):
    def loadable() -> None:
        model, _, _, meta, _ = checkpoint.load_model(tmp_path / "run" / "last.npz")
        assert meta["step"] >= 0 and np.all(np.isfinite(model.flat_params))

    command = [sys.executable, "-c", SAVE_LOOP, str(small_corpus), str(tmp_path / "run")]
    kill_while_saving(command, 6, (0.05, 0.4), loadable)


def test_a_read_only_run_directory_is_a_clear_error_and_keeps_the_checkpoint(
    run_cli, small_corpus, tmp_path, monkeypatch
):
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "2", "--run-dir", "run")[0] == 0
    before = (tmp_path / "run" / "last.npz").read_bytes()

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", read_only)
    code, _, err = run_cli("train", "--resume", "run", "--max-steps", "4")
    assert code == 2 and "could not write the checkpoint" in err and "Permission denied" in err
    assert (tmp_path / "run" / "last.npz").read_bytes() == before


def test_a_second_trainer_on_the_same_run_directory_is_refused(run_cli, small_corpus, tmp_path):
    with RunFolder(tmp_path / "run").lock():
        code, _, err = run_cli("train", small_corpus, *SMALL, "--max-steps", "2", "--run-dir", "run", "--overwrite")
        assert code == 2 and "is in use by another charrnn train (pid" in err
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "2", "--run-dir", "run", "--overwrite")[0] == 0


def test_the_lock_of_a_dead_process_does_not_block(small_corpus, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\n"
            "from charrnn.training.run import RunFolder\nwith RunFolder(Path(sys.argv[1])).lock():\n"
            "    print('locked', flush=True); time.sleep(60)",
            str(tmp_path / "run"),
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout.readline().strip() == b"locked"
    with pytest.raises(CharRNNError, match="in use"), RunFolder(tmp_path / "run").lock():
        pass
    holder.kill()
    holder.wait()
    with RunFolder(tmp_path / "run").lock():
        pass


@pytest.mark.parametrize("task", ["lm", "classify", "tag", "seq2seq"])
def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(run_cli, tmp_path, monkeypatch, task):
    """--overwrite over a run, failing at its first validation (before any checkpoint): the old run is intact; then
    an --overwrite that succeeds replaces it whole."""
    data = tmp_path / "data.tsv"
    pairs = [("".join(w), "".join(w)[::-1]) for w in itertools.product("abcd", repeat=3)]
    if task == "lm":
        data.write_text("".join(f"{a} {b}\n" for a, b in pairs) * 3, encoding="utf-8")
    else:
        data.write_text("".join(f"{a}\t{b[0] if task == 'classify' else b}\n" for a, b in pairs), encoding="utf-8")
    flags = ["--task", task, "--layers", "1", "--hidden", "8", "--batch-size", "4", "--run-dir", "run"]
    assert run_cli("train", data, *flags, "--max-steps", "4", "--eval-every", "2")[0] == 0
    files = ["last.npz", "best.npz", "metrics.jsonl", "config.yaml"]
    before = {name: (tmp_path / "run" / name).read_bytes() for name in files}

    def fail(self):
        raise CharRNNError("a failure at the first validation.")

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "evaluate", fail)
        code, _, err = run_cli("train", data, *flags, "--max-steps", "6", "--eval-every", "3", "--overwrite")
    assert code == 2 and "a failure at the first validation" in err
    assert {name: (tmp_path / "run" / name).read_bytes() for name in files} == before
    assert not (tmp_path / "run" / ".replaced").exists()
    code, _, err = run_cli("train", data, *flags, "--max-steps", "3", "--eval-every", "3", "--overwrite")
    assert code == 0, err
    assert (tmp_path / "run" / "last.npz").read_bytes() != before["last.npz"]
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])["step"] <= 3
    assert not (tmp_path / "run" / ".replaced").exists()


def test_a_run_left_set_aside_by_a_killed_overwrite_comes_back(run_cli, small_corpus, tmp_path):
    """An --overwrite run killed before its first checkpoint leaves the old run in .replaced: the next train in that
    folder puts it back (and refuses to mix into it without --overwrite)."""
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "2", "--run-dir", "run")[0] == 0
    before = (tmp_path / "run" / "last.npz").read_bytes()
    RunFolder(tmp_path / "run").set_aside()  # what a killed --overwrite run leaves
    code, _, err = run_cli("train", small_corpus, *SMALL, "--max-steps", "2", "--run-dir", "run")
    assert code == 2 and "already holds a trained run" in err
    assert (tmp_path / "run" / "last.npz").read_bytes() == before and not (tmp_path / "run" / ".replaced").exists()
    RunFolder(tmp_path / "run").set_aside()  # again; now the advice of a command that reads the run is followed
    code, _, err = run_cli("sample", "--run-dir", "run", "--len", "5")
    assert code == 2 and "put the run it was to replace back with: charrnn train --resume run" in err
    code, _, err = run_cli("train", "--resume", "run", "--max-steps", "3")
    assert code == 0, err
    assert not (tmp_path / "run" / ".replaced").exists()


def test_an_output_path_that_is_a_folder_is_one_sentence_before_any_work(run_cli, small_corpus, tmp_path):
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "2")[0] == 0
    folder = tmp_path / "pictures"
    folder.mkdir()
    for args in (["viz", "some text"], ["plot", tmp_path / "runs" / "small"]):
        code, _, err = run_cli(*args, "--out", folder)
        assert code == 2, err
        assert f"--out {folder} is a folder; give the path of the file to write" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", ["train --config", "sweep"])
def test_a_yaml_syntax_error_is_one_short_sentence_with_line_and_column(run_cli, tmp_path, command):
    path = tmp_path / "broken.yaml"
    path.write_text("cell: lstm\nhidden: [1, 2\nlayers: 2\n", encoding="utf-8")
    code, _, err = run_cli(*command.split(), path)
    assert code == 2
    assert f"{path} is not valid YAML at line 3, column 7: expected ',' or ']', but got ':'." in err
    assert len(err.strip().splitlines()) == 1
