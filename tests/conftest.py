import json
import os
import socket
import subprocess
import sys
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
