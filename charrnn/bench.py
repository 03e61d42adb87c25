"""`charrnn bench`: full training steps and single-stream sampling (or, for classify and tag, reading whole batches
of examples), timed, on synthetic data or the user's own."""

import resource
import sys
import time
from typing import Any

import numpy as np

from charrnn.data import Batches, Vocab, id_dtype
from charrnn.examples import ExampleBatches, pad
from charrnn.model import CharModel, softmax_cross_entropy
from charrnn.optim import Adam, clip_gradients
from charrnn.sample import generate
from charrnn.supervised import ExampleNetwork, log_probabilities

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def train_flops_per_char(cell: str, layers: int, hidden: int, vocab_size: int) -> int:
    """GEMM FLOPs of one training character counted as for a one-hot model (3 × forward), as torch_ref.py does."""
    g = GATES[cell]
    forward = sum(2 * ((vocab_size if i == 0 else hidden) * g * hidden + hidden * g * hidden) for i in range(layers))
    return 3 * (forward + 2 * hidden * vocab_size)


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_bench(
    ids: np.ndarray,
    vocab_size: int,
    cell: str = "lstm",
    layers: int = 2,
    hidden: int = 256,
    batch_size: int = 32,
    seq_len: int = 64,
    dtype: str = "float32",
    warmup: int = 5,
    steps: int = 50,
    sample_chars: int = 2000,
) -> dict[str, Any]:
    """Time `steps` training steps (forward, backward, clipping, Adam) after `warmup`, then sampling."""
    model = CharModel(vocab_size, hidden, layers, cell, dtype, seed=0)
    optimizer = Adam(model.flat_params, lr=2e-3)
    batches = Batches(ids, batch_size, seq_len)
    state = model.initial_state(batch_size)
    phases = {"forward": 0.0, "backward": 0.0, "update": 0.0}
    for step in range(warmup + steps):
        if step == warmup:
            phases = dict.fromkeys(phases, 0.0)
        x, y = batches.chunk(step % batches.chunks_per_epoch)
        t0 = time.perf_counter()
        logits, state = model.forward(x, state)
        _, dlogits = softmax_cross_entropy(logits, y.reshape(-1), grad=True)
        t1 = time.perf_counter()
        model.backward(dlogits)
        t2 = time.perf_counter()
        clip_gradients(model.flat_grads, 5.0)
        optimizer.step(model.flat_grads)
        t3 = time.perf_counter()
        phases["forward"] += t1 - t0
        phases["backward"] += t2 - t1
        phases["update"] += t3 - t2
    seconds = sum(phases.values())
    chars_per_sec = steps * batch_size * seq_len / seconds

    vocab = Vocab([chr(32 + i) for i in range(vocab_size)])
    sampler = generate(model, vocab, sample_chars + 50, seed=0)
    for _ in range(50):
        next(sampler)
    t0 = time.perf_counter()
    for _ in sampler:
        pass
    sample_chars_per_sec = sample_chars / (time.perf_counter() - t0)

    return {
        "cell": cell,
        "layers": layers,
        "hidden": hidden,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "dtype": dtype,
        "vocab_size": vocab_size,
        "params": model.num_params,
        "steps": steps,
        "train_chars_per_sec": chars_per_sec,
        "ms_per_step": 1000 * seconds / steps,
        "forward_frac": phases["forward"] / seconds,
        "backward_frac": phases["backward"] / seconds,
        "update_frac": phases["update"] / seconds,
        "gflops": train_flops_per_char(cell, layers, hidden, vocab_size) * chars_per_sec / 1e9,
        "sample_chars_per_sec": sample_chars_per_sec,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_task_bench(
    inputs: list[np.ndarray],
    targets: list[np.ndarray] | np.ndarray,
    vocab_size: int,
    num_outputs: int,
    task: str = "classify",
    cell: str = "lstm",
    layers: int = 2,
    hidden: int = 256,
    batch_size: int = 128,
    bidirectional: bool = False,
    pool: str = "last",
    dtype: str = "float32",
    warmup: int = 5,
    steps: int = 50,
) -> dict[str, Any]:
    """Time `steps` training steps of a classifier or tagger on batches of examples grouped by length, as training
    makes them, then reading (inference) of all the examples."""
    net = ExampleNetwork(task, vocab_size, num_outputs, hidden, layers, cell, bidirectional, pool, dtype)
    optimizer = Adam(net.flat_params, lr=2e-3)
    batches = ExampleBatches([len(s) for s in inputs], batch_size, seed=0)
    phases = {"forward": 0.0, "backward": 0.0, "update": 0.0}
    examples = chars = 0
    for step in range(warmup + steps):
        if step == warmup:
            phases, examples, chars = dict.fromkeys(phases, 0.0), 0, 0
        index = batches.indices(step)
        x, lengths = pad([inputs[i] for i in index], inputs[0].dtype)
        y = np.asarray(targets)[index] if task == "classify" else pad([targets[i] for i in index], np.int64)[0]
        examples, chars = examples + len(index), chars + int(lengths.sum())
        t0 = time.perf_counter()
        logits = net.forward(x, lengths, dropout=0.1, rng=np.random.default_rng(step))
        _, d_logits = softmax_cross_entropy(logits, y.reshape(-1), True, net.positions(lengths, x.shape[0]))
        t1 = time.perf_counter()
        net.backward(d_logits)
        t2 = time.perf_counter()
        clip_gradients(net.flat_grads, 5.0)
        optimizer.step(net.flat_grads)
        t3 = time.perf_counter()
        phases["forward"] += t1 - t0
        phases["backward"] += t2 - t1
        phases["update"] += t3 - t2
    seconds = sum(phases.values())
    t0 = time.perf_counter()
    log_probabilities(net, inputs)
    read = len(inputs) / (time.perf_counter() - t0)
    return {
        "task": task,
        "cell": cell,
        "layers": layers,
        "hidden": hidden,
        "bidirectional": bidirectional,
        "batch_size": batch_size,
        "dtype": dtype,
        "params": net.num_params,
        "steps": steps,
        "mean_length": chars / examples,
        "train_examples_per_sec": examples / seconds,
        "train_chars_per_sec": chars / seconds,
        "ms_per_step": 1000 * seconds / steps,
        "forward_frac": phases["forward"] / seconds,
        "backward_frac": phases["backward"] / seconds,
        "update_frac": phases["update"] / seconds,
        "read_examples_per_sec": read,
        "peak_rss_mb": peak_rss_mb(),
    }


def synthetic_examples(task: str, n: int = 4000, seed: int = 0) -> tuple[list[np.ndarray], list | np.ndarray, int, int]:
    """Random words of 3 to 20 letters (26 of them) with one of 10 labels, or one of 10 output characters each."""
    rng = np.random.default_rng(seed)
    inputs = [rng.integers(0, 26, rng.integers(3, 21)).astype(np.uint8) for _ in range(n)]
    targets = rng.integers(0, 10, n) if task == "classify" else [rng.integers(0, 10, len(s)) for s in inputs]
    return inputs, targets, 26, 10


def synthetic_ids(vocab_size: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab_size, n).astype(id_dtype(vocab_size))
