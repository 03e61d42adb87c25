"""--size auto: the rule picks what the measurements in benchmarks/sweep.md found best, and says why."""

import re

import pytest
import yaml

from charrnn import sizing

SPEEDS = {1: 150_000.0, 256: 27_000.0, 384: 15_000.0, 512: 8_500.0}  # chars/s of the menu's models


@pytest.fixture
def measured_speeds(monkeypatch):
    monkeypatch.setattr(sizing, "training_speed", lambda model, batch_size, seq_len: SPEEDS.get(model.hidden_size,
                                                                                               SPEEDS[1]))  # fmt: skip


@pytest.mark.parametrize(
    ("train_chars", "seconds", "picked"),
    [
        (1_003_855, 600, "gru 2×512"),  # tiny shakespeare, 10 minutes: configs/shakespeare.yaml's model won
        (1_003_855, 300, "gru 2×384"),  # 5 minutes: the wider GRU would read the text only 2.5 times
        (2_900_000, 600, "gru 2×384"),  # War and Peace, 10 minutes: configs/warandpeace.yaml's model
        (180_100, 60, "lstm 1×128"),  # data/pond.txt, 1 minute
        (180_100, 3600, "lstm 1×128"),  # a small corpus never gets a model that could memorise it
        (50_000_000, 3600, "gru 2×384"),
    ],
)
def test_the_rule_picks_what_was_measured_best(measured_speeds, train_chars, seconds, picked):
    settings, why = sizing.pick_size(65, train_chars, seconds, 32, 64)
    assert why.startswith(f"--size auto picked {picked} ")
    choice = next(c for c in sizing.MENU if c.name == picked)
    assert {k: v for k, v in settings.items() if k != "dropout"} == {
        **{k: v for k, v in choice.model.items() if k != "dropout"},
        **choice.recipe,
    }


@pytest.mark.parametrize(
    ("train_chars", "picked", "dropout", "said"),
    [
        (1_003_855, "gru 2×512", 0.25, "the training text 5.1 times"),  # tiny shakespeare
        (600_000, "gru 2×384", 0.2, "gru 2×512 would have 4.2 parameters per training character"),
        (2_900_000, "gru 2×384", 0.0, "no dropout: it reads the training text under 8 times"),  # War and Peace
    ],
)
def test_the_large_models_have_their_own_recipe(measured_speeds, train_chars, picked, dropout, said):
    settings, why = sizing.pick_size(65, train_chars, 600, 32, 64)
    assert why.startswith(f"--size auto picked {picked} with a 64-wide embedding ")
    assert (settings["embed"], settings["dropout"]) == (64, dropout)
    assert said in why
    recipe = next(c for c in sizing.MENU if c.name == picked).recipe
    assert {k: settings[k] for k in recipe} == recipe and f"lr {recipe['lr']:g}" in why
    settings, why = sizing.pick_size(65, train_chars, 600, 32, 64, given={"lr", "reset_every"})
    assert "lr" not in settings and "reset_every" not in settings and not re.search(r"\blr \d", why)


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
    for extra, lr, schedule in (
        ([], 0.003, "cosine"),
        (["--lr", "0.002", "--lr-schedule", "wsd"], 0.002, "wsd"),
        (["--lr", "0.004"], 0.004, "cosine"),  # the default value, given: kept
    ):
        code, _, err = run_cli(*args, "--eval-every", "0", "--overwrite", *extra)
        assert code == 0, err
        saved = yaml.safe_load((tmp_path / "runs" / "small" / "config.yaml").read_text())
        model = (saved["cell"], saved["hidden"], saved["embed"], saved["dropout"], saved["reset_every"])
        assert model == ("gru", 512, 64, 0.25, 0)
        assert (saved["lr"], saved["lr_schedule"], saved["warmup_steps"]) == (lr, schedule, 100)
    code, _, err = run_cli(*args, "--eval-every", "0", "--overwrite", "--max-steps", "30")
    assert code == 0, err  # the recipe's warm-up of 100 steps would leave none: cut to a tenth
    assert "warm-up cut to a tenth of --max-steps 30" in err
    assert yaml.safe_load((tmp_path / "runs" / "small" / "config.yaml").read_text())["warmup_steps"] == 3
    code, _, err = run_cli(*args, "--overwrite", "--max-steps", "30", "--warmup-steps", "100")
    assert code == 2 and "--warmup-steps 100 leaves no steps after the warm-up within --max-steps 30" in err


def test_size_auto_refuses_model_keys_from_a_config_file(run_cli, small_corpus, tmp_path):
    (tmp_path / "run.yaml").write_text("embed: 16\n")
    args = ["train", small_corpus, "--config", tmp_path / "run.yaml", "--size", "auto", "--max-time", "2s"]
    code, _, err = run_cli(*args)
    assert code == 2 and "--size auto chooses the model itself; leave out --embed" in err
