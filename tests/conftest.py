from pathlib import Path

import pytest

from charrnn.cli import main

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
