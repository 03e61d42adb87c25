"""How long a run trains, and what it says about it: one rule for --max-steps, --epochs and --max-time; --max-time as
the budget of the whole command; extending a run with --more; the progress the API shows by default and the bar as
it appears in an 80-column terminal."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, charrnn

import charrnn as api
from charrnn.data.text import load_corpus
from charrnn.training import checkpoint
from charrnn.training.checkpoint import load_model
from charrnn.training.config import Config
from charrnn.training.run import RunFolder
from charrnn.training.trainer import EVAL_MARGIN, Trainer

# 6,000 characters, 5,400 to train on, read by 32 streams of 64: 2 steps an epoch, so 10 epochs are 20 steps
SMALL = ["--layers", "1", "--hidden", "16", "--batch-size", "32", "--seq-len", "64"]


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_an_explicit_max_steps_is_not_cut_short_by_the_default_epochs(run_cli, small_corpus, tmp_path):
    code, _, err = run_cli("train", small_corpus, *SMALL, "--max-steps", "30", "--eval-every", "0")
    assert code == 0, err
    assert "steps 0 to 30 of 32×64 (--max-steps)" in err and "epochs" not in err
    assert "done (reached step 30: --max-steps)" in err
    meta = load_model(tmp_path / "runs" / "small" / "last.npz")[3]
    assert (meta["step"], meta["stop_reason"]) == (30, "max_steps")


def test_a_run_given_no_limit_says_it_stops_after_ten_epochs(run_cli, small_corpus):
    code, _, err = run_cli("train", small_corpus, *SMALL, "--eval-every", "0")
    assert code == 0, err
    assert "steps 0 to 20 of 32×64 (10 epochs, the default as no --max-steps, --epochs or --max-time was given)" in err
    assert "done (reached step 20: 10 epochs, the default" in err


def test_the_first_limit_given_stops_the_run_and_the_start_line_says_which(run_cli, small_corpus):
    code, _, err = run_cli("train", small_corpus, *SMALL, "--max-steps", "30", "--epochs", "5", "--eval-every", "0")
    assert code == 0, err
    assert "steps 0 to 10 of 32×64 (--epochs 5, before --max-steps 30)" in err
    assert "done (reached step 10: --epochs 5, before --max-steps 30)" in err
    code, _, err = run_cli("train", small_corpus, *SMALL, "--max-steps", "6", "--epochs", "5", "--overwrite")
    assert code == 0, err
    assert "steps 0 to 6 of 32×64 (--max-steps, before --epochs 5 at step 10)" in err
    code, _, err = run_cli("train", small_corpus, *SMALL, "--max-time", "1h", "--max-steps", "4", "--overwrite")
    assert code == 0, err
    assert "steps 0 to 4 of 32×64 (--max-steps) or 1h (the last validation and save included), whichever" in err


class Clock:
    """A clock the test moves: a training step takes `step` seconds, a validation pass `evaluation`, a save 1."""

    def __init__(self, trainer: Trainer, step: float, evaluation: float) -> None:
        self.now = 0.0
        for name, cost in (("train_step", step), ("evaluate", evaluation), ("save", 1.0)):
            setattr(trainer, name, self.taking(getattr(trainer, name), cost))
        trainer.clock = lambda: self.now

    def taking(self, work, seconds: float):
        def timed(*args, **kwargs):
            self.now += seconds
            return work(*args, **kwargs)

        return timed


def clocked_trainer(corpus: Path, folder: Path, step: float, evaluation: float, **keys) -> tuple[Trainer, Clock]:
    config = Config(corpus=[str(corpus)], layers=1, hidden=8, batch_size=4, seq_len=8, run_dir=str(folder), **keys)
    trainer = Trainer(config, load_corpus(config.corpus, val_frac=config.val_frac), RunFolder.of(config))
    return trainer, Clock(trainer, step, evaluation)


@pytest.mark.parametrize("eval_every", [20, 60])
def test_max_time_bounds_the_whole_run_with_its_last_validation_and_save(small_corpus, tmp_path, eval_every):
    """A 200 s budget, 1 s steps and 30 s validation passes: the run stops stepping in time for its last pass and
    save, and skips a periodic pass that would leave no time for the last one."""
    trainer, clock = clocked_trainer(small_corpus, tmp_path, 1.0, 30.0, max_time=200.0, eval_every=eval_every)
    events = []
    end = trainer.run(events.append)
    assert end.stopping == "max_time" and "reached --max-time 3m20s" in end.text
    assert 180 <= clock.now <= 200 and end.elapsed == clock.now
    assert [e for e in events if e.kind == "eval"][-1].step == end.step  # validated and saved at the end
    assert load_model(tmp_path / "last.npz")[3]["stop_reason"] == "max_time"


def test_progress_follows_the_limit_that_binds(small_corpus, tmp_path):
    trainer, _ = clocked_trainer(small_corpus, tmp_path, 2.0, 1.0, max_time=100.0, max_steps=1000, eval_every=0)
    events = []
    trainer.run(events.append)
    steps = [e for e in events if e.kind == "step"]
    assert all(e.time_bound for e in steps)
    assert steps[9].progress == pytest.approx(steps[9].elapsed / 100) and steps[9].remaining == 100 - steps[9].elapsed
    trainer, _ = clocked_trainer(small_corpus, tmp_path / "b", 2.0, 1.0, max_time=1000.0, max_steps=20)
    events = []
    trainer.run(events.append)
    tenth = [e for e in events if e.kind == "step"][9]
    assert not tenth.time_bound and tenth.progress == 0.5
    # 10 steps of 2 s, then the last validation of 600 characters, estimated from steps of 32 characters in 2 s
    assert tenth.remaining == pytest.approx(10 * 2 + 2 + EVAL_MARGIN * 600 * 2 / 32, abs=0.1)


def test_size_auto_times_no_more_models_than_a_short_budget_allows(small_corpus, tmp_path):
    started = time.perf_counter()
    done = charrnn(
        "train",
        REPO / "data" / "pond.txt",
        "--size",
        "auto",
        "--max-time",
        "3s",
        "--run-dir",
        "auto",
        cwd=tmp_path,
        check=True,
    )
    assert time.perf_counter() - started < 3 + 10
    picked, why = done.stderr.splitlines()[:2]
    assert picked.startswith("charrnn: --size auto picked lstm 1×128") and "chars/s measured here: in " in why


def test_max_time_is_the_budget_of_the_command(small_corpus, tmp_path):
    """A run whose validation pass takes seconds (half of a 200 kB corpus, read by an LSTM 1×256) ends within 10 s
    of a 4 s budget, start-up included."""
    started = time.perf_counter()
    done = charrnn(
        "train",
        REPO / "data" / "pond.txt",
        "--hidden",
        "256",
        "--layers",
        "1",
        "--val-frac",
        "0.5",
        "--max-time",
        "4s",
        "--eval-every",
        "0",
        "--run-dir",
        "slow",
        cwd=tmp_path,
        check=True,
    )
    assert time.perf_counter() - started < 4 + 10
    assert "reached --max-time 4s" in done.stderr


def test_more_extends_a_run_and_its_learning_rate_goes_on_from_where_it_was(run_cli, small_corpus, tmp_path):
    flags = [*SMALL, "--max-steps", "10", "--log-every", "1", "--eval-every", "0"]
    assert run_cli("train", small_corpus, *flags, "--run-dir", "run")[0] == 0
    before = metrics(tmp_path / "run")[-1]["lr"]
    code, _, err = run_cli("train", "--resume", "run", "--more", "6")
    assert code == 0, err
    assert "steps 10 to 16 of 32×64 (--max-steps)" in err
    added = [r["lr"] for r in metrics(tmp_path / "run")[10:]]
    assert len(added) == 6 and added[0] == pytest.approx(before) and added[-1] < added[0]  # held, then decayed
    code, _, err = run_cli("train", "--resume", "run", "--more", "2", "--restart-schedule")
    assert code == 0, err
    assert metrics(tmp_path / "run")[16]["lr"] == 0.004  # a new schedule: back to --lr
    code, _, err = run_cli("train", "--resume", "run", "--more", "2s")
    assert code == 0, err
    meta = load_model(tmp_path / "run" / "last.npz")[3]
    assert meta["stop_reason"] == "max_time" and meta["step"] > 18 and meta["config"]["max_steps"] == 0
    assert "2s more of --max-time" in err and "(2s for this command, the last validation and save included)" in err
    code, _, err = run_cli("train", "--resume", "run")  # it used its time: nothing left, and no start line first
    assert code == 2 and err.startswith("charrnn: error: nothing to train: the run is at step")
    assert "and used its --max-time; add to it with --more" in err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--more", "5"], "--more extends a run you already have; add --resume"),
        (["--resume", "run", "--more", "5", "--max-steps", "50"], "--more sets how much longer the run goes on; leave"),
        (["--resume", "run", "--more", "0"], "--more 0 adds nothing"),
        (["--resume", "run", "--more", "five"], "--more takes a number of steps (--more 1000) or a duration"),
        (["--resume", "run"], "nothing to train: the run is at step 2 and reached its --max-steps; add to it with"),
        (["--restart-schedule"], "--restart-schedule extends a run you already have; add --resume"),
    ],
)
def test_more_is_refused_with_a_sentence(run_cli, small_corpus, args, said):
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "2", "--run-dir", "run")[0] == 0
    code, _, err = run_cli("train", *args)
    assert code == 2 and said in err and "Traceback" not in err


def test_the_python_api_shows_progress_unless_asked_not_to(small_corpus, tmp_path, capsys):
    api.train(small_corpus, run_dir=str(tmp_path / "a"), layers=1, hidden=8, max_steps=4, eval_every=2)
    shown = capsys.readouterr()
    assert "charrnn: training lstm 1×8" in shown.err and "step 4 · epoch" in shown.err and not shown.out
    seen = []
    api.train(
        small_corpus, run_dir=str(tmp_path / "b"), layers=1, hidden=8, max_steps=4, progress=False, callback=seen.append
    )
    assert capsys.readouterr() == ("", "") and seen[-1].kind == "end"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
@pytest.mark.parametrize(
    ("limit", "where"), [(["--max-steps", "300"], r"step 300/300 "), (["--max-time", "3s"], r"step [\d,]+ 0:0\d/0:03 ")]
)
def test_the_progress_bar_fits_an_80_column_terminal(small_corpus, tmp_path, limit, where):
    session = f"charrnn-{tmp_path.name}"
    command = [sys.executable, "-m", "charrnn", "train", str(small_corpus), *SMALL, *limit, "--eval-every", "100"]
    script = tmp_path / "run.sh"
    script.write_text(f"cd {tmp_path} && PYTHONPATH={REPO} {' '.join(command)}; echo EXIT $?; sleep 60\n")
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "40", "bash", str(script)], check=True
    )
    try:
        screen = ""
        for _ in range(240):
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-J", "-t", session], capture_output=True, text=True
            ).stdout
            if "EXIT" in screen:
                break
            time.sleep(0.25)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert "EXIT 0" in screen, screen
    lines = screen.splitlines()
    assert all(len(line) <= 80 for line in lines), screen
    bar = next(line for line in lines if re.match(where, line))
    assert re.search(r"\d+% loss \d\.\d{3} val \d\.\d{3} [\d,]+ chars/s 0:00 left$", bar.rstrip()), bar


@pytest.mark.parametrize("progress", [True, False])
def test_a_notebook_shows_the_progress(small_corpus, tmp_path, progress):
    """In Jupyter (a real kernel, through nbclient), without ipywidgets for a live bar: the start line, the bar's
    words at every tenth of the run and the validation lines; nothing with progress=False."""
    if importlib.util.find_spec("ipywidgets"):
        pytest.skip("with ipywidgets, rich draws a live widget instead")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    code = (
        f"import charrnn\nrun = charrnn.train({str(small_corpus)!r}, layers=1, hidden=8, max_steps=20, eval_every=10,"
        f" progress={progress})\nrun.steps"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[0].outputs
    assert outputs[-1]["data"]["text/plain"] == "20"
    shown = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs[:-1])
    if not progress:
        assert shown == ""
        return
    assert "charrnn: training lstm 1×8" in shown and "ipywidgets" not in shown
    assert re.search(r"^step 10/20  50% loss \d\.\d{3} val - ", shown, re.M), shown
    assert "step 20 · epoch" in shown


def test_resuming_a_file_that_is_not_a_checkpoint_leaves_its_folder_as_it_was(run_cli, small_corpus, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run_cli("train", "--resume", small_corpus)
    assert code == 2 and "is not a charrnn checkpoint" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no .lock left beside the text


def test_resume_without_a_run_says_which_it_took(run_cli, small_corpus):
    for name in ("a", "b"):
        assert run_cli("train", small_corpus, *SMALL, "--max-steps", "2", "--run-dir", f"runs/{name}")[0] == 0
    code, _, err = run_cli("train", "--resume", "--more", "1")
    assert code == 0, err
    assert err.startswith("charrnn: resuming the most recent run, runs/b (name one to choose): lstm 1×16")


def test_a_checkpoint_from_before_the_rule_extends_from_its_own_rate(run_cli, small_corpus, tmp_path):
    """Written before checkpoints kept the rate and the stop reason, with the old default `epochs: 10` in its config:
    a --max-steps given now is not cut short by that default, and the rate goes on from where the run was."""
    assert run_cli("train", small_corpus, *SMALL, "--log-every", "1", "--eval-every", "0", "--run-dir", "old")[0] == 0
    path = tmp_path / "old" / "last.npz"
    meta, arrays = checkpoint.load(path)
    for key in ("lr", "stop_reason", "eval_seconds", "schedule_start"):
        del meta[key]
    meta["config"]["epochs"] = 10.0
    checkpoint.save(path, meta, arrays)
    before = metrics(tmp_path / "old")[-1]["lr"]
    code, _, err = run_cli("train", "--resume", "old", "--max-steps", "30")
    assert code == 0, err
    assert "steps 20 to 30 of 32×64 (--max-steps)" in err
    assert metrics(tmp_path / "old")[20]["lr"] == pytest.approx(before)  # not back at the peak, 0.004


def test_more_patience_lets_a_run_stopped_by_patience_go_on(run_cli, small_corpus):
    jumpy = [*SMALL, "--optimizer", "sgd", "--lr", "0.5", "--eval-every", "2", "--max-steps", "200"]
    code, _, err = run_cli("train", small_corpus, *jumpy, "--patience", "1", "--run-dir", "run")
    assert code == 0 and "no better validation loss in 1 pass (--patience)" in err
    code, _, err = run_cli("train", "--resume", "run")
    assert code == 2 and "stopped early (--patience); add to it with --more" in err
    code, _, err = run_cli("train", "--resume", "run", "--patience", "3")
    assert code == 0, err


def test_restart_schedule_refuses_an_addition_the_warm_up_would_fill(run_cli, small_corpus):
    flags = [*SMALL, "--max-steps", "50", "--warmup-steps", "40", "--eval-every", "0", "--run-dir", "run"]
    assert run_cli("train", small_corpus, *flags)[0] == 0
    code, _, err = run_cli("train", "--resume", "run", "--more", "10", "--restart-schedule")
    assert code == 2 and "--restart-schedule would spend the 10 steps added warming up (--warmup-steps 40)" in err


def test_a_folder_of_runs_given_as_a_run_says_so(run_cli, small_corpus):
    assert run_cli("train", small_corpus, *SMALL, "--max-steps", "2", "--run-dir", "runs/a")[0] == 0
    code, _, err = run_cli("sample", "--run-dir", "runs")
    assert code == 2 and "run folder runs holds no last.npz; it holds runs: give one of them (runs/a)" in err
