"""`charrnn bench`: full training steps and single-stream sampling (or, for classify and tag, reading whole batches
of examples), timed, on synthetic data or the user's own."""

import resource
import sys
import time
from typing import Any

import numpy as np

from charrnn.data.examples import ExampleBatches
from charrnn.data.text import Batches, Vocab, id_dtype
from charrnn.nn.example_network import log_probabilities
from charrnn.nn.functional import pad, softmax_cross_entropy
from charrnn.nn.language_model import CharModel
from charrnn.nn.optim import Adam, clip_gradients
from charrnn.nn.seq2seq import Seq2SeqNetwork, decode, teacher_forcing
from charrnn.tasks._old import build_network
from charrnn.tasks.sampling import generate
from charrnn.training.config import Config

INFERENCE_SAMPLE = 2048  # examples read or decoded to time inference: a steady rate, not a whole corpus

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
    embed: int = 0,
) -> dict[str, Any]:
    """Time `steps` training steps (forward, backward, clipping, Adam) after `warmup`, then sampling."""
    model = CharModel(vocab_size, hidden, layers, cell, dtype, seed=0, embed=embed)
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
        "embed": embed,
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
    config: Config,
    inputs: list[np.ndarray],
    targets: list[np.ndarray] | np.ndarray,
    vocab_size: int,
    num_outputs: int,
    warmup: int = 5,
    steps: int = 50,
) -> dict[str, Any]:
    """Time `steps` training steps of a classifier, tagger or encoder-decoder (`config`'s) on batches of examples
    grouped by length, as training makes them, then reading (classify, tag) or decoding (seq2seq) all of them.

    For seq2seq, the forward pass is split further: the encoder (and bridge), the decoder's recurrent layers, and
    attention with the output layer."""
    net = build_network(config, vocab_size, num_outputs)
    optimizer = Adam(net.flat_params, lr=2e-3)
    batches = ExampleBatches([len(s) for s in inputs], config.batch_size, seed=0)
    phases = {"forward": 0.0, "backward": 0.0, "update": 0.0}
    parts = _time_parts(net) if config.task == "seq2seq" else {}
    examples = chars = 0
    for step in range(warmup + steps):
        if step == warmup:
            phases, examples, chars = dict.fromkeys(phases, 0.0), 0, 0
            parts.update(dict.fromkeys(parts, 0.0))
        index = batches.indices(step)
        x, lengths = pad([inputs[i] for i in index], inputs[0].dtype)
        examples, chars = examples + len(index), chars + int(lengths.sum())
        rng = np.random.default_rng(step)
        t0 = time.perf_counter()
        if config.task == "seq2seq":
            decoder_in, decoder_out, counted = teacher_forcing([targets[i] for i in index])
            logits = net.forward(x, lengths, decoder_in, config.dropout, rng)
            y, counted = decoder_out.reshape(-1), counted.reshape(-1)
        else:
            logits = net.forward(x, lengths, config.dropout, rng)
            y = np.asarray(targets)[index] if config.task == "classify" else pad([targets[i] for i in index],
                                                                                   np.int64)[0]  # fmt: skip
            y, counted = y.reshape(-1), net.positions(lengths, x.shape[0])
        _, d_logits = softmax_cross_entropy(logits, y, True, counted)
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
    result = {
        **{k: getattr(config, k) for k in ("task", "cell", "layers", "hidden", "bidirectional", "batch_size", "dtype")},
        "params": net.num_params,
        "steps": steps,
        "mean_length": chars / examples,
        "train_examples_per_sec": examples / seconds,
        "train_chars_per_sec": chars / seconds,
        "ms_per_step": 1000 * seconds / steps,
        **{f"{k}_frac": v / seconds for k, v in phases.items()},
    }
    sample = inputs[:INFERENCE_SAMPLE]
    if config.task == "seq2seq":
        result["attention"] = config.attention
        result |= {f"{k}_frac": v / seconds for k, v in parts.items()}
        for beam in (1, 5):
            t0 = time.perf_counter()
            decode(net, sample, beam=beam)
            result[f"decode_beam{beam}_examples_per_sec"] = len(sample) / (time.perf_counter() - t0)
    else:
        t0 = time.perf_counter()
        log_probabilities([net], sample)
        result["read_examples_per_sec"] = len(sample) / (time.perf_counter() - t0)
    return result | {"peak_rss_mb": peak_rss_mb()}


def _time_parts(net: Seq2SeqNetwork) -> dict[str, float]:
    """Wrap the encoder, the decoder layers' forward passes (whole, or step by step with input feeding) and
    attention so that their time adds up in a dict; a call made inside another timed call is not counted twice."""
    totals = {"encoder": 0.0, "decoder": 0.0, "attention": 0.0}
    running = False

    def clocked(part: str, run: Any) -> Any:
        nonlocal running
        if running:
            return run()
        running = True
        started = time.perf_counter()
        try:
            return run()
        finally:
            totals[part] += time.perf_counter() - started
            running = False

    def timed(obj: Any, name: str, part: str) -> None:
        method = getattr(obj, name)
        setattr(obj, name, lambda *args, **kwargs: clocked(part, lambda: method(*args, **kwargs)))

    def timed_steps(layer: Any) -> None:
        method = layer.forward_steps

        def steps(*args: Any, **kwargs: Any) -> Any:
            inner = clocked("decoder", lambda: method(*args, **kwargs))
            while True:
                try:
                    yield clocked("decoder", lambda: next(inner))
                except StopIteration:
                    return

        layer.forward_steps = steps

    timed(net, "encode", "encoder")
    timed(net, "attend", "attention")
    for layer in net.decoder:
        timed(layer, "forward", "decoder")
        timed(layer, "project", "decoder")
        timed_steps(layer)
    return totals


def synthetic_examples(task: str, n: int = 4000, seed: int = 0) -> tuple[list[np.ndarray], list | np.ndarray, int, int]:
    """Random words of 3 to 20 letters (26 of them) with one of 10 labels, one of 10 output characters each, or
    (seq2seq) a target of 10 tokens and about as many as the word's letters."""
    rng = np.random.default_rng(seed)
    inputs = [rng.integers(0, 26, rng.integers(3, 21)).astype(np.uint8) for _ in range(n)]
    if task == "classify":
        return inputs, rng.integers(0, 10, n), 26, 10
    if task == "tag":
        return inputs, [rng.integers(0, 10, len(s)) for s in inputs], 26, 10
    return inputs, [rng.integers(1, 11, max(1, len(s) + rng.integers(-2, 3))) for s in inputs], 26, 11


def synthetic_ids(vocab_size: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab_size, n).astype(id_dtype(vocab_size))
