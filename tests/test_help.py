"""`--help` reads well on every command: `-h` works, values are named PATH, TEXT, N, NUMBER or DURATION, defaults are
written as a user writes them, and `train`'s options come in panels."""

import re

import pytest

from charrnn.interfaces.cli import COMMANDS

EVERY = [[name] for name in COMMANDS] + [["data", name] for name in ("list", "get", "path")]


@pytest.mark.parametrize("command", EVERY, ids=[" ".join(c) for c in EVERY])
def test_every_command_has_short_readable_help(run_cli, command):
    code, out, err = run_cli(*command, "-h")
    assert code == 0, err
    usage = out.splitlines()[0]
    assert usage.startswith(f"Usage: charrnn {' '.join(command)} ") and not re.search(r"[a-z{}]", usage.split("]")[-1])
    assert not re.search(r"<[a-z\[\]]+>|\[default: ''\]|\[default: 0\.0\]|x>=|\bNoneType\b", out), out
    assert max(map(len, out.splitlines())) <= 80  # at most 80 columns, however wide the terminal


def test_train_help_is_in_panels_the_users_own_first(run_cli):
    code, out, _ = run_cli("train", "--help")
    assert code == 0
    panels = [line[:-1] for line in out.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert panels[:4] == ["Arguments", "Run", "Data", "How long (the first limit given that is reached stops the run)"]
    assert panels[-4:] == ["Classifier", "Classifier, tagger and seq2seq", "Seq2seq", "Options"]
    words = " ".join(out.split())
    assert "--max-time DURATION" in words and "--cell rnn|lstm|gru" in words and "--run-dir PATH" in words
    assert "[default: runs/<corpus name>]" in words and "[default: 0.004]" in words and "[default: off]" in words
    assert "-h, --help" in words
