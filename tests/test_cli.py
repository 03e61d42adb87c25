"""The command line end to end: train, sample, config runs, and the errors a user sees."""

import json
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from charrnn import __version__
from charrnn.training.config import FIELDS, Config, choices, flag, metavar, written

TINY = ["--cell", "lstm", "--layers", "1", "--hidden", "24", "--batch-size", "4", "--seq-len", "16"]


def test_train_then_sample(run_cli, small_corpus, tmp_path):
    code, out, err = run_cli("train", small_corpus, *TINY, "--max-steps", "30", "--eval-every", "10")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("step ")]
    assert [line.split(" · ")[0] for line in lines] == ["step 10", "step 20", "step 30"]
    assert "val_loss=" in lines[-1] and "bits/char" in lines[-1] and "saved runs/small/last.npz" in lines[-1]
    assert (tmp_path / "runs" / "small" / "last.npz").is_file()
    saved = yaml.safe_load((tmp_path / "runs" / "small" / "config.yaml").read_text())
    assert saved["hidden"] == 24 and saved["corpus"] == [str(small_corpus)]

    code, out, err = run_cli("sample", "--len", "500", "--seed", "3")
    assert code == 0, err
    assert out.endswith("\n") and len(out) == 500 + (out[499] != "\n")  # 500 drawn, then the line ended
    code, again, _ = run_cli("sample", "--len", "500", "--seed", "3")
    assert again == out

    code, out, _ = run_cli("sample", "--len", "40", "--prime", "MILLER:\n", "--seed", "3")
    drawn = len("MILLER:\n") + 40
    assert code == 0 and out.startswith("MILLER:\n") and len(out) == drawn + (out[drawn - 1] != "\n")


def test_config_file_run_and_flags_override_it(run_cli, small_corpus, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"corpus: {small_corpus}\ncell: gru\nlayers: 1\nhidden: 8\nbatch_size: 4\nseq_len: 16\n"
        "max_steps: 3\nrun_dir: runs/cfg\n"
    )
    code, _, err = run_cli("train", "--config", config, "--hidden", "12")
    assert code == 0, err
    saved = yaml.safe_load((tmp_path / "runs" / "cfg" / "config.yaml").read_text())
    assert saved["cell"] == "gru" and saved["hidden"] == 12


def test_an_existing_run_is_not_overwritten_unasked(run_cli, small_corpus, tmp_path):
    args = ["train", small_corpus, *TINY, "--max-steps", "2"]
    assert run_cli(*args)[0] == 0
    before = (tmp_path / "runs" / "small" / "last.npz").read_bytes()
    code, _, err = run_cli(*args)
    assert code == 2 and "--overwrite" in err and "Traceback" not in err
    assert (tmp_path / "runs" / "small" / "last.npz").read_bytes() == before
    assert run_cli(*args, "--keep", "1", "--max-steps", "4", "--save-every", "2", "--overwrite")[0] == 0
    assert (tmp_path / "runs" / "small" / "step-0000004.npz").exists()
    assert run_cli(*args, "--overwrite")[0] == 0  # the old run's numbered checkpoints and metrics go
    assert not list((tmp_path / "runs" / "small").glob("step-*.npz"))
    metrics = (tmp_path / "runs" / "small" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in metrics] == [2]


def test_bad_config_key_is_one_clear_sentence(run_cli, small_corpus, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("hiden: 64\n")
    code, out, err = run_cli("train", small_corpus, "--config", config)
    assert code == 2
    assert "unknown key 'hiden'; did you mean 'hidden'?" in err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "runs").exists()


def test_missing_corpus_file(run_cli, tmp_path):
    code, _, err = run_cli("train", "nope.txt")
    assert code == 2
    assert "corpus file nope.txt does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_bad_flag_value(run_cli, small_corpus):
    code, _, err = run_cli("train", small_corpus, "--hidden", "0")
    assert code == 2 and "--hidden must be >= 1 (got 0)" in err


def test_sample_without_any_run(run_cli):
    code, out, err = run_cli("sample")
    assert code == 2 and "no checkpoint found" in err and out == ""


def test_sample_with_unknown_prime_characters(run_cli, small_corpus):
    assert run_cli("train", small_corpus, *TINY, "--max-steps", "2")[0] == 0
    code, out, err = run_cli("sample", "--prime", "€uro", "--len", "5")
    assert code == 2 and "'€'" in err and out == ""


def test_debug_shows_the_traceback(run_cli):
    code, _, err = run_cli("--debug", "train", "nope.txt")
    assert code == 2 and "Traceback" in err


def test_version_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "charrnn", "--version"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == f"charrnn {__version__}"


def test_project_corpus_is_there():
    assert (REPO / "data" / "pond.txt").stat().st_size > 150_000


def config_row(key: str) -> str:
    """The row of docs/configuration.md's table for a config key, made from its definition in config.py."""
    f = FIELDS[key]
    allowed = f": {', '.join(f'`{c}`' for c in choices(key))}" if choices(key) else ""
    if key == "corpus":
        where = "positional `CORPUS...`"
    elif f.type is bool:
        where = f"`{flag(key)}` / `--no-{flag(key)[2:]}`"
    else:
        where = f"`{flag(key)}`" if choices(key) else f"`{flag(key)} {metavar(key)}`"  # a table cell holds no |
    shown = f.metadata.get("shown") or written(key, Config().to_dict()[key])
    return f"| `{key}` | {where} | `{shown}` | {f.metadata['help']}{allowed} |"


def test_every_config_key_is_a_flag_and_in_the_docs_table(run_cli):
    code, out, _ = run_cli("train", "--help")
    assert code == 0
    table = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for key in FIELDS:
        assert config_row(key) in table, config_row(key)
        if key != "corpus":
            assert flag(key) in out, key


def test_bench_reports_speed_and_memory_as_json(run_cli):
    code, out, err = run_cli(
        "bench",
        "--cell",
        "gru",
        "--layers",
        "1",
        "--hidden",
        "16",
        "--batch-size",
        "4",
        "--seq-len",
        "8",
        "--warmup",
        "1",
        "--steps",
        "3",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    for key in ("train_chars_per_sec", "sample_chars_per_sec", "gflops", "peak_rss_mb"):
        assert result[key] > 0
    assert result["forward_frac"] + result["backward_frac"] + result["update_frac"] == pytest.approx(1.0)


def test_json_output_is_strict_json_without_nan():
    """A value that is not a finite number is null in every JSON the command line writes (and in metrics.jsonl)."""
    from charrnn.training.run import json_safe

    record = {"loss": float("nan"), "rows": [1.0, float("inf"), {"x": -float("inf")}], "ok": 2}
    expected = {"loss": None, "rows": [1.0, None, {"x": None}], "ok": 2}
    assert json.loads(json.dumps(json_safe(record), allow_nan=False)) == expected
