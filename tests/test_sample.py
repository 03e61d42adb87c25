"""One-to-many sampling: exact length, reproducible, temperature, top-k, top-p, batches of samples, primes."""

import numpy as np
import pytest

from charrnn.data.text import Vocab
from charrnn.errors import CharRNNError
from charrnn.nn.language_model import LanguageModelNetwork
from charrnn.nn.stack import RecurrentSpec
from charrnn.tasks.sampling import Sampler, allowed, check_prime, generate, sample_ids, sample_texts

VOCAB = Vocab.from_text("abcdefgh \n")


@pytest.fixture
def model():
    return LanguageModelNetwork(len(VOCAB), RecurrentSpec("lstm", 16, 2), seed=5)


def test_length_is_exact_and_the_same_seed_gives_the_same_text(model):
    a = "".join(generate(model, VOCAB, 300, seed=11))
    b = "".join(generate(model, VOCAB, 300, seed=11))
    c = "".join(generate(model, VOCAB, 300, seed=12))
    assert len(a) == 300 and a == b and a != c


def test_temperature_zero_is_deterministic_and_is_argmax(model):
    greedy = [int(ids[0]) for ids in sample_ids(model, VOCAB, 40, temperature=0.0, prime="ab", seed=1)]
    assert greedy == [int(ids[0]) for ids in sample_ids(model, VOCAB, 40, temperature=0.0, prime="ab", seed=2)]
    state = model.initial_state(1)
    logits, state = model.forward(VOCAB.encode("ab").reshape(-1, 1), state)
    expected = []
    for _ in range(40):
        expected.append(int(np.argmax(logits[-1])))
        logits, state = model.forward(np.array([[expected[-1]]]), state)
    assert greedy == expected


def draws(sampler: Sampler, logits: np.ndarray, n: int = 4000) -> np.ndarray:
    return np.array([sampler(logits[None, :])[0] for _ in range(n)])


def test_low_temperature_concentrates_on_the_likeliest():
    logits = np.array([0.0, 1.0, 0.5])
    assert set(draws(Sampler(3, 0.05, np.random.default_rng(0)), logits, 300)) == {1}
    assert set(draws(Sampler(3, 5.0, np.random.default_rng(0)), logits, 300)) == {0, 1, 2}


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_draws_follow_the_softmax(temperature):
    logits = np.log(np.array([0.1, 0.6, 0.3]))
    sampler = Sampler(3, temperature, np.random.default_rng(1), block=7)  # several noise blocks
    counts = np.bincount(draws(sampler, logits, 20_000), minlength=3) / 20_000
    expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
    np.testing.assert_allclose(counts, expected, atol=0.015)


def test_top_k_never_draws_outside_the_k_likeliest():
    logits = np.random.default_rng(3).normal(size=30)
    top = set(np.argsort(-logits)[:5].tolist())
    assert set(draws(Sampler(30, 2.0, np.random.default_rng(0), top_k=5), logits).tolist()) == top


@pytest.mark.parametrize(
    ("p", "kept"), [(0.3, {0}), (0.5, {0}), (0.7, {0, 1}), (0.79, {0, 1}), (0.81, {0, 1, 2}), (1.0, {0, 1, 2, 3})]
)
def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p(p, kept):
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    sampler = Sampler(4, 1.0, np.random.default_rng(0), top_p=p)
    assert set(np.flatnonzero(allowed(np.log(probs)[None, :], np.array([0]), np.array([p]))[0]).tolist()) == kept
    assert set(draws(sampler, np.log(probs), 2000).tolist()) == kept


def test_top_p_after_top_k():
    probs = np.array([0.4, 0.3, 0.2, 0.1])
    keep = allowed(np.log(probs)[None, :], np.array([2]), np.array([0.5]))  # renormalised: 4/7, 3/7
    assert np.flatnonzero(keep[0]).tolist() == [0]


def test_batched_samples_are_reproducible_and_differ(model):
    a = sample_texts(model, VOCAB, 60, 8, seed=4)
    assert a == sample_texts(model, VOCAB, 60, 8, seed=4)
    assert len(set(a)) == 8 and all(len(t) == 60 for t in a)


def test_stop_string_ends_each_sample_after_it(model):
    texts = sample_texts(model, VOCAB, 400, 6, stop="a", seed=0)
    assert all(t.endswith("a") and t.count("a") == 1 for t in texts)


def test_prime_with_unknown_characters_lists_them_or_skips_them():
    with pytest.raises(CharRNNError, match=r"'X' \(2\), 'Z' \(1\); remove them or pass --unknown skip"):
        check_prime(VOCAB, "abXcZX")
    assert check_prime(VOCAB, "abXcZX", "skip") == "abc"


@pytest.mark.parametrize(("option", "value"), [("temperature", -1.0), ("top_k", -1), ("top_p", 0.0), ("top_p", 1.5)])
def test_bad_sampling_options(option, value):
    with pytest.raises(CharRNNError, match=option.replace("_", "-")):
        Sampler(4, **{"temperature": 1.0, option: value})


def test_unknown_policy_must_be_error_or_skip():
    with pytest.raises(CharRNNError, match="--unknown must be error or skip"):
        check_prime(VOCAB, "abc", "drop")
