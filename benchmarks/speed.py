"""Training and inference speed of charrnn on every task, alone or side by side with PyTorch, at 1 and 2 threads.

    .venv/bin/python benchmarks/speed.py                              # the language-model presets, charrnn alone
    .venv/bin/python benchmarks/speed.py --task lm classify tag seq2seq --torch --threads 1 2 --pairs 3
    .venv/bin/python benchmarks/speed.py wordlang --torch --threads 2

Presets: five language models on random text of 65 symbols (one-hot input), and the README config of each other
task on its data set (charrnn data get wordlang truecase g2p). With --torch each preset runs `charrnn bench` and
benchmarks/torch_reference.py alternately (charrnn, PyTorch, charrnn, ...), --pairs times, each in a fresh
process on the same model, batch, data and steps: Adam, a global-norm clip at 5, float32, no dropout. It prints
one line per measure, `PRESET, N threads, MEASURE: charrnn X / torch Y = RATIO (pairs ...)`: the medians of both
sides and the median of the pairs' ratios. PyTorch runs from .venv-torch/bin/python (or --torch-python):

    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from charrnn.apps.bench import ratios, torch_arguments, torch_bench
from charrnn.data.datasets import resolve
from charrnn.tasks import registry
from charrnn.training.config import build_config

REPO = Path(__file__).resolve().parent.parent
LM = {"task": "lm", "embed": 0}
PRESETS = {  # name: charrnn bench's keys, and its timed steps
    "lstm-2x256": ({**LM, "cell": "lstm", "layers": 2, "hidden": 256, "batch_size": 32, "seq_len": 64}, 120),
    "lstm-2x512": ({**LM, "cell": "lstm", "layers": 2, "hidden": 512, "batch_size": 50, "seq_len": 50}, 30),
    "lstm-1x128": ({**LM, "cell": "lstm", "layers": 1, "hidden": 128, "batch_size": 32, "seq_len": 64}, 600),
    "gru-2x256": ({**LM, "cell": "gru", "layers": 2, "hidden": 256, "batch_size": 32, "seq_len": 64}, 80),
    "rnn-1x512": ({**LM, "cell": "rnn", "layers": 1, "hidden": 512, "batch_size": 32, "seq_len": 64}, 250),
    "wordlang": (  # configs/wordlang.yaml
        {"task": "classify", "corpus": "data:wordlang/train.tsv", "cell": "lstm", "layers": 1, "hidden": 512}
        | {"bidirectional": True, "embed": 24, "pool": "max", "batch_size": 128},
        40,
    ),
    "truecase": (  # configs/truecase.yaml
        {"task": "tag", "corpus": "data:truecase/train.tsv", "cell": "lstm", "layers": 2, "hidden": 256}
        | {"bidirectional": True, "embed": 0, "batch_size": 64},
        30,
    ),
    "g2p": (  # configs/g2p.yaml
        {"task": "seq2seq", "corpus": "data:g2p/train.tsv", "cell": "lstm", "layers": 2, "hidden": 256}
        | {"bidirectional": True, "embed": 0, "attention": "general", "input_feeding": True}
        | {"target_units": "words", "batch_size": 128},
        30,
    ),
}
WARMUP = 5


def environment(threads: int) -> dict[str, str]:
    """The environment of a timed command: `threads` BLAS/OpenMP threads, no OpenBLAS core or cache overrides."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    return env | {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def charrnn_bench(keys: dict, steps: int, threads: int) -> dict:
    """`charrnn bench --json` of a preset, in a process of its own."""
    command = [sys.executable, "-m", "charrnn", "bench", "--json", "--steps", str(steps), "--warmup", str(WARMUP)]
    command += ["--threads", str(threads)]
    for key, value in keys.items():
        flag = "--" + key.replace("_", "-")
        if key == "corpus":
            command.append(value)
        elif value is True:
            command.append(flag)
        else:
            command += [flag, str(value)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment(threads))
    if done.returncode:
        sys.exit(f"speed.py: {' '.join(command[2:])} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def torch_command(keys: dict, steps: int) -> list[str]:
    """The PyTorch reference's flags for a preset (its data set's file, or random text written for it)."""
    config = build_config(None, {**keys, "corpus": [keys.get("corpus", "random")], "dropout": 0.0, "val_frac": 0.0})
    corpus = resolve(keys["corpus"]) if "corpus" in keys else random_text()
    return torch_arguments(config, corpus, 65, WARMUP, steps)


def random_text() -> Path:
    """400,000 random characters of 65 symbols, as charrnn bench's random language-model data has."""
    path = REPO / "benchmarks" / "out" / "random-65.txt"
    if not path.exists():
        import random

        rng = random.Random(0)
        symbols = [chr(c) for c in range(32, 96)] + ["\n"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(rng.choice(symbols) for _ in range(400_000)), encoding="utf-8")
    return path


def compare(names: list[str], python: str, pairs: int, threads: list[int]) -> None:
    worst = []
    for count in threads:
        for name in names:
            keys, steps = PRESETS[name]
            arguments = torch_command(keys, steps)
            ours, theirs = [], []
            for _ in range(pairs):
                ours.append(charrnn_bench(keys, steps, count))
                theirs.append(torch_bench(python, arguments, count))
            for row in ratios(keys["task"], ours, theirs):
                worst.append((row["ratio"], f"{name}, {count} threads, {row['measure']}"))
                print(
                    f"{name}, {count} thread{'s' if count > 1 else ''}, {row['measure']}: charrnn {row['charrnn']:,.0f}"
                    f" / torch {row['torch']:,.0f} = {row['ratio']:.2f}  (pairs "
                    + " ".join(f"{r:.2f}" for r in row["pairs"])
                    + ")",
                    flush=True,
                )
    ratio, where = min(worst)
    print(f"smallest ratio charrnn/torch: {ratio:.2f} ({where})")


def alone(names: list[str], threads: list[int]) -> None:
    for count in threads:
        for name in names:
            keys, steps = PRESETS[name]
            result = charrnn_bench(keys, steps, count)
            split = "/".join(f"{100 * result[k]:.0f}" for k in ("forward_frac", "backward_frac", "update_frac"))
            measures = registry.get(keys["task"]).torch_measures
            figures = ", ".join(f"{measure} {result[key]:,.0f}" for measure, key, _, _ in measures)
            print(f"{name}, {count} threads: {figures}; {result['ms_per_step']:.1f} ms/step, fwd/bwd/upd % {split}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", help=f"any of {', '.join(PRESETS)} (default: those of --task)")
    parser.add_argument("--task", nargs="+", choices=registry.names(), default=["lm"], help="the presets of these")
    parser.add_argument("--torch", action="store_true", help="also run PyTorch alternately and print the ratios")
    parser.add_argument("--pairs", type=int, default=3, help="with --torch: charrnn/PyTorch pairs per preset")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to run at")
    parser.add_argument("--torch-python", default=str(REPO / ".venv-torch" / "bin" / "python"))
    args = parser.parse_args()
    names = args.presets or [n for n, (keys, _) in PRESETS.items() if keys["task"] in args.task]
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        sys.exit(f"speed.py: unknown preset {unknown[0]!r}; choose from {', '.join(PRESETS)}")
    if args.torch:
        if not Path(args.torch_python).exists():
            sys.exit(
                f"speed.py: no Python at {args.torch_python}; make one with PyTorch (see --help) or pass --torch-python"
            )
        compare(names, args.torch_python, args.pairs, args.threads)
    else:
        alone(names, args.threads)


if __name__ == "__main__":
    main()
