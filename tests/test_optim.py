"""Clipping and the update rules against their textbook formulas."""

import numpy as np
import pytest

from charrnn.nn.optim import OPTIMIZERS, Adagrad, Adam, clip_gradients


def test_global_norm_clipping():
    g = np.array([3.0, 4.0])
    assert clip_gradients(g, max_norm=1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(g, [0.6, 0.8])
    g = np.array([3.0, 4.0])
    clip_gradients(g, max_norm=0.0)  # disabled
    np.testing.assert_allclose(g, [3.0, 4.0])


def test_value_clipping_then_norm():
    g = np.array([-10.0, 0.5, 2.0])
    norm = clip_gradients(g, max_norm=0.0, max_value=1.0)
    np.testing.assert_allclose(g, [-1.0, 0.5, 1.0])
    assert norm == pytest.approx(np.sqrt(2.25))


def test_adam_matches_the_paper():
    rng = np.random.default_rng(0)
    params = rng.normal(size=5)
    expected = params.copy()
    m = v = np.zeros(5)
    opt = Adam(params, lr=0.01)
    for t in range(1, 6):
        g = rng.normal(size=5)
        opt.step(g)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        expected -= 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(params, expected, rtol=1e-10)


def test_adagrad_matches_min_char_rnn():
    params = np.array([1.0, -1.0])
    opt = Adagrad(params, lr=0.1)
    cache = np.zeros(2)
    expected = params.copy()
    for g in (np.array([0.5, -2.0]), np.array([1.0, 1.0])):
        opt.step(g)
        cache += g * g
        expected -= 0.1 * g / (np.sqrt(cache) + 1e-8)
    np.testing.assert_allclose(params, expected)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_descends_a_quadratic(name):
    params = np.array([2.0, -3.0])
    opt = OPTIMIZERS[name](params, lr=0.3)
    for _ in range(200):
        opt.step(2 * params)  # gradient of |x|²
    assert np.abs(params).max() < 0.5


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_updating_block_by_block_changes_nothing(name):
    rng = np.random.default_rng(1)
    start, grads = rng.normal(size=100), rng.normal(size=(3, 100))
    whole, blocked = OPTIMIZERS[name](start.copy(), lr=0.01), OPTIMIZERS[name](start.copy(), lr=0.01)
    blocked.block = 7  # 15 blocks, the last one short
    for g in grads:
        whole.step(g)
        blocked.step(g)
    np.testing.assert_array_equal(blocked.params, whole.params)
    for key in whole.state:
        np.testing.assert_array_equal(blocked.state[key], whole.state[key])
