"""The Python API: the same results as the command line, the same errors, and nothing public beyond `__all__`."""

import inspect
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import charrnn
from charrnn.training.checkpoint import load_model

TINY = {"layers": 1, "hidden": 24, "batch_size": 4, "seq_len": 16, "eval_every": 10}
TINY_FLAGS = ["--layers", "1", "--hidden", "24", "--batch-size", "4", "--seq-len", "16", "--eval-every", "10"]


@pytest.fixture
def trained(run_cli, small_corpus, tmp_path):
    code, _, err = run_cli("train", small_corpus, *TINY_FLAGS, "--max-steps", "40")
    assert code == 0, err
    return tmp_path / "runs" / "small"


def test_the_public_names_are_exactly_all():
    models = ["Classifier", "LanguageModel", "Model", "Tagger", "Translator"]  # one class per task, and their base
    assert sorted(charrnn.__all__) == sorted(
        [
            "CharRNNError",
            "Config",
            *models,
            "Run",
            "Score",
            "TrainEvent",
            "__version__",
            "load",
            "runs",
            "train",
            "export",
            "check_export",
        ]
    )
    public = {name for name in dir(charrnn) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(charrnn, name))}
    assert public - modules == set(charrnn.__all__) - {"__version__"}


@pytest.mark.parametrize(
    "name",
    [
        "Config",
        "Model",
        "LanguageModel",
        "Classifier",
        "Tagger",
        "Translator",
        "Run",
        "Score",
        "TrainEvent",
        "CharRNNError",
        "load",
        "runs",
        "train",
    ],
)
def test_every_public_name_has_a_docstring_with_an_example_and_type_hints(name):
    obj = getattr(charrnn, name)
    assert ">>>" in inspect.getdoc(obj), f"{name}'s docstring has no example"
    functions = (
        [obj]
        if inspect.isfunction(obj)
        else [f for n, f in vars(obj).items() if inspect.isfunction(f) and not n.startswith("_")]
    )
    for f in functions:
        hints = inspect.signature(f)
        assert hints.return_annotation is not inspect.Signature.empty, f"{name}.{f.__name__} has no return type"
        for p in hints.parameters.values():
            if p.name not in ("self", "cls"):
                assert p.annotation is not inspect.Parameter.empty, f"{name}.{f.__name__}({p.name}) has no type"
    for method in [m for m, f in vars(obj).items() if inspect.isfunction(f) and not m.startswith("_")]:
        assert inspect.getdoc(getattr(obj, method)), f"{name}.{method} has no docstring"


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ({"seed": 5}, ["--seed", "5"]),
        (
            {"prime": "MILLER:", "temperature": 0.7, "top_k": 5, "seed": 1},
            ["--prime", "MILLER:", "--temperature", "0.7", "--top-k", "5", "--seed", "1"],
        ),
        ({"top_p": 0.9, "stop": ".", "seed": 2}, ["--top-p", "0.9", "--stop", ".", "--seed", "2"]),
    ],
)
def test_sample_gives_what_the_command_line_prints(run_cli, trained, options, flags):
    def ended(text: str) -> str:  # the command line ends the line a sample leaves open
        return text if text.endswith("\n") else text + "\n"

    model = charrnn.load(trained)
    code, out, _ = run_cli("sample", "--len", "120", *flags)
    assert code == 0
    assert ended(model.sample(120, **options)) == out
    assert ended(options.get("prime", "") + "".join(model.generate(120, **options))) == out
    three = model.sample(60, num_samples=3, **options)
    code, out, _ = run_cli("sample", "--len", "60", "--num-samples", "3", *flags)
    assert out == "".join(f"─── sample {i} of 3 ───\n{ended(text)}" for i, text in enumerate(three, 1))


def test_score_predict_and_info_agree_with_the_command_line(run_cli, trained, tmp_path):
    model = charrnn.load(trained / "last.npz")
    lines = ["MILLER:", "The pond is cold tonight.", "zzzz"]
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n")
    out = run_cli("score", path, "--json", "--unknown", "skip")[1]  # the corpus has no z
    nats = model.score(path.read_text(), unknown="skip")
    assert nats == pytest.approx(json.loads(out)[0]["nats_per_char"], rel=1e-12)
    out = run_cli("score", path, "--per-line", "--json", "--unknown", "skip")[1]
    per_line = model.score_lines(lines, unknown="skip")
    assert per_line == pytest.approx([r["nats_per_char"] for r in json.loads(out)[:-1]], rel=1e-12)
    assert per_line[2] > per_line[1]  # gibberish is less likely than prose
    out = run_cli("predict", "The pond is col", "--top-k", "4", "--json")[1]
    top = model.predict("The pond is col", top_k=4)
    assert [(r["char"], r["p"]) for r in json.loads(out)] == top
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True) and sum(p for _, p in top) <= 1
    out = run_cli("info", "--json")[1]
    assert model.info == json.loads(out) | {"checkpoint": str(trained / "last.npz")}
    assert model.info["step"] == 40 and model.info["hidden"] == 24


def test_train_reports_events_and_returns_the_run(small_corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    events = []
    run = charrnn.train(small_corpus, max_steps=20, callback=events.append, **TINY)
    assert run.run_dir.resolve() == tmp_path / "runs" / "small"
    assert run.steps == 20 and not run.interrupted and run.reason.startswith("reached step 20")
    assert run.val_loss is not None and run.best_val_loss <= run.val_loss
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("step") == 20
    assert [e.step for e in events if e.kind == "eval"] == [10, 20]
    assert [e.val_loss for e in events if e.kind == "eval"][-1] == run.val_loss
    assert run.load().info["step"] == 20
    config = charrnn.Config.from_yaml(tmp_path / "runs" / "small" / "config.yaml")
    assert config.hidden == 24 and config.max_steps == 20


def test_train_then_resume_is_bit_identical_to_the_command_lines_resume(run_cli, small_corpus, tmp_path):
    flags = [*TINY_FLAGS, "--dropout", "0.2", "--lr-schedule", "constant"]
    assert run_cli("train", small_corpus, *flags, "--max-steps", "8", "--run-dir", "cli")[0] == 0
    assert run_cli("train", "--resume", "cli", "--max-steps", "20")[0] == 0
    options = TINY | {"dropout": 0.2, "lr_schedule": "constant"}
    charrnn.train(small_corpus, max_steps=8, run_dir="api", **options)
    run = charrnn.train("api", resume=True, max_steps=20)
    assert run.steps == 20
    cli, _, _, _, cli_arrays = load_model(tmp_path / "cli" / "last.npz")
    api, _, _, _, api_arrays = load_model(tmp_path / "api" / "last.npz")
    np.testing.assert_array_equal(api.flat_params, cli.flat_params)
    for name in cli_arrays:
        np.testing.assert_array_equal(api_arrays[name], cli_arrays[name])


def test_train_takes_a_yaml_file_or_a_config(run_cli, small_corpus, tmp_path):
    (tmp_path / "run.yaml").write_text(f"corpus: {small_corpus}\nlayers: 1\nhidden: 8\nbatch_size: 4\nseq_len: 8\n")
    run = charrnn.train(tmp_path / "run.yaml", max_steps=3, run_dir="from-yaml")
    assert run.load().config.hidden == 8 and run.steps == 3
    config = charrnn.Config(corpus=[str(small_corpus)], hidden=12, layers=1, batch_size=4, seq_len=8, max_steps=2)
    run = charrnn.train(config, run_dir="from-config", hidden=10)
    assert run.load().config.hidden == 10 and run.steps == 2


@pytest.mark.parametrize(
    ("call", "flags"),
    [
        (lambda c: charrnn.train(c, seq_len=0), ["--seq-len", "0"]),
        (lambda c: charrnn.train(c, cell="lsmt"), ["--cell", "lsmt"]),
        (lambda c: charrnn.train(c, max_time="ten minutes"), ["--max-time", "ten minutes"]),
        (lambda c: charrnn.train(c, min_lr=1.0, lr_schedule="cosine"), ["--min-lr", "1", "--lr-schedule", "cosine"]),
        (lambda c: charrnn.train(str(c) + ".missing"), ["MISSING"]),
        (lambda c: charrnn.train(c, resume=True), ["--resume"]),
    ],
)
def test_errors_are_charrnnerrors_with_the_command_lines_message(run_cli, small_corpus, call, flags):
    code, _, err = run_cli(
        "train",
        *(
            ["--resume", small_corpus]
            if flags == ["--resume"]
            else [str(small_corpus) + ".missing"]
            if flags == ["MISSING"]
            else [small_corpus, *flags]
        ),
    )
    assert code == 2
    with pytest.raises(charrnn.CharRNNError) as raised:
        call(small_corpus)
    assert f"charrnn: error: {raised.value}" == err.strip()


def test_load_and_config_errors_are_charrnnerrors(run_cli, tmp_path):
    code, _, err = run_cli("sample", "--checkpoint", "nope.npz")
    with pytest.raises(charrnn.CharRNNError) as raised:
        charrnn.load("nope.npz")
    assert code == 2 and err.strip() == f"charrnn: error: {raised.value}"
    with pytest.raises(charrnn.CharRNNError, match="config key 'hidden' must be >= 1"):
        charrnn.Config(hidden=0)
    with pytest.raises(charrnn.CharRNNError, match="unknown config key 'hiden'; did you mean 'hidden'"):
        charrnn.Config().replace(hiden=3)
    with pytest.raises(charrnn.CharRNNError, match=r"--dropout must be < 1\.0"):
        charrnn.Config().replace(dropout=1.5)
    (tmp_path / "bad.yaml").write_text("hidden: [1\n")
    with pytest.raises(charrnn.CharRNNError, match="not valid YAML at line 2"):
        charrnn.Config.from_yaml(tmp_path / "bad.yaml")
    assert charrnn.Config(max_time="10m").max_time == 600.0


def test_sampling_methods_check_their_options(trained):
    model = charrnn.load(trained)
    with pytest.raises(charrnn.CharRNNError, match="1 character the model never saw"):
        model.sample(10, prime="€")
    assert model.sample(10, prime="a€", unknown="skip", seed=1).startswith("a")
    with pytest.raises(charrnn.CharRNNError, match="--top-p must be in"):
        model.sample(10, top_p=0)


def test_ctrl_c_stops_a_training_call_which_saves_and_returns(small_corpus, tmp_path):
    script = (
        "import sys, charrnn\n"
        "run = charrnn.train(sys.argv[1], layers=1, hidden=64, batch_size=8, seq_len=32, max_steps=100000,\n"
        "                    callback=lambda e: e.kind == 'step' and e.step == 5 and print('training', flush=True))\n"
        "print(run.interrupted, run.steps, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(charrnn.__file__).rsplit("/charrnn/", 1)[0]}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(small_corpus)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "training"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    interrupted, steps = out.split()
    assert interrupted == "True"
    assert load_model(tmp_path / "runs" / "small" / "last.npz")[3]["step"] == int(steps)


@pytest.fixture
def supervised(tmp_path):
    """A classifier, a tagger and an encoder-decoder, two steps each."""
    words = ["".join(w) for w in itertools.product("abcd", repeat=3)]
    files = {
        "classify": "".join(f"{w}\t{w[0]}\n" for w in words),
        "tag": "".join(f"{w}\t{w.upper()}\n" for w in words),
        "seq2seq": "".join(f"{w}\t{w[::-1]}\n" for w in words),
    }
    models = {}
    for task, text in files.items():
        (tmp_path / f"{task}.tsv").write_text(text, encoding="utf-8")
        sizes = {"layers": 1, "hidden": 8, "batch_size": 4, "max_steps": 2}
        run = charrnn.train(tmp_path / f"{task}.tsv", task=task, run_dir=str(tmp_path / task), **sizes)
        models[task] = charrnn.load(run.run_dir)
    return models


def test_one_string_is_one_input_for_every_task(supervised):
    assert len(supervised["classify"].classify("abc")) == 1
    assert supervised["classify"].classify("abc") == supervised["classify"].classify(["abc"])
    assert supervised["tag"].tag("abc") == supervised["tag"].tag(["abc"]) and len(supervised["tag"].tag("abc")) == 1
    assert supervised["seq2seq"].translate("abc") == supervised["seq2seq"].translate(["abc"])
    assert len(supervised["seq2seq"].translate("abc")) == 1


@pytest.mark.parametrize(
    ("task", "call", "message"),
    [
        ("classify", lambda m: m.classify([3]), r"^texts must be a string or a list of strings \(got a list holding"),
        ("classify", lambda m: m.classify(["a", None]), r"\(got a list holding NoneType\)\.$"),
        ("classify", lambda m: m.classify(None), r"^texts must be a string or a list of strings \(got NoneType\)\.$"),
        ("classify", lambda m: m.classify("abc", top_k=1.5), r"^--top-k must be a whole number \(got 1\.5\)\.$"),
        ("classify", lambda m: m.classify("abc", top_k=0), r"^--top-k must be >= 1 \(got 0\)\.$"),
        ("tag", lambda m: m.tag(b"abc"), r"^texts must be a string or a list of strings \(got bytes\)\.$"),
        ("seq2seq", lambda m: m.translate("abc", beam=2.5), r"^--beam must be a whole number \(got 2\.5\)\.$"),
        ("seq2seq", lambda m: m.translate("abc", length_penalty=float("nan")), r"^--length-penalty must be a finite"),
        ("seq2seq", lambda m: m.translate("abc", n_best=0), r"^--n-best must be >= 1 \(got 0\)\.$"),
        ("seq2seq", lambda m: m.translate("abc", length_penalty=0.6), r"^--length-penalty ranks the outputs of a beam"),
    ],
)
def test_bad_arguments_are_one_sentence_charrnnerrors(supervised, task, call, message):
    with pytest.raises(charrnn.CharRNNError, match=message):
        call(supervised[task])


def test_sampling_refuses_a_temperature_that_is_not_a_number(trained, run_cli):
    model = charrnn.load(trained)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(charrnn.CharRNNError, match=r"^--temperature must be a finite number >= 0"):
            model.sample(10, temperature=bad)
    code, _, err = run_cli("sample", "--run-dir", trained, "--temperature", "nan")
    assert code == 2 and "--temperature" in err and "Traceback" not in err


def test_eval_of_a_language_model_refuses_or_skips_unknown_characters_as_score_does(trained, tmp_path):
    odd = tmp_path / "odd.txt"
    odd.write_text("The pond € is cold.", encoding="utf-8")
    model = charrnn.load(trained)
    with pytest.raises(charrnn.CharRNNError, match=rf"^{odd} has 1 character the model never saw .*--unknown skip"):
        model.evaluate(odd)
    assert model.evaluate(odd, unknown="skip")["unknown"] == {"€": 1}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.sample("x"), r"^--len must be a whole number \(got 'x'\)\.$"),
        (lambda m: m.sample(-1), r"^--len must be >= 0 \(got -1\)\.$"),
        (lambda m: m.sample(10, seed="a"), r"^--seed must be a whole number \(got 'a'\)\.$"),
        (lambda m: list(m.generate(-2)), r"^--len must be >= 0"),
        (lambda m: m.sample(10, num_samples=0), r"^--num-samples must be >= 1"),
        (lambda m: m.predict(None), r"^the text must be a string \(got NoneType\)\.$"),
        (lambda m: m.score(None), r"^the text to score must be a string \(got NoneType\)\.$"),
        (lambda m: m.sample(10, prime=5), r"^the prime must be a string \(got int\)\.$"),
    ],
)
def test_a_language_models_bad_arguments_are_one_sentence_charrnnerrors(trained, call, message):
    with pytest.raises(charrnn.CharRNNError, match=message):
        call(charrnn.load(trained))


def test_load_and_train_refuse_what_is_not_a_path():
    with pytest.raises(charrnn.CharRNNError, match=r"^a model to load is a run folder or a checkpoint file"):
        charrnn.load(123)
    with pytest.raises(charrnn.CharRNNError, match=r"^train's first argument is a text file, a list of them"):
        charrnn.train(5)
