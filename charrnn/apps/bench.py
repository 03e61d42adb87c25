"""`charrnn bench`: a task's own training steps and the use of the trained network (sampling, reading or decoding),
timed, on random data of the task's form or on the user's own."""

import resource
import sys
import time
from typing import Any

import numpy as np

from charrnn.nn.language_model import CharModel
from charrnn.nn.optim import Adam, clip_gradients
from charrnn.nn.seq2seq import Seq2SeqNetwork
from charrnn.training import registry
from charrnn.training.config import Config

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def train_flops_per_char(cell: str, layers: int, hidden: int, vocab_size: int) -> int:
    """GEMM FLOPs of one training character counted as for a one-hot model (3 × forward), as torch_ref.py does."""
    g = GATES[cell]
    forward = sum(2 * ((vocab_size if i == 0 else hidden) * g * hidden + hidden * g * hidden) for i in range(layers))
    return 3 * (forward + 2 * hidden * vocab_size)


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_bench(config: Config, data: Any, warmup: int = 5, steps: int = 50) -> dict[str, Any]:
    """Time `steps` training steps of `config`'s task after `warmup`: the task's own step (its batches, forward
    pass, loss and backward pass), clipping and Adam; then the trained network's use, as the task times it.

    "forward" is the step's time outside the network's backward pass (the loss included), "backward" the backward
    pass; for an encoder-decoder, forward is split further into the encoder (and bridge), the decoder's recurrent
    layers, and attention with the output layer."""
    task = registry.get(config.task)(config, data)
    net = task.model
    optimizer = Adam(net.flat_params, lr=2e-3)
    rng = np.random.default_rng(0)
    backward = _clocked(net, "backward")
    parts = _time_parts(net) if isinstance(net, Seq2SeqNetwork) else {}
    phases = {"step": 0.0, "update": 0.0}
    examples = chars = 0
    for step in range(warmup + steps):
        if step == warmup:
            phases, examples, chars = dict.fromkeys(phases, 0.0), 0, 0
            parts.update(dict.fromkeys(parts, 0.0))
            backward[0] = 0.0
        t0 = time.perf_counter()
        task.loss_and_grads(step, rng)
        t1 = time.perf_counter()
        clip_gradients(net.flat_grads, 5.0)
        optimizer.step(net.flat_grads)
        task.accept()
        t2 = time.perf_counter()
        phases["step"] += t1 - t0
        phases["update"] += t2 - t1
        examples, chars = examples + task.batch_examples, chars + task.batch_chars
    seconds = sum(phases.values())
    split = {"forward": phases["step"] - backward[0], "backward": backward[0], "update": phases["update"]}
    result = {
        **{k: getattr(config, k) for k in ("task", "cell", "layers", "hidden", "bidirectional", "batch_size")},
        **{k: getattr(config, k) for k in ("seq_len", "dtype", "embed", "attention")},
        "batch": task.batch(config),
        "vocab_size": len(data.vocab),
        "params": net.num_params,
        "steps": steps,
        "train_chars_per_sec": chars / seconds,
        "ms_per_step": 1000 * seconds / steps,
        **{f"{k}_frac": v / seconds for k, v in split.items()},
        **{f"{k}_frac": v / seconds for k, v in parts.items()},
    }
    if examples:
        result |= {"mean_length": chars / examples, "train_examples_per_sec": examples / seconds}
    if isinstance(net, CharModel):
        flops = train_flops_per_char(config.cell, config.layers, config.hidden, len(data.vocab))
        result["gflops"] = flops * result["train_chars_per_sec"] / 1e9
    return result | task.time_inference() | {"peak_rss_mb": peak_rss_mb()}


def _clocked(obj: Any, name: str) -> list[float]:
    """Wrap the method `name` of `obj` so that its time adds up in the list's one element."""
    total = [0.0]
    method = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    setattr(obj, name, timed)
    return total


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
