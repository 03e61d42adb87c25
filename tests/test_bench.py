"""charrnn bench's side of the race with PyTorch: the reference's flags for a config, reading its output, the
medians and ratios, the thread count, and the errors of --torch."""

import json
import sys

import pytest

from charrnn.apps import bench
from charrnn.errors import CharRNNError
from charrnn.interfaces.api import build_config


def test_the_reference_gets_the_model_batch_and_steps_of_the_config():
    flags = {"task": "seq2seq", "cell": "gru", "layers": 3, "hidden": 96, "bidirectional": True, "embed": 16}
    flags |= {"attention": "additive", "input_feeding": True, "target_units": "words", "batch_size": 40}
    args = bench.torch_arguments(build_config(None, flags), None, 30, warmup=4, steps=20)
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    assert {"--task": "seq2seq", "--cell": "gru", "--layers": "3", "--hidden": "96", "--embed": "16"}.items() <= (
        pairs.items()
    )
    assert pairs["--batch"] == "40" and pairs["--steps"] == "24" and pairs["--warmup"] == "4"
    assert {"--bidirectional", "--input-feeding"} <= set(args) and "--corpus" not in args
    assert args[args.index("--attention") + 1] == "additive" and args[args.index("--target-units") + 1] == "words"
    lm = bench.torch_arguments(build_config(None, {"seq_len": 50}), "text.txt", 65, warmup=5, steps=10)
    assert lm[lm.index("--seq") + 1] == "50" and lm[lm.index("--corpus") + 1] == "text.txt"


def test_the_reference_output_is_read_and_its_failure_named(tmp_path, monkeypatch):
    script = tmp_path / "reference.py"
    script.write_text(
        "import sys\nprint('torch 2.x, 2 threads')\n"
        "print('RESULT task=tag cell=lstm steps=9 examples/s=412.5 chars/s=9000 ms/step=3.1')\n"
        "print('INFER read examples=2048 examples/s=1500.0')\n"
        "sys.exit(3 if '--fail' in sys.argv else 0)\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(bench, "TORCH_REFERENCE", script)
    found = bench.torch_bench(sys.executable, ["--task", "tag"], 1)
    assert found["RESULT"]["examples/s"] == 412.5 and found["INFER"]["examples/s"] == 1500.0
    with pytest.raises(CharRNNError, match="PyTorch reference failed"):
        bench.torch_bench(sys.executable, ["--fail"], 1)


def test_ratios_are_the_medians_of_the_pairs():
    ours = [{"train_examples_per_sec": v, "read_examples_per_sec": 2 * v} for v in (100.0, 300.0, 200.0)]
    theirs = [{"RESULT": {"examples/s": 100.0}, "INFER": {"examples/s": v}} for v in (100.0, 200.0, 800.0)]
    train, read = bench.ratios("classify", ours, theirs)
    assert (train["charrnn"], train["torch"], train["pairs"], train["ratio"]) == (200.0, 100.0, [1.0, 3.0, 2.0], 2.0)
    assert read["pairs"] == [2.0, 3.0, 0.5] and read["ratio"] == 2.0 and read["torch"] == 200.0


def test_bench_runs_at_the_thread_count_it_is_given(run_cli):
    before = bench.set_blas_threads(1)
    try:
        code, out, err = run_cli(
            "bench",
            "--task",
            "tag",
            "--hidden",
            "8",
            "--layers",
            "1",
            "--batch-size",
            "8",
            "--warmup",
            "1",
            "--steps",
            "2",
            "--threads",
            "2",
            "--json",
        )
        assert code == 0, err
        result = json.loads(out)
        assert result["train_examples_per_sec"] > 0
        assert result["blas"].startswith("OpenBLAS ") and result["blas"].endswith(", 2 threads")
        assert bench.set_blas_threads(before) == 2
    finally:
        bench.set_blas_threads(before)


def test_torch_without_pytorch_is_one_sentence(run_cli, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "torch" else object())
    code, out, err = run_cli("bench", "--steps", "1", "--torch")
    assert code == 2 and out == ""
    assert "--torch needs PyTorch" in err and "--torch-python" in err and "Traceback" not in err


def test_a_missing_reference_is_one_sentence(run_cli, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "TORCH_REFERENCE", tmp_path / "absent.py")
    code, _, err = run_cli(
        "bench",
        "--hidden",
        "8",
        "--layers",
        "1",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--torch",
        "--torch-python",
        sys.executable,
    )
    assert code == 2 and "a clone of charrnn's repository" in err
