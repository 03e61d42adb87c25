"""--size auto: the rule picks what the measurements in benchmarks/sweep.md found best, and says why."""

import re
from pathlib import Path

import pytest
import yaml

import charrnn
from charrnn.training import sizing

# chars/s of the menu's models by (cell, hidden), about as timed on a 2-core Zen 4 at two threads
SPEEDS = {
    ("lstm", 128): 150_000.0,
    ("lstm", 256): 27_000.0,
    ("gru", 384): 15_000.0,
    ("lstm", 384): 12_500.0,
    ("gru", 512): 8_500.0,
}


@pytest.fixture
def measured_speeds(monkeypatch):
    monkeypatch.setattr(
        sizing, "training_speed", lambda model, batch_size, seq_len: SPEEDS[model.cell, model.hidden_size]
    )


@pytest.mark.parametrize(
    ("train_chars", "seconds", "picked"),
    [
        (1_003_855, 600, "lstm 2×384"),  # tiny shakespeare, 10 minutes: configs/shakespeare.yaml's model won
        (1_003_855, 900, "gru 2×512"),  # read 7.6 times (as 10 minutes on the Zen 5, twice as fast): the wider GRU won
        (1_003_855, 200, "gru 2×384"),  # 200 s: the LSTM would read the text only 2.5 times
        (2_900_000, 600, "gru 2×384"),  # War and Peace, 10 minutes: configs/warandpeace.yaml's model
        (180_100, 60, "lstm 1×128"),  # data/pond.txt, 1 minute
        (180_100, 3600, "lstm 1×128"),  # a small corpus never gets a model that could memorise it
        (50_000_000, 3600, "gru 2×384"),
    ],
)
def test_the_rule_picks_what_was_measured_best(measured_speeds, train_chars, seconds, picked):
    settings, why = sizing.pick_size(65, train_chars, seconds, 32, 64)
    assert why.startswith(f"--size auto picked {picked} ") and len(why.splitlines()) == 2
    choice = next(c for c in sizing.MENU if c.name == picked)
    assert {k: v for k, v in settings.items() if k != "dropout"} == {
        **{k: v for k, v in choice.model.items() if k != "dropout"},
        **choice.recipe,
    }


@pytest.mark.parametrize(
    ("train_chars", "picked", "dropout", "said"),
    [
        (1_003_855, "lstm 2×384", 0.2, "gru 2×512 would have read the training text 5.1 times, under 6"),
        (600_000, "gru 2×384", 0.2, "lstm 2×384 would have 3.2 parameters per training character"),
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
    assert code == 2 and f"--size auto chooses the model itself; leave out the key `embed` of {tmp_path}" in err
    code, _, err = run_cli(*args, "--hidden", "64")  # a flag and a key: the flag is named, in the menu's order
    assert code == 2 and "leave out --hidden or --size auto" in err


def test_size_auto_refuses_init_from_by_name(run_cli, small_corpus, tmp_path):
    small = ["--layers", "1", "--hidden", "8", "--batch-size", "4", "--seq-len", "8"]
    code, _, err = run_cli("train", small_corpus, *small, "--max-steps", "2", "--run-dir", tmp_path / "first")
    assert code == 0, err
    args = ["--init-from", tmp_path / "first" / "last.npz", "--size", "auto", "--max-time", "2s"]
    code, _, err = run_cli("train", small_corpus, *args, "--run-dir", tmp_path / "second")
    assert code == 2 and "--size auto chooses the model itself; leave out --init-from or --size auto" in err


def test_size_auto_names_a_model_key_of_a_config_object(small_corpus, tmp_path):
    config = charrnn.Config(corpus=[str(small_corpus)], size="auto", max_time=2.0, hidden=64, run_dir=str(tmp_path))
    with pytest.raises(charrnn.CharRNNError, match="leave out hidden= of the Config or --size auto"):
        charrnn.train(config)


@pytest.mark.parametrize(("config", "picked"), [("shakespeare", "lstm 2×384"), ("warandpeace", "gru 2×384")])
def test_the_recommended_configs_are_what_the_rule_picks_for_their_corpus(config, picked):
    """docs/quality.md reports one figure for a config and `--size auto` on its corpus: that holds only while the
    config's model and recipe are the menu entry's, key for key (dropout aside: the rule sets it by reads)."""
    keys = yaml.safe_load((Path(__file__).parent.parent / "configs" / f"{config}.yaml").read_text())
    choice = next(c for c in sizing.MENU if c.name == picked)
    model = {k: v for k, v in choice.model.items() if k != "dropout"}
    assert {k: keys[k] for k in model} == model
    assert {k: keys[k] for k in choice.recipe} == choice.recipe
