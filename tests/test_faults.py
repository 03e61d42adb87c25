"""Faults for every task, as for the language model: SIGKILL while saving leaves a loadable checkpoint, and Ctrl-C
then --resume ends bit-identical to an unbroken run."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, interrupt, kill_while_saving

from charrnn.training import checkpoint

TASKS = ["classify", "tag", "seq2seq"]
SHAPES = {  # the options that change each task's network most
    "classify": ["--bidirectional", "--pool", "max", "--embed", "8"],
    "tag": ["--bidirectional", "--layers", "2"],
    "seq2seq": ["--bidirectional", "--attention", "additive", "--input-feeding", "--target-units", "words"],
}


def examples(path: Path, task: str) -> Path:
    words = ["".join(w) for w in itertools.product("abcde", repeat=4)]
    target = {"classify": lambda w: w[0], "tag": str.upper, "seq2seq": lambda w: " ".join(reversed(w))}[task]
    path.write_text("".join(f"{w}\t{target(w)}\n" for w in words), encoding="utf-8")
    return path


def flags(task: str) -> list[str]:
    common = ["--task", task, "--hidden", "16", "--batch-size", "8", "--eval-every", "7", "--save-every", "7"]
    return [*common, "--dropout", "0.2", "--lr-schedule", "cosine", "--log-every", "1", *SHAPES[task]]


def charrnn(*args: object, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "charrnn", *map(str, args)]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("task", TASKS)
def test_ctrl_c_then_resume_is_bit_identical_to_an_unbroken_run(tmp_path, task):
    data = examples(tmp_path / "data.tsv", task)
    straight = charrnn("train", data, *flags(task), "--max-steps", "40", "--run-dir", "straight", cwd=tmp_path)
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    broken = charrnn("train", data, *flags(task), "--max-steps", "40", "--run-dir", "broken", cwd=tmp_path)
    _, err = interrupt(broken, tmp_path / "broken" / "metrics.jsonl")
    assert broken.returncode == 130 and "Resume with: charrnn train --resume broken" in err, err
    stopped = checkpoint.load_model(tmp_path / "broken" / "last.npz")[3]["step"]
    assert 0 < stopped < 40
    resumed = charrnn("train", "--resume", "broken", cwd=tmp_path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a, _, _, meta, arrays = checkpoint.load_model(tmp_path / "straight" / "last.npz")
    b, _, _, meta_b, arrays_b = checkpoint.load_model(tmp_path / "broken" / "last.npz")
    assert meta_b["step"] == meta["step"] == 40
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    np.testing.assert_array_equal(arrays["optim/v"], arrays_b["optim/v"])
    assert learning(tmp_path / "straight") == learning(tmp_path / "broken")


def learning(run_dir: Path) -> list[tuple]:
    """Each step's training loss, learning rate and gradient norm from metrics.jsonl (an interrupted run also
    validates where it stopped, so the validation lines differ)."""
    records = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [(r["step"], r["train_loss"], r["lr"], r["grad_norm"]) for r in records]


SAVE_LOOP = """
import sys
from charrnn.training.config import Config
from charrnn.tasks import registry
from charrnn.training.run import RunFolder
from charrnn.training.trainer import Trainer
cfg = Config(corpus=[sys.argv[1]], task=sys.argv[3], hidden=32, batch_size=8, run_dir=sys.argv[2])
trainer = Trainer(cfg, registry.get(cfg.task).load_data(cfg), RunFolder.of(cfg))
trainer.save()
print("ready", flush=True)
while True:
    trainer.train_step()
    trainer.save()
"""


@pytest.mark.parametrize("task", TASKS)
def test_sigkill_while_saving_leaves_a_loadable_checkpoint(tmp_path, task):
    data = examples(tmp_path / "data.tsv", task)

    def loadable() -> None:
        model, _, config, meta, _ = checkpoint.load_model(tmp_path / "run" / "last.npz")
        assert config.task == task and meta["step"] >= 0 and np.all(np.isfinite(model.flat_params))

    command = [sys.executable, "-c", SAVE_LOOP, str(data), str(tmp_path / "run"), task]
    kill_while_saving(command, 4, (0.05, 0.3), loadable)
