"""Documented behaviours that no other test held (issue 46): SIGTERM and a second Ctrl-C during `charrnn train`,
--output-dropout, --sample-every, --encoding, --no-bidirectional / --no-input-feeding over a config file,
`sweep --cpus-per-trial`, `plot --x`, `viz --file` and `--unknown`, `charrnn.train(stop=...)` and `Config.to_yaml`.
Each test quotes the page (or --help) whose promise it holds."""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import POND, REPO

import charrnn
from charrnn.training import checkpoint
from charrnn.training.config import FIELDS, Config

TINY = ["--layers", "1", "--hidden", "16"]


def start_train(*args: object, cwd: Path) -> subprocess.Popen:
    """`charrnn train ARGS` in a process of its own, its stdout and stderr piped."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    command = [sys.executable, "-m", "charrnn", "train", *map(str, args)]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Until `path` exists (the run has taken a step: --log-every 1 writes metrics.jsonl after it)."""
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run took no step within 60 s"
        time.sleep(0.01)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


STOPPING = "charrnn: stopping after this step, then saving (press Ctrl-C again to quit at once)"


def test_sigterm_stops_train_as_the_first_ctrl_c_does(small_corpus, tmp_path):
    """language-model.md: "The first Ctrl-C (or SIGTERM) lets the current step finish, saves, prints the command
    that resumes, and exits with code 130"."""
    proc = start_train(small_corpus, *TINY, "--max-steps", "100000", "--log-every", "1", "--run-dir", "r", cwd=tmp_path)
    wait_for(tmp_path / "r" / "metrics.jsonl", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    step = checkpoint.load_model(tmp_path / "r" / "last.npz")[3]["step"]
    assert 0 < step < 100000
    assert STOPPING in err
    assert f"charrnn: stopped at step {step} and saved r/last.npz. Resume with: charrnn train --resume r" in err
    assert metrics(tmp_path / "r")[-1]["step"] == step and f"step {step} · " in out


def test_a_second_ctrl_c_quits_train_at_once_without_saving(tmp_path):
    """language-model.md: the first Ctrl-C "lets the current step finish, saves ...; a second Ctrl-C quits at
    once" (the notice says "press Ctrl-C again to quit at once"). The run's validation pass over 20,000 characters
    leaves time for the second one to arrive before the save."""
    args = ["--layers", "1", "--hidden", "128", "--max-steps", "100000", "--log-every", "1"]
    proc = start_train(POND, *args, "--eval-every", "0", "--save-every", "0", "--run-dir", "r", cwd=tmp_path)
    wait_for(tmp_path / "r" / "metrics.jsonl", proc)
    proc.send_signal(signal.SIGINT)
    seen = []
    while STOPPING not in "".join(seen):
        seen.append(proc.stderr.readline())
        assert seen[-1], "".join(seen)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped at step" not in err and "saved" not in out + err, out + err
    assert not (tmp_path / "r" / "last.npz").exists()


def test_output_dropout_drops_the_top_layers_output(run_cli, small_corpus, tmp_path):
    """configuration.md: `--output-dropout`: "also drop the top layer's output before the output layer"; tasks.md:
    "`--dropout` drops units between layers". With one layer, --dropout alone changes nothing; with
    --output-dropout the same seed trains differently, and the run's config records it."""
    losses = {}
    for name, flags in [
        ("none", ["--dropout", "0"]),
        ("between", ["--dropout", "0.5"]),
        ("output", ["--dropout", "0.5", "--output-dropout"]),
    ]:
        code, _, err = run_cli(
            "train", small_corpus, *TINY, "--max-steps", "4", "--log-every", "1", "--run-dir", name, *flags
        )
        assert code == 0, err
        losses[name] = [r["train_loss"] for r in metrics(tmp_path / name)]
    assert losses["between"] == losses["none"]  # one layer: nothing lies between layers
    assert losses["output"] != losses["none"]
    assert checkpoint.load_model(tmp_path / "output" / "last.npz")[2].output_dropout is True
    assert yaml.safe_load((tmp_path / "output" / "config.yaml").read_text())["output_dropout"] is True
    assert checkpoint.load_model(tmp_path / "between" / "last.npz")[2].output_dropout is False


def test_sample_every_shows_a_sample_every_n_steps(run_cli, small_corpus):
    """language-model.md: "`--sample-every N` shows a short sample in the progress display every N steps"
    (configuration.md: "0: never")."""
    code, _, err = run_cli("train", small_corpus, *TINY, "--max-steps", "7", "--sample-every", "3", "--run-dir", "a")
    assert code == 0, err
    headers = [line for line in err.splitlines() if line.startswith("── sample at step")]
    assert headers == ["── sample at step 3 ──", "── sample at step 6 ──"]
    sample = err.split("── sample at step 3 ──\n", 1)[1]
    assert sample.strip()  # a sample follows its header
    code, _, err = run_cli("train", small_corpus, *TINY, "--max-steps", "7", "--run-dir", "b")
    assert code == 0 and "── sample at step" not in err


def test_encoding_reads_a_corpus_in_another_encoding(run_cli, small_corpus, tmp_path):
    """configuration.md: `--encoding`: "text encoding of the corpus files"; errors.md: invalid UTF-8 is "... is not
    valid utf-8 (byte 0xe9 at offset 3); if it uses another encoding, pass it with --encoding, e.g. --encoding
    latin-1."; tasks.md: files are read "in the encoding the model's training file was read in"."""
    text = small_corpus.read_text(encoding="utf-8")[:3000].replace("e", "é")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(text.encode("latin-1"))
    offset = text.encode("latin-1").index(b"\xe9")
    code, _, err = run_cli("train", latin, *TINY, "--max-steps", "2")
    message = (
        f"corpus file {latin} is not valid utf-8 (byte 0xe9 at offset {offset}); if it uses another encoding, pass "
        "it with --encoding, e.g. --encoding latin-1."
    )
    assert code == 2 and message in err, err
    assert not (tmp_path / "runs").exists()
    code, _, err = run_cli("train", latin, *TINY, "--max-steps", "2", "--encoding", "latin-1")
    assert code == 0, err
    model = charrnn.load(tmp_path / "runs" / "latin")
    assert model.config.encoding == "latin-1" and "é" in model.vocab.chars and "Ã" not in model.vocab.chars
    same = tmp_path / "same.txt"
    same.write_text(text, encoding="utf-8")
    code, out, err = run_cli("score", latin, "--json")  # read in the model's encoding: no flag needed
    assert code == 0, err
    code, out_utf8, err = run_cli("score", same, "--json", "--encoding", "utf-8")
    assert code == 0, err
    assert json.loads(out)[0]["total_nats"] == json.loads(out_utf8)[0]["total_nats"]


def test_no_flags_beat_a_config_file_that_sets_them_true(run_cli, tmp_path):
    """configuration.md: flags override the file (`--bidirectional` / `--no-bidirectional`, `--input-feeding` /
    `--no-input-feeding`); a config file that sets both true, and the `--no-` flags on the command line: the run has
    neither."""
    words = ["".join(w) for w in itertools.product("abcd", repeat=3)]
    (tmp_path / "pairs.tsv").write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    config = tmp_path / "on.yaml"
    config.write_text(
        "corpus: pairs.tsv\ntask: seq2seq\nattention: additive\nbidirectional: true\ninput_feeding: true\n"
        "layers: 1\nhidden: 8\nbatch_size: 4\nmax_steps: 2\n",
        encoding="utf-8",
    )
    code, _, err = run_cli("train", "--config", config, "--run-dir", "file")
    assert code == 0, err
    code, _, err = run_cli(
        "train", "--config", config, "--no-bidirectional", "--no-input-feeding", "--run-dir", "flags"
    )
    assert code == 0, err
    file_cfg = checkpoint.load_model(tmp_path / "file" / "last.npz")[2]
    flag_cfg = checkpoint.load_model(tmp_path / "flags" / "last.npz")[2]
    assert (file_cfg.bidirectional, file_cfg.input_feeding) == (True, True)  # the file counts when no flag is given
    assert (flag_cfg.bidirectional, flag_cfg.input_feeding) == (False, False)
    saved = yaml.safe_load((tmp_path / "flags" / "config.yaml").read_text())
    assert saved["bidirectional"] is False and saved["input_feeding"] is False


def test_cpus_per_trial_sets_each_trials_blas_threads_and_is_checked_against_the_cluster(
    run_cli, small_corpus, tmp_path, monkeypatch
):
    """sweep.md: "Each trial's BLAS uses only the CPUs Ray gave it (`--cpus-per-trial`, default 1)"; --help:
    "CPUs (and BLAS threads) each trial gets". A real Ray cluster takes about 10 s to start, so Ray's `init` and
    `cluster_resources` stand in: what the sweep asks of Ray, and its refusal of more CPUs than the cluster has."""
    ray = pytest.importorskip("ray", reason="charrnn[sweep] is not installed")
    for key in ("RAY_AIR_NEW_OUTPUT", "RAY_DEDUP_LOGS"):  # the sweep sets them; put them back afterwards
        monkeypatch.setenv(key, "0")
    asked = []
    monkeypatch.setattr(ray, "init", lambda **options: asked.append(options))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"corpus: {small_corpus}\nmax_steps: 4\nsearch:\n  lr: [0.01, 0.02]\ntrials: 2\n")
    code, _, err = run_cli("sweep", sweep, "--cpus-per-trial", "3")
    assert code == 2 and "--cpus-per-trial 3 is more than the cluster has (2 CPUs)." in err, err
    threads = {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    assert asked[-1]["runtime_env"]["env_vars"] == threads
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 0.5})
    code, _, err = run_cli("sweep", sweep)  # the default, 1
    assert code == 2 and "--cpus-per-trial 1 is more than the cluster has (0.5 CPUs)." in err, err
    assert asked[-1]["runtime_env"]["env_vars"]["OPENBLAS_NUM_THREADS"] == "1"
    assert not (tmp_path / "runs").exists()
    code, _, err = run_cli("sweep", sweep, "--cpus-per-trial", "0")
    assert code == 2 and "--cpus-per-trial" in err


def test_plot_x_chooses_steps_or_epochs(run_cli, small_corpus, tmp_path, monkeypatch):
    """--help: "--x step|epoch  What the x axis counts. [default: step]" (language-model.md: `charrnn plot`). The
    figure's x label and the x of its curves are read as it is saved."""
    pytest.importorskip("matplotlib", reason="charrnn[plot] is not installed")
    from matplotlib.figure import Figure

    code, _, err = run_cli("train", small_corpus, *TINY, "--max-steps", "6", "--log-every", "1", "--eval-every", "3")
    assert code == 0, err
    records = metrics(tmp_path / "runs" / "small")
    drawn = []
    save = Figure.savefig

    def spy(figure, *args, **kwargs):
        axes = figure.axes[0]
        drawn.append((axes.get_xlabel(), {line.get_label(): list(line.get_xdata()) for line in axes.get_lines()}))
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    for x in ("step", "epoch"):
        code, _, err = run_cli("plot", "--x", x, "--out", f"{x}.png")
        assert code == 0 and (tmp_path / f"{x}.png").stat().st_size > 1000, err
        label, curves = drawn[-1]
        assert label == x
        assert curves["small train"] == [r[x] for r in records]
        assert curves["small validation"] == [r[x] for r in records if r.get("val_loss") is not None]
    assert drawn[0][1] != drawn[1][1]  # epochs are not steps here
    code, _, err = run_cli("plot", "--out", "default.png")
    assert code == 0 and drawn[-1][0] == "step"
    code, _, err = run_cli("plot", "--x", "time", "--out", "time.png")
    assert code == 2 and "--x must be step or epoch (got 'time')." in err


def page_text(path: Path) -> str:
    """The text a `charrnn viz` page shows."""
    page = path.read_text(encoding="utf-8")
    return json.loads(page.split("const DATA = ")[1].split(";\n", 1)[0].replace("<\\/", "</"))["text"]


def test_viz_reads_a_file_and_refuses_or_skips_unknown_characters(run_cli, small_corpus, tmp_path):
    """viz.md: `charrnn viz --file some.py ... # any text`; --help: "-f, --file PATH  Read the text from this file",
    "--unknown error|skip  Input characters the model never saw: error (name them) or skip them"."""
    code, _, err = run_cli("train", small_corpus, *TINY, "--max-steps", "2")
    assert code == 0, err
    text = small_corpus.read_text(encoding="utf-8")[1000:1300]  # characters the model saw
    known = tmp_path / "known.txt"
    known.write_text(text, encoding="utf-8")
    code, _, err = run_cli("viz", "--file", known, "--out", "known.html")
    assert code == 0, err
    assert page_text(tmp_path / "known.html") == text
    odd = tmp_path / "odd.txt"
    odd.write_text(text[:100] + "€" + text[100:], encoding="utf-8")
    code, _, err = run_cli("viz", "--file", odd, "--out", "odd.html")
    assert code == 2 and "1 character the model never saw in training, once: '€' (1)" in err, err
    assert "pass --unknown skip" in err and not (tmp_path / "odd.html").exists()
    code, _, err = run_cli("viz", "--file", odd, "--out", "odd.html", "--unknown", "skip")
    assert code == 0, err
    assert page_text(tmp_path / "odd.html") == text
    assert "'€' (1); left out (--unknown skip)" in err  # "skip them (and say which)"


def test_train_stops_when_the_stop_event_is_set(small_corpus, tmp_path):
    """python.md: "setting the `threading.Event` given as `stop` from another thread, lets the current step finish,
    saves, and returns a `Run` whose `interrupted` is true"; its example sets it at a validation pass: "the step
    under way finishes, then the run validates, saves and returns"."""
    stop = threading.Event()

    def watch(event):
        if event.evaluated and event.step == 4:
            setter = threading.Thread(target=stop.set)
            setter.start()
            setter.join()

    run = charrnn.train(
        small_corpus,
        layers=1,
        hidden=16,
        max_steps=60,
        eval_every=4,
        run_dir=str(tmp_path / "r"),
        progress=False,
        callback=watch,
        stop=stop,
    )
    assert run.interrupted and run.reason == "interrupted" and run.steps == 5
    assert checkpoint.load_model(tmp_path / "r" / "last.npz")[3]["step"] == 5
    assert [r["step"] for r in metrics(tmp_path / "r") if r.get("val_loss") is not None] == [4, 5]


def test_config_to_yaml_round_trips_and_is_a_config_file(run_cli, small_corpus, tmp_path):
    """python.md: `Config` has `Config.from_yaml(path, **overrides)` and `.to_yaml()`; its docstring: "The config
    as YAML, as the run directory's config.yaml holds it (`--config` reads it back)"."""
    cfg = Config(
        corpus=[str(small_corpus)],
        cell="gru",
        layers=1,
        hidden=16,
        dropout=0.25,
        output_dropout=True,
        lr=0.002,
        lr_schedule="cosine",
        max_steps=3,
        seed=7,
        run_dir="from-yaml",
        sample_every=0,
    )
    text = cfg.to_yaml()
    assert set(yaml.safe_load(text)) == set(FIELDS)  # every key, in plain YAML
    path = tmp_path / "saved.yaml"
    path.write_text(text, encoding="utf-8")
    assert Config.from_yaml(path) == cfg
    assert Config.from_yaml(path, hidden=32) == cfg.replace(hidden=32)
    code, _, err = run_cli("train", "--config", path)
    assert code == 0, err
    trained = checkpoint.load_model(tmp_path / "from-yaml" / "last.npz")[2]
    assert trained == cfg
    assert Config.from_yaml(tmp_path / "from-yaml" / "config.yaml") == cfg


def test_serve_without_its_extra_says_what_to_install(run_cli, small_corpus, monkeypatch):
    """errors.md: `charrnn serve needs FastAPI, uvicorn and prometheus-client; install them with: ...`."""
    assert run_cli("train", small_corpus, *TINY, "--max-steps", "2", "--run-dir", "r")[0] == 0
    monkeypatch.setitem(sys.modules, "fastapi", None)  # the import fails, as without the extra
    code, _, err = run_cli("serve", "--run-dir", "r")
    assert code == 2 and "install them with: pip install 'charrnn[serve]'" in err and "Traceback" not in err


def test_load_with_no_path_takes_the_most_recent_run_and_says_which(run_cli, small_corpus):
    """python.md: `charrnn.load()` with no path loads the most recent run; `model.path` says which. A language
    model has no `classify`."""
    for name in ("older", "newer"):
        assert run_cli("train", small_corpus, *TINY, "--max-steps", "2", "--run-dir", f"runs/{name}")[0] == 0
        time.sleep(0.05)  # distinct modification times
    model = charrnn.load()
    assert model.path.parent.name == "newer"
    with pytest.raises(AttributeError):
        model.classify("abc")
