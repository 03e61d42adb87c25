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
    assert {k: v for k, v in settings.items() if k != "dropout"} == {
        k: v for k, v in dict(sizing.MENU)[picked].items() if k != "dropout"
    }


@pytest.mark.parametrize(
    ("train_chars", "dropout", "said"),
    [
        (1_003_855, 0.2, "dropout 0.2: it reads the training text 9.0 times"),  # tiny shakespeare, 10 minutes
        (2_900_000, 0.0, "no dropout: it reads the training text 3.1 times, under 8"),  # War and Peace, 10 minutes
    ],
)
def test_the_largest_model_has_its_own_recipe(measured_speeds, train_chars, dropout, said):
    settings, why = sizing.pick_size(65, train_chars, 600, 32, 64)
    assert why.startswith("--size auto picked gru 2×384 with a 64-wide embedding ")
    assert (settings["embed"], settings["dropout"], settings["lr"]) == (64, dropout, 2e-3)
    assert said in why and "learning rate 0.002" in why
    settings, why = sizing.pick_size(65, train_chars, 600, 32, 64, lr_given=True)
    assert "lr" not in settings and "learning rate" not in why


def test_size_auto_from_the_command_line(run_cli, small_corpus, tmp_path):
    args = ["train", small_corpus, "--batch-size", "4", "--seq-len", "16", "--size", "auto"]
    code, _, err = run_cli(*args)
    assert code == 2 and "--size auto sizes the model for a time budget" in err
    code, _, err = run_cli(*args, "--max-time", "2s", "--hidden", "64")
    assert code == 2 and "--size auto chooses the model itself; leave out --hidden" in err
    code, _, err = run_cli(*args, "--max-time", "2s", "--embed", "16")
    assert code == 2 and "--size auto chooses the model itself; leave out --embed" in err
    code, _, err = run_cli(*args, "--max-time", "2s", "--eval-every", "0")
    assert code == 0, err
    assert "--size auto picked lstm 1×128" in err and "per parameter" in err
    saved = yaml.safe_load((tmp_path / "runs" / "small" / "config.yaml").read_text())
    assert (saved["cell"], saved["layers"], saved["hidden"]) == ("lstm", 1, 128)


def test_size_auto_trains_the_largest_model_with_its_recipe(run_cli, small_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(sizing, "training_speed", lambda model, batch_size, seq_len: 1e9)
    monkeypatch.setattr(sizing, "PARAMS_PER_CHAR", 1e9)  # let the small corpus have the largest model
    args = ["train", small_corpus, "--batch-size", "2", "--seq-len", "8", "--size", "auto", "--max-time", "1s"]
    for extra, lr in (([], 0.002), (["--lr", "0.003"], 0.003), (["--lr", "0.004"], 0.004)):
        code, _, err = run_cli(*args, "--eval-every", "0", "--overwrite", *extra)
        assert code == 0, err
        saved = yaml.safe_load((tmp_path / "runs" / "small" / "config.yaml").read_text())
        assert (saved["cell"], saved["hidden"], saved["embed"], saved["dropout"], saved["lr"]) == (
            "gru",
            384,
            64,
            0.2,
            lr,
        )


def test_size_auto_refuses_model_keys_from_a_config_file(run_cli, small_corpus, tmp_path):
    (tmp_path / "run.yaml").write_text("embed: 16\n")
    args = ["train", small_corpus, "--config", tmp_path / "run.yaml", "--size", "auto", "--max-time", "2s"]
    code, _, err = run_cli(*args)
    assert code == 2 and "--size auto chooses the model itself; leave out --embed" in err
