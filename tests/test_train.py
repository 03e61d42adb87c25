"""The training loop: stream state handling, events, stopping."""

import json

import numpy as np
import pytest
from conftest import make_trainer

from charrnn.nn.language_model import eval_layout, evaluate


def test_streams_restart_from_zero_staggered(small_corpus, tmp_path):
    trainer = make_trainer(small_corpus, tmp_path, reset_every=3)
    for _ in range(4):
        trainer.train_step()
    # the 4th update is step 3: streams b with (3 + b) % 3 == 0 started it from the zero state
    h0 = trainer.network.layers[0].cache[1]
    assert [bool(np.all(h == 0)) for h in h0] == [True, False, False, True]


def test_run_stops_at_max_steps_and_reports_each_evaluation(small_corpus, tmp_path):
    trainer = make_trainer(small_corpus, tmp_path, max_steps=7, eval_every=3, save_every=0)
    events = []
    end = trainer.run(events.append)
    assert [e.step for e in events if e.kind == "eval"] == [3, 6, 7]
    evals = [e for e in events if e.kind == "eval"]
    assert evals[-1].saved == tmp_path / "last.npz"
    for e in evals[:-1]:  # save_every=0: only best.npz, when the validation loss improves
        assert e.saved == (tmp_path / "best.npz" if e.best else None)
    assert evals[0].best
    assert end.kind == "end" and end.step == 7 and trainer.step == 7
    assert end.val_loss == evaluate(trainer.network, trainer.data.val)


def test_epochs_bound_the_run(small_corpus, tmp_path):
    trainer = make_trainer(small_corpus, tmp_path, epochs=0.5)
    assert trainer.total_steps == int(np.ceil(0.5 * trainer.task.steps_per_epoch))


def test_same_seed_same_losses(small_corpus, tmp_path):
    losses = []
    for _ in range(2):
        trainer = make_trainer(small_corpus, tmp_path, cell="gru")
        losses.append([trainer.train_step() for _ in range(5)])
    assert losses[0] == losses[1]


@pytest.mark.parametrize(("n", "streams", "warmup"), [(10_000, 32, 256), (5_000, 8, 100), (700, 32, 256), (50, 4, 8)])
def test_evaluation_counts_every_prediction_once(n, streams, warmup):
    position, counted = eval_layout(n, streams, warmup)
    assert sorted(position[counted].tolist()) == list(range(n))
    first = position[:, 0][counted[:, 0]]
    np.testing.assert_array_equal(first, np.arange(len(first)))  # stream 0 starts at the text's beginning


def test_parallel_evaluation_matches_one_stream(small_corpus, tmp_path):
    trainer = make_trainer(small_corpus, tmp_path, hidden=16, val_frac=0.5)
    for _ in range(30):
        trainer.train_step()
    val = trainer.data.val
    one = evaluate(trainer.network, val, streams=1)
    state, total = trainer.network.initial_state(1), 0.0
    for t in range(len(val) - 1):  # character by character
        loss, state = trainer.network.loss(val[t : t + 1, None], val[t + 1 : t + 2, None], state)
        total += loss
    assert one == pytest.approx(total / (len(val) - 1), rel=1e-6)
    assert evaluate(trainer.network, val, streams=8, warmup=64) == pytest.approx(one, rel=1e-3)


def test_metrics_record_validation_only_when_it_ran(small_corpus, tmp_path):
    trainer = make_trainer(small_corpus, tmp_path, max_steps=8, eval_every=4, save_every=3, log_every=100)
    trainer.run()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["val_loss"] is not None) for r in records] == [(3, False), (4, True), (6, False), (8, True)]
