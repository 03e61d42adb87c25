"""First contact with the commands that use a trained model (issue 44): one vocabulary of flags, errors about paths
that name the real problem, the run a command picked said out loud, a sample that ends its line, `info` that reads
at 80 columns, a loss plot whose labels are whole, and one policy for characters a model never saw."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import POND, REPO

import charrnn

TINY = ["--max-steps", "5", "--hidden", "16", "--layers", "1", "--batch-size", "4", "--seq-len", "16"]
LATIN = "Le café de Müller est à côté du lac; il y a du crème brûlée, naïf et gâteau. " * 20 + "\n"


@pytest.fixture
def pond(run_cli, tmp_path):
    """A tiny language model of the project's corpus, in runs/pond."""
    (tmp_path / "pond.txt").write_text(POND.read_text(encoding="utf-8")[:4000], encoding="utf-8")
    code, _, err = run_cli("train", "pond.txt", *TINY)
    assert code == 0, err
    return tmp_path / "runs" / "pond"


def merged(*args: object, cwd, columns: int = 200) -> subprocess.CompletedProcess:
    """`charrnn ARGS` in a process of its own, stderr and stdout in one stream, in the order they were written."""
    env = {"PYTHONPATH": str(REPO), "COLUMNS": str(columns), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "charrnn", *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_every_command_that_uses_a_model_takes_run_dir_and_checkpoint_alike(run_cli, pond, tmp_path):
    (tmp_path / "a.txt").write_text("The pond is cold.\n", encoding="utf-8")
    commands = [
        ["sample", "-n", "5"],
        ["score", "a.txt"],
        ["predict", "The po"],
        ["info"],
        ["eval", "a.txt"],
        ["viz", "The pond", "--terminal"],
    ]
    for command in commands:
        for names_model in (["--run-dir", pond], ["--checkpoint", pond / "last.npz"]):
            code, _, err = run_cli(*command, *names_model)
            assert code == 0, (command, err)
            assert "using" not in err  # the model was named: nothing to announce
    # info and plot also take the run as an argument, a convenience: the same model, the same output
    assert run_cli("info", pond)[1] == run_cli("info", "--run-dir", pond)[1] == run_cli("info", pond / "last.npz")[1]
    code, _, err = run_cli("info", pond, "--run-dir", pond)
    assert code == 2 and "not both" in err
    code, _, err = run_cli("sample", "--run-dir", pond, "--checkpoint", pond / "last.npz")
    assert code == 2 and "give the model with --run-dir or with --checkpoint, not both." in err


def test_one_spelling_for_each_thing(run_cli, pond, tmp_path):
    long = run_cli("sample", "--len", "30", "--temperature", "0.5", "--prime", "MILLER:", "--seed", "4")
    short = run_cli("sample", "-n", "30", "-t", "0.5", "-p", "MILLER:", "-s", "4")
    assert long == short and long[0] == 0
    code, _, err = run_cli("sample", "-n", "30", "-t", "0.5", "-p", "MILLER:", "-s", "4", "-o", "out.txt")
    assert code == 0 and (tmp_path / "out.txt").read_text(encoding="utf-8") == short[1]
    code, out, err = run_cli("sample", "--output", "old.txt")
    assert code == 2 and out == "" and not (tmp_path / "old.txt").exists()
    said = "--output is now --out (as in every command that writes a file); give --out old.txt."
    assert err.strip() == f"charrnn: error: {said}"
    code, _, err = run_cli("viz", "--len", "300", "--terminal")
    assert code == 2 and "--len is now --max-len" in err and "give --max-len 300" in err
    code, out, _ = run_cli("viz", "--max-len", "300", "--terminal")
    assert code == 0 and "cells that track something" in out
    code, _, err = run_cli("viz", "x" * 50, "--max-len", "20", "--terminal")
    assert code == 2 and "more than --max-len 20; shorten it or raise --max-len" in err
    # the API's word for the length to draw is `length`, as the server's JSON
    model = charrnn.load(pond)
    assert model.sample(length=30, prime="MILLER:", temperature=0.5, seed=4) + "\n" == short[1]


@pytest.mark.parametrize("command", ["score", "eval"])
def test_a_model_reads_its_own_kind_of_file_without_being_told_the_encoding(run_cli, tmp_path, command):
    (tmp_path / "latin.txt").write_bytes(LATIN.encode("latin-1"))
    code, _, err = run_cli("train", "latin.txt", "--encoding", "latin-1", *TINY)
    assert code == 0, err
    code, out, err = run_cli(command, "latin.txt", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result[0] if command == "score" else result)["chars"] == len(LATIN) - 1
    code, _, err = run_cli(command, "latin.txt", "--encoding", "utf-8")  # --encoding overrides the model's
    assert code == 2 and "is not valid utf-8" in err and "--encoding" in err
    (tmp_path / "utf8.txt").write_text(LATIN, encoding="utf-8")
    code, _, err = run_cli(command, "utf8.txt", "--encoding", "utf-8")
    assert code == 0, err


def test_viz_a_prime_file_and_classify_read_files_in_the_models_encoding(run_cli, tmp_path):
    (tmp_path / "latin.txt").write_bytes(LATIN.encode("latin-1"))
    assert run_cli("train", "latin.txt", "--encoding", "latin-1", *TINY)[0] == 0
    code, out, err = run_cli("viz", "--file", "latin.txt", "--terminal")
    assert code == 0 and "café" in out, err
    (tmp_path / "prime.txt").write_bytes("Müller".encode("latin-1"))
    code, out, err = run_cli("sample", "--prime-file", "prime.txt", "-n", "5")
    assert code == 0 and out.startswith("Müller"), err
    words = "".join(f"{w}\t{w[-1]}\n" for w in ("café", "naïf", "crème", "brûlée", "gâteau", "côté") * 10)
    (tmp_path / "words.tsv").write_bytes(words.encode("latin-1"))
    assert run_cli("train", "words.tsv", "--task", "classify", "--encoding", "latin-1", *TINY[:6])[0] == 0
    code, out, err = run_cli("classify", "--file", "words.tsv", "--run-dir", "runs/words", "--json")
    assert code == 0 and json.loads(out)[0]["input"] == "café", err
    code, out, err = run_cli("eval", "words.tsv", "--run-dir", "runs/words", "--json")
    assert code == 0 and json.loads(out)["examples"] == 60, err


def test_errors_about_paths_name_the_real_problem(run_cli, pond, tmp_path):
    (tmp_path / "runs" / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a run\n", encoding="utf-8")
    cases = [
        (["info", "runs/nosuch"], "run folder runs/nosuch does not exist; check the path."),
        (["sample", "--run-dir", "runs/nosuch"], "run folder runs/nosuch does not exist; check the path."),
        (["info", "runs/pond/best-of-all.npz"], "checkpoint runs/pond/best-of-all.npz does not exist; check the path."),
        (["info", "runs/empty"], "run folder runs/empty holds no last.npz; train a model into it."),
        (["score", "notes.txt", "--run-dir", "runs/empty"], "run folder runs/empty holds no last.npz"),
        (
            ["predict", "a", "--checkpoint", "runs/pond"],
            "runs/pond is a folder, not a checkpoint file; give it as --run-dir runs/pond, or give a checkpoint in "
            "it such as runs/pond/last.npz.",
        ),
        (["eval", "notes.txt", "--run-dir", "notes.txt"], "notes.txt is a file, not a run folder"),
        (
            ["sample", "--run-dir", "runs/pond/last.npz"],
            "runs/pond/last.npz is a file, not a run folder; give it as --checkpoint runs/pond/last.npz.",
        ),
        (["plot", "runs/nosuch"], "run folder runs/nosuch does not exist"),
    ]
    for args, message in cases:
        code, out, err = run_cli(*args)
        assert code == 2 and out == "", (args, err)
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
        # a flag the user did not type is named only as the fix ("give it as --run-dir ...")
        mentioned = set(re.findall(r"--[a-z-]+", err)) - set(re.findall(r"give it as (--[a-z-]+)", err))
        assert mentioned <= {a for a in args if a.startswith("--")}, (args, err)
    # a run folder with other checkpoints says which
    (pond / "last.npz").rename(pond / "kept.npz")
    code, _, err = run_cli("info", "runs/pond")
    assert code == 2 and "holds no last.npz; give the path of one of its checkpoints: best.npz, kept.npz" in err


def test_a_command_that_picks_the_most_recent_run_says_which_first(run_cli, pond, tmp_path):
    assert run_cli("train", "pond.txt", *TINY, "--run-dir", "runs/later")[0] == 0
    done = merged("sample", "-n", "20", "-s", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    first, rest = done.stdout.split("\n", 1)
    assert first == "charrnn: using runs/later (the most recent run; pass --run-dir to choose)"
    assert "using" not in rest
    for command in (["info"], ["predict", "The"], ["plot", "-o", "loss.png"]):
        if command[0] == "plot":
            pytest.importorskip("matplotlib")
        code, _, err = run_cli(*command)
        assert code == 0 and err.startswith("charrnn: using runs/later (the most recent run"), (command, err)
    assert merged("sample", "-n", "5", "--run-dir", "runs/pond", cwd=tmp_path).stdout.count("using") == 0


def test_a_sample_ends_its_line_exactly_once(run_cli, pond, tmp_path):
    for args in (["-n", "40", "-s", "2"], ["-n", "40", "-s", "2", "--num-samples", "2"], ["-n", "0", "-p", "MILLER:"]):
        done = subprocess.run(
            [sys.executable, "-m", "charrnn", "sample", *args],
            cwd=tmp_path,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.endswith("\n") and not done.stdout.endswith("\n\n"), repr(done.stdout[-10:])
    # a sample that ends with a line break gets no second one
    assert run_cli("sample", "-n", "0", "-p", "MILLER:\n")[1] == "MILLER:\n"
    code, out, _ = run_cli("sample", "-n", "300", "-s", "3", "--stop", "\n")
    assert code == 0 and out.endswith("\n") and out.count("\n") == 1
    # the file --out writes is the text stdout would show
    assert run_cli("sample", "-n", "40", "-s", "2", "-o", "s.txt")[0] == 0
    assert (tmp_path / "s.txt").read_text(encoding="utf-8") == run_cli("sample", "-n", "40", "-s", "2")[1]


def test_info_is_grouped_and_fits_80_columns_with_only_the_keys_its_task_uses(run_cli, pond, tmp_path):
    done = merged("info", "--run-dir", "runs/pond", cwd=tmp_path, columns=80)
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    groups = [line.strip() for line in lines if line.startswith(" ") and not line.startswith("  ")]
    assert groups == ["model", "data", "training", "validation", "run"]
    shown = done.stdout
    assert "hidden=16" in shown and "seq_len=16" in shown and "lr=" in shown and "max_steps=5" in shown
    for other in ("pool=", "attention=", "label_smoothing=", "val_file=", "bidirectional=", "target_units="):
        assert other not in shown, other
    words = "".join(f"{w}\t{w[0]}\n" for w in ("abc", "bcd", "cde", "def") * 10)
    (tmp_path / "w.tsv").write_text(words, encoding="utf-8")
    assert run_cli("train", "w.tsv", "--task", "classify", *TINY[:6])[0] == 0
    shown = merged("info", "runs/w", cwd=tmp_path, columns=80).stdout
    assert "pool=last" in shown and "labels" in shown and "seq_len=" not in shown and "attention=" not in shown


def test_the_loss_plot_keeps_its_labels_inside_the_picture(run_cli, pond, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    code, _, err = run_cli("plot", "--run-dir", pond, "-o", "loss.png")
    assert code == 0, err
    pixels = image.imread(tmp_path / "loss.png")[..., :3]
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    assert border.min() > 0.99  # no ink touches the edge: nothing (the y label above all) is cut off
    assert run_cli("plot", pond, "-o", "again.png")[0] == 0  # the folder as an argument, as before


def test_characters_a_model_never_saw_are_refused_or_skipped_and_said_alike(run_cli, pond, tmp_path):
    (tmp_path / "odd.txt").write_text("The pond € is €€ cold.\n", encoding="utf-8")
    commands = {
        "sample": (["sample", "-n", "5", "-p", "The €"], "the prime"),
        "predict": (["predict", "The €"], "the text"),
        "score": (["score", "odd.txt"], "odd.txt"),
        "eval": (["eval", "odd.txt"], "odd.txt"),
    }
    for name, (args, where) in commands.items():
        code, out, err = run_cli(*args)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 2, (name, err)  # "using", the error
        assert f"{where} has 1 character the model never saw in training" in err and "'€'" in err, (name, err)
        assert "pass --unknown skip to leave them out" in err, (name, err)
        code, out, err = run_cli(*args, "--unknown", "skip")
        assert code == 0 and out, (name, err)
        assert f"{where} has 1 character the model never saw" in err and "left out (--unknown skip)" in err, name
    assert "'€' (3)" in run_cli("score", "odd.txt", "--unknown", "skip")[2]
    model = charrnn.load(pond)
    with pytest.raises(charrnn.CharRNNError, match="--unknown skip"):
        model.score("The €")
    assert model.score("The €", unknown="skip") == pytest.approx(model.score("The "))
    # the server keeps the same policy, in its own words: tests/test_serve.py
