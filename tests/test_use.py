"""Every way to use a trained model from the command line: sample, score, predict, info."""

import json

import numpy as np
import pytest

from charrnn.training.checkpoint import load_model

TINY = ["--layers", "1", "--hidden", "24", "--batch-size", "4", "--seq-len", "16", "--max-steps", "40"]


@pytest.fixture
def trained(run_cli, small_corpus, tmp_path):
    code, _, err = run_cli("train", small_corpus, *TINY, "--val-frac", "0.2")
    assert code == 0, err
    return tmp_path / "runs" / "small"


def test_score_of_the_validation_text_equals_the_validation_loss(run_cli, trained, small_corpus, tmp_path):
    text = small_corpus.read_text()
    val = tmp_path / "val.txt"
    val.write_text(text[len(text) - int(len(text) * 0.2) :])
    code, out, err = run_cli("score", val, "--json")
    assert code == 0, err
    [record] = json.loads(out)
    meta = load_model(trained / "last.npz")[3]
    assert record["nats_per_char"] == pytest.approx(meta["val_loss"], rel=1e-9)
    assert record["chars"] == int(len(text) * 0.2) - 1


def test_per_line_scores_sum_to_the_total_and_sort(run_cli, trained, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("MILLER:\nThe pond is cold tonight.\nddddd ooooo tt\nHERON:\n")
    code, out, _ = run_cli("score", lines, "--per-line", "--sort", "asc", "--json")
    assert code == 0
    *rows, total = json.loads(out)
    assert {r["name"] for r in rows} == {"MILLER:", "The pond is cold tonight.", "ddddd ooooo tt", "HERON:"}
    assert total["total_nats"] == pytest.approx(sum(r["total_nats"] for r in rows))
    assert total["chars"] == sum(r["chars"] for r in rows) == sum(len(r["name"]) + 1 for r in rows)
    assert [r["nats_per_char"] for r in rows] == sorted(r["nats_per_char"] for r in rows)
    code, out, _ = run_cli("score", lines, "--per-line", "--sort", "desc", "--json")
    assert [r["name"] for r in json.loads(out)[:-1]] == [r["name"] for r in rows][::-1]


def test_unknown_characters_are_refused_or_skipped_and_counted_never_silently_dropped(run_cli, trained, tmp_path):
    odd = tmp_path / "odd.txt"
    odd.write_text("The pond € is cold €€ tonight.")
    code, _, err = run_cli("score", odd)
    assert code == 2 and f"{odd} has 1 character the model never saw in training, 3 times in all: '€' (3)" in err
    code, _, err = run_cli("score", odd, "--unknown", "skip")
    assert code == 0 and "'€' (3); left out (--unknown skip)" in err


def test_predict_shows_the_likeliest_next_characters(run_cli, trained):
    code, out, err = run_cli("predict", "The pond is col", "--top-k", "3", "--json")
    assert code == 0, err
    top = json.loads(out)
    assert len(top) == 3 and top[0]["p"] >= top[1]["p"] >= top[2]["p"]
    code, out, _ = run_cli("predict", "MILLER:", "--top-k", "5")
    assert code == 0 and "probability" in out and "█" in out


def test_info_describes_the_checkpoint(run_cli, trained):
    code, out, _ = run_cli("info", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["cell"] == "lstm" and info["hidden"] == 24 and info["step"] == 40
    assert info["parameters"] == load_model(trained / "last.npz")[0].num_params
    assert info["val_loss"] is not None and "\n" in info["vocab"]
    code, out, _ = run_cli("info", trained / "last.npz")
    assert code == 0 and "lstm 1×24" in out


def test_a_model_with_an_embedding_is_used_as_any_other(run_cli, small_corpus, tmp_path):
    """--embed: the first layer reads E[x_t] @ W_x; sampling, step by step, must read the same table as training."""
    code, _, err = run_cli("train", small_corpus, *TINY, "--embed", "6", "--run-dir", "embedded")
    assert code == 0, err
    model = load_model(tmp_path / "embedded" / "last.npz")[0]
    assert model.params["l0.E"].shape == (model.vocab_size, 6) and model.params["l0.W_x"].shape == (6, 4 * 24)
    code, out, _ = run_cli("info", "--run-dir", "embedded")
    assert code == 0 and "lstm 1×24, 6-wide character embedding" in out
    code, out, _ = run_cli("sample", "--run-dir", "embedded", "--len", "200", "--seed", "1")
    assert code == 0 and len(out) >= 200
    code, out, _ = run_cli("score", small_corpus, "--run-dir", "embedded", "--json")
    assert code == 0 and json.loads(out)[0]["nats_per_char"] < np.log(model.vocab_size) - 0.3  # below uniform


def test_sample_options_from_the_command_line(run_cli, trained, tmp_path):
    prime = tmp_path / "prime.txt"
    prime.write_text("MILLER:\n")
    code, out, _ = run_cli("sample", "--prime-file", prime, "--len", "300", "--stop", ".", "--seed", "1")
    assert code == 0 and out.startswith("MILLER:\n") and out.endswith(".\n") and out.count(".") == 1
    code, out, _ = run_cli("sample", "--num-samples", "4", "--len", "50", "--seed", "2", "--top-k", "3")
    assert code == 0 and out.count("─── sample ") == 4
    assert run_cli("sample", "--num-samples", "4", "--len", "50", "--seed", "2", "--top-k", "3")[1] == out
    code, _, err = run_cli("sample", "--len", "20", "--out", "out.txt", "--temperature", "0")
    written = (tmp_path / "out.txt").read_text()
    assert code == 0 and written.endswith("\n") and len(written) == 20 + (written[19] != "\n")  # a line ends it
    code, out, err = run_cli("sample", "--prime", "€ MILLER", "--len", "5", "--unknown", "skip")
    assert code == 0 and out.startswith(" MILLER")
    code, _, err = run_cli("sample", "--top-p", "1.5")
    assert code == 2 and "--top-p must be in (0, 1]" in err
