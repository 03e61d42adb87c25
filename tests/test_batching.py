"""Continuous batching (tasks/batching.py): samples drawn as rows of one batch, each as it would be drawn alone;
rows join and leave between steps; stop strings, streamed pieces, cancellation and log-probabilities."""

import threading
import time

import numpy as np
import pytest

from charrnn.data.text import Vocab
from charrnn.nn.functional import log_softmax
from charrnn.nn.language_model import LanguageModelNetwork
from charrnn.nn.stack import RecurrentSpec
from charrnn.tasks.batching import Batcher, Sample
from charrnn.tasks.sampling import read_prime, sample_ids

VOCAB = Vocab(sorted(set("abcdefghijklmnopqrstuvwxyz .,;:!?\n'-ABCD")))
OPTIONS = [{}, {"top_k": 5}, {"top_p": 0.8, "temperature": 0.7}, {"temperature": 0}, {"top_k": 8, "top_p": 0.6}]


@pytest.fixture
def network() -> LanguageModelNetwork:
    return LanguageModelNetwork(len(VOCAB), RecurrentSpec("lstm", 32, 2), seed=3)


@pytest.fixture
def batcher(network):
    steps: list[int] = []
    running = Batcher(network, VOCAB, threading.Lock(), on_step=steps.append, block=7)  # several noise blocks
    running.steps = steps
    try:
        yield running
    finally:
        running.close()


def alone(network, length: int, seed: int, prime: str = "ab", **options: object) -> str:
    """What `charrnn sample --seed` draws."""
    return "".join(
        VOCAB.chars[ids[0]] for ids in sample_ids(network, VOCAB, length, 1, seed=seed, prime=prime, **options)
    )


def until(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the batcher did not get there in time"
        time.sleep(0.002)


def wait(samples: list[Sample], seconds: float = 30) -> None:
    until(lambda: all(sample.finish_reason is not None for sample in samples), seconds)


def test_a_seeded_sample_alone_is_what_charrnn_sample_draws(network, batcher):
    for options in OPTIONS:
        sample = Sample("ab", 120, seed=4, **options)
        batcher.submit([sample])
        wait([sample])
        assert sample.text == alone(network, 120, 4, **options) and sample.finish_reason == "length", options


def test_rows_of_one_batch_draw_each_what_they_would_alone(network, batcher):
    samples = [Sample("ab" if k % 3 else "", 60 + 7 * k, seed=10 + k, **OPTIONS[k % len(OPTIONS)]) for k in range(12)]
    for sample in samples:
        batcher.submit([sample])
    wait(samples)
    for k, sample in enumerate(samples):
        expected = alone(network, 60 + 7 * k, 10 + k, "ab" if k % 3 else "", **OPTIONS[k % len(OPTIONS)])
        assert sample.text == expected, k
    assert max(batcher.steps) > 1  # they were advanced together
    assert sum(batcher.steps) == sum(len(sample.chars) for sample in samples)  # no step for a finished row


def test_a_row_that_joins_late_and_one_that_leaves_early_change_nothing_for_the_others(network, batcher):
    long = Sample("ab", 400, seed=1)
    batcher.submit([long])
    time.sleep(0.05)
    late = [Sample("c", 30, seed=2), Sample("d", 5, seed=3)]
    batcher.submit([late[0]])
    batcher.submit([late[1]])
    wait([long, *late])
    assert long.text == alone(network, 400, 1)
    assert [s.text for s in late] == [alone(network, 30, 2, "c"), alone(network, 5, 3, "d")]


def test_stop_strings_end_a_row_kept_or_left_out_and_pieces_make_the_text(network, batcher):
    text = alone(network, 300, 5)
    stop = text[40:42]
    first = text.index(stop)
    pieces: dict[int, list[str]] = {0: [], 1: []}
    kept = Sample("ab", 300, seed=5, stop=("zzz", stop), on_piece=lambda s, a, b: pieces[0].append(s.text[a:b]))
    dropped = Sample(
        "ab", 300, seed=5, stop=(stop,), keep_stop=False, on_piece=lambda s, a, b: pieces[1].append(s.text[a:b])
    )
    batcher.submit([kept])
    batcher.submit([dropped])
    wait([kept, dropped])
    assert kept.text == text[: first + 2] and kept.finish_reason == "stop"
    assert dropped.text == text[:first] and dropped.finish_reason == "stop"
    assert "".join(pieces[0]) == kept.text and "".join(pieces[1]) == dropped.text
    assert len(pieces[0]) >= first // 8  # in pieces as they are drawn, not at the end
    last = Sample("ab", first + 2, seed=5, stop=(stop,), keep_stop=False)  # the stop string ends on its last character
    huge = Sample("ab", 10, seed=5, top_k=10**30)  # any k beyond the vocabulary keeps every character
    batcher.submit([last])
    batcher.submit([huge])
    wait([last, huge])
    assert (last.text, last.finish_reason, last.drawn) == (text[:first], "stop", first + 2)
    assert huge.text == text[:10]


def test_a_cancelled_row_leaves_the_batch_at_the_next_step(batcher):
    stays, goes = Sample("ab", 3000, seed=1), Sample("ab", 3000, seed=2)
    batcher.submit([stays, goes])
    until(lambda: len(goes.chars) >= 20)
    goes.cancelled = True
    until(lambda: batcher.size == 1)
    drawn = len(goes.chars)
    time.sleep(0.05)
    assert goes.finish_reason == "cancelled" and len(goes.chars) == drawn  # nothing more is drawn for it
    assert stays.finish_reason is None and batcher.size == 1
    stays.cancelled = True
    wait([stays])
    assert batcher.size == 0


def test_log_probabilities_are_the_models_own_and_rank_the_alternatives(network, batcher):
    sample = Sample("abc", 20, seed=6, temperature=0.5, top_k=3, logprobs=4, prime_logprobs=True)
    batcher.submit([sample])
    wait([sample])
    network.prepare()
    logits, _ = read_prime(network, VOCAB, "abc" + sample.text[:-1], 1)
    # the next character after each prefix, at temperature 1, nothing cut
    expected = log_softmax(logits.astype(np.float64))
    ids = VOCAB.encode("abc" + sample.text)
    np.testing.assert_allclose(sample.prime_token_logprobs, expected[np.arange(2), ids[1:3]], atol=1e-6)
    np.testing.assert_allclose(sample.token_logprobs, expected[np.arange(2, 22), ids[3:]], atol=1e-6)
    for top, row in zip(sample.top_logprobs, expected[2:], strict=True):
        assert list(top.values()) == sorted(top.values(), reverse=True) and len(top) == 4
        assert max(top.values()) == pytest.approx(row.max())
