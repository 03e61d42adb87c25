"""`charrnn runs` and `charrnn.runs()`: every run folder with its state (training, finished, stopped), figures and
last change, read from checkpoints' metadata alone, and readable at 80 columns."""

import fcntl
import json
import os
import re
import shutil
import threading
import time

import numpy as np
import pytest
from conftest import REPO

import charrnn
from charrnn.errors import CharRNNError
from charrnn.training import checkpoint

TINY = ["--hidden", "16", "--layers", "1", "--batch-size", "4", "--eval-every", "2"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def train(run_cli, corpus, run_dir, *flags):
    code, _, err = run_cli("train", corpus, *TINY, "--max-steps", "5", "--run-dir", run_dir, *flags)
    assert code == 0, err


def interrupted(corpus, run_dir):
    """A run stopped at step 3 of 50, as Ctrl-C stops one: the step finishes, it saves, it ends."""
    stop = threading.Event()
    flags = {"hidden": 16, "layers": 1, "batch_size": 4, "seq_len": 16, "eval_every": 2}
    run = charrnn.train(
        corpus, max_steps=50, run_dir=run_dir, stop=stop, callback=lambda e: e.step == 3 and stop.set(), **flags
    )
    assert run.interrupted and run.steps == 3


def changed_at(folder, seconds_ago):
    """Date every file of a run `seconds_ago`, so the order of the list is known."""
    when = time.time() - seconds_ago
    for path in folder.iterdir():
        os.utime(path, (when, when))


@pytest.fixture
def runs(run_cli, small_corpus, tmp_path):
    """runs/done (finished), runs/sweep/trial-1 (finished, its lock held while the test runs: training), runs/cut
    (interrupted), runs/words (a classifier), changed in that order."""
    train(run_cli, small_corpus, "runs/done", "--seq-len", "16")
    train(run_cli, small_corpus, "runs/sweep/trial-1", "--seq-len", "16")
    interrupted(small_corpus, "runs/cut")
    words = tmp_path / "words.tsv"
    words.write_text("".join(f"{w}\t{label}\n" for w, label in [("ab", "x"), ("cd", "y"), ("ef", "x")] * 20))
    train(run_cli, words, "runs/words", "--task", "classify", "--val-frac", "0.3")
    for age, name in enumerate(["words", "cut", "sweep/trial-1", "done"]):
        changed_at(tmp_path / "runs" / name, 600 * age + 120)
    with (tmp_path / "runs" / "sweep" / "trial-1" / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file: it conflicts even in this process
        yield tmp_path / "runs"


def test_each_run_with_its_state_figures_and_last_change(runs, run_cli):
    code, out, err = run_cli("runs")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["best", "best"]
    assert lines[1].split() == ["run", "task", "model", "step", "loss", "figure", "changed", "state"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert list(rows) == ["done", "sweep/trial-1", "cut", "words"]  # the most recently changed last
    assert rows["done"][1:5] == ["lm", "lstm", "1×16", "5"]
    assert rows["done"][-1] == "finished" and rows["done"][-4:-1] == ["32", "min", "ago"]
    assert rows["sweep/trial-1"][-1] == "training"
    assert rows["cut"][4] == "3" and rows["cut"][-1] == "stopped"
    assert rows["words"][1] == "classify" and "accuracy" in rows["words"] and rows["words"][-1] == "finished"
    info = json.loads(run_cli("info", "--run-dir", runs / "cut", "--json")[1])
    assert f"{info['best_val_loss']:.4f}" == rows["cut"][5]


def test_json_records(runs, run_cli):
    code, out, _ = run_cli("runs", "--json")
    assert code == 0
    records = {r["name"]: r for r in json.loads(out)}
    assert list(records) == ["done", "sweep/trial-1", "cut", "words"]
    assert records["done"]["state"] == "finished" and records["done"]["stop_reason"] == "max_steps"
    assert records["cut"]["state"] == "stopped" and records["cut"]["stop_reason"] == "interrupted"
    assert records["sweep/trial-1"]["state"] == "training" and records["sweep/trial-1"]["stop_reason"] is None
    assert records["words"]["task"] == "classify" and set(records["words"]["best_metrics"]) >= {"accuracy"}
    assert records["done"]["model"] == "lstm 1×16" and records["done"]["step"] == 5
    assert records["done"]["path"] == "runs/done" and records["done"]["changed"].startswith("20")
    assert [r.name for r in charrnn.runs()] == list(records)


def test_a_checkpoint_older_than_stop_reasons_is_judged_by_its_limits(runs, run_cli):
    for name in ("done", "cut"):
        meta, arrays = checkpoint.load(runs / name / "last.npz")
        del meta["stop_reason"]
        checkpoint.save(runs / name / "last.npz", meta, arrays)
    shutil.copy(REPO / "tests" / "fixtures" / "lm-v1.npz", runs / "v1.npz")
    (runs / "v1").mkdir()
    (runs / "v1.npz").rename(runs / "v1" / "last.npz")
    states = {r.name: (r.state, r.stop_reason, r.task) for r in charrnn.runs()}
    assert states["done"] == ("finished", "max_steps", "lm")
    assert states["cut"] == ("stopped", None, "lm")
    assert states["v1"] == ("finished", "max_steps", "lm")


def test_runs_between_checkpoints_are_listed(runs, run_cli):
    """A run killed after its first best.npz but before its first last.npz; an --overwrite run killed before its
    first checkpoint (the run it replaces waits in .replaced); a run training before its first checkpoint."""
    (runs / "early").mkdir()
    shutil.copy(runs / "cut" / "best.npz", runs / "early" / "best.npz")
    (runs / "done" / ".replaced").mkdir()
    for name in ("last.npz", "best.npz"):
        (runs / "done" / name).rename(runs / "done" / ".replaced" / name)
    (runs / "new").mkdir()
    shutil.copy(runs / "done" / "config.yaml", runs / "new" / "config.yaml")
    with (runs / "new" / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        found = {r.name: r for r in charrnn.runs()}
    assert (found["early"].state, found["early"].step) == ("stopped", 3)
    assert (found["done"].state, found["done"].step) == ("finished", 5)
    assert (found["new"].state, found["new"].model, found["new"].step) == ("training", "lstm 1×16", None)


def test_a_damaged_checkpoint_is_listed_and_named(runs, run_cli):
    (runs / "broken").mkdir()
    (runs / "broken" / "last.npz").write_bytes(b"not a zip")
    code, out, err = run_cli("runs")
    assert code == 0 and re.search(r"^broken .* unreadable", out, flags=re.M)
    assert "charrnn: broken: checkpoint runs/broken/last.npz is damaged" in err


def test_no_runs_is_a_sentence_and_a_missing_folder_an_error(run_cli, tmp_path):
    code, out, err = run_cli("runs")
    assert (code, out) == (0, "") and err.strip() == "charrnn: no runs under runs/; train one with: charrnn train FILE"
    assert run_cli("runs", "--json")[:2] == (0, "[]\n") and charrnn.runs() == []
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("runs", "empty")
    assert code == 0 and "no runs under empty/" in err
    code, _, err = run_cli("runs", "elsewhere")
    assert code == 2 and err.strip() == (
        "charrnn: error: elsewhere does not exist; give the folder that holds your runs (default runs/)."
    )
    with pytest.raises(CharRNNError, match="elsewhere does not exist"):
        charrnn.runs("elsewhere")


def test_a_named_folder_is_searched_and_names_are_relative_to_it(runs, run_cli):
    code, out, _ = run_cli("runs", "runs/sweep", "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["trial-1"]
    assert [r.name for r in charrnn.runs(runs / "sweep" / "trial-1")] == [str(runs / "sweep" / "trial-1")]


def test_fifty_runs_are_listed_from_their_metadata_alone(runs, monkeypatch):
    for i in range(50):
        shutil.copytree(runs / "done", runs / "many" / f"run-{i:02d}")
    read = []
    entry = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda npz, key: read.append(key) or entry(npz, key))
    started = time.perf_counter()
    assert len(charrnn.runs()) == 54
    assert time.perf_counter() - started < 2.0 and set(read) == {"meta"}


def test_readable_at_80_columns(runs, run_cli, monkeypatch):
    shutil.copytree(runs / "words", runs / "sweeps" / "a-rather-long-name-for-a-trial-of-a-sweep")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws for a terminal of that width
    code, out, _ = run_cli("runs")
    lines = ANSI.sub("", out).splitlines()
    assert code == 0 and len(lines) > 5 and max(map(len, lines)) <= 80
