"""One-to-many sampling: exact length, reproducible, temperature, prime checks."""

import numpy as np
import pytest

from charrnn.data import Vocab
from charrnn.errors import CharRNNError
from charrnn.model import CharModel
from charrnn.sample import Sampler, generate

VOCAB = Vocab.from_text("abcdefgh \n")


@pytest.fixture
def model():
    return CharModel(len(VOCAB), 16, 2, "lstm", seed=5)


def test_length_is_exact_and_the_same_seed_gives_the_same_text(model):
    a = "".join(generate(model, VOCAB, 300, seed=11))
    b = "".join(generate(model, VOCAB, 300, seed=11))
    c = "".join(generate(model, VOCAB, 300, seed=12))
    assert len(a) == 300 and a == b and a != c


def test_temperature_zero_is_argmax():
    logits = np.array([0.1, 2.0, 1.9, -3.0])
    draw = Sampler(4, 0.0, np.random.default_rng(0))
    assert all(draw(logits) == 1 for _ in range(20))


def test_low_temperature_concentrates_on_the_likeliest():
    logits = np.array([0.0, 1.0, 0.5])
    cold = Sampler(3, 0.05, np.random.default_rng(0))
    assert [cold(logits) for _ in range(200)].count(1) == 200
    hot = Sampler(3, 5.0, np.random.default_rng(0))
    assert {hot(logits) for _ in range(200)} == {0, 1, 2}


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_draws_follow_the_softmax(temperature):
    logits = np.log(np.array([0.1, 0.6, 0.3]))
    draw = Sampler(3, temperature, np.random.default_rng(1), block=7)  # several noise blocks
    counts = np.bincount([draw(logits) for _ in range(20_000)], minlength=3) / 20_000
    expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
    np.testing.assert_allclose(counts, expected, atol=0.015)


def test_prime_with_unknown_characters_lists_them(model):
    with pytest.raises(CharRNNError, match=r"'X', 'Z'"):
        next(generate(model, VOCAB, 10, prime="abXcZX"))
