"""Training and sampling speed of the NumPy core on five model shapes, and side by side with PyTorch.

    .venv/bin/python benchmarks/speed.py            # charrnn alone: chars/s, GFLOP/s, split, sampling
    .venv/bin/python benchmarks/speed.py --torch    # and the ratio to PyTorch, pair by pair
    .venv/bin/python benchmarks/speed.py lstm-2x256 --torch --pairs 5

With --torch each preset runs `charrnn bench` and benchmarks/torch_reference.py alternately (charrnn, PyTorch,
charrnn, ...), --pairs times, and prints the median of the pairs' ratios of training characters a second (and of
sampling speed). Both sides train the same model on 65 symbols: one-hot input, Adam, a global-norm clip at 5,
float32. PyTorch runs from .venv-torch/bin/python (or --torch-python), a virtual environment of its own:

    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy
"""

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH_REFERENCE = REPO / "benchmarks" / "torch_reference.py"
PRESETS = {  # name: cell, layers, hidden, batch, seq, timed steps
    "lstm-2x256": ("lstm", 2, 256, 32, 64, 120),
    "lstm-2x512": ("lstm", 2, 512, 50, 50, 30),
    "lstm-1x128": ("lstm", 1, 128, 32, 64, 600),
    "gru-2x256": ("gru", 2, 256, 32, 64, 80),
    "rnn-1x512": ("rnn", 1, 512, 32, 64, 250),
}
SAMPLE_CHARS = 5000


def bench(cell: str, layers: int, hidden: int, batch: int, seq: int, steps: int) -> dict:
    sizes = {"--cell": cell, "--layers": layers, "--hidden": hidden, "--batch-size": batch, "--seq-len": seq}
    command = [sys.executable, "-m", "charrnn", "bench", "--steps", str(steps), "--vocab-size", "65", "--json"]
    command += [str(part) for item in sizes.items() for part in item]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def torch_bench(
    python: str, corpus: Path, cell: str, layers: int, hidden: int, batch: int, seq: int, steps: int
) -> dict[str, float]:
    """PyTorch's training and sampling characters a second on the same shapes, on random text of 65 symbols."""
    command = [
        python,
        str(TORCH_REFERENCE),
        "--corpus",
        str(corpus),
        "--cell",
        cell,
        "--layers",
        str(layers),
        "--hidden",
        str(hidden),
        "--embed",
        "0",
        "--batch",
        str(batch),
        "--seq",
        str(seq),
        "--steps",
        str(steps + 5),
        "--warmup",
        "5",
        "--sample-bench",
        str(SAMPLE_CHARS),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    train = re.search(r"RESULT .* chars/s=([0-9.]+)", out)
    sample = re.search(r"SAMPLE .* chars/s=([0-9.]+)", out)
    return {"train": float(train.group(1)), "sample": float(sample.group(1))}


def compare(names: list[str], python: str, pairs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "random.txt"
        rng = random.Random(0)
        symbols = [chr(c) for c in range(32, 96)] + ["\n"]
        corpus.write_text("".join(rng.choice(symbols) for _ in range(400_000)), encoding="utf-8")
        print(f"{'preset':<12}{'charrnn c/s':>12}{'torch c/s':>11}{'ratio':>7}{'sampling ratio':>16}  pairs")
        worst = None
        for name in names:
            ours, theirs, ratios, sampling = [], [], [], []
            for _ in range(pairs):
                a = bench(*PRESETS[name])
                b = torch_bench(python, corpus, *PRESETS[name])
                ours.append(a["train_chars_per_sec"])
                theirs.append(b["train"])
                ratios.append(a["train_chars_per_sec"] / b["train"])
                sampling.append(a["sample_chars_per_sec"] / b["sample"])
            ratio = statistics.median(ratios)
            worst = ratio if worst is None else min(worst, ratio)
            print(
                f"{name:<12}{statistics.median(ours):>12,.0f}{statistics.median(theirs):>11,.0f}{ratio:>7.2f}"
                f"{statistics.median(sampling):>16.2f}  " + " ".join(f"{r:.2f}" for r in ratios),
                flush=True,
            )
        print(f"smallest training ratio charrnn/torch: {worst:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", default=list(PRESETS), help=f"any of {', '.join(PRESETS)}")
    parser.add_argument("--torch", action="store_true", help="also run PyTorch alternately and print the ratios")
    parser.add_argument("--pairs", type=int, default=3, help="with --torch: charrnn/PyTorch pairs per preset")
    parser.add_argument("--torch-python", default=str(REPO / ".venv-torch" / "bin" / "python"))
    args = parser.parse_args()
    unknown = [n for n in args.presets if n not in PRESETS]
    if unknown:
        sys.exit(f"speed.py: unknown preset {unknown[0]!r}; choose from {', '.join(PRESETS)}")
    if args.torch:
        if not Path(args.torch_python).exists():
            sys.exit(
                f"speed.py: no Python at {args.torch_python}; make one with PyTorch (see --help) or pass --torch-python"
            )
        compare(args.presets, args.torch_python, args.pairs)
        return
    print(f"{'preset':<12}{'train c/s':>11}{'ms/step':>9}{'GFLOP/s':>9}{'fwd/bwd/upd %':>15}{'sample c/s':>12}")
    for name in args.presets:
        r = bench(*PRESETS[name])
        split = "/".join(f"{100 * r[k]:.0f}" for k in ("forward_frac", "backward_frac", "update_frac"))
        print(
            f"{name:<12}{r['train_chars_per_sec']:>11,.0f}{r['ms_per_step']:>9.1f}{r['gflops']:>9.1f}"
            f"{split:>15}{r['sample_chars_per_sec']:>12,.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
