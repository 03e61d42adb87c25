"""The classify and tag networks: gradients against central differences (float64), and padding changes nothing."""

import numpy as np
import pytest
from conftest import assert_gradients_match
from hypothesis import given
from hypothesis import strategies as st

from charrnn.data.examples import ExampleBatches
from charrnn.nn.example_network import ExampleNetwork
from charrnn.nn.functional import blank, pad
from charrnn.nn.stack import RecurrentSpec, reverse_index, take_steps

V, OUT, H = 5, 3, 4
HEAD = {"classify": "example", "tag": "position"}  # what each task's network predicts
LENGTHS = [5, 2, 4]
LONGEST_FIRST = [5, 4, 2, 2]  # sorted as inference and training batch them: a layer computes only the rows reading


def problem(
    task: str,
    cell: str,
    layers: int,
    bidirectional: bool,
    pool: str = "last",
    seed: int = 0,
    embed: int = 0,
    lengths: list[int] = LENGTHS,
):
    rng = np.random.default_rng(seed)
    net = ExampleNetwork(
        HEAD[task], V, OUT, RecurrentSpec(cell, H, layers, "float64", 0.0, embed, bidirectional), pool, seed
    )
    net.flat_params[:] = rng.normal(0.0, 0.5, net.num_params)
    seqs = [rng.integers(0, V, n) for n in lengths]
    x, lengths = pad(seqs, np.int64)
    y = rng.integers(0, OUT, len(seqs)) if task == "classify" else rng.integers(0, OUT, x.shape)
    return net, seqs, x, lengths, y


CASES = [("classify", pool) for pool in ("last", "mean", "max")] + [("tag", "last")]


@pytest.mark.parametrize("order", [LENGTHS, LONGEST_FIRST])
@pytest.mark.parametrize(("task", "pool"), CASES)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_match_central_differences(task, pool, bidirectional, layers, cell, order):
    net, _, x, lengths, y = problem(task, cell, layers, bidirectional, pool, lengths=order)

    def loss():
        return net.loss_and_grads(x, lengths, y, dropout=0.3, rng=np.random.default_rng(7))

    assert_gradients_match(net, loss)


@pytest.mark.parametrize(("task", "pool"), [("classify", "max"), ("tag", "last")])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gradients_with_an_embedding(task, pool, cell):
    net, _, x, lengths, y = problem(task, cell, 2, True, pool, embed=3)
    assert net.params["l0.E"].shape == (V, 3) and net.params["l0r.W_x"].shape == (3, 4 * H if cell == "lstm" else 3 * H)

    def loss():
        return net.loss_and_grads(x, lengths, y, dropout=0.3, rng=np.random.default_rng(7))

    assert_gradients_match(net, loss)


@pytest.mark.parametrize(("task", "pool"), [("classify", "max"), ("tag", "last")])
def test_label_smoothing_loss_and_gradients(task, pool):
    """With label smoothing eps the loss is (1 - eps) (-log p_y) + eps mean_k(-log p_k), computed here directly, and
    its gradients match central differences; padded positions of a tag batch still count for nothing."""
    net, _, x, lengths, y = problem(task, "lstm", 1, True, pool)
    eps = 0.2

    def loss():
        return net.loss_and_grads(x, lengths, y, smoothing=eps)

    assert_gradients_match(net, loss)
    logits = net.forward(x, lengths)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    per_row = -(1 - eps) * log_p[np.arange(len(log_p)), y.reshape(-1)] - eps * log_p.mean(axis=1)
    counted = net.positions(lengths, x.shape[0])
    expected = per_row.mean() if counted is None else per_row[counted].mean()
    assert loss() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_blanked_character_reads_only_the_bias(cell):
    """Input dropout: id V acts as a character whose row of W_x is zero, gets no row's gradient, and the gradients
    with blanks still match central differences."""
    net, _, x, lengths, y = problem("tag", cell, 2, True)
    blanked = blank(x, 0.4, np.random.default_rng(3), V)
    assert 0 < (blanked == V).sum() < x.size and np.all((blanked == V) | (blanked == x))
    np.testing.assert_array_equal(blank(x, 0.0, np.random.default_rng(3), V), x)

    def loss():
        return net.loss_and_grads(blanked, lengths, y)

    assert_gradients_match(net, loss)
    wider = ExampleNetwork(
        "position", V + 1, OUT, RecurrentSpec(cell, H, 2, "float64", bidirectional=True)
    )  # V is a character here
    for name, value in net.params.items():
        wider.params[name][...] = 0.0
        wider.params[name][: len(value)] = value  # W_x gets a zero row for character V
    np.testing.assert_allclose(wider.forward(blanked, lengths), net.forward(blanked, lengths), rtol=1e-12)


@pytest.mark.parametrize("order", [LENGTHS, LONGEST_FIRST])
@pytest.mark.parametrize(("task", "pool"), CASES)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_padded_batch_equals_its_examples_one_by_one(task, pool, cell, order):
    """Outputs and gradients of a padded batch are those of the examples run alone (summed losses), whether the
    layers compute every row at every step or only those still reading (longest first)."""
    net, seqs, x, lengths, y = problem(task, cell, 2, True, pool, seed=4, lengths=order)
    counted = net.positions(lengths, x.shape[0])
    logits = net.forward(x, lengths)
    batch_loss = net.loss_and_grads(x, lengths, y) * (len(seqs) if counted is None else int(counted.sum()))
    batch_grads = net.flat_grads * (len(seqs) if counted is None else int(counted.sum()))
    total, grads = 0.0, np.zeros_like(batch_grads)
    for b, seq in enumerate(seqs):
        xb, lb = pad([seq], np.int64)
        yb = y[b : b + 1] if task == "classify" else y[: len(seq), b : b + 1]
        alone = net.forward(xb, lb)
        expected = logits[b] if task == "classify" else logits.reshape(x.shape[0], len(seqs), -1)[: len(seq), b]
        np.testing.assert_allclose(alone.reshape(expected.shape), expected, rtol=1e-12, atol=1e-12)
        total += net.loss_and_grads(xb, lb, yb) * (1 if task == "classify" else len(seq))
        grads += net.flat_grads * (1 if task == "classify" else len(seq))
    assert batch_loss == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(batch_grads, grads, rtol=1e-10, atol=1e-12)


def test_reversing_within_length_leaves_the_padding_in_place():
    index = reverse_index(np.array([3, 1]), 4)
    assert index[:, 0].tolist() == [2, 1, 0, 3] and index[:, 1].tolist() == [0, 1, 2, 3]
    x = np.arange(8).reshape(4, 2)
    np.testing.assert_array_equal(take_steps(take_steps(x, index), index), x)


def test_batches_group_similar_lengths_and_depend_only_on_the_seed_and_step():
    lengths = np.random.default_rng(0).integers(1, 40, 1000)
    batches = ExampleBatches(lengths, 16, seed=3)
    assert batches.steps_per_epoch == 63
    epoch = [batches.indices(k) for k in range(63)]
    assert sorted(np.concatenate(epoch).tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in epoch])
    assert spread < 3, f"lengths within a batch differ by {spread:.1f} on average"
    again = ExampleBatches(lengths, 16, seed=3)
    np.testing.assert_array_equal(again.indices(63 + 5), batches.indices(63 + 5))
    assert not np.array_equal(batches.indices(63 + 5), epoch[5])  # another epoch, another order


@given(
    st.integers(1, 6).flatmap(
        lambda T: st.tuples(
            st.lists(st.integers(-2, 2), min_size=T * 3 * 2, max_size=T * 3 * 2),
            st.lists(st.integers(1, T), min_size=3, max_size=3),
        )
    )
)
def test_max_pooling_picks_the_first_maximum_of_the_real_positions(case):
    """The step-by-step max pool finds what argmax over the masked time axis finds, ties to the first position."""
    values, lengths = case
    T = len(values) // 6
    net = ExampleNetwork("example", 5, 2, RecurrentSpec("rnn", 2, 1, "float64"), "max")
    out = np.array(values, np.float64).reshape(T, 3, 2)
    lengths = np.array(lengths)
    net._lengths = lengths
    pooled = net._pooled(out)
    valid = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
    expected = np.where(valid, out, -np.inf).argmax(axis=0)
    assert (net._max_positions() == expected).all()
    assert (pooled == np.take_along_axis(out, expected[None], axis=0)[0]).all()
