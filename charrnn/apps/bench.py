"""`charrnn bench`: a task's own training steps and the use of the trained network (sampling, reading or decoding),
timed, on random data of the task's form or on the user's own."""

import ctypes
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from charrnn.errors import CharRNNError
from charrnn.nn.language_model import LanguageModelNetwork
from charrnn.nn.seq2seq import Seq2SeqNetwork
from charrnn.tasks import registry
from charrnn.training.config import Config
from charrnn.training.trainer import Trainer

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
    """Time `steps` training steps of `config`'s task after `warmup`, each the `Trainer`'s own step (the task's
    batches, forward pass, loss and backward pass, then clipping and the optimizer); then the trained network's
    use, as the task times it.

    "forward" is the step's time outside the network's backward pass (the loss included), "backward" the backward
    pass, "update" clipping and the optimizer; for an encoder-decoder, forward is split further into the encoder
    (and bridge), the decoder's recurrent layers, and attention with the output layer."""
    trainer = Trainer(config, data)
    task, net = trainer.task, trainer.network
    network_step = _clocked(task, "loss_and_grads")
    backward = _clocked(net, "backward")
    parts = _time_parts(net) if isinstance(net, Seq2SeqNetwork) else {}
    seconds, examples, chars = 0.0, 0, 0
    for step in range(warmup + steps):
        if step == warmup:
            seconds, examples, chars = 0.0, 0, 0
            parts.update(dict.fromkeys(parts, 0.0))
            network_step[0] = backward[0] = 0.0
        started = time.perf_counter()
        trainer.train_step()
        seconds += time.perf_counter() - started
        examples, chars = examples + task.batch_examples, chars + task.batch_chars
    split = {
        "forward": network_step[0] - backward[0],
        "backward": backward[0],
        "update": seconds - network_step[0],
    }
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
    if isinstance(net, LanguageModelNetwork):
        flops = train_flops_per_char(config.cell, config.layers, config.hidden, len(data.vocab))
        result["gflops"] = flops * result["train_chars_per_sec"] / 1e9
    return result | task.time_inference() | {"peak_rss_mb": peak_rss_mb(), "blas": blas_in_use()}


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


# -- side by side with PyTorch -------------------------------------------------------------------------------------

TORCH_REFERENCE = Path(__file__).resolve().parents[2] / "benchmarks" / "torch_reference.py"


def set_blas_threads(count: int) -> int:
    """Run BLAS on `count` threads from now on (OpenBLAS, as NumPy's wheels bundle it, or the system's); returns
    the count it had."""
    openblas = _openblas()
    if openblas is None:
        raise CharRNNError(
            f"--threads needs NumPy on OpenBLAS, and this NumPy's BLAS was not found; set OPENBLAS_NUM_THREADS={count} "
            "(or OMP_NUM_THREADS) before the command instead."
        )
    lib, name = openblas
    getter, setter = getattr(lib, name("get_num_threads")), getattr(lib, name("set_num_threads"))
    setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
    before = getter()
    setter(count)
    return before


def blas_in_use() -> str:
    """The BLAS NumPy multiplies with, as `charrnn bench` reports it: OpenBLAS's version, the kernels it picked for
    this CPU (SkylakeX on a Zen 4, Haswell on others: the same code runs at other speeds) and its threads."""
    openblas = _openblas()
    if openblas is None:
        return "not OpenBLAS (NumPy's own build)"
    lib, name = openblas
    config, corename, threads = (getattr(lib, name(f)) for f in ("get_config", "get_corename", "get_num_threads"))
    config.restype = corename.restype = ctypes.c_char_p
    threads.restype = ctypes.c_int
    name_and_version = config().decode().split()[:2]  # "OpenBLAS", "0.3.31" (NumPy's build adds ".188.0")
    version = ".".join(name_and_version[1].split(".")[:3]) if len(name_and_version) == 2 else ""
    count = threads()
    return f"OpenBLAS {version} {corename().decode()}, {count} thread{'s' if count > 1 else ''}"


def _openblas() -> tuple[ctypes.CDLL, Callable[[str], str]] | None:
    """The OpenBLAS NumPy loaded, and how its functions are named (`scipy_openblas_..64_` in NumPy's wheels)."""
    for path in _openblas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                if hasattr(lib, f"{prefix}_set_num_threads{suffix}"):
                    return lib, lambda function, prefix=prefix, suffix=suffix: f"{prefix}_{function}{suffix}"
    return None


def _openblas_paths() -> list[str]:
    base = Path(np.__file__).parent
    paths = [str(p) for p in [*base.parent.glob("numpy.libs/*openblas*"), *base.glob(".dylibs/*openblas*")]]
    maps = Path("/proc/self/maps")
    if maps.exists():
        paths += sorted({line.split()[-1] for line in maps.read_text().splitlines() if "openblas" in line})
    return paths


def torch_arguments(config: Config, corpus: Path | None, vocab_size: int, warmup: int, steps: int) -> list[str]:
    """The PyTorch reference's flags for the model, batch and data that `config` benches."""
    c = config
    args = ["--task", c.task, "--cell", c.cell, "--layers", str(c.layers), "--hidden", str(c.hidden)]
    args += ["--embed", str(c.embed), "--batch", str(c.batch_size), "--warmup", str(warmup), "--seed", str(c.seed)]
    args += ["--lr", str(c.lr), "--clip", str(c.clip)]
    args += ["--steps", str(steps + warmup)]
    if corpus is not None:
        args += ["--corpus", str(corpus)]
    return args + registry.get(c.task).torch_flags(c, vocab_size)


def torch_bench(python: str, arguments: list[str], threads: int) -> dict[str, float]:
    """Run the PyTorch reference with `python` on `threads` threads; {line kind: {field: value}} of its output."""
    if not TORCH_REFERENCE.exists():
        raise CharRNNError(
            f"--torch runs benchmarks/torch_reference.py of a clone of charrnn's repository, and {TORCH_REFERENCE} "
            "is not there; run charrnn from a clone (pip install -e .)."
        )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env |= {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    command = [python, str(TORCH_REFERENCE), *arguments, "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CharRNNError(f"the PyTorch reference failed under {python} ({last}); check that it has torch installed.")
    found: dict[str, dict[str, float]] = {}
    for line in done.stdout.splitlines():
        kind, *fields = line.split()
        if kind in ("RESULT", "SAMPLE", "INFER"):
            found[kind] = {k: float(v) for k, _, v in (f.partition("=") for f in fields) if v[:1].isdigit()}
    return found


def ratios(task: str, ours: list[dict], theirs: list[dict]) -> list[dict[str, Any]]:
    """For each measure of the task, the medians of both sides over the pairs and the median of the pairs' ratios."""
    rows = []
    for name, key, kind, field in registry.get(task).torch_measures:
        a, b = [r[key] for r in ours], [r[kind][field] for r in theirs]
        pairs = [x / y for x, y in zip(a, b, strict=True)]
        rows.append({"measure": name, "charrnn": median(a), "torch": median(b), "ratio": median(pairs), "pairs": pairs})
    return rows
