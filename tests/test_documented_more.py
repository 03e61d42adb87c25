"""More documented behaviours that no other test held: validation's plain loss under --label-smoothing, the seq2seq
split by source, empty lines of an examples file, seq2seq eval against several references, `export --check`'s exit
code, the names `serve` gives checkpoints, folders given as `--out`, viz's --max-len limit, a sweep's trials and
invalid ranges, `predict`'s character names, `--more` after `--patience`, and the advice of a failed save. Each test
quotes the page (or --help) whose promise it holds."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import POND, REPO, write_tsv

import charrnn
from charrnn.data.examples import read_examples
from charrnn.errors import CharRNNError
from charrnn.interfaces.sweep_file import read_sweep
from charrnn.nn.example_network import log_probabilities
from charrnn.nn.seq2seq import Hypothesis
from charrnn.tasks import registry
from charrnn.training import checkpoint
from charrnn.training.config import Config

TINY = ["--layers", "1", "--hidden", "16"]


def words(n: int, letters: str = "abcd", seed: int = 0) -> list[str]:
    """`n` random words of 3 to 7 of `letters`."""
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(letters), rng.integers(3, 8))) for _ in range(n)]


def train_seq2seq(run_cli, tmp_path: Path) -> Path:
    """A tiny seq2seq model (sources of abcd, targets of WXYZ) trained a few steps into tmp_path/s2s."""
    pairs = [(w, w.upper().translate(str.maketrans("ABCD", "WXYZ"))) for w in words(40)]
    path = write_tsv(tmp_path / "pairs.tsv", pairs)
    code, _, err = run_cli("train", path, "--task", "seq2seq", *TINY, "--max-steps", "2", "--run-dir", "s2s")
    assert code == 0, err
    return tmp_path / "s2s"


def test_validation_reports_the_plain_loss_under_label_smoothing(run_cli, tmp_path):
    """tasks.md, The models: with --label-smoothing "the training loss shown includes that term; validation always
    reports the plain cross-entropy, so runs with and without it compare" (configuration.md: label_smoothing)."""
    rng = np.random.default_rng(3)
    label = {"a": "ex", "b": "why", "c": "zed"}

    def make(n):
        texts = [rng.choice(list("abc")) + w for w in words(n, seed=int(rng.integers(1000)))]
        return [(t, label[t[0]]) for t in texts]

    train, val = write_tsv(tmp_path / "train.tsv", make(120)), write_tsv(tmp_path / "val.tsv", make(30))
    flags = [*TINY, "--lr", "0.03", "--max-steps", "30", "--eval-every", "15", "--dropout", "0"]
    code, _, err = run_cli("train", train, "--task", "classify", "--val-file", val, *flags, "--label-smoothing", "0.4")
    assert code == 0, err
    last = [json.loads(line) for line in (tmp_path / "runs" / "train" / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["step"] == 30  # validated with the weights last.npz holds
    # the plain cross-entropy of the saved weights on the validation file, computed here
    model = charrnn.load(tmp_path / "runs" / "train")
    examples = read_examples(val, "label")
    log_probs = log_probabilities(model.networks, [model.vocab.encode(t) for t in examples.inputs])
    truth = np.array([model.outputs.index(t) for t in examples.targets])
    plain = -log_probs[np.arange(len(truth)), truth].mean()
    smoothed = 0.6 * plain + 0.4 * -log_probs.mean()
    assert abs(smoothed - plain) > 0.05  # the two differ enough for the check below to tell them apart
    assert last["val_loss"] == pytest.approx(plain, rel=1e-6)
    code, out, err = run_cli("eval", val, "--json")
    assert code == 0, err
    assert json.loads(out)["loss"] == pytest.approx(last["val_loss"], rel=1e-9)


def test_seq2seq_holds_out_whole_sources_with_all_their_lines(tmp_path):
    """tasks.md, Data: without --val-file "for seq2seq a share of the distinct sources, each with all its lines (a
    word with two pronunciations is never split between training and validation)"."""
    rng = np.random.default_rng(0)
    sources = sorted(set(words(80, "abcdef")))
    pairs = [(w, p) for w in sources for p in (w.upper(), " ".join(w[::-1].upper()))]
    rng.shuffle(pairs)
    path = write_tsv(tmp_path / "g2p.tsv", pairs)
    config = Config(corpus=[str(path)], task="seq2seq", val_frac=0.25, seed=7)
    data = registry.get("seq2seq").load_data(config)
    train, val = data.train.examples.inputs, data.val.examples.inputs
    assert val and not set(train) & set(val)
    assert len(set(val)) == pytest.approx(0.25 * len(sources), abs=1)  # a share of the distinct sources
    assert len(val) == 2 * len(set(val)) and len(train) + len(val) == len(pairs)  # each with all its lines


def test_empty_lines_of_an_examples_file_are_skipped(run_cli, tmp_path):
    """tasks.md, Data: "A file of examples, one per line, `input<TAB>target` ...; empty lines are skipped" (and a
    mistake still names its own line)."""
    path = tmp_path / "labels.tsv"
    path.write_text("ab\tx\n\ncd\ty\n   \n\r\n\nabc\tx\n\n", encoding="utf-8")
    read = read_examples(path, "label")
    assert (read.inputs, read.targets, read.lines) == (["ab", "cd", "abc"], ["x", "y", "x"], [1, 3, 7])
    path.write_text(path.read_text(encoding="utf-8") + "no tab here\n", encoding="utf-8")
    with pytest.raises(CharRNNError, match="line 9 has no tab"):
        read_examples(path, "label")
    (tmp_path / "blank.tsv").write_text("\n  \n\n", encoding="utf-8")
    with pytest.raises(CharRNNError, match="holds no examples"):
        read_examples(tmp_path / "blank.tsv", "label")
    lines = "".join(f"{w}\t{'xy'[len(w) % 2]}\n\n" for w in words(20))
    (tmp_path / "gaps.tsv").write_text("\n" + lines, encoding="utf-8")
    code, _, err = run_cli("train", tmp_path / "gaps.tsv", "--task", "classify", *TINY, "--max-steps", "1")
    assert code == 0, err
    assert "18 training and 2 validation examples" in " ".join(err.split())


def test_seq2seq_eval_takes_any_reference_as_right_and_the_closest_for_ter(run_cli, tmp_path, monkeypatch):
    """tasks.md, Decoding: eval reports "WER (an output is right when it equals any of the references the file
    gives for its source: several lines may share one) and the token error rate (the edit distance to the closest
    reference over its length ...)"."""
    run = train_seq2seq(run_cli, tmp_path)
    model = charrnn.load(run)
    # the decoder's outputs, chosen: "ab" gives its second reference; "cd" is one token off its second
    chosen = {"ab": "XZ", "cd": "WYY"}

    def decode(net, sources, beam=1, n_best=1, length_penalty=1.0, batch_size=64):
        texts = [model.vocab.decode(s) for s in sources]
        return [[Hypothesis([model.outputs.index(c) for c in chosen[t]], -1.0, -1.0)] for t in texts]

    monkeypatch.setattr("charrnn.tasks.seq2seq.decode", decode)
    path = write_tsv(tmp_path / "refs.tsv", [("ab", "XYZW"), ("cd", "XYZW"), ("ab", "XZ"), ("cd", "WY")])
    code, out, err = run_cli("eval", path, "--run-dir", run, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["examples"] == 4 and result["sources"] == 2
    assert result["exact_match"] == 0.5 and result["wer"] == 0.5  # "ab" right by its second reference
    assert result["ter"] == pytest.approx((0 + 1) / (2 + 2))  # each to its closest reference, over its length


@pytest.mark.parametrize(("offset", "code", "verdict"), [(3e-4, 1, "differs by more than 0.0001"), (5e-5, 0, "agrees")])
def test_export_check_exits_1_when_onnx_runtime_differs_by_more_than_1e_4(
    run_cli, tmp_path, monkeypatch, offset, code, verdict
):
    """export.md and `charrnn export --help`: --check "Run the file in ONNX Runtime against charrnn; exit 1 if they
    differ by > 1e-4"."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from charrnn.apps import export

    labels = write_tsv(tmp_path / "labels.tsv", [(w, "xy"[len(w) % 2]) for w in words(40)])
    assert run_cli("train", labels, "--task", "classify", "--hidden", "8", "--max-steps", "2")[0] == 0
    real = export.runtime_session

    class Off:
        """ONNX Runtime's session, every output `offset` away from what it computes."""

        def __init__(self, session):
            self.session = session

        def run(self, names, feeds):
            return [o + offset for o in self.session.run(names, feeds)]

        def __getattr__(self, name):
            return getattr(self.session, name)

    monkeypatch.setattr(export, "runtime_session", lambda onnxruntime, path: Off(real(onnxruntime, path)))
    exit_code, out, err = run_cli("export", "--out", "m.onnx", "--check")
    assert exit_code == code, err
    assert "largest difference between ONNX Runtime and charrnn" in out and f"({verdict})" in out


def test_serve_names_a_checkpoint_after_its_folder_or_its_own_stem(run_cli, small_corpus, tmp_path):
    """serve.md: "Each model is served under its run folder's name (`--checkpoint FILE`: its folder's name, or its
    own stem)"."""
    from charrnn.interfaces.serve.runner import load_models

    code, _, err = run_cli("train", small_corpus, *TINY, "--max-steps", "2", "--run-dir", "poems")
    assert code == 0, err
    run = tmp_path / "poems"
    assert (run / "best.npz").is_file()
    (tmp_path / "kept").mkdir()
    shutil.copy(run / "last.npz", tmp_path / "kept" / "bard.npz")
    models = load_models([], [run / "last.npz", run / "best.npz", tmp_path / "kept" / "bard.npz"])
    assert sorted(models) == ["bard", "best", "poems"]
    assert list(load_models([run], [])) == ["poems"]
    with pytest.raises(CharRNNError, match="two models would be served as 'poems'"):
        load_models([run], [run / "last.npz"])


def test_translate_show_attention_refuses_a_folder_as_out_before_any_work(run_cli, tmp_path):
    """errors.md: "an output path that is a folder (`viz`, `plot`, `translate --show-attention --out`)": `--out
    pictures is a folder; give the path of the file to write, e.g. pictures/NAME.` (before any work)."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    args = ("translate", "abc", "--show-attention", "--out", folder)
    code, out, err = run_cli(*args)  # no model anywhere: the refusal comes before one is looked for
    assert code == 2, err
    assert " ".join(err.split()) == (
        f"charrnn: error: --out {folder} is a folder; give the path of the file to write, e.g. {folder / 'NAME'}."
    )
    run = train_seq2seq(run_cli, tmp_path)
    code, out, err = run_cli(*args, "--run-dir", run)
    assert code == 2 and f"--out {folder} is a folder" in err
    assert out == "" and list(folder.iterdir()) == []


def test_viz_max_len_above_20000_is_refused(run_cli, small_corpus, tmp_path):
    """viz.md: --max-len characters "(2,000 by default, at most 20,000)"; errors.md: "raise --max-len (up to
    20,000)"."""
    assert run_cli("train", small_corpus, *TINY, "--max-steps", "2")[0] == 0
    code, _, err = run_cli("viz", "The pond", "--max-len", "20001", "--out", "v.html")
    assert code == 2 and "--max-len" in err and "20000" in err
    assert not (tmp_path / "v.html").exists()
    code, _, err = run_cli("viz", "The pond", "--max-len", "20000", "--out", "v.html")
    assert code == 0, err
    assert (tmp_path / "v.html").is_file()


SWEEP = """corpus: {corpus}
layers: 1
hidden: 16
max_steps: 50
seed: {seed}
search:
{search}
trials: 6
"""


def write_sweep(path: Path, corpus: Path, search: str, seed: int = 1234) -> Path:
    path.write_text(SWEEP.format(corpus=corpus, seed=seed, search=search), encoding="utf-8")
    return path


def test_a_sweep_file_always_makes_the_same_trials(small_corpus, tmp_path, monkeypatch):
    """sweep.md: "The base config's `seed` also draws the trials, so a sweep file always makes the same trials"
    (the trials drawn as `charrnn sweep` asks Ray Tune to draw them, without running them)."""
    tune = pytest.importorskip("ray.tune", reason="charrnn[sweep] is not installed")
    from ray.tune.experiment import Experiment

    from charrnn.interfaces import sweep as sweep_module

    class Drawn(Exception):
        """Raised by the stand-in Tuner instead of running the trials."""

    class Capturing:
        def __init__(self, trainable, param_space, tune_config, run_config):
            self.param_space, self.tune_config = param_space, tune_config

        def fit(self):
            raise Drawn(self)

    class Tune:
        """Ray Tune as `charrnn sweep` uses it, with a Tuner that hands back what it was given."""

        def __getattr__(self, name):
            return getattr(tune, name)

        Tuner = Capturing

        @staticmethod
        def with_parameters(trainable, **_):
            return trainable

        @staticmethod
        def with_resources(trainable, _):
            return trainable

    class Ray:
        @staticmethod
        def shutdown():
            pass

    for name in ("_start_ray", "_check_nodes_read", "_control"):
        monkeypatch.setattr(sweep_module, name, lambda *args: None)
    monkeypatch.setenv("TUNE_DISABLE_SIGINT_HANDLER", "1")  # the sweep sets it; undone after the test

    def trials(path: Path, folder: str) -> list[dict]:
        sweep = read_sweep(path)
        with pytest.raises(Drawn) as drawn:
            sweep_module._fit(Ray(), Tune(), sweep, tmp_path / folder, None, 1, None, None)
        tuner = drawn.value.args[0]
        search = tuner.tune_config.search_alg
        search.add_configurations([Experiment("x", run=lambda c: None, config=tuner.param_space, num_samples=6)])
        found = []
        while (trial := search.next_trial()) is not None:
            found.append(trial.config)
        return found

    search = "  lr: {loguniform: [0.0005, 0.05]}\n  dropout: {uniform: [0.0, 0.3]}\n  hidden: [8, 16, 32]"
    path = write_sweep(tmp_path / "s.yaml", small_corpus, search)
    first = trials(path, "one")
    assert len(first) == 6 and len({t["lr"] for t in first}) == 6
    assert trials(path, "two") == first
    other = write_sweep(tmp_path / "other.yaml", small_corpus, search, seed=99)
    assert trials(other, "three") != first  # it is the seed that draws them


@pytest.mark.parametrize(
    ("search", "said"),
    [
        ("  dropout: {uniform: [0.5, 1.5]}", "search key 'dropout': 1.5"),
        ("  warmup_steps: {int: [0, 60]}", "the search can make an invalid run: --warmup-steps 60 leaves no steps"),
    ],
)
def test_a_search_that_would_make_an_invalid_run_is_refused(run_cli, small_corpus, tmp_path, search, said):
    """sweep.md: refused are "empty or upside-down ranges, ... and any corner of the search that would make an
    invalid run" (a range out of the key's bounds, or one that contradicts the base config's max_steps: 50)."""
    path = write_sweep(tmp_path / "bad.yaml", small_corpus, search)
    with pytest.raises(CharRNNError, match=r"^sweep file .*bad\.yaml") as refused:
        read_sweep(path)
    assert said in str(refused.value)
    code, _, err = run_cli("sweep", path)
    assert code == 2 and said in " ".join(err.split())
    assert not (tmp_path / "runs").exists()


def test_predict_names_whitespace_and_control_characters(run_cli, tmp_path):
    """language-model.md: `charrnn predict TEXT` "shows the likeliest next characters (`--top-k`, default 10), with
    whitespace and control characters by name"."""
    corpus = tmp_path / "odd.txt"
    text = POND.read_text(encoding="utf-8")[:6000]
    corpus.write_text(
        text.replace(". ", ".\t", 20).replace(",", "\x07,", 10).replace("\n", "\r\n", 5), encoding="utf-8"
    )
    assert run_cli("train", corpus, *TINY, "--max-steps", "2", "--seq-len", "8")[0] == 0
    code, out, err = run_cli("predict", "The po", "--top-k", "200")  # every character of the vocabulary
    assert code == 0, err
    shown = [row.split("│")[2].strip() for row in out.splitlines() if row.startswith("│")]
    assert len(shown) == len(set(text) | {"\t", "\x07", "\r"})
    for name in ("space", "\\n newline", "\\t tab", "\\r return", "U+0007"):
        assert name in shown
    assert all(s and s.isprintable() for s in shown)
    assert not {"\t", "\x07", "\r"} & set(out)


def test_more_after_patience_restarts_the_count_of_passes_without_a_new_best(run_cli, small_corpus, tmp_path):
    """language-model.md: a run stopped "by `--patience` goes on with `--more` (its count of passes without a new
    best starts again)"."""
    jumpy = ["--optimizer", "sgd", "--lr", "0.5"]  # its validation loss rises soon (a seeded run: at step 26)
    flags = [*TINY, "--batch-size", "4", "--seq-len", "16", *jumpy, "--eval-every", "2", "--patience", "2"]
    code, _, err = run_cli("train", small_corpus, *flags, "--max-steps", "200", "--run-dir", "run")
    assert code == 0 and "no better validation loss in 2 passes (--patience)" in err
    path = tmp_path / "run" / "last.npz"
    meta, arrays = checkpoint.load(path)
    stopped = meta["step"]
    assert meta["evals_since_best"] == 2 and stopped < 200
    meta["best_val_loss"] = 0.0  # a best no pass can beat: from now on every pass is one without a new best
    checkpoint.save(path, meta, arrays)
    code, _, err = run_cli("train", "--resume", "run", "--more", "40")
    assert code == 0 and "no better validation loss in 2 passes (--patience)" in err
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    passes = [r["step"] for r in records if r["step"] > stopped and r.get("val_loss") is not None]
    assert passes == [stopped + 2, stopped + 4]  # two passes counted from 0 again, not one more after the two before
    assert checkpoint.load(path)[0]["step"] == stopped + 4


def test_a_save_that_fails_for_lack_of_space_says_how_to_continue(run_cli, small_corpus, tmp_path, monkeypatch):
    """errors.md, disk full or read-only folder while saving: `could not write the checkpoint runs/x/last.npz (No
    space left on device); the previous one is intact. ... continue with: charrnn train --resume runs/x`."""
    flags = [*TINY, "--batch-size", "4", "--seq-len", "16"]
    assert run_cli("train", small_corpus, *flags, "--max-steps", "2", "--run-dir", "run")[0] == 0
    before = (tmp_path / "run" / "last.npz").read_bytes()
    with monkeypatch.context() as patch:

        def disk_full(*args, **kwargs):
            raise OSError(28, "No space left on device")

        patch.setattr(np, "savez", disk_full)
        code, _, err = run_cli("train", "--resume", "run", "--max-steps", "4")
    said = " ".join(err.split())
    assert code == 2 and "could not write the checkpoint run/last.npz (No space left on device)" in said
    assert said.endswith("continue with: charrnn train --resume run"), said[-200:]
    assert (tmp_path / "run" / "last.npz").read_bytes() == before
    advice = said.rsplit("continue with: charrnn ", 1)[1].split()
    code, _, err = run_cli(*advice, "--max-steps", "4")  # the advice, followed, goes on
    assert code == 0, err
    assert checkpoint.load(tmp_path / "run" / "last.npz")[0]["step"] == 4


def test_make_pond_rewrites_the_shipped_corpus_byte_for_byte(tmp_path):
    """internals.md (Data): `python data/make_pond.py` regenerates data/pond.txt byte for byte."""
    made = tmp_path / "pond.txt"
    subprocess.run([sys.executable, str(REPO / "data" / "make_pond.py"), "--out", str(made)], check=True, timeout=120)
    assert made.read_bytes() == POND.read_bytes()
