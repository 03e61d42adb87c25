import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from charrnn.data import datasets
from charrnn.interfaces.cli import main

REPO = Path(__file__).resolve().parent.parent
POND = REPO / "data" / "pond.txt"


@pytest.fixture
def run_cli(capsys, monkeypatch, tmp_path):
    """Run `charrnn ARGS` in-process inside tmp_path; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A few kB of real-looking text, cut from the project's own corpus."""
    path = tmp_path / "small.txt"
    path.write_text(POND.read_text(encoding="utf-8")[:6000], encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def data_folder(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets an empty data folder of its own ($CHARRNN_DATA): none reads or writes the user's."""
    folder = tmp_path_factory.mktemp("charrnn-data")
    monkeypatch.setenv(datasets.ENV, str(folder))
    return folder


def stand_in(folder: Path, name: str, files: dict[str, str]) -> Path:
    """Put small files in place of data set `name`, as `charrnn data get` would leave them (checksum not pinned)."""
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    for file, text in files.items():
        (target / file).write_text(text, encoding="utf-8")
    record = {"name": name, "inputs": "a test's stand-in", "pinned": False, "sha256": {}, "summary": ""}
    (target / datasets.MANIFEST).write_text(json.dumps(record), encoding="utf-8")
    return target


def charrnn(*args: object, cwd: Path, check: bool = False, **env: str) -> subprocess.CompletedProcess:
    """`charrnn ARGS` in a process of its own, in `cwd`, with `env` added; with check, it must exit 0."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **env}
    done = subprocess.run(
        [sys.executable, "-m", "charrnn", *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def write_tsv(path: Path, pairs) -> Path:
    """A TSV file of (input, output) pairs, one a line: the examples of the supervised tasks."""
    path.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
    return path


def make_trainer(corpus: Path, run_dir: Path, **overrides):
    """A Trainer of a tiny LSTM language model on `corpus`, saving into `run_dir`; `overrides` are Config keys."""
    from charrnn.data.text import load_corpus
    from charrnn.training.config import Config
    from charrnn.training.run import RunFolder
    from charrnn.training.trainer import Trainer

    settings = dict(corpus=[str(corpus)], layers=1, hidden=8, batch_size=4, seq_len=8, run_dir=str(run_dir))
    cfg = Config(**{**settings, **overrides})
    return Trainer(cfg, load_corpus(cfg.corpus, val_frac=cfg.val_frac), RunFolder.of(cfg))


def numeric_gradient(net, loss, eps: float = 1e-5):
    """Central differences of `loss()` (a float) with respect to each of the network's parameters."""
    import numpy as np

    numeric = np.empty(net.num_params)
    for k in range(net.num_params):
        old = net.flat_params[k]
        net.flat_params[k] = old + eps
        plus = loss()
        net.flat_params[k] = old - eps
        minus = loss()
        net.flat_params[k] = old
        numeric[k] = (plus - minus) / (2 * eps)
    return numeric


def assert_gradients_match(net, loss, analytic=None, floor: float = 1e-5) -> None:
    """The network's gradients match central differences of `loss()` to a relative error of 1e-5, the worst
    parameter named if not. Without `analytic`, the gradients compared are those `loss()` fills in."""
    import numpy as np

    if analytic is None:
        loss()
        analytic = net.flat_grads.copy()
    numeric = numeric_gradient(net, loss)
    rel = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), floor)
    assert rel.max() < 1e-5, f"max relative error {rel.max():.2e} in {parameter_at(net, int(rel.argmax()))}"


def parameter_at(net, index: int) -> str:
    """The name of the parameter that flat index `index` falls in (for a gradient check's message)."""
    start = 0
    for name, p in net.params.items():
        if index < start + p.size:
            return name
        start += p.size
    return "?"


def interrupt(proc: subprocess.Popen, ready, timeout: float = 120) -> tuple[str, str]:
    """Ctrl-C the command running in `proc` once `ready()` is true (or, given a path, once it exists: e.g. a run's
    metrics.jsonl, its first step done); its (stdout, stderr) once it has ended."""
    check = ready if callable(ready) else Path(ready).exists
    deadline = time.monotonic() + 60
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=timeout)


def kill_while_saving(command: list[str], rounds: int, seconds: tuple[float, float], check) -> None:
    """Run `command` (a script that prints "ready", then saves checkpoints in a loop) `rounds` times, each killed
    with SIGKILL at a random moment within `seconds` of being ready, then `check()` what it left."""
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(rounds):
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(*seconds))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`charrnn serve ARGS` on a free 127.0.0.1 port in a process of its own; `url` once /health answers. Stop it
    in a `finally` (or use it as a context manager)."""

    def __init__(self, cwd: Path, *args: object, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "charrnn", "serve", *map(str, args), "--port", str(self.port)]
        environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        # a file, not a pipe: a pipe nobody reads fills up with access-log lines; it lives as long as the server
        self.stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(command, cwd=cwd, env=environment, stderr=self.stderr, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log()}")
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # it answers (a token server refuses /health without the token)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("the server did not answer within 60 s")

    def log(self) -> str:
        """What the server wrote on stderr so far."""
        self.stderr.seek(0)
        return self.stderr.read()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def call(url: str, body: object = None, raw: bytes | None = None, headers: dict | None = None) -> tuple[int, object]:
    """(status, parsed JSON) of a GET (body None) or a POST of `body` as JSON (or of `raw` bytes)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
