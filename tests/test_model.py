"""The NumPy core: gradients against central differences, chunking, a textbook worked example, learning."""

import numpy as np
import pytest
from conftest import assert_gradients_match

from charrnn.data.text import Batches, Vocab
from charrnn.nn.cells import RNN
from charrnn.nn.language_model import LanguageModelNetwork
from charrnn.nn.optim import Adam, clip_gradients
from charrnn.nn.stack import RecurrentSpec
from charrnn.tasks.sampling import generate


def random_problem(cell: str, layers: int, seed: int = 0, embed: int = 0):
    V, H, T, B = 5, 4, 6, 3
    rng = np.random.default_rng(seed)
    model = LanguageModelNetwork(V, RecurrentSpec(cell, H, layers, "float64", embed=embed), seed)
    model.flat_params[:] = rng.normal(0.0, 0.5, model.num_params)
    x = rng.integers(0, V, (T, B))
    y = rng.integers(0, V, (T, B))
    state = [[rng.normal(0.0, 0.5, s.shape) for s in layer] for layer in model.initial_state(B)]
    return model, x, y, state


@pytest.mark.parametrize(
    ("layers", "dropout", "embed"), [(1, 0.0, 0), (2, 0.0, 0), (2, 0.3, 0), (1, 0.0, 3), (2, 0.3, 3)]
)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_match_central_differences(cell, layers, dropout, embed):
    model, x, y, state = random_problem(cell, layers, embed=embed)
    n = x.size

    def fixed_masks():  # the same dropout masks for every evaluation
        return {"dropout": dropout, "rng": np.random.default_rng(7)}

    model.loss_and_grads(x, y, state, **fixed_masks())
    analytic = model.flat_grads * n  # gradient of the summed loss
    assert_gradients_match(model, lambda: model.loss(x, y, state, **fixed_masks())[0], analytic, floor=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_batch_computes_what_its_rows_compute_alone_whichever_way_its_products_run(cell):
    """8 rows of 256 units take the feature-major recurrent product (Layer.recurrent_product), one row the
    batch-major one: the loss and every gradient of the batch are the mean of its rows' own."""
    V, H, T, B = 5, 256, 3, 8
    rng = np.random.default_rng(1)
    model = LanguageModelNetwork(V, RecurrentSpec(cell, H, 2, "float64"), 0)
    model.flat_params[:] = rng.normal(0.0, 0.1, model.num_params)
    x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    state = [[rng.normal(0.0, 0.5, s.shape) for s in layer] for layer in model.initial_state(B)]
    batch_loss, _ = model.loss_and_grads(x, y, state)
    batch_grads = model.flat_grads.copy()
    losses, grads = [], np.zeros_like(batch_grads)
    for b in range(B):
        rows = [[s[b : b + 1] for s in layer] for layer in state]
        losses.append(model.loss_and_grads(x[:, b : b + 1], y[:, b : b + 1], rows)[0])
        grads += model.flat_grads / B
    assert batch_loss == pytest.approx(np.mean(losses), rel=1e-12)
    np.testing.assert_allclose(batch_grads, grads, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_one_pass_equals_two_halves_with_state_carried(cell):
    model, x, y, state = random_problem(cell, 2, seed=3)
    whole, end_whole = model.loss(x, y, state)
    first, mid = model.loss(x[:3], y[:3], state)
    second, end_halves = model.loss(x[3:], y[3:], mid)
    assert whole == pytest.approx(first + second, rel=1e-12)
    flat = lambda state: [s for layer in state for s in layer]  # noqa: E731
    for a, b in zip(flat(end_whole), flat(end_halves), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_forward_does_not_change_the_state_passed_in():
    model, x, y, state = random_problem("lstm", 2)
    before = [s.copy() for layer in state for s in layer]
    model.loss(x, y, state)
    model.loss(x, y, state)
    for a, b in zip(before, [s for layer in state for s in layer], strict=True):
        np.testing.assert_array_equal(a, b)


def test_vanilla_cell_reproduces_a_worked_example():
    """A NumPy tutorial's vanilla RNN: np.random.seed(0), three steps on np.ones((3, 3)), printed W_hy.h + By."""
    np.random.seed(0)
    W_hh, W_xh, W_hy = np.random.randn(3, 3), np.random.randn(3, 3), np.random.randn(3, 3)
    Bh, By = np.random.randn(3), np.random.rand(3)
    layer = RNN(3, 3, lookup=False, dtype=np.float64)
    layer.bind({"W_x": W_xh, "W_h": W_hh, "b": Bh}, {})
    layer.prepare()
    x = np.ones((3, 3, 3))  # the same (3, 3) input at each of 3 steps
    H, _ = layer.forward(x, [np.zeros((3, 3))])
    printed = [
        [
            [-1.73665315, -2.40366542, -2.72344361],
            [1.61591482, 1.45557046, 1.13262256],
            [1.68977504, 1.54059305, 1.21757531],
        ],
        [
            [-2.15023381, -2.41205828, -2.71701457],
            [1.71962883, 1.45767515, 1.13101034],
            [1.80488553, 1.542929, 1.21578594],
        ],
        [
            [-2.15024751, -2.41207375, -2.720968],
            [1.71963227, 1.45767903, 1.13200175],
            [1.80488935, 1.54293331, 1.21688628],
        ],
    ]
    for t in range(3):
        np.testing.assert_allclose(W_hy.dot(H[t]) + By, printed[t], atol=1e-8)


def test_lstm_forget_gate_bias_shifts_where_asked():
    zero, one = (LanguageModelNetwork(7, RecurrentSpec("lstm", 5, 2, forget_bias=b)) for b in (0.0, 1.0))
    for i in range(2):
        shift = one.params[f"l{i}.b"] - zero.params[f"l{i}.b"]  # the same draws, from the same seed
        np.testing.assert_allclose(shift[10:15], 1.0)
        np.testing.assert_array_equal(np.delete(shift, np.s_[10:15]), 0.0)
    assert np.all(np.abs(zero.params["l0.b"]) <= 2 / np.sqrt(5)) and np.std(zero.params["l0.b"]) > 0.1


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_learns_a_repetitive_text_and_samples_it_back(cell):
    text = "the cat sat on the mat. " * 60
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    model = LanguageModelNetwork(len(vocab), RecurrentSpec(cell, 32, 1), seed=1)
    opt = Adam(model.flat_params, lr=1e-2)
    batches = Batches(ids, batch_size=8, seq_len=24)
    state = model.initial_state(8)
    for step in range(150):
        k = step % batches.chunks_per_epoch
        if k == 0:
            state = model.initial_state(8)
        loss, state = model.loss_and_grads(*batches.chunk(k), state)
        clip_gradients(model.flat_grads, 5.0)
        opt.step(model.flat_grads)
    assert loss < 0.1
    sample = "".join(generate(model, vocab, 48, temperature=0.5, prime="the cat ", seed=0))
    assert sample == "sat on the mat. the cat sat on the mat. the cat "


def test_dropout_is_off_unless_asked_and_scales_what_it_keeps():
    model, x, y, state = random_problem("lstm", 2)
    plain, _ = model.loss(x, y, state)
    assert model.loss(x, y, state)[0] == plain
    dropped, _ = model.loss(x, y, state, dropout=0.5, rng=np.random.default_rng(0))
    assert dropped != plain
    mask = model._masks[0]
    assert set(np.unique(mask).tolist()) == {0.0, 2.0}


def test_float32_is_the_default_and_float64_is_available():
    assert LanguageModelNetwork(5, RecurrentSpec(hidden=4)).flat_params.dtype == np.float32
    assert LanguageModelNetwork(5, RecurrentSpec(hidden=4, dtype="float64")).flat_params.dtype == np.float64


@pytest.mark.parametrize("embed", [0, 3])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sampling_step_equals_forward_over_one_step(cell, embed):
    model, x, _, state = random_problem(cell, 2, embed=embed)
    logits, after = model.forward(x[:1], state)
    in_place = [[s.copy() for s in layer] for layer in state]
    np.testing.assert_allclose(model.step(x[0], in_place), logits, rtol=1e-12)
    for a, b in zip([s for layer in after for s in layer], [s for layer in in_place for s in layer], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
