"""charrnn export: every language model, classifier and tagger a user can train becomes an ONNX file that passes
onnx.checker and that ONNX Runtime runs to charrnn's own outputs (within 1e-5), padding and carried states included;
bad output paths and opsets are one sentence and write nothing."""

import itertools
import json

import numpy as np
import pytest

import charrnn
from charrnn.interfaces import api

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SMALL = {"hidden": 12, "layers": 2, "batch_size": 4, "max_steps": 2, "eval_every": 0, "dropout": 0.0}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export-data")
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdef"), rng.integers(2, 9))) for _ in range(60)]
    (folder / "text.txt").write_text("\n".join(words) * 4, encoding="utf-8")
    (folder / "labels.tsv").write_text("".join(f"{w}\t{'ae'[len(w) % 2]}\n" for w in words), encoding="utf-8")
    (folder / "tags.tsv").write_text("".join(f"{w}\t{w.upper()}\n" for w in words), encoding="utf-8")
    (folder / "pairs.tsv").write_text("".join(f"{w}\t{' '.join(w[::-1].upper())}\n" for w in words), encoding="utf-8")
    return folder


def trained(files, tmp_path, name: str, **keys) -> charrnn.Model:
    corpus = {"lm": "text.txt", "classify": "labels.tsv", "tag": "tags.tsv", "seq2seq": "pairs.tsv"}[keys["task"]]
    run = charrnn.train(files / corpus, run_dir=str(tmp_path / name), **(SMALL | keys))
    return charrnn.load(run.run_dir)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(("cell", "embed"), list(itertools.product(["rnn", "lstm", "gru"], [0, 5])))
def test_a_language_model_gives_charrnns_logits_and_carries_its_states(files, tmp_path, cell, embed):
    model = trained(files, tmp_path, "lm", task="lm", cell=cell, embed=embed, seq_len=8)
    [path] = api.export(model, tmp_path / "lm.onnx")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    run = session(path)
    parts = ["h0", "c0"] if cell == "lstm" else ["h0"]
    assert [i.name for i in run.get_inputs()] == ["ids", *parts]
    assert [o.name for o in run.get_outputs()] == ["logits", *("h" if p == "h0" else "c" for p in parts)]
    ids = np.random.default_rng(1).integers(0, len(model.vocab), (3, 40))
    zeros = {p: np.zeros((2, 3, 12), np.float32) for p in parts}
    whole = run.run(None, {"ids": ids, **zeros})
    logits, _ = model.network.forward(ids.T, model.network.initial_state(3))
    np.testing.assert_allclose(whole[0], logits.reshape(40, 3, -1).transpose(1, 0, 2), rtol=1e-5, atol=1e-5)
    first = run.run(None, {"ids": ids[:, :15], **zeros})
    second = run.run(None, {"ids": ids[:, 15:], **dict(zip(parts, first[1:], strict=True))})
    np.testing.assert_allclose(second[0], whole[0][:, 15:], rtol=1e-5, atol=1e-5)
    for carried, final in zip(second[1:], whole[1:], strict=True):
        np.testing.assert_allclose(carried, final, rtol=1e-5, atol=1e-6)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta["charrnn_task"] == "lm" and json.loads(meta["vocabulary"]) == model.vocab.chars
    assert meta["charrnn_version"] == charrnn.__version__
    assert api.check_export(model, path) < 1e-4


EXAMPLE_MODELS = [
    *(
        {"task": "classify", "cell": c, "bidirectional": b, "pool": p}
        for c in ("rnn", "lstm", "gru")
        for b in (False, True)
        for p in ("last", "mean", "max")
    ),
    *({"task": "tag", "cell": c, "bidirectional": b} for c in ("rnn", "lstm", "gru") for b in (False, True)),
    {"task": "classify", "cell": "lstm", "bidirectional": True, "pool": "mean", "embed": 4},
    {"task": "tag", "cell": "gru", "bidirectional": True, "embed": 4},
]


@pytest.mark.parametrize("keys", EXAMPLE_MODELS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_classifiers_and_taggers_give_charrnns_probabilities_with_padding(files, tmp_path, keys):
    model = trained(files, tmp_path, "m", **keys)
    [path] = api.export(model, tmp_path / "m.onnx")
    run = session(path)
    assert [i.name for i in run.get_inputs()] == ["ids", "lengths"]
    rng = np.random.default_rng(2)
    for lengths in ([1], [7, 3, 11, 5], [6, 6]):
        x = np.zeros((len(lengths), max(lengths)), np.int64)
        for b, n in enumerate(lengths):
            x[b, :n] = rng.integers(0, len(model.vocab), n)
        got = run.run(None, {"ids": x, "lengths": np.array(lengths, np.int64)})[0]
        for b, n in enumerate(lengths):  # each example alone, through charrnn's own verbs
            text = model.vocab.decode(x[b, :n])
            if keys["task"] == "classify":
                expected = dict(model.classify(text, top_k=len(model.outputs))[0])
                np.testing.assert_allclose(got[b], [expected[label] for label in model.outputs], atol=1e-5)
            else:
                logits = model.network.forward(x[b, :n, None], np.array([n])).astype(np.float64)
                probs = np.exp(logits - logits.max(axis=1, keepdims=True))
                np.testing.assert_allclose(got[b, :n], probs / probs.sum(axis=1, keepdims=True), atol=1e-5)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    key = "labels" if keys["task"] == "classify" else "output_vocabulary"
    assert json.loads(meta[key]) == model.outputs and meta["padding_id"] == "0"


SEQ2SEQ_MODELS = [
    *({"cell": c, "attention": a} for c in ("rnn", "lstm", "gru") for a in ("none", "dot", "general", "additive")),
    {"cell": "lstm", "bidirectional": True, "input_feeding": True, "embed": 4},
    {"cell": "gru", "bidirectional": True, "attention": "additive", "input_feeding": True, "target_units": "words"},
    {"cell": "rnn", "bidirectional": True, "attention": "general"},
]


@pytest.mark.parametrize("keys", SEQ2SEQ_MODELS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_an_encoder_decoder_exports_an_encoder_and_a_decoder_step_that_agree(files, tmp_path, keys):
    model = trained(files, tmp_path, "s", task="seq2seq", **keys)
    encoder, decoder = api.export(model, tmp_path / "s.onnx")
    assert (encoder.name, decoder.name) == ("s.onnx", "s.decoder.onnx")
    for path, part in ((encoder, "encoder"), (decoder, "decoder")):
        onnx.checker.check_model(onnx.load(path), full_check=True)
        meta = {p.key: p.value for p in onnx.load(path).metadata_props}
        assert meta["part"] == part and json.loads(meta["output_vocabulary"]) == model.outputs
        assert meta["target_units"] == model.config.target_units and meta["eos_id"] == "0"
    assert api.check_export(model, encoder) < 1e-5  # the encoder's outputs and five steps, three batches


def test_the_command_checks_the_file_and_refuses_to_overwrite_what_it_did_not_write(run_cli, files, tmp_path):
    assert run_cli("train", files / "labels.tsv", "--task", "classify", "--hidden", "8", "--max-steps", "2")[0] == 0
    code, out, err = run_cli("export", "--out", "m.onnx", "--check")
    assert code == 0, err
    assert "largest difference between ONNX Runtime and charrnn" in out and "(agrees)" in out
    assert "wrote m.onnx (" in err and "a classifier, opset 17" in err
    assert run_cli("export", "--out", "m.onnx")[0] == 0  # its own file is replaced
    foreign = tmp_path / "notes.onnx"
    foreign.write_text("mine", encoding="utf-8")
    code, _, err = run_cli("export", "--out", str(foreign))
    assert code == 2 and "exists and was not written by charrnn export" in err and "--force" in err
    assert foreign.read_text(encoding="utf-8") == "mine"
    assert run_cli("export", "--out", str(foreign), "--force")[0] == 0
    code, _, err = run_cli("export", "--out", str(tmp_path))
    assert code == 2 and "is a folder" in err
    code, _, err = run_cli("export", "--out", "old.onnx", "--opset", "9")
    assert code == 2 and "--opset 9 is outside what this export can write: from 15" in err
    assert not (tmp_path / "old.onnx").exists()


def test_without_onnx_the_command_says_how_to_install_it(run_cli, files, monkeypatch):
    assert run_cli("train", files / "text.txt", "--hidden", "8", "--seq-len", "8", "--max-steps", "1")[0] == 0
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    code, _, err = run_cli("export", "--out", "m.onnx")
    assert code == 2 and "pip install 'charrnn[export]'" in err


def test_a_checkpoint_of_a_newer_format_is_refused_and_nothing_is_written(run_cli, files, tmp_path):
    assert run_cli("train", files / "text.txt", "--hidden", "8", "--seq-len", "8", "--max-steps", "1")[0] == 0
    path = next((tmp_path / "runs").glob("*/last.npz"))
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(arrays["meta"].tobytes()) | {"version": 99}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "future.npz", **arrays)
    code, _, err = run_cli("export", "--checkpoint", tmp_path / "future.npz", "--out", "f.onnx")
    assert code == 2 and "newer than this charrnn reads" in err
    assert not (tmp_path / "f.onnx").exists()


@pytest.mark.parametrize("task", ["lm", "tag", "seq2seq"])
def test_a_float64_model_exports_as_float32_which_onnx_runtime_runs(files, tmp_path, task):
    model = trained(
        files, tmp_path, "d", task=task, dtype="float64", cell="gru", **({"seq_len": 8} if task == "lm" else {})
    )
    [path, *_] = api.export(model, tmp_path / "d.onnx")
    assert all(i.type in ("tensor(float)", "tensor(int64)", "tensor(bool)") for i in session(path).get_inputs())
    assert api.check_export(model, path) < 1e-5
