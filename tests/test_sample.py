"""One-to-many sampling: exact length, reproducible, temperature, prime checks."""

import numpy as np
import pytest

from charrnn.data import Vocab
from charrnn.errors import CharRNNError
from charrnn.model import CharModel
from charrnn.sample import draw, generate

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
    rng = np.random.default_rng(0)
    assert all(draw(logits, 0.0, rng) == 1 for _ in range(20))


def test_low_temperature_concentrates_on_the_likeliest():
    logits = np.array([0.0, 1.0, 0.5])
    rng = np.random.default_rng(0)
    draws = [draw(logits, 0.05, rng) for _ in range(200)]
    assert draws.count(1) == 200
    spread = {draw(logits, 5.0, rng) for _ in range(200)}
    assert spread == {0, 1, 2}


def test_draw_follows_the_softmax():
    logits = np.log(np.array([0.1, 0.6, 0.3]))
    rng = np.random.default_rng(1)
    counts = np.bincount([draw(logits, 1.0, rng) for _ in range(20_000)], minlength=3) / 20_000
    np.testing.assert_allclose(counts, [0.1, 0.6, 0.3], atol=0.015)


def test_prime_with_unknown_characters_lists_them(model):
    with pytest.raises(CharRNNError, match=r"'X', 'Z'"):
        next(generate(model, VOCAB, 10, prime="abXcZX"))
