"""classify and tag end to end through the CLI: learning, exact resume, evaluation, using the models, bad input,
and the checkpoints of the language models that came before them."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_tsv

import charrnn
from charrnn.data.examples import read_examples, split
from charrnn.training.checkpoint import load_model

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = ["--layers", "1", "--hidden", "16", "--batch-size", "16", "--eval-every", "20"]


@pytest.fixture
def first_letter(tmp_path) -> tuple[Path, Path]:
    """Long inputs whose label is their first character: only a model that carries it to the end gets it right."""
    rng = np.random.default_rng(0)

    def make(n):
        pairs = []
        for _ in range(n):
            label = rng.choice(["x", "y"])
            pairs.append((label + "".join(rng.choice(list("abcd"), 14)), {"x": "ex", "y": "why"}[label]))
        return pairs

    return write_tsv(tmp_path / "train.tsv", make(320)), write_tsv(tmp_path / "val.tsv", make(80))


@pytest.fixture
def shifted(tmp_path) -> tuple[Path, Path]:
    """Tag each character with the one after it (the last with '.'): it takes reading right to left."""
    rng = np.random.default_rng(1)

    def make(n):
        texts = ["".join(rng.choice(list("abcde"), rng.integers(3, 12))) for _ in range(n)]
        return [(t, t[1:] + ".") for t in texts]

    return write_tsv(tmp_path / "train.tsv", make(400)), write_tsv(tmp_path / "val.tsv", make(100))


def test_a_classifier_learns_a_label_that_depends_on_the_first_of_many_characters(run_cli, first_letter):
    train, val = first_letter
    code, out, err = run_cli(
        "train",
        train,
        "--task",
        "classify",
        "--val-file",
        val,
        *SMALL,
        "--cell",
        "gru",
        "--lr",
        "0.01",
        "--max-steps",
        "120",
        "--dropout",
        "0",
    )
    assert code == 0, err
    code, out, _ = run_cli("eval", val, "--json")
    result = json.loads(out)
    assert result["accuracy"] >= 0.95 and result["macro_f1"] >= 0.95, result
    assert result["confusion"][0][0] + result["confusion"][1][1] == round(result["accuracy"] * 80)
    code, out, _ = run_cli("classify", "xabcdabcdabcdab", "yabcdabcdabcdab", "--json", "--top-k", "2")
    records = json.loads(out)
    assert [r["labels"][0]["label"] for r in records] == ["ex", "why"]
    assert all(r["labels"][0]["p"] > 0.5 > r["labels"][1]["p"] for r in records)
    code, out, _ = run_cli("classify", "--file", val)
    assert code == 0 and "probability" in out
    code, out, _ = run_cli("eval", val)
    assert code == 0 and "accuracy" in out and "confusion" in out and "per label" in out


def test_only_a_bidirectional_tagger_learns_to_see_ahead(run_cli, shifted):
    train, val = shifted
    flags = ["--task", "tag", "--val-file", val, *SMALL, "--lr", "0.01", "--max-steps", "150", "--dropout", "0"]
    assert run_cli("train", train, *flags, "--bidirectional", "--run-dir", "both")[0] == 0
    assert run_cli("train", train, *flags, "--run-dir", "one")[0] == 0
    both = json.loads(run_cli("eval", val, "--run-dir", "both", "--json")[1])
    one = json.loads(run_cli("eval", val, "--run-dir", "one", "--json")[1])
    assert both["char_accuracy"] > 0.95 and both["exact_match"] > 0.7, both
    assert one["char_accuracy"] < 0.6, one  # it cannot know the next character before reading it
    code, out, _ = run_cli("tag", "abcde", "eddca", "--run-dir", "both")
    assert code == 0 and out.splitlines() == ["bcde.", "ddca."]
    code, out, _ = run_cli("tag", "abcde", "--run-dir", "both", "--json")
    assert json.loads(out) == [{"input": "abcde", "output": "bcde."}]


@pytest.mark.parametrize(("task", "data"), [("classify", "first_letter"), ("tag", "shifted")])
def test_resume_is_bit_identical_across_epochs(run_cli, task, data, request, tmp_path):
    train, val = request.getfixturevalue(data)
    flags = [
        "--task",
        task,
        "--val-file",
        val,
        *SMALL,
        "--dropout",
        "0.2",
        "--input-dropout",
        "0.1",
        "--label-smoothing",
        "0.1",
        "--ema",
        "0.9",
        "--lr-schedule",
        "constant",
        "--bidirectional",
        "--log-every",
        "1",
    ]
    assert run_cli("train", train, *flags, "--max-steps", "50", "--run-dir", "straight")[0] == 0  # 2.5 epochs
    assert run_cli("train", train, *flags, "--max-steps", "27", "--run-dir", "broken")[0] == 0
    code, _, err = run_cli("train", "--resume", "broken", "--max-steps", "50")
    assert code == 0, err
    straight, _, _, _, a = load_model(tmp_path / "straight" / "last.npz")
    resumed, _, _, meta, b = load_model(tmp_path / "broken" / "last.npz")
    assert meta["step"] == 50
    np.testing.assert_array_equal(resumed.flat_params, straight.flat_params)
    np.testing.assert_array_equal(a["optim/m"], b["optim/m"])
    lines = [(tmp_path / run / "metrics.jsonl").read_text().splitlines() for run in ("straight", "broken")]
    assert [json.loads(x)["train_loss"] for x in lines[0]] == [json.loads(x)["train_loss"] for x in lines[1]]


def test_validation_metrics_are_logged_and_shown(run_cli, first_letter, tmp_path):
    train, val = first_letter
    code, out, err = run_cli("train", train, "--task", "classify", "--val-file", val, *SMALL, "--max-steps", "20")
    assert code == 0, err
    assert "accuracy" in out and "macro_f1" in out and "examples/s" in out
    records = [json.loads(x) for x in (tmp_path / "runs" / "train" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["val_loss"] is not None]
    assert evals and all("accuracy" in r and "macro_f1" in r and r["examples_per_sec"] > 0 for r in evals)
    info = json.loads(run_cli("info", "--json")[1])
    assert info["task"] == "classify" and info["outputs"] == ["ex", "why"] and "accuracy" in info["metrics"]
    code, out, _ = run_cli("info")
    assert "labels" in out and "ex, why" in out
    shown = f"accuracy {100 * info['metrics']['accuracy']:.2f} %; macro_f1 {info['metrics']['macro_f1']:.4f}"
    assert shown in out  # as training prints them, in the task's format
    code, out, _ = run_cli("eval", val)
    assert f"{100 * info['metrics']['accuracy']:.2f} %" in out


def test_held_out_examples_are_stratified_by_label(tmp_path):
    pairs = [(f"w{i}", "a") for i in range(90)] + [(f"v{i}", "b") for i in range(10)]
    examples = read_examples(write_tsv(tmp_path / "x.tsv", pairs), "label")
    train, val = split(examples, 0.2, seed=5, stratify=True)
    assert sorted(val.targets) == ["a"] * 18 + ["b"] * 2 and len(train) == 80
    assert split(examples, 0.2, seed=5, stratify=True)[1].inputs == val.inputs  # seeded


def test_max_len_cuts_inputs_and_says_how_many(run_cli, first_letter):
    train, val = first_letter
    code, _, err = run_cli(
        "train", train, "--task", "classify", "--val-file", val, *SMALL, "--max-steps", "2", "--max-len", "10"
    )
    assert code == 0 and "400 inputs longer than --max-len 10 were cut to it" in err


def test_example_files_split_into_lines_at_line_feeds_only(tmp_path):
    """CRLF and LF end a line; the other characters Python's splitlines breaks at are part of an input."""
    text = "a\x85b\tx\r\nc\u2028d\ty\ne\x0cf\tx\n\x1cg\ty\n"
    path = tmp_path / "odd.tsv"
    path.write_bytes(text.encode("utf-8"))
    examples = read_examples(path, "label")
    assert examples.inputs == ["a\x85b", "c\u2028d", "e\x0cf", "\x1cg"]
    assert examples.targets == ["x", "y", "x", "y"]


def test_unseen_characters_in_training_get_advice_that_works(run_cli, tmp_path):
    """train has no --unknown; what it advises instead is tried here and works."""
    words = [f"{a}{b}{c}" for a in "abcd" for b in "abcd" for c in "abcd"]
    train = write_tsv(tmp_path / "train.tsv", [(w, w[0]) for w in words])
    val = write_tsv(tmp_path / "val.tsv", [("abz", "a"), ("bcd", "b")])
    code, _, err = run_cli("train", train, "--task", "classify", "--val-file", val, *SMALL, "--max-steps", "2")
    assert code == 2 and f"remove those lines from {val}, or add training examples that have them to {train}" in err
    assert "--unknown" not in err
    write_tsv(val, [("bcd", "b"), ("cab", "c")])  # the advice followed
    code, _, err = run_cli("train", train, "--task", "classify", "--val-file", val, *SMALL, "--max-steps", "2")
    assert code == 0, err
    held_out = write_tsv(tmp_path / "one.tsv", [(w, w[0]) for w in words] + [("dz", "d")])
    examples = read_examples(held_out, "classify")
    seed = next(s for s in range(100) if "dz" in split(examples, 0.5, s, stratify=True)[1].inputs)
    flags = ["--task", "classify", *SMALL, "--max-steps", "2", "--val-frac", "0.5", "--seed", str(seed)]
    code, _, err = run_cli("train", held_out, *flags, "--run-dir", "runs/h")
    assert code == 2 and "occur only in held-out examples" in err and "give a --val-file" in err
    assert "--unknown" not in err


def test_a_tagger_trained_and_evaluated_with_max_len_scores_what_it_read(run_cli, shifted):
    """--max-len cuts an input and its target alike; validation and eval score the cut pair, not the whole line."""
    train, val = shifted
    flags = ["--task", "tag", "--val-file", val, *SMALL, "--max-steps", "4", "--eval-every", "2", "--max-len", "3"]
    code, _, err = run_cli("train", train, *flags, "--run-dir", "runs/cut")
    assert code == 0, err
    code, out, err = run_cli("eval", val, "--run-dir", "runs/cut", "--json")
    assert code == 0, err
    whole = json.loads(out)
    cut = Path(val).with_name("cut.tsv")  # the same pairs, cut to 3 characters by hand
    pairs = [line.split("\t") for line in Path(val).read_text(encoding="utf-8").splitlines()]
    cut.write_text("".join(f"{a[:3]}\t{b[:3]}\n" for a, b in pairs), encoding="utf-8")
    code, out, err = run_cli("eval", str(cut), "--run-dir", "runs/cut", "--json")
    assert code == 0, err
    assert any(len(a) > 3 for a, _ in pairs) and json.loads(out)["char_accuracy"] == whole["char_accuracy"]


@pytest.mark.parametrize(
    ("lines", "flags", "message"),
    [
        ("ab\tx\ncd\n", [], "line 2 has no tab; each line must be input<TAB>label"),
        ("ab\tx\n\ty\n", [], "line 2 has an empty input"),
        ("ab\tx\ncd\t \n", [], "line 2 has an empty label"),
        ("ab\tx\tz\n", [], "line 1 has 2 tabs"),
        ("ab\tx\ncd\tx\n", ["--val-frac", "0.5"], "has a single label ('x'); a classifier needs"),
        ("abc\txy\n", ["--task", "tag"], "line 1: the output has 2 characters but the input 3"),
        (
            "ab\tx\n",
            ["--task", "clasify"],
            "--task must be one of lm, classify, tag, seq2seq (got 'clasify'; did you mean classify?)",
        ),
        ("ab\tx\n", ["--task", "lm", "--bidirectional"], "a language model cannot see the characters it predicts"),
        ("ab\tx\ncd\ty\n", ["--pool", "mean", "--task", "tag"], "--pool is for --task classify"),
        ("ab\tx\n", ["--task", "lm", "--label-smoothing", "0.1"], "--label-smoothing is for classify, tag"),
        ("ab\tx\ncd\ty\n", ["--seq-len", "10"], "--seq-len is for --task lm (this run's task is classify)"),
        ("ab\tx\ncd\ty\n", ["--reset-every", "3"], "--reset-every is for --task lm (this run's task is classify)"),
        ("ab\tx\ncd\ty\n", ["--newline", "lf"], "--newline is for --task lm"),
        ("ab\tx\ncd\ty\n", ["--max-vocab", "9"], "--max-vocab is for --task lm"),
    ],
)
def test_bad_examples_get_one_sentence_and_leave_nothing(run_cli, tmp_path, lines, flags, message):
    path = tmp_path / "bad.tsv"
    path.write_text(lines, encoding="utf-8")
    flags = flags if "--task" in flags else ["--task", "classify", *flags]
    code, _out, err = run_cli("train", path, *flags, "--max-steps", "1")
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_eval_names_what_the_model_never_saw(run_cli, first_letter, tmp_path):
    train, val = first_letter
    assert run_cli("train", train, "--task", "classify", "--val-file", val, *SMALL, "--max-steps", "2")[0] == 0
    odd = write_tsv(tmp_path / "odd.tsv", [("xabc", "ex"), ("yabz", "why"), ("xabc", "zed"), ("xaq", "zed")])
    code, _, err = run_cli("eval", odd)
    assert code == 2 and "has 1 label the model never saw in training, 2 times in all: 'zed' (2)" in err
    odd = write_tsv(tmp_path / "odd.tsv", [("xabc", "ex"), ("yabz", "why"), ("xzzq", "ex")])
    code, _, err = run_cli("eval", odd)
    assert code == 2 and "2 input characters the model never saw" in err and "'z' (3)" in err
    code, out, err = run_cli("eval", odd, "--unknown", "skip", "--json")
    assert code == 0, err
    assert json.loads(out)["examples"] == 3
    code, _, err = run_cli("classify", "xaz")
    assert code == 2 and "'z' (1)" in err


def test_language_model_commands_refuse_other_models(run_cli, first_letter):
    train, val = first_letter
    assert run_cli("train", train, "--task", "classify", "--val-file", val, *SMALL, "--max-steps", "2")[0] == 0
    for command in (["sample"], ["predict", "ab"], ["score", str(val)], ["tag", "ab"]):
        code, _, err = run_cli(*command)
        assert code == 2 and "holds a classifier (task classify)" in err, err


def test_eval_of_a_language_model_is_its_score(run_cli, small_corpus, tmp_path):
    assert run_cli("train", small_corpus, *SMALL, "--seq-len", "16", "--max-steps", "5")[0] == 0
    evaluated = json.loads(run_cli("eval", small_corpus, "--json")[1])
    scored = json.loads(run_cli("score", small_corpus, "--json")[1])[0]
    assert evaluated["nats_per_char"] == scored["nats_per_char"] and evaluated["chars"] == scored["chars"]


def test_a_checkpoint_of_the_first_format_still_loads_and_gives_the_same_text(run_cli):
    """tests/fixtures/lm-v1.npz was written by charrnn before tasks existed (format version 1)."""
    path = FIXTURES / "lm-v1.npz"
    model = charrnn.load(path)
    assert model.task == "lm" and model.info["format_version"] == 1
    expected = (FIXTURES / "lm-v1-sample-seed3.txt").read_text(encoding="utf-8")
    assert model.sample(200, prime="The ", seed=3) == expected
    first_1000 = (Path(__file__).parent.parent / "data" / "pond.txt").read_text(encoding="utf-8")[:1000]
    assert model.score(first_1000) == pytest.approx(3.286140055827563, rel=1e-9)
    code, out, _ = run_cli("sample", "--checkpoint", path, "--len", "200", "--prime", "The ", "--seed", "3")
    assert code == 0 and out == expected + "\n"  # the command line ends the line


def test_classifiers_vote_with_their_mean_probability(run_cli, first_letter, tmp_path):
    train, val = first_letter
    for seed in ("1", "2"):
        code, _, err = run_cli(
            "train",
            train,
            "--task",
            "classify",
            "--val-file",
            val,
            *SMALL,
            "--max-steps",
            "15",
            "--seed",
            seed,
            "--run-dir",
            f"runs/m{seed}",
        )
        assert code == 0, err
    texts = ["xabcdabcd", "yabcdabcdabcd", "xdd"]

    def probabilities(*flags: str) -> np.ndarray:
        code, out, err = run_cli("classify", *texts, "--top-k", "2", "--json", *flags)
        assert code == 0, err
        return np.array([[p["p"] for p in sorted(r["labels"], key=lambda p: p["label"])] for r in json.loads(out)])

    one, two = probabilities("--run-dir", "runs/m1"), probabilities("--run-dir", "runs/m2")
    assert np.abs(one - two).max() > 1e-3  # two different models
    both = probabilities("--run-dir", "runs/m1", "--checkpoint", "runs/m2/last.npz")
    np.testing.assert_allclose(both, (one + two) / 2, rtol=1e-9)
    np.testing.assert_allclose(probabilities("--run-dir", "runs/m1", "--run-dir", "runs/m1"), one, rtol=1e-9)

    code, out, err = run_cli("eval", val, "--run-dir", "runs/m1", "--run-dir", "runs/m2", "--json")
    assert code == 0, err
    ensemble = charrnn.load(tmp_path / "runs/m1", tmp_path / "runs/m2")
    examples = read_examples(val, "classify")
    voted = ensemble.classify(examples.inputs, top_k=2)
    picked = [top[0][0] for top in voted]
    assert json.loads(out)["accuracy"] == np.mean([p == t for p, t in zip(picked, examples.targets, strict=True)])
    code, out, _ = run_cli("eval", val, "--run-dir", "runs/m1", "--run-dir", "runs/m2")
    assert code == 0 and "runs/m1/last.npz+runs/m2/last.npz" in "".join(out.split())  # the caption names both


def test_only_models_of_one_file_and_kind_vote_together(run_cli, first_letter, small_corpus, tmp_path):
    train, val = first_letter
    assert (
        run_cli(
            "train", train, "--task", "classify", "--val-file", val, *SMALL, "--max-steps", "2", "--run-dir", "runs/a"
        )[0]
        == 0
    )
    examples = read_examples(train, "classify")
    other = write_tsv(
        tmp_path / "other.tsv", [(x, y.upper()) for x, y in zip(examples.inputs, examples.targets, strict=True)]
    )
    assert run_cli("train", other, "--task", "classify", *SMALL, "--max-steps", "2", "--run-dir", "runs/b")[0] == 0
    code, _, err = run_cli("classify", "xab", "--run-dir", "runs/a", "--run-dir", "runs/b")
    assert code == 2 and "runs/b/last.npz cannot vote with runs/a/last.npz: their labels differ" in err, err
    assert run_cli("train", small_corpus, *SMALL, "--seq-len", "16", "--max-steps", "2", "--run-dir", "runs/lm")[0] == 0
    code, _, err = run_cli("eval", small_corpus, "--run-dir", "runs/lm", "--run-dir", "runs/lm")
    assert code == 2 and "only classifiers and taggers vote together" in err and "Traceback" not in err, err
    upper = write_tsv(tmp_path / "upper.tsv", [(x, x.upper()) for x in ("abc", "bad", "cab", "dab") * 10])
    assert run_cli("train", upper, "--task", "tag", *SMALL, "--max-steps", "2", "--run-dir", "runs/t")[0] == 0
    code, out, err = run_cli("tag", "abc", "--run-dir", "runs/t", "--run-dir", "runs/t")
    assert code == 0 and out == run_cli("tag", "abc", "--run-dir", "runs/t")[1], err
    with pytest.raises(charrnn.CharRNNError, match="one model at a time"):
        charrnn.load(tmp_path / "runs/t", tmp_path / "runs/t").trace("abc")


def test_a_validation_file_counts_as_validation_with_val_frac_0(run_cli, first_letter, tmp_path):
    train, val = first_letter
    args = ["train", train, "--task", "classify", "--val-file", val, "--val-frac", "0", "--patience", "2", *SMALL]
    code, _, err = run_cli(*args, "--max-steps", "40")
    assert code == 0, err
    records = [json.loads(line) for line in (tmp_path / "runs" / "train" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("val_loss") is not None for r in records)
