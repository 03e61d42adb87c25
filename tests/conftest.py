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
