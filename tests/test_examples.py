"""The scripts in examples/ run an exported model with NumPy and ONNX Runtime alone, and print what charrnn prints:
the same sample for the same seed and temperature, the same labels, tags and translations (greedy and beam)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = ["--hidden", "16", "--layers", "2", "--batch-size", "8", "--eval-every", "0", "--dropout", "0"]
WORDS = ["pond", "walden", "ice", "morning"]


def example(script: str, *args: str) -> str:
    """Run an example with a Python that has no charrnn on its path (only what the script imports)."""
    done = subprocess.run(
        [sys.executable, "-I", str(EXAMPLES / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=EXAMPLES,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def words(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    vocab = sorted(set("".join(WORDS)))
    made = ["".join(rng.choice(vocab, rng.integers(2, 8))) for _ in range(300)] + WORDS
    (tmp_path / "text.txt").write_text(" ".join(made) + "\n", encoding="utf-8")
    (tmp_path / "labels.tsv").write_text("".join(f"{w}\t{'ab'[len(w) % 2]}\n" for w in made), encoding="utf-8")
    (tmp_path / "tags.tsv").write_text("".join(f"{w}\t{w.upper()}\n" for w in made), encoding="utf-8")
    (tmp_path / "pairs.tsv").write_text("".join(f"{w}\t{' '.join(w[::-1])}\n" for w in made), encoding="utf-8")
    return tmp_path


def test_sample_writes_what_charrnn_sample_writes(run_cli, words):
    assert run_cli("train", words / "text.txt", *SMALL, "--seq-len", "16", "--max-steps", "30")[0] == 0
    assert run_cli("export", "--out", "lm.onnx")[0] == 0
    for options in (["--prime", "pon", "--temperature", "0.8", "--seed", "3"], ["--seed", "1"], ["--temperature", "0"]):
        expected = run_cli("sample", "--len", "120", *options)[1]
        assert example("sample.py", words / "lm.onnx", "--len", "120", *options) == expected


def test_classify_and_tag_give_charrnns_outputs(run_cli, words):
    assert (
        run_cli("train", words / "labels.tsv", "--task", "classify", "--bidirectional", *SMALL, "--max-steps", "20")[0]
        == 0
    )
    assert run_cli("export", "--out", "c.onnx")[0] == 0
    printed = [
        line.split("\t") for line in example("classify.py", words / "c.onnx", *WORDS, "--top-k", "2").splitlines()
    ]
    expected = json.loads(run_cli("classify", *WORDS, "--top-k", "2", "--json")[1])
    for row, record in zip(printed, expected, strict=True):
        assert row[0] == record["input"]
        for shown, label in zip(row[1:], record["labels"], strict=True):
            name, p = shown.split(" ")
            assert name == label["label"] and abs(float(p) - label["p"]) < 1e-4
    assert run_cli("train", words / "tags.tsv", "--task", "tag", "--run-dir", "t", *SMALL, "--max-steps", "20")[0] == 0
    assert run_cli("export", "--run-dir", "t", "--out", "t.onnx")[0] == 0
    assert example("tag.py", words / "t.onnx", *WORDS) == run_cli("tag", "--run-dir", "t", *WORDS)[1]


@pytest.mark.parametrize("keys", [["--attention", "additive", "--input-feeding"], ["--attention", "none"]])
def test_translate_decodes_as_charrnn_does(run_cli, words, keys):
    train = ["train", words / "pairs.tsv", "--task", "seq2seq", "--target-units", "words", "--bidirectional", *keys]
    assert run_cli(*train, *SMALL, "--max-steps", "40")[0] == 0
    assert run_cli("export", "--out", "s.onnx")[0] == 0
    assert (words / "s.decoder.onnx").is_file()
    for beam in ("1", "4"):
        expected = run_cli("translate", *WORDS, "--beam", beam)[1]
        assert example("translate.py", words / "s.onnx", *WORDS, "--beam", beam) == expected


@pytest.mark.parametrize("script", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_an_example_imports_nothing_but_numpy_onnxruntime_and_the_standard_library(script):
    names = set()
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module.split(".")[0])
    assert names - set(sys.stdlib_module_names) <= {"numpy", "onnxruntime"}, names


def test_an_example_given_another_kind_of_model_says_so(run_cli, words):
    assert run_cli("train", words / "text.txt", *SMALL, "--seq-len", "16", "--max-steps", "2")[0] == 0
    assert run_cli("export", "--out", "lm.onnx")[0] == 0
    for script in ("classify.py", "tag.py", "translate.py"):
        done = subprocess.run(
            [sys.executable, "-I", str(EXAMPLES / script), str(words / "lm.onnx"), "pond"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1 and "lm.onnx is not a" in done.stderr and "(its task: lm)" in done.stderr
        assert "Traceback" not in done.stderr
