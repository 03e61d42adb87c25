"""Long runs a user can trust: exact resume, fine-tuning, schedules, best/keep/patience, time limits, the
divergence guard, metrics and plots, and a clean stop on Ctrl-C."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, interrupt, make_trainer

from charrnn.data.text import load_corpus
from charrnn.errors import CharRNNError
from charrnn.nn.optim import learning_rate
from charrnn.training.checkpoint import load_model
from charrnn.training.config import Config
from charrnn.training.run import RunFolder
from charrnn.training.trainer import Trainer

SMALL = ["--layers", "2", "--hidden", "16", "--batch-size", "4", "--seq-len", "16", "--eval-every", "5"]


def losses(run_dir: Path) -> list[float]:
    return [r["train_loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]


@pytest.mark.parametrize(("schedule", "embed"), [("constant", "0"), ("cosine", "8")])
def test_resume_is_bit_identical_to_an_unbroken_run(run_cli, small_corpus, tmp_path, schedule, embed):
    """24 steps straight == 10 steps, stop (as Ctrl-C does), resume, 14 more; adam with dropout and a schedule."""
    common = [
        *SMALL,
        "--dropout",
        "0.3",
        "--input-dropout",
        "0.1",
        "--lr-schedule",
        schedule,
        "--warmup-steps",
        "3",
        "--log-every",
        "1",
        "--ema",
        "0.9",
        "--embed",
        embed,
    ]
    assert run_cli("train", small_corpus, *common, "--max-steps", "24", "--run-dir", "straight")[0] == 0
    cfg = Config(**load_model(tmp_path / "straight" / "last.npz")[2].to_dict() | {"run_dir": str(tmp_path / "broken")})
    first = Trainer(cfg, load_corpus(cfg.corpus, val_frac=cfg.val_frac), RunFolder.of(cfg))

    def stop_at_10(event):
        if event.step == 10:
            first.stop_requested = True

    assert first.run(stop_at_10).text == "interrupted"
    code, _, err = run_cli("train", "--resume", "broken")
    assert code == 0, err
    straight, _, _, _, straight_arrays = load_model(tmp_path / "straight" / "last.npz")
    resumed, _, _, meta, arrays = load_model(tmp_path / "broken" / "last.npz")
    assert meta["step"] == 24
    assert ("l0.E" in resumed.params) == (embed != "0")
    np.testing.assert_array_equal(resumed.flat_params, straight.flat_params)
    np.testing.assert_array_equal(arrays["optim/v"], straight_arrays["optim/v"])
    for name in resumed.params:  # --ema: param/ is the average, trained/ the weights training goes on from
        np.testing.assert_array_equal(arrays[f"trained/{name}"], straight_arrays[f"trained/{name}"])
    assert losses(tmp_path / "broken") == losses(tmp_path / "straight")


def test_resume_with_a_higher_max_steps_goes_on_from_where_it_stopped(run_cli, small_corpus, tmp_path):
    constant = ["--lr-schedule", "constant"]  # a cosine's shape depends on the run's length, so it would differ
    assert run_cli("train", small_corpus, *SMALL, *constant, "--max-steps", "20", "--run-dir", "straight")[0] == 0
    assert run_cli("train", small_corpus, *SMALL, *constant, "--max-steps", "8", "--run-dir", "broken")[0] == 0
    code, _, err = run_cli("train", "--resume", "broken/last.npz", "--max-steps", "20")
    assert code == 0, err
    assert load_model(tmp_path / "broken" / "last.npz")[3]["step"] == 20
    np.testing.assert_array_equal(
        load_model(tmp_path / "broken" / "last.npz")[0].flat_params,
        load_model(tmp_path / "straight" / "last.npz")[0].flat_params,
    )


def test_resume_refuses_to_change_what_the_run_learns(run_cli, small_corpus):
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "3")[0] == 0
    code, _, err = run_cli("train", "--resume", "--lr", "0.1", "--max-steps", "6")
    assert code == 2 and "--lr cannot change when resuming" in err
    code, _, err = run_cli("train", "--resume", "--max-steps", "3")
    assert code == 2 and "nothing to train" in err


def test_fine_tuning_starts_a_new_run_from_trained_weights(run_cli, small_corpus, tmp_path):
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "5", "--run-dir", "base")[0] == 0
    other = tmp_path / "other.txt"
    other.write_text(small_corpus.read_text()[::-1])
    code, _, err = run_cli(
        "train", other, "--init-from", "base/last.npz", "--max-steps", "2", "--batch-size", "4", "--seq-len", "16"
    )
    assert code == 0, err
    base, vocab, _, _, _ = load_model(tmp_path / "base" / "last.npz")
    tuned, tuned_vocab, config, meta, _ = load_model(tmp_path / "runs" / "other" / "last.npz")
    assert meta["step"] == 2 and meta["optimizer_steps"] == 2
    assert tuned_vocab.chars == vocab.chars and config.hidden == 16
    assert not np.array_equal(tuned.flat_params, base.flat_params)

    foreign = tmp_path / "foreign.txt"
    foreign.write_text("Ωμέγα " * 500)
    code, _, err = run_cli("train", foreign, "--init-from", "base/last.npz")
    assert code == 2 and "vocabulary lacks" in err and "'Ω'" in err


def test_learning_rate_schedules():
    constant = [learning_rate(s, 0.1) for s in range(3)]
    assert constant == [0.1, 0.1, 0.1]
    step = [learning_rate(s, 0.1, "step", steps_per_epoch=10, decay=0.5, decay_every=2) for s in (0, 19, 20, 45)]
    assert step == pytest.approx([0.1, 0.1, 0.05, 0.025])
    cosine = [learning_rate(s, 0.1, "cosine", total_steps=11, warmup_steps=1, min_lr=0.01) for s in (0, 1, 6, 11)]
    assert cosine == pytest.approx([0.1, 0.1, 0.055, 0.01])
    budget = dict(total_steps=11, warmup_steps=1, min_lr=0.01)  # a time budget and a step budget: the first to end
    assert learning_rate(6, 0.1, "cosine", **budget, time_progress=0.0) == pytest.approx(0.055)
    assert learning_rate(6, 0.1, "cosine", **budget, time_progress=1.0) == pytest.approx(0.01)
    wsd = [
        learning_rate(s, 0.1, "wsd", total_steps=11, warmup_steps=1, min_lr=0.01, decay_frac=0.5)
        for s in (0, 1, 6, 8, 11, 20)
    ]
    assert wsd == pytest.approx([0.1, 0.1, 0.1, 0.064, 0.01, 0.01])  # flat until half way, then linear down
    warm = [learning_rate(s, 0.1, warmup_steps=4) for s in range(5)]
    assert warm == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])


def test_best_keep_and_patience(small_corpus, tmp_path):
    trainer = make_trainer(
        small_corpus, tmp_path, lr=0.5, optimizer="sgd", max_steps=200, eval_every=2, save_every=2, keep=2, patience=2
    )
    end = trainer.run()
    assert "--patience" in end.text and end.step < 200
    assert sorted(p.name for p in tmp_path.glob("step-*.npz")) == [
        f"step-{s:07d}.npz" for s in (end.step - 2, end.step)
    ]
    best = load_model(tmp_path / "best.npz")[3]
    assert best["val_loss"] == best["best_val_loss"] == trainer.best_val
    assert best["step"] == end.step - 2 * 2
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["val_loss"] for r in records if r["val_loss"] is not None}
    assert len(set(losses.values())) > 2 and best["val_loss"] == pytest.approx(min(losses.values()))  # the lowest


def test_max_time_counts_the_whole_run(small_corpus, tmp_path):
    trainer = make_trainer(small_corpus, tmp_path, max_time=0.5, eval_every=0)
    end = trainer.run()
    assert "--max-time" in end.text and end.stopping == "max_time" and trainer.step > 1
    assert trainer.train_seconds == end.elapsed and load_model(tmp_path / "last.npz")[3]["stop_reason"] == "max_time"


def test_divergence_guard_skips_rolls_back_and_gives_up(small_corpus, tmp_path, monkeypatch):
    trainer = make_trainer(
        small_corpus, tmp_path, guard_skips=2, guard_rollbacks=1, eval_every=0, lr_schedule="constant"
    )
    for _ in range(3):
        trainer.train_step()
    trainer.save()
    good = trainer.network.flat_params.copy()
    real = trainer.network.loss_and_grads

    def poisoned(*args, **kwargs):
        loss, state = real(*args, **kwargs)
        trainer.network.flat_grads[0] = np.nan
        return loss, state

    monkeypatch.setattr(trainer.network, "loss_and_grads", poisoned)
    assert trainer.train_step() is None  # skipped: the weights did not move
    np.testing.assert_array_equal(trainer.network.flat_params, good)
    lr = trainer.lr
    assert trainer.train_step() is None  # second in a row: rolled back, learning rate halved
    assert trainer.rollbacks == 1 and trainer.lr == pytest.approx(lr / 2)
    assert "rolled back" in trainer.notice
    monkeypatch.setattr(trainer.network, "loss_and_grads", real)
    assert trainer.train_step() is not None
    monkeypatch.setattr(trainer.network, "loss_and_grads", poisoned)
    trainer.train_step()
    with pytest.raises(CharRNNError, match="training diverged"):
        trainer.train_step()
    assert np.all(np.isfinite(load_model(tmp_path / "last.npz")[0].flat_params))


def test_plot_draws_a_png(run_cli, small_corpus, tmp_path):
    pytest.importorskip("matplotlib")
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "10", "--run-dir", "a")[0] == 0
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "10", "--run-dir", "b", "--lr", "0.01")[0] == 0
    code, _, err = run_cli("plot", "a", "b", "--out", "curves.png")
    assert code == 0, err
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_plot_without_matplotlib_says_how_to_install_it(run_cli, small_corpus, monkeypatch):
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "2", "--run-dir", "a")[0] == 0
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run_cli("plot", "a")
    assert code == 2 and "pip install 'charrnn[plot]'" in err


def test_ctrl_c_saves_and_prints_the_resume_command(small_corpus, tmp_path):
    command = [
        sys.executable,
        "-m",
        "charrnn",
        "train",
        str(small_corpus),
        *SMALL,
        "--max-steps",
        "1000000",
        "--run-dir",
        "run",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _, err = interrupt(proc, tmp_path / "run" / "metrics.jsonl")
    assert proc.returncode == 130, err
    assert "Resume with: charrnn train --resume run" in err and "Traceback" not in err
    meta = load_model(tmp_path / "run" / "last.npz")[3]
    assert 0 < meta["step"] < 1000000


@pytest.mark.parametrize(
    "extra",
    [
        ["--optimizer", "sgd", "--momentum", "0.5", "--lr", "0.1"],
        ["--optimizer", "rmsprop"],
        ["--optimizer", "adamw", "--weight-decay", "0.1"],
        ["--optimizer", "adagrad", "--lr-schedule", "step", "--lr-decay", "0.5", "--lr-decay-every", "0.01"],
        ["--lr-schedule", "cosine", "--warmup-steps", "2", "--min-lr", "0.0001", "--dropout", "0.2"],
    ],
)
def test_optimizers_and_schedules_from_the_command_line(run_cli, small_corpus, tmp_path, extra):
    code, _, err = run_cli("train", small_corpus, *SMALL, "--max-steps", "6", "--log-every", "1", *extra)
    assert code == 0, err
    records = [json.loads(line) for line in (tmp_path / "runs" / "small" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]  # evaluations at 5 and at the end
    assert all(np.isfinite(r["train_loss"]) and r["lr"] > 0 for r in records)
    if "step" in extra:
        assert records[-1]["lr"] < records[0]["lr"]


def test_max_time_flag_takes_a_duration(run_cli, small_corpus):
    code, _, err = run_cli("train", small_corpus, *SMALL, "--max-time", "ten minutes")
    assert code == 2 and "--max-time must be a duration like 90s, 10m or 1h30m" in err
    code, _, err = run_cli("train", small_corpus, *SMALL, "--max-time", "1s", "--epochs", "1000", "--eval-every", "0")
    assert code == 0 and "--max-time" in err


def test_ema_averages_the_trained_weights_and_is_what_a_checkpoint_holds(small_corpus, tmp_path):
    """--ema beta: after update t, ema += (1 - b_t)(theta_t - ema) with b_t = min(beta, (1 + t) / (10 + t));
    validation and param/ use the average, trained/ holds the weights training continues from."""
    trainer = make_trainer(small_corpus, tmp_path / "ema", hidden=16, seq_len=16, max_steps=30, eval_every=0, ema=0.8)
    expected = trainer.network.flat_params.copy()
    for t in range(1, 31):
        trainer.train_step()
        beta = min(0.8, (1 + t) / (10 + t))
        expected += (1 - beta) * (trainer.network.flat_params - expected)
    np.testing.assert_allclose(trainer.ema, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(trainer.ema - trainer.network.flat_params).max() > 1e-3
    trained = trainer.network.flat_params.copy()
    val = trainer.evaluate()
    np.testing.assert_array_equal(trainer.network.flat_params, trained)  # evaluating leaves training where it was
    trainer.save()
    model, _, _, _, arrays = load_model(tmp_path / "ema" / "last.npz")
    np.testing.assert_array_equal(model.flat_params, trainer.ema)
    for name, value in trainer.network.params.items():
        np.testing.assert_array_equal(arrays[f"trained/{name}"], value)
    trainer.network.flat_params[...] = trainer.ema
    trainer.ema = None
    assert trainer.evaluate() == val  # the validation loss was the average's
