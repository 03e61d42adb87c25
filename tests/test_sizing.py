"""--size auto: the rule picks what the measurements in benchmarks/sweep.md found best, and says why."""

import pytest
import yaml

from charrnn import sizing

SPEEDS = {1: 150_000.0, 256: 27_000.0, 384: 15_000.0}  # chars/s of the menu's models on the reference machine


@pytest.fixture
def measured_speeds(monkeypatch):
    monkeypatch.setattr(sizing, "training_speed", lambda model, batch_size, seq_len: SPEEDS.get(model.hidden_size,
                                                                                               SPEEDS[1]))  # fmt: skip


@pytest.mark.parametrize(
    ("train_chars", "seconds", "picked"),
    [
        (1_003_855, 600, "gru 2×384"),  # tiny shakespeare, 10 minutes: the sweep's winner (1.453)
        (1_003_855, 300, "lstm 2×256"),  # tiny shakespeare, 5 minutes: LSTM 2x256 beat GRU 2x384 (1.490 vs 1.499)
        (180_100, 60, "lstm 1×128"),  # data/pond.txt, 1 minute
        (180_100, 3600, "lstm 1×128"),  # a small corpus never gets a model that could memorise it
        (50_000_000, 3600, "gru 2×384"),
    ],
)
def test_the_rule_picks_what_was_measured_best(measured_speeds, train_chars, seconds, picked):
    settings, why = sizing.pick_size(65, train_chars, seconds, 32, 64)
    assert why.startswith(f"--size auto picked {picked} ")
    assert settings == dict(sizing.MENU)[picked]


def test_size_auto_from_the_command_line(run_cli, small_corpus, tmp_path):
    args = ["train", small_corpus, "--batch-size", "4", "--seq-len", "16", "--size", "auto"]
    code, _, err = run_cli(*args)
    assert code == 2 and "--size auto sizes the model for a time budget" in err
    code, _, err = run_cli(*args, "--max-time", "2s", "--hidden", "64")
    assert code == 2 and "--size auto chooses the model itself; leave out --hidden" in err
    code, _, err = run_cli(*args, "--max-time", "2s", "--eval-every", "0")
    assert code == 0, err
    assert "--size auto picked lstm 1×128" in err and "per parameter" in err
    saved = yaml.safe_load((tmp_path / "runs" / "small" / "config.yaml").read_text())
    assert (saved["cell"], saved["layers"], saved["hidden"]) == ("lstm", 1, 128)
