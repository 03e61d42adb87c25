"""`charrnn sweep` on Ray Tune: the sweep file's checks, a real sweep on a local Ray cluster (early stopping,
results, best.yaml), Ctrl-C and --resume, and a real two-node cluster started with `ray start` and token
authentication."""

import contextlib
import csv
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import REPO, charrnn, free_port

from charrnn.interfaces.sweep_file import read_sweep
from charrnn.training import checkpoint
from charrnn.training.config import Config

ray = pytest.importorskip("ray", reason="charrnn[sweep] is not installed")

BASE = """corpus: {corpus}
layers: 1
hidden: 16
batch_size: 8
seq_len: 16
max_steps: {steps}
epochs: 1000
eval_every: 10
"""


def write_sweep(path: Path, corpus: Path, steps: int = 60, trials: int = 6, extra: str = "") -> Path:
    path.write_text(
        BASE.format(corpus=corpus, steps=steps)
        + f"""search:
  lr: {{loguniform: [0.0005, 0.05]}}
  dropout: [0.0, 0.2]
trials: {trials}
{extra}""",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("search:\n  hiden: [8, 16]\ntrials: 2\n", "search key 'hiden' is not a config key; did you mean 'hidden'?"),
        ("search:\n  corpus: [a.txt, b.txt]\n", "'corpus' may not vary between trials"),
        ("search:\n  lr: {uniform: [0.01, 0.001]}\n", "uniform [0.01, 0.001] is empty; low must be below high"),
        ("search:\n  lr: {loguniform: [0, 0.01]}\n", "loguniform needs low > 0 (got 0)"),
        ("search:\n  hidden: {uniform: [8, 64]}\n", "search key 'hidden' takes whole numbers; use {int: [8, 64]}"),
        ("search:\n  hidden: [8, big]\n", "search key 'hidden': 'big' must be a whole number"),
        ("search:\n  lr: [0.01]\nmetric: accuracy\n", "`metric` 'accuracy' is not measured for --task lm"),
        ("search:\n  lr: [0.01]\ntrails: 3\n", "unknown key 'trails'; did you mean 'trials'?"),
        ("trials: 3\n", "has no `search:` section"),
    ],
)
def test_a_bad_sweep_file_is_one_sentence_and_starts_nothing(run_cli, small_corpus, tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.format(corpus=small_corpus, steps=10) + text, encoding="utf-8")
    code, _, err = run_cli("sweep", path)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists()


def test_a_sweep_needs_a_budget_and_a_free_folder(run_cli, small_corpus, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"corpus: {small_corpus}\nsearch:\n  lr: [0.01]\n", encoding="utf-8")
    code, _, err = run_cli("sweep", path)
    assert code == 2 and "gives the trials no budget; add max_time (e.g. 2m), max_steps or epochs" in err
    write_sweep(path, small_corpus)
    (tmp_path / "runs" / "s").mkdir(parents=True)
    (tmp_path / "runs" / "s" / "sweep.yaml").write_text("corpus: other.txt\n", encoding="utf-8")
    code, _, err = run_cli("sweep", path)
    assert code == 2 and "runs/s already holds a different sweep" in err
    code, _, err = run_cli("sweep", path, "--address", "127.0.0.1:1")
    assert code == 2 and "already holds a different sweep" in err  # checked before any cluster is reached


def test_a_sweep_that_fails_before_it_starts_leaves_no_folder(run_cli, small_corpus, tmp_path, monkeypatch):
    """Ray missing, or a cluster that does not answer: no folder is left to block the next attempt; and this
    sweep's folder from such a failed start (no Ray Tune state) does not block it either."""
    path = write_sweep(tmp_path / "s.yaml", small_corpus)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "ray", None)  # import ray fails
        code, _, err = run_cli("sweep", path)
    assert code == 2 and "install it with: pip install 'charrnn[sweep]'" in err
    assert not (tmp_path / "runs").exists()
    code, _, err = run_cli("sweep", path, "--address", "127.0.0.1:1")
    assert code == 2 and "127.0.0.1:1" in err and not (tmp_path / "runs").exists()
    (tmp_path / "runs" / "s").mkdir(parents=True)  # what an earlier charrnn left after such a failure
    (tmp_path / "runs" / "s" / "sweep.yaml").write_text(yaml.safe_dump(read_sweep(path).source), encoding="utf-8")
    code, _, err = run_cli("sweep", path, "--address", "127.0.0.1:1")
    assert code == 2 and "already holds" not in err and "127.0.0.1:1" in err


def test_a_sweep_runs_on_a_local_ray_cluster(small_corpus, tmp_path):
    sweep = write_sweep(tmp_path / "pond.yaml", small_corpus, extra="metric: val_loss\n")
    home = tmp_path / "home"
    home.mkdir()
    done = charrnn("sweep", sweep, cwd=tmp_path, HOME=str(home))
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(home.iterdir()) == []  # the local cluster's token stays in the process: no ~/.ray/auth_token
    folder = tmp_path / "runs" / "pond"
    rows = list(csv.DictReader((folder / "results.csv").open()))
    assert len(rows) == 6 and {r["status"] for r in rows} <= {"finished", "stopped early"}
    assert any(r["status"] == "stopped early" for r in rows), rows  # ASHA stopped the weak ones
    values = [float(r["val_loss"]) for r in rows]
    assert values == sorted(values)
    for row in rows:  # every trial is an ordinary run
        run = Path(row["run_dir"])
        assert (run / "last.npz").is_file() and (run / "config.yaml").is_file() and (run / "metrics.jsonl").is_file()
        steps = int(row["steps"])  # a finished trial ran its 60 steps, one stopped early fewer, as its checkpoint says
        assert (steps == 60) if row["status"] == "finished" else (0 < steps < 60), row
        assert checkpoint.load_model(run / "last.npz")[3]["step"] == steps
    assert "charrnn sweep pond: 6 trials, by val_loss" in done.stdout
    assert all(r["trial"] in done.stdout for r in rows)  # piped, the table is not cut to 80 columns
    info = json.loads(charrnn("info", "--json", "--run-dir", rows[0]["run_dir"], cwd=tmp_path).stdout)
    assert info["best_val_loss"] == pytest.approx(values[0])
    best = Config.from_yaml(folder / "best.yaml")
    assert best.lr == pytest.approx(float(rows[0]["lr"])) and best.run_dir == ""
    again = charrnn(
        "train", "--config", folder / "best.yaml", "--run-dir", "again", cwd=tmp_path, OPENBLAS_NUM_THREADS="1"
    )  # as in the trial
    assert again.returncode == 0, again.stderr
    retrained = json.loads(charrnn("info", "--json", "--run-dir", "again", cwd=tmp_path).stdout)
    assert retrained["best_val_loss"] == pytest.approx(values[0], rel=1e-5)  # the same seed: the same run
    plotted = charrnn("plot", folder, "--out", "sweep.png", cwd=tmp_path)
    assert plotted.returncode == 0 and (tmp_path / "sweep.png").stat().st_size > 10_000


def test_ctrl_c_stops_a_sweep_and_resume_finishes_it_without_rerunning(small_corpus, tmp_path):
    sweep = write_sweep(tmp_path / "long.yaml", small_corpus, steps=2000, trials=4, extra="early_stop: false\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "charrnn", "sweep", str(sweep)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = tmp_path / "runs" / "long"
    deadline = time.time() + 300

    def steps_done() -> list[int]:
        return [
            max((json.loads(x)["step"] for x in p.read_text().splitlines() if x), default=0)
            for p in folder.glob("trial-*/metrics.jsonl")
        ]

    while 2000 not in steps_done() and time.time() < deadline:  # two trials at a time: let the first ones finish
        time.sleep(0.2)
    while len(steps_done()) < 3 and time.time() < deadline:  # and the next ones start
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert "continue with: charrnn sweep --resume runs/long" in err
    rows = list(csv.DictReader((folder / "results.csv").open()))
    assert any(r["status"] == "interrupted" and r["steps"] and int(r["steps"]) < 2000 for r in rows), rows
    before = {p.parent.name: p.read_text() for p in folder.glob("trial-*/metrics.jsonl")}
    finished_before = [r["trial"] for r in csv.DictReader((folder / "results.csv").open()) if r["status"] == "finished"]
    assert finished_before
    resumed = charrnn("sweep", "--resume", folder, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = list(csv.DictReader((folder / "results.csv").open()))
    assert len(rows) == 4 and all(r["status"] == "finished" and r["steps"] == "2000" for r in rows), rows
    for trial in finished_before:  # a trial that had finished was not run again
        assert (folder / trial / "metrics.jsonl").read_text() == before[trial]
    for trial, text in before.items():  # the others went on from their checkpoints
        lines = (folder / trial / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["step"] for x in lines] == sorted({json.loads(x)["step"] for x in lines})
        assert text.splitlines()[0] == lines[0]


@contextlib.contextmanager
def ray_cluster(nodes: int, token: str, home: Path) -> Iterator[str]:
    """A real cluster on this machine with Ray's token authentication on: a head and nodes-1 more nodes, each a
    `ray start` of its own, in a temporary folder; yields the head's address. Whatever happens, it stops exactly
    the processes it started (those naming its folder, and their children), never another Ray on the machine."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray_cli, "the ray command comes with charrnn[sweep]"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "HOME": str(home)}
    address = f"127.0.0.1:{free_port()}"
    start = [ray_cli, "start", "--num-cpus", "1", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    head = ["--head", "--port", address.split(":")[1], "--temp-dir", temp, "--include-dashboard", "false"]
    try:
        for extra in [head] + [["--address", address]] * (nodes - 1):
            node = subprocess.run([*start, *extra], env=env, capture_output=True, text=True, timeout=120)
            assert node.returncode == 0, node.stdout[-2000:] + node.stderr[-2000:]
        yield address
    finally:
        stop_processes_naming(temp)
        shutil.rmtree(temp, ignore_errors=True)


def stop_processes_naming(folder: str) -> None:
    """SIGTERM, then SIGKILL, the processes whose command line names `folder`, and their descendants."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    ours = set()
    for pid in parents:
        with contextlib.suppress(OSError):
            if folder.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                ours.add(pid)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in ours} - ours
        ours |= children
        grew = bool(children)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() for pid in ours) and time.monotonic() < deadline:
            time.sleep(0.2)


def test_a_sweep_runs_on_a_two_node_cluster_with_token_authentication(small_corpus, tmp_path):
    """A head and a second node that share a generated token; the sweep is given it too, and the home folder the
    cluster and the sweep see stays empty."""
    token, home = secrets.token_hex(32), tmp_path / "home"
    home.mkdir()
    with ray_cluster(2, token, home) as address:
        sweep = write_sweep(tmp_path / "cluster.yaml", small_corpus, steps=40, trials=4, extra="early_stop: false\n")
        auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "HOME": str(home)}
        done = charrnn("sweep", sweep, "--address", address, cwd=tmp_path, **auth)
        assert done.returncode == 0, done.stderr[-3000:]
        rows = list(csv.DictReader((tmp_path / "runs" / "cluster" / "results.csv").open()))
        assert len(rows) == 4 and len({r["node"] for r in rows}) == 2, rows  # trials ran on both nodes
        wrong = {**auth, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        refused = charrnn("sweep", sweep, "--address", address, cwd=tmp_path / "runs", **wrong)
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert refused.stderr.strip().startswith(f"charrnn: error: the Ray cluster at {address} refused this")
        assert "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN" in refused.stderr and "Traceback" not in refused.stderr
    assert list(home.iterdir()) == []


def test_an_unreachable_address_is_one_sentence(run_cli, small_corpus, tmp_path):
    sweep = write_sweep(tmp_path / "far.yaml", small_corpus)
    code, _, err = run_cli("sweep", sweep, "--address", "127.0.0.1:1")
    assert code == 2 and "could not reach the Ray cluster at 127.0.0.1:1" in err and "Traceback" not in err
