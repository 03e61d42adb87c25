"""The encoder-decoder: gradients against central differences (float64) for every attention, with and without input
feeding and bidirectional encoders; padding changes nothing; decoding step by step equals the teacher-forced pass;
beam search against greedy and forced decodes."""

import json

import numpy as np
import pytest
from conftest import assert_gradients_match

import charrnn
from charrnn.nn.functional import pad
from charrnn.nn.seq2seq import Seq2SeqNetwork, decode, forced_log_prob, teacher_forcing
from charrnn.nn.stack import RecurrentSpec
from charrnn.training.checkpoint import load_model

V_SRC, V_TGT, H = 5, 4, 4
SOURCE_LENGTHS, TARGET_LENGTHS = [4, 2, 3], [2, 3, 1]


def problem(attention, input_feeding, bidirectional, cell="lstm", layers=1, seed=0, scale=0.5, embed=0):
    rng = np.random.default_rng(seed)
    spec = RecurrentSpec(cell, H, layers, "float64", 0.0, embed, bidirectional)
    net = Seq2SeqNetwork(V_SRC, V_TGT, spec, attention, input_feeding, seed)
    net.flat_params[:] = rng.normal(0.0, scale, net.num_params)
    sources = [rng.integers(0, V_SRC, n) for n in SOURCE_LENGTHS]
    targets = [rng.integers(1, V_TGT, n) for n in TARGET_LENGTHS]
    x, lengths = pad(sources, np.int64)
    return net, sources, targets, x, lengths


CASES = [
    (attention, feeding, bidirectional)
    for attention in ("none", "dot", "general", "additive")
    for feeding in (False, True)
    for bidirectional in (False, True)
    if not (attention == "none" and feeding) and not (attention == "dot" and bidirectional)
]


@pytest.mark.parametrize(("attention", "feeding", "bidirectional"), CASES)
@pytest.mark.parametrize(("cell", "layers", "embed"), [("lstm", 2, 0), ("gru", 1, 0), ("lstm", 1, 3)])
def test_gradients_match_central_differences(attention, feeding, bidirectional, cell, layers, embed):
    net, _, targets, x, lengths = problem(attention, feeding, bidirectional, cell, layers, embed=embed)

    def loss():
        return net.loss_and_grads(x, lengths, targets, dropout=0.2, rng=np.random.default_rng(3))

    assert_gradients_match(net, loss)


@pytest.mark.parametrize(
    ("attention", "feeding", "bidirectional"),
    [("general", False, True), ("additive", True, True), ("dot", True, False)],
)
def test_a_padded_batch_equals_its_examples_one_by_one(attention, feeding, bidirectional):
    net, sources, targets, x, lengths = problem(attention, feeding, bidirectional, seed=2)
    tokens = sum(len(t) + 1 for t in targets)
    batch_loss = net.loss_and_grads(x, lengths, targets) * tokens
    batch_grads = net.flat_grads * tokens
    total, grads = 0.0, np.zeros_like(batch_grads)
    for source, target in zip(sources, targets, strict=True):
        xb, lb = pad([source], np.int64)
        total += net.loss_and_grads(xb, lb, [target]) * (len(target) + 1)
        grads += net.flat_grads * (len(target) + 1)
    assert batch_loss == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(batch_grads, grads, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("attention", "feeding"), [("none", False), ("general", False), ("additive", True)])
def test_decoding_step_by_step_equals_the_teacher_forced_pass(attention, feeding):
    net, sources, targets, x, lengths = problem(attention, feeding, True, layers=2, seed=5)
    decoder_in, _decoder_out, counted = teacher_forcing(targets)
    logits = net.forward(x, lengths, decoder_in).reshape(len(decoder_in), len(sources), -1).astype(np.float64)
    forced = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    src = net.encode(x, lengths)
    feed = np.zeros((len(sources), H)) if feeding else None
    for t in range(len(decoder_in)):
        log_probs, out, _ = net.step(decoder_in[t], src.state, feed, src)
        feed = out if feeding else None
        np.testing.assert_allclose(log_probs[counted[t]], forced[t][counted[t]], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("feeding", [False, True])
def test_beam_one_is_greedy_and_a_wider_beam_never_scores_worse(feeding):
    net, sources, _, _, _ = problem("general", feeding, True, layers=2, seed=7, scale=1.5)
    rng = np.random.default_rng(1)
    sources = [rng.integers(0, V_SRC, n) for n in rng.integers(1, 7, 40)]
    greedy = decode(net, sources, beam=1)
    by_hand = []
    for source in sources:  # greedy by hand: the likeliest token, step after step
        x, lengths = pad([source], np.int64)
        src = net.encode(x, lengths)
        ids, feed, tokens, total = np.zeros(1, np.int64), (np.zeros((1, H)) if feeding else None), [], 0.0
        while True:
            log_probs, out, _ = net.step(ids, src.state, feed, src)
            feed = out if feeding else None
            token = int(log_probs[0].argmax())
            total += log_probs[0, token]
            if token == 0:
                break
            tokens.append(token)
            if len(tokens) >= 2 * len(source) + 10:  # cut at the longest output allowed
                break
            ids = np.array([token])
        by_hand.append((tokens, total))
    assert [(h[0].tokens, pytest.approx(h[0].log_prob)) for h in greedy] == by_hand
    for penalty in (0.0, 1.0):
        greedy = decode(net, sources, beam=1, length_penalty=penalty)
        for beam in (2, 5):
            wide = decode(net, sources, beam=beam, length_penalty=penalty)
            assert all(w[0].score >= g[0].score - 1e-12 for w, g in zip(wide, greedy, strict=True))
            if penalty == 0.0:  # and it does find likelier outputs than greedy
                assert sum(w[0].score > g[0].score + 1e-6 for w, g in zip(wide, greedy, strict=True)) > 10


@pytest.mark.parametrize("feeding", [False, True])
def test_a_batch_decodes_as_its_sources_alone_while_its_sources_finish_at_different_steps(feeding):
    """Sources that are done leave the batch (their outputs end at different steps here): every source's n best are
    those it gets decoded alone."""
    net, _, _, _, _ = problem("general", feeding, True, layers=2, seed=7, scale=1.5)
    rng = np.random.default_rng(2)
    sources = [rng.integers(0, V_SRC, n) for n in rng.integers(1, 7, 30)]
    for beam in (1, 3):
        batch = decode(net, sources, beam=beam, n_best=beam)
        assert len({len(found[0].tokens) for found in batch}) > 3
        for source, found in zip(sources, batch, strict=True):
            [alone] = decode(net, [source], beam=beam, n_best=beam)
            assert [h.tokens for h in found] == [h.tokens for h in alone]
            assert [h.log_prob for h in found] == pytest.approx([h.log_prob for h in alone], rel=1e-9)


def test_n_best_scores_are_sorted_log_probabilities():
    net, sources, _, _, _ = problem("additive", True, False, layers=1, seed=9, scale=1.5)
    for source, found in zip(sources, decode(net, sources, beam=4, n_best=4, length_penalty=0.0), strict=True):
        scores = [h.score for h in found]
        assert scores == sorted(scores, reverse=True) and len({tuple(h.tokens) for h in found}) == len(found)
        for h in found:
            forced, _ = forced_log_prob(net, source, h.tokens, h.complete)
            assert h.log_prob == pytest.approx(forced, rel=1e-9) and h.score == h.log_prob


# -- through the command line -----------------------------------------------------------------------------------

REVERSE = [
    "--task",
    "seq2seq",
    "--layers",
    "1",
    "--hidden",
    "32",
    "--batch-size",
    "32",
    "--lr",
    "0.008",
    "--bidirectional",
    "--attention",
    "additive",
    "--dropout",
    "0",
    "--eval-every",
    "150",
]


@pytest.fixture
def reversing(tmp_path):
    """Strings and their reversals: the output's first character is the input's last, so only an encoder-decoder
    (or a tagger that could see the end, and the same length) gets them right."""
    rng = np.random.default_rng(0)

    def make(path, n):
        words = ["".join(rng.choice(list("abcdefg"), rng.integers(2, 9))) for _ in range(n)]
        path.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
        return path

    return make(tmp_path / "train.tsv", 2000), make(tmp_path / "val.tsv", 150)


def test_an_encoder_decoder_learns_to_reverse_strings(run_cli, reversing, tmp_path):
    train, val = reversing
    code, out, err = run_cli("train", train, "--val-file", val, *REVERSE, "--max-steps", "450")
    assert code == 0, err
    assert "wer" in out and "ter" in out and "nats/token" in out
    result = json.loads(run_cli("eval", val, "--json")[1])
    assert result["exact_match"] >= 0.9 and result["wer"] <= 0.1 and result["ter"] < 0.05, result
    beam = json.loads(run_cli("eval", val, "--json", "--beam", "4")[1])
    assert beam["wer"] <= result["wer"] + 0.02
    code, out, _ = run_cli("translate", "abcdef", "gfe")
    assert code == 0 and out.splitlines() == ["fedcba", "efg"]
    code, out, _ = run_cli("translate", "abcdef", "--beam", "3", "--n-best", "3", "--json")
    [record] = json.loads(out)
    scores = [o["score"] for o in record["outputs"]]
    assert record["outputs"][0]["output"] == "fedcba" and scores == sorted(scores, reverse=True)
    assert all(o["log_prob"] <= o["score"] < 0 for o in record["outputs"])
    code, out, _ = run_cli("translate", "abcdef", "--show-attention", "--out", tmp_path / "attention.png")
    assert code == 0 and "attention" in out and (tmp_path / "attention.png").stat().st_size > 1000
    info = json.loads(run_cli("info", "--json")[1])
    assert info["task"] == "seq2seq" and info["outputs"][0] == "</s>" and "wer" in info["metrics"]


def test_words_as_target_units_and_references_shared_by_a_source(run_cli, tmp_path):
    pairs = [("ab", "A B"), ("ba", "B A"), ("aab", "A A B"), ("ab", "AY B")] * 40
    (tmp_path / "words.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    code, _, err = run_cli(
        "train",
        tmp_path / "words.tsv",
        "--task",
        "seq2seq",
        "--target-units",
        "words",
        "--layers",
        "1",
        "--hidden",
        "16",
        "--max-steps",
        "3",
        "--val-frac",
        "0",
    )
    assert code == 0, err
    model = charrnn.load(tmp_path / "runs" / "words")
    assert model.outputs == ["</s>", "A", "AY", "B"]
    (tmp_path / "refs.tsv").write_text("ab\tA B\nab\tAY B\nba\tB A\n", encoding="utf-8")
    result = model.evaluate(tmp_path / "refs.tsv")
    assert result["examples"] == 3 and result["sources"] == 2


@pytest.mark.parametrize(
    ("lines", "flags", "message"),
    [
        ("abc\tcba\nab\t\n", [], "line 2 has an empty target"),
        ("abcdef\tfedcba\n", ["--max-len", "4"], "line 1: the source has 6 characters, more than --max-len 4"),
        ("ab\tba\n", ["--attention", "dot", "--bidirectional"], "--attention dot needs the encoder's outputs"),
        ("ab\tba\n", ["--input-feeding", "--attention", "none"], "--input-feeding feeds the attention"),
    ],
)
def test_bad_seq2seq_input_gets_one_sentence(run_cli, tmp_path, lines, flags, message):
    path = tmp_path / "bad.tsv"
    path.write_text(lines, encoding="utf-8")
    code, _, err = run_cli("train", path, "--task", "seq2seq", *flags, "--val-frac", "0", "--max-steps", "1")
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists()


def test_attention_flags_on_other_tasks_and_a_zero_beam_are_refused(run_cli, reversing, small_corpus):
    train, val = reversing
    code, _, err = run_cli("train", small_corpus, "--attention", "additive")
    assert code == 2 and "--attention is for --task seq2seq (this run's task is lm)" in err
    code, _, err = run_cli("train", train, "--task", "tag", "--input-feeding")
    assert code == 2 and "--input-feeding is for --task seq2seq" in err
    assert run_cli("train", train, "--val-file", val, *REVERSE, "--max-steps", "2")[0] == 0
    code, _, err = run_cli("translate", "abc", "--beam", "0")
    assert code == 2 and "--beam must be >= 1" in err
    code, _, err = run_cli("translate", "abc", "--n-best", "3")
    assert code == 2 and "--n-best 3 asks for more outputs than --beam 1" in err


def test_seq2seq_resume_is_bit_identical(run_cli, reversing, tmp_path):
    train, val = reversing
    flags = [
        *REVERSE,
        "--val-file",
        val,
        "--lr-schedule",
        "constant",
        "--dropout",
        "0.2",
        "--input-feeding",
        "--attention",
        "general",
    ]
    assert run_cli("train", train, *flags, "--max-steps", "90", "--run-dir", "straight")[0] == 0  # 1.4 epochs
    assert run_cli("train", train, *flags, "--max-steps", "50", "--run-dir", "broken")[0] == 0
    assert run_cli("train", "--resume", "broken", "--max-steps", "90")[0] == 0
    np.testing.assert_array_equal(
        load_model(tmp_path / "broken" / "last.npz")[0].flat_params,
        load_model(tmp_path / "straight" / "last.npz")[0].flat_params,
    )


@pytest.mark.parametrize("feeding", [False, True])
def test_attention_has_a_row_per_output_token_and_one_for_eos_only_if_written(feeding):
    """An output cut at the length limit has no EOS: its attention has one row per token (it had one too many)."""
    net, sources, targets, _, _ = problem("general", feeding, False)
    for source, target in zip(sources, targets, strict=True):
        _, complete = forced_log_prob(net, source, list(target), True)
        _, cut = forced_log_prob(net, source, list(target), False)
        assert complete.shape == (len(target) + 1, len(source)) and cut.shape == (len(target), len(source))
        np.testing.assert_array_equal(cut, complete[: len(target)])
